//! The `server_url` and `tls` fields of broker destinations.

use outrider_sdk::tcp::{ConnectOptions, Tls};
use outrider_sdk::{Config, FieldError, Record};

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether to use TLS.
    pub tls: bool,
    /// Path after the host, without the leading `/` (an AMQP virtual host), if any.
    pub path: Option<String>,
}

impl Endpoint {
    /// Parse `value` (the field `config.<key>`): `host:port`, `host` (default port), or
    /// `scheme://host[:port][/path]` where `scheme` is one of `schemes` (plain, then
    /// TLS: e.g. `["amqp", "amqps"]`; the TLS scheme turns TLS on).
    pub fn parse(
        value: &str,
        key: &str,
        schemes: [&str; 2],
        default_port: u16,
        tls_port: u16,
        tls: bool,
    ) -> Result<Self, FieldError> {
        let bad = |why: &str| FieldError::new(format!("config.{key}"), why.to_owned());
        let value = value.trim();
        let (scheme_tls, rest) = match value.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme == schemes[0] {
                    (false, rest)
                } else if scheme == schemes[1] {
                    (true, rest)
                } else {
                    return Err(bad(&format!(
                        "scheme must be {}:// or {}://",
                        schemes[0], schemes[1]
                    )));
                }
            }
            None => (false, value),
        };
        let tls = tls || scheme_tls;
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, (!p.is_empty()).then(|| p.to_owned())),
            None => (rest, None),
        };
        if authority.contains('@') {
            return Err(bad(
                "must not contain credentials; use the credential fields",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("is not host:port")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err(bad("must be host:port (e.g. broker.example.com:5672)"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("has an invalid port"))?,
            None if tls => tls_port,
            None => default_port,
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            tls,
            path,
        })
    }

    /// Connect options for the host's `tcp` capability.
    pub fn connect_options(&self) -> ConnectOptions {
        let options = ConnectOptions::new(self.host.clone(), self.port).connect_timeout_ms(5_000);
        if self.tls {
            options.tls(Tls::default())
        } else {
            options
        }
    }

    /// `host:port`, for fingerprints and messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Endpoint {
    /// The `server_url` and `tls` fields of `config` (schemes and ports as in
    /// [`Endpoint::parse`]); problems are added to `errors`.
    pub fn from_config(
        config: &Config,
        schemes: [&str; 2],
        default_port: u16,
        tls_port: u16,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let tls = tls_flag(config).record(errors).unwrap_or(false);
        let url = config.str("server_url").record(errors)?;
        Self::parse(url, "server_url", schemes, default_port, tls_port, tls).record(errors)
    }
}

/// The `tls` field: Outpost writes it as the string `"true"` / `"false"`; booleans are
/// accepted too.
pub fn tls_flag(config: &Config) -> Result<bool, FieldError> {
    config.bool("tls")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Endpoint, FieldError> {
        Endpoint::parse(v, "server_url", ["amqp", "amqps"], 5672, 5671, false)
    }

    #[test]
    fn outpost_host_port_and_urls() {
        let e = parse("localhost:5672").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("localhost", 5672, false));
        let e = parse("mq.example.com").unwrap();
        assert_eq!(e.port, 5672);
        let e = parse("amqps://mq.example.com/prod").unwrap();
        assert_eq!(
            (e.port, e.tls, e.path.as_deref()),
            (5671, true, Some("prod"))
        );
        let e = parse("[::1]:5673").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 5673));
        assert_eq!(e.address(), "[::1]:5673");
        let e = Endpoint::parse("h", "server_url", ["amqp", "amqps"], 5672, 5671, true).unwrap();
        assert_eq!((e.port, e.tls), (5671, true));
    }

    #[test]
    fn bad_values_name_the_field() {
        for bad in [
            "",
            "http://x:1",
            "h:notaport",
            "h:0",
            "user:pw@h:1",
            "a b:1",
            "[::1",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.field, "config.server_url", "{bad}");
        }
    }
}
