//! One Kafka connection's protocol session: the handshake a fresh connection needs
//! (ApiVersions, then SASL when configured), request/response round trips with
//! correlation ids, and the state kept in the host's pooled-connection session blob so
//! that the next delivery on the same connection skips the handshake.

use crate::codec::{Reader, Writer};
use crate::errors;
use crate::protocol::{self, api, version};
use crate::scram::{self, Exchange};
use broker_common::{Endpoint, Link, StepError};
use outrider_sdk::{random, time, DeliveryError};

/// Largest response accepted (a Metadata answer of a big cluster fits easily).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Re-authenticate this long before the broker's SASL session ends.
const REAUTH_MARGIN_MS: u64 = 5_000;

/// How the client logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No SASL.
    None,
    /// SASL PLAIN.
    Plain {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// SASL SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram {
        /// Hash.
        hash: scram::Hash,
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

/// What a logged-in connection remembers between deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Produce version agreed with this broker.
    pub produce_version: i16,
    /// Next correlation id.
    pub next_correlation: i32,
    /// When the SASL session ends (Unix ms), 0 for never.
    pub expires_at_ms: u64,
}

const BLOB_VERSION: i8 = 1;

impl Session {
    /// The blob stored with the pooled connection.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i8(BLOB_VERSION)
            .i16(self.produce_version)
            .i32(self.next_correlation)
            .i64(self.expires_at_ms as i64);
        w.into_bytes()
    }

    /// The session in `blob`, if it is one this version wrote and it has not expired.
    pub fn resume(blob: &[u8], now_ms: u64) -> Option<Self> {
        let (&first, rest) = blob.split_first()?;
        if first != BLOB_VERSION as u8 {
            return None;
        }
        let mut r = Reader::new(rest);
        let session = Session {
            produce_version: r.i16().ok()?,
            next_correlation: r.i32().ok()?,
            expires_at_ms: u64::try_from(r.i64().ok()?).ok()?,
        };
        let live = session.expires_at_ms == 0 || now_ms + REAUTH_MARGIN_MS < session.expires_at_ms;
        live.then_some(session)
    }

    /// Send one request and return the response body (after the correlation id).
    pub fn call(
        &mut self,
        link: &mut Link,
        api_key: i16,
        api_version: i16,
        body: &[u8],
    ) -> Result<Vec<u8>, StepError> {
        let id = self.next_correlation;
        self.next_correlation = id.wrapping_add(1) & i32::MAX;
        link.write(&protocol::frame(api_key, api_version, id, body))?;
        let size = link.read_exact(4)?;
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE_BYTES).contains(s))
            .ok_or_else(|| StepError::Connection(format!("Kafka response of {size} bytes")))?;
        let mut response = link.read_exact(size)?;
        let got = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
        if got != id {
            return Err(StepError::Connection(format!(
                "Kafka response for correlation id {got}, expected {id}"
            )));
        }
        Ok(response.split_off(4))
    }
}

/// Run `step` on a pooled connection to `endpoint` (see [`broker_common::deliver`]):
/// a pooled connection resumes its session, a fresh one handshakes first. `print`
/// identifies the login settings, so a connection opened with other ones is not reused.
pub fn run<T>(
    endpoint: &Endpoint,
    print: &[u8],
    auth: &Auth,
    mut step: impl FnMut(&mut Link, &mut Session) -> Result<T, StepError>,
) -> Result<T, DeliveryError> {
    let address = endpoint.address();
    broker_common::deliver(&endpoint.connect_options(), print, |link, resumed| {
        let mut session = match resumed {
            Some(blob) => Session::resume(blob, time::unix_millis()).ok_or_else(|| {
                // Another blob version, or a SASL session about to end: start afresh.
                StepError::Connection("pooled Kafka session expired".into())
            })?,
            None => open(link, auth, &address)?,
        };
        let value = step(link, &mut session)?;
        Ok((value, session.encode()))
    })
}

/// A broker answer that ends the delivery; the connection stays usable.
pub fn refused(error: DeliveryError, session: &Session) -> StepError {
    StepError::Broker {
        error,
        keep: Some(session.encode()),
    }
}

/// The handshake of a fresh connection: ApiVersions, then SASL when configured.
pub fn open(link: &mut Link, auth: &Auth, address: &str) -> Result<Session, StepError> {
    let mut session = Session {
        produce_version: version::PRODUCE_MIN,
        next_correlation: 1,
        expires_at_ms: 0,
    };
    let body = session
        .call(link, api::API_VERSIONS, version::API_VERSIONS, &[])
        .map_err(|e| match e {
            StepError::Connection(why) => {
                StepError::Connection(format!("no Kafka ApiVersions answer from {address}: {why}"))
            }
            other => other,
        })?;
    let (error, ranges) = protocol::parse_api_versions(&body)?;
    if error != 0 {
        return Err(StepError::broker(DeliveryError::misconfigured(format!(
            "{address} refused ApiVersions v{}: {} (a Kafka broker older than 2.1?)",
            version::API_VERSIONS,
            errors::name(error)
        ))));
    }
    let range = |key: i16| ranges.iter().find(|r| r.api_key == key);
    let too_old = |what: &str| {
        StepError::broker(DeliveryError::misconfigured(format!(
            "{address} does not support {what}; Outrider needs a Kafka 2.1 or later broker"
        )))
    };
    let produce = range(api::PRODUCE)
        .filter(|r| r.max >= version::PRODUCE_MIN && r.min <= version::PRODUCE_MAX)
        .ok_or_else(|| too_old("Produce v7/v8"))?;
    session.produce_version = produce.max.min(version::PRODUCE_MAX);
    range(api::METADATA)
        .filter(|r| (r.min..=r.max).contains(&version::METADATA))
        .ok_or_else(|| too_old("Metadata v7"))?;
    match auth {
        Auth::None => {}
        Auth::Plain { username, password } => {
            handshake(link, &mut session, "PLAIN")?;
            let message = format!("\0{username}\0{password}");
            let answer = authenticate(link, &mut session, message.as_bytes())?;
            session.expires_at_ms = expiry(answer.session_lifetime_ms);
        }
        Auth::Scram {
            hash,
            username,
            password,
        } => scram_login(link, &mut session, *hash, username, password)?,
    }
    Ok(session)
}

fn expiry(lifetime_ms: i64) -> u64 {
    match u64::try_from(lifetime_ms) {
        Ok(ms) if ms > 0 => time::unix_millis() + ms,
        _ => 0,
    }
}

fn misconfigured(message: String) -> StepError {
    StepError::broker(DeliveryError::misconfigured(message))
}

fn handshake(link: &mut Link, session: &mut Session, mechanism: &str) -> Result<(), StepError> {
    let body = protocol::sasl_handshake_request(mechanism);
    let answer = session.call(link, api::SASL_HANDSHAKE, version::SASL_HANDSHAKE, &body)?;
    let (error, offered) = protocol::parse_sasl_handshake(&answer)?;
    match error {
        0 => Ok(()),
        33 => Err(misconfigured(format!(
            "the broker does not offer SASL {mechanism} on this listener (it offers: {})",
            if offered.is_empty() {
                "none".to_owned()
            } else {
                offered.join(", ")
            }
        ))),
        other => Err(misconfigured(format!(
            "SASL handshake refused: {}",
            errors::name(other)
        ))),
    }
}

fn authenticate(
    link: &mut Link,
    session: &mut Session,
    message: &[u8],
) -> Result<protocol::SaslAnswer, StepError> {
    let body = protocol::sasl_authenticate_request(message);
    let answer = session.call(
        link,
        api::SASL_AUTHENTICATE,
        version::SASL_AUTHENTICATE,
        &body,
    )?;
    let answer = protocol::parse_sasl_authenticate(&answer)?;
    if answer.error != 0 {
        return Err(misconfigured(format!(
            "SASL login refused by the broker: {}{}",
            errors::name(answer.error),
            answer
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )));
    }
    Ok(answer)
}

fn scram_login(
    link: &mut Link,
    session: &mut Session,
    hash: scram::Hash,
    username: &str,
    password: &str,
) -> Result<(), StepError> {
    handshake(link, session, hash.mechanism())?;
    let nonce: String = random::bytes(18)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut exchange = Exchange::new(hash, username, password, &nonce);
    let first = authenticate(link, session, exchange.client_first().as_bytes())?;
    let server_first = String::from_utf8_lossy(&first.auth_bytes).into_owned();
    let client_final = exchange
        .client_final(&server_first)
        .map_err(misconfigured)?;
    let last = authenticate(link, session, client_final.as_bytes())?;
    exchange
        .verify_server_final(&String::from_utf8_lossy(&last.auth_bytes))
        .map_err(misconfigured)?;
    session.expires_at_ms = expiry(last.session_lifetime_ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_blob_round_trips_and_expires() {
        let s = Session {
            produce_version: 8,
            next_correlation: 42,
            expires_at_ms: 0,
        };
        assert_eq!(Session::resume(&s.encode(), 1_000), Some(s));
        let timed = Session {
            expires_at_ms: 100_000,
            ..s
        };
        assert_eq!(Session::resume(&timed.encode(), 50_000), Some(timed));
        assert_eq!(Session::resume(&timed.encode(), 96_000), None);
        assert_eq!(Session::resume(b"", 0), None);
        assert_eq!(Session::resume(&[9, 0, 8, 0, 0, 0, 1], 0), None);
    }
}
