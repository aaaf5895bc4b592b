//! The client side of SASL SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka
//! uses it: no channel binding, no authorisation identity.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Most PBKDF2 iterations accepted from a server (Kafka allows at most 16,384); more
/// would let a hostile server burn the call's CPU budget.
const MAX_ITERATIONS: u32 = 100_000;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Hash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// PBKDF2 with this hash's HMAC, one block (`Hi` in RFC 5802).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut first = salt.to_vec();
        first.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &first);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }
}

/// One SCRAM exchange.
#[derive(Debug)]
pub struct Exchange {
    hash: Hash,
    password: String,
    client_first_bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

/// `=` and `,` escaped as SCRAM's `saslname` requires.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Exchange {
    /// Start an exchange for `user` with a client nonce (printable, no `,`).
    pub fn new(hash: Hash, user: &str, password: &str, nonce: &str) -> Self {
        Exchange {
            hash,
            password: password.to_owned(),
            client_first_bare: format!("n={},r={nonce}", sasl_name(user)),
            nonce: nonce.to_owned(),
            server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message answering `server_first`.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let attr = |name: char| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        };
        if let Some(error) = attr('e') {
            return Err(format!("server refused the login: {error}"));
        }
        let nonce = attr('r').ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = attr('s')
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or("server-first message has no valid salt")?;
        let iterations: u32 = attr('i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or("server-first message has no valid iteration count")?;
        let salted = self
            .hash
            .salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Check the server-final message: the server proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), String> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(format!("server refused the login: {error}"));
        }
        let got = server_final
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or("server-final message has no verifier")?;
        match &self.server_signature {
            Some(expected) if *expected == got => Ok(()),
            _ => Err("the server's SCRAM signature does not match".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_sha256_example() {
        let mut x = Exchange::new(Hash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(x.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            x.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        x.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(x.verify_server_final("v=AAAA").is_err());
        assert!(x.verify_server_final("e=invalid-proof").is_err());
    }

    #[test]
    fn hostile_or_broken_server_first_messages_are_refused() {
        let mut x = Exchange::new(Hash::Sha512, "a,b=c", "pw", "abc");
        assert_eq!(x.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
        for bad in [
            "r=xyz123,s=AAAA,i=4096",       // nonce not extended
            "r=abc,s=AAAA,i=4096",          // nonce not extended at all
            "r=abcdef,s=!!,i=4096",         // bad salt
            "r=abcdef,s=AAAA,i=0",          // bad count
            "r=abcdef,s=AAAA,i=9999999999", // too many iterations
            "e=unknown-user",
        ] {
            assert!(x.client_final(bad).is_err(), "{bad}");
        }
        assert!(x.client_final("r=abcdef,s=AAAA,i=4096").is_ok());
    }
}
