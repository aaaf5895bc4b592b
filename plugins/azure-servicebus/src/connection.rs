//! Service Bus connection strings:
//! `Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<name>;SharedAccessKey=<key>[;EntityPath=<queue>]`,
//! or with `SharedAccessSignature=<token>` instead of a key.

/// How requests are authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A shared access policy: SAS tokens are generated from it.
    Key {
        /// `SharedAccessKeyName`.
        name: String,
        /// `SharedAccessKey`, used as-is (its UTF-8 bytes) as the HMAC key.
        key: String,
    },
    /// A ready-made `SharedAccessSignature sr=...` token.
    Signature(String),
}

/// A parsed connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// Namespace host, lower case (`contoso.servicebus.windows.net`).
    pub host: String,
    /// Credentials.
    pub auth: Auth,
    /// `EntityPath`: the queue or topic an entity-level connection string is for.
    pub entity_path: Option<String>,
}

/// Service Bus namespace domains of Azure's public and sovereign clouds.
pub const NAMESPACE_DOMAINS: [&str; 4] = [
    ".servicebus.windows.net",
    ".servicebus.chinacloudapi.cn",
    ".servicebus.usgovcloudapi.net",
    ".servicebus.cloudapi.de",
];

impl ConnectionString {
    /// Parses `text`; the error completes "credentials.connection_string ...".
    pub fn parse(text: &str) -> Result<ConnectionString, String> {
        let mut endpoint = None;
        let mut key_name = None;
        let mut key = None;
        let mut signature = None;
        let mut entity_path = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(
                    "is not a connection string: expected `Name=value` pairs separated by `;`"
                        .into(),
                );
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value),
                "sharedaccesskeyname" => key_name = Some(value),
                "sharedaccesskey" => key = Some(value),
                "sharedaccesssignature" => signature = Some(value),
                "entitypath" => entity_path = Some(value),
                _ => {}
            }
        }
        let endpoint = endpoint.ok_or(
            "must contain `Endpoint=sb://<namespace>.servicebus.windows.net/` (copy it from \
             the namespace's Shared access policies)",
        )?;
        let host = endpoint_host(endpoint).ok_or_else(|| {
            "has a malformed Endpoint: expected `sb://<namespace>.servicebus.windows.net/`"
                .to_string()
        })?;
        let auth = match (key_name, key, signature) {
            (_, _, Some(token)) if !token.is_empty() => {
                if !token.starts_with("SharedAccessSignature ")
                    || token.chars().any(|c| c.is_control())
                {
                    return Err(
                        "has a malformed SharedAccessSignature: expected `SharedAccessSignature sr=...`"
                            .into(),
                    );
                }
                Auth::Signature(token.to_string())
            }
            (Some(name), Some(key), _) if !name.is_empty() && !key.is_empty() => Auth::Key {
                name: name.to_string(),
                key: key.to_string(),
            },
            _ => return Err(
                "must contain SharedAccessKeyName and SharedAccessKey (or SharedAccessSignature)"
                    .into(),
            ),
        };
        Ok(ConnectionString {
            host,
            auth,
            entity_path: entity_path.filter(|p| !p.is_empty()).map(str::to_string),
        })
    }

    /// Whether the host is a namespace of one of Azure's clouds.
    pub fn is_azure_namespace(&self) -> bool {
        let host = self.host.split(':').next().unwrap_or("");
        NAMESPACE_DOMAINS
            .iter()
            .any(|d| host.len() > d.len() && host.ends_with(d))
    }
}

/// Host (and port) of `sb://host[:port][/]` (or `https://`, `amqps://`), lower case.
fn endpoint_host(endpoint: &str) -> Option<String> {
    let lower = endpoint.to_ascii_lowercase();
    let rest = ["sb://", "https://", "amqps://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme))?;
    let authority = rest.trim_end_matches('/');
    let valid = !authority.is_empty()
        && !authority.starts_with(['.', '-', ':'])
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    valid.then(|| authority.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespace_and_entity_strings() {
        let c = ConnectionString::parse(
            "Endpoint=sb://Contoso.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=abc+/def=",
        )
        .unwrap();
        assert_eq!(c.host, "contoso.servicebus.windows.net");
        assert_eq!(
            c.auth,
            Auth::Key {
                name: "RootManageSharedAccessKey".into(),
                key: "abc+/def=".into()
            }
        );
        assert_eq!(c.entity_path, None);
        assert!(c.is_azure_namespace());

        let c = ConnectionString::parse(
            " endpoint=sb://x.servicebus.chinacloudapi.cn ; sharedaccesskeyname=send;sharedaccesskey=k;EntityPath=orders;",
        )
        .unwrap();
        assert_eq!(c.host, "x.servicebus.chinacloudapi.cn");
        assert_eq!(c.entity_path.as_deref(), Some("orders"));
        assert!(c.is_azure_namespace());

        let c = ConnectionString::parse(
            "Endpoint=sb://x.example.com/;SharedAccessSignature=SharedAccessSignature sr=a&sig=b&se=1&skn=c",
        )
        .unwrap();
        assert_eq!(
            c.auth,
            Auth::Signature("SharedAccessSignature sr=a&sig=b&se=1&skn=c".into())
        );
        assert!(!c.is_azure_namespace());
    }

    #[test]
    fn errors_say_what_is_missing_without_echoing_secrets() {
        let err = |s: &str| ConnectionString::parse(s).unwrap_err();
        assert!(
            err("SharedAccessKeyName=a;SharedAccessKey=b").starts_with("must contain `Endpoint=")
        );
        assert!(
            err("Endpoint=http://x/;SharedAccessKeyName=a;SharedAccessKey=b")
                .starts_with("has a malformed Endpoint")
        );
        assert!(
            err("Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a")
                .starts_with("must contain SharedAccessKeyName and SharedAccessKey")
        );
        assert!(
            err("Endpoint=sb://x.servicebus.windows.net/;SharedAccessSignature=sig")
                .starts_with("has a malformed SharedAccessSignature")
        );
        let e = err("supersecretvalue");
        assert!(e.starts_with("is not a connection string") && !e.contains("supersecret"));
        let e = err("Endpoint=sb://x/;SharedAccessKey=s3cret;oops");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
