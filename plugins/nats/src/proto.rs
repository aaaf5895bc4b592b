//! The NATS client protocol as a publisher uses it: `CONNECT`, `PUB`/`HPUB` with a
//! header block, `SUB` for the JetStream reply inbox, `PING`/`PONG`, and parsing the
//! server's lines (`INFO`, `MSG`, `HMSG`, `+OK`, `-ERR`).

use outrider_sdk::serde_json;
use std::collections::BTreeMap;

/// `CONNECT` then `PING` (the `PONG` confirms the login). Credentials: user and
/// password, or a token.
pub fn connect(
    user: Option<&str>,
    password: Option<&str>,
    token: Option<&str>,
    tls: bool,
) -> Vec<u8> {
    let mut options = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "tls_required": tls,
        "headers": true,
        "no_responders": true,
        "name": "outrider",
        "lang": "rust",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1,
    });
    if let Some(user) = user {
        options["user"] = user.into();
    }
    if let Some(password) = password {
        options["pass"] = password.into();
    }
    if let Some(token) = token {
        options["auth_token"] = token.into();
    }
    format!("CONNECT {options}\r\nPING\r\n").into_bytes()
}

/// `SUB <subject> <sid>`.
pub fn subscribe(subject: &str, sid: u32) -> Vec<u8> {
    format!("SUB {subject} {sid}\r\n").into_bytes()
}

/// The header block: `NATS/1.0`, one `Key: value` line per entry (entries whose key or
/// value could break the block are left out), then an empty line.
pub fn header_block(headers: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = b"NATS/1.0\r\n".to_vec();
    for (key, value) in headers {
        let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !key_ok || value.contains(['\r', '\n']) {
            continue;
        }
        out.extend_from_slice(format!("{key}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `HPUB subject [reply] hdr_len total_len` with headers and payload.
pub fn hpub(subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    let mut out = format!(
        "HPUB {subject}{reply} {} {}\r\n",
        headers.len(),
        headers.len() + payload.len()
    )
    .into_bytes();
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// Whether `subject` is a valid subject to publish to: dot-separated non-empty tokens,
/// no whitespace, no wildcards.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 1024
        && subject.split('.').all(|t| {
            !t.is_empty()
                && t != "*"
                && t != ">"
                && !t
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        })
}

/// A line from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// `INFO {...}`
    Info(String),
    /// `PING`
    Ping,
    /// `PONG`
    Pong,
    /// `+OK`
    Ok,
    /// `-ERR 'why'`
    Err(String),
    /// `MSG subject sid [reply] size` or `HMSG subject sid [reply] hdr_size size`: a
    /// message whose `size` bytes (plus `\r\n`) follow.
    Msg {
        /// Subject it was sent to.
        subject: String,
        /// Header bytes at the start of the payload (0 for `MSG`).
        header_len: usize,
        /// Total bytes that follow.
        size: usize,
    },
}

/// Parse one server line.
pub fn parse_line(line: &[u8]) -> Result<ServerLine, String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let (op, rest) = text.split_once(' ').unwrap_or((text, ""));
    let number = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("malformed NATS line `{text}`"))
    };
    Ok(match op.to_ascii_uppercase().as_str() {
        "INFO" => ServerLine::Info(rest.to_owned()),
        "PING" => ServerLine::Ping,
        "PONG" => ServerLine::Pong,
        "+OK" => ServerLine::Ok,
        "-ERR" => ServerLine::Err(rest.trim().trim_matches('\'').to_owned()),
        "MSG" | "HMSG" => {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let headers = op.eq_ignore_ascii_case("HMSG");
            // subject sid [reply] [hdr] size
            let fixed = if headers { 4 } else { 3 };
            if parts.len() != fixed && parts.len() != fixed + 1 {
                return Err(format!("malformed NATS line `{text}`"));
            }
            let size = number(parts[parts.len() - 1])?;
            let header_len = if headers {
                number(parts[parts.len() - 2])?
            } else {
                0
            };
            if header_len > size {
                return Err(format!("malformed NATS line `{text}`"));
            }
            ServerLine::Msg {
                subject: parts[0].to_owned(),
                header_len,
                size,
            }
        }
        _ => return Err(format!("unexpected NATS line `{text}`")),
    })
}

/// The status code of a header block (`NATS/1.0 503` is "no responders").
pub fn status(headers: &[u8]) -> Option<u16> {
    let first = headers.split(|b| *b == b'\r').next()?;
    let text = std::str::from_utf8(first).ok()?;
    text.strip_prefix("NATS/1.0")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The session state kept with a pooled connection: the reply inbox prefix (JetStream)
/// and the next request number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `_INBOX.<random>` subscribed as `<prefix>.*` with sid 1; empty for core only.
    pub inbox: String,
    /// Number of the next request.
    pub next: u64,
}

impl Session {
    /// As stored.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.next.to_be_bytes().to_vec();
        out.extend_from_slice(self.inbox.as_bytes());
        out
    }

    /// From the stored blob.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 8 {
            return None;
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&bytes[..8]);
        Some(Session {
            next: u64::from_be_bytes(n),
            inbox: String::from_utf8(bytes[8..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpub_counts_header_and_total_bytes() {
        let mut headers = BTreeMap::new();
        headers.insert("Nats-Msg-Id".to_string(), "evt_1".to_string());
        headers.insert("bad\nkey".to_string(), "x".to_string());
        headers.insert("note".to_string(), "two\r\nlines".to_string());
        let block = header_block(&headers);
        assert_eq!(block, b"NATS/1.0\r\nNats-Msg-Id: evt_1\r\n\r\n".to_vec());
        let frame = hpub("orders.paid", Some("_INBOX.x.1"), &block, b"{}");
        let expected = format!(
            "HPUB orders.paid _INBOX.x.1 {} {}\r\n",
            block.len(),
            block.len() + 2
        );
        assert!(frame.starts_with(expected.as_bytes()));
        assert!(frame.ends_with(b"\r\n{}\r\n"));
    }

    #[test]
    fn server_lines() {
        assert_eq!(parse_line(b"PING").unwrap(), ServerLine::Ping);
        assert_eq!(
            parse_line(b"-ERR 'Authorization Violation'").unwrap(),
            ServerLine::Err("Authorization Violation".into())
        );
        assert_eq!(
            parse_line(b"MSG _INBOX.a.1 1 27").unwrap(),
            ServerLine::Msg {
                subject: "_INBOX.a.1".into(),
                header_len: 0,
                size: 27
            }
        );
        assert_eq!(
            parse_line(b"HMSG _INBOX.a.2 1 16 16").unwrap(),
            ServerLine::Msg {
                subject: "_INBOX.a.2".into(),
                header_len: 16,
                size: 16
            }
        );
        assert!(parse_line(b"HMSG x 1 20 10").is_err());
        assert!(matches!(
            parse_line(b"INFO {\"a\":1}").unwrap(),
            ServerLine::Info(_)
        ));
        assert_eq!(status(b"NATS/1.0 503\r\n\r\n"), Some(503));
        assert_eq!(status(b"NATS/1.0\r\n\r\n"), None);
    }

    #[test]
    fn subjects_and_session() {
        assert!(valid_subject("orders.paid"));
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(!valid_subject(bad), "{bad}");
        }
        let s = Session {
            inbox: "_INBOX.abc".into(),
            next: 9,
        };
        assert_eq!(Session::decode(&s.encode()), Some(s));
        let text = String::from_utf8(connect(Some("u"), Some("p"), None, false)).unwrap();
        assert!(text.starts_with("CONNECT {") && text.ends_with("}\r\nPING\r\n"));
        assert!(text.contains("\"pass\":\"p\"") && text.contains("\"headers\":true"));
    }
}
