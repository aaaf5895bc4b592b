//! Per-call host allowlists: which hosts (and ports) one call may reach, from the
//! prototype's declared `network.hosts` patterns (with `{config_key}` substitution and
//! `*.` wildcards) and the URLs in its `network.url_fields`.

use serde_json::Value;

use super::{normalize_host, url_host, Denied};
use crate::runtime::manifest::NetworkAccess;

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this host.
    Exact(String),
    /// Any subdomain of this suffix (stored with its leading dot).
    Subdomains(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct HostRule {
    host: HostPattern,
    /// Required port; `None` allows any port.
    port: Option<u16>,
}

/// Hosts one call may reach, from the prototype's `network.hosts` patterns (with
/// `{config_key}` substituted) and the URLs in its `network.url_fields`.
#[derive(Clone, Debug, Default)]
pub struct HostAllowlist {
    rules: Vec<HostRule>,
    /// Patterns or fields that could not be used (missing key, bad URL), for denial
    /// reasons.
    skipped: Vec<String>,
    /// Whether the prototype declared raw TCP access.
    tcp: bool,
}

/// Whether `host` is acceptable as a host name or address after substitution.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

impl HostAllowlist {
    /// An allowlist that refuses every host (self-tests, manifests).
    pub fn deny_all() -> Self {
        HostAllowlist::default()
    }

    /// Build the allowlist of one configured target.
    pub fn for_target(access: &NetworkAccess, config: &Value) -> Self {
        let mut list = HostAllowlist {
            tcp: access.tcp,
            ..HostAllowlist::default()
        };
        for pattern in &access.hosts {
            match substitute(pattern, config) {
                Ok(text) => match parse_pattern(&text) {
                    Some(rule) => list.rules.push(rule),
                    None => list
                        .skipped
                        .push(format!("host pattern `{pattern}` is malformed")),
                },
                Err(why) => list
                    .skipped
                    .push(format!("host pattern `{pattern}`: {why}")),
            }
        }
        for key in &access.url_fields {
            match config.get(key) {
                Some(Value::String(value)) => match url_hosts(value) {
                    Some(hosts) => {
                        list.rules
                            .extend(hosts.into_iter().map(|(host, port)| HostRule {
                                host: HostPattern::Exact(host),
                                port,
                            }))
                    }
                    None => list.skipped.push(format!(
                        "config.{key} is not a URL, host[:port] or comma-separated list of them"
                    )),
                },
                Some(Value::Null) | None => {
                    list.skipped.push(format!("config.{key} is not set"));
                }
                Some(_) => list.skipped.push(format!("config.{key} is not a string")),
            }
        }
        list
    }

    /// Whether the prototype declared raw TCP access (`network.tcp`).
    pub fn tcp_declared(&self) -> bool {
        self.tcp
    }

    /// Check a host (name or IP literal) and port against the list.
    pub fn check(&self, host: &str, port: u16) -> Result<(), Denied> {
        let host = normalize_host(host);
        let hit = self.rules.iter().any(|rule| {
            rule.port.is_none_or(|p| p == port)
                && match &rule.host {
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
                }
        });
        if hit {
            return Ok(());
        }
        let mut reason = format!("{host}:{port} is not in the destination's network access");
        if !self.skipped.is_empty() {
            reason.push_str(" (");
            reason.push_str(&self.skipped.join("; "));
            reason.push(')');
        }
        Err(Denied::new(reason))
    }

    /// Check an absolute URL's host and port (scheme default port when absent).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Denied> {
        let host = url_host(url).ok_or_else(|| Denied::new(format!("{url} has no host")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Denied::new(format!("{url} has no port")))?;
        self.check(&host, port)
    }
}

/// Replace `{key}` references in a host pattern with config string (or number) values.
fn substitute(pattern: &str, config: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or("unclosed `{`")?;
        let key = &after[..end];
        let value = match config.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Null) | None => return Err(format!("config.{key} is not set")),
            Some(_) => return Err(format!("config.{key} is not a string")),
        };
        if !plausible_host(&value) || value.contains(':') {
            return Err(format!("config.{key} is not a host name part"));
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parse `host`, `*.suffix`, optionally with `:port`.
fn parse_pattern(text: &str) -> Option<HostRule> {
    let text = text.trim();
    let (host, port) = match text.rsplit_once(':') {
        // An IPv6 literal in brackets, or a host with a port.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p.parse::<u16>().ok()?)),
        _ => (text, None),
    };
    let host = normalize_host(host);
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') || !plausible_host(suffix) {
            return None;
        }
        return Some(HostRule {
            host: HostPattern::Subdomains(format!(".{suffix}")),
            port,
        });
    }
    if host.contains('*') || !plausible_host(&host) {
        return None;
    }
    Some(HostRule {
        host: HostPattern::Exact(host),
        port,
    })
}

/// Host and port of a config value that is a URL (`https://h:8443/x`) or `host[:port]`.
/// The hosts a URL field names: one URL or `host[:port]`, or a comma-separated list of
/// them (a broker cluster's bootstrap list, `b1:9092,b2:9092`). A list is read only when
/// the whole value is not one URL, and every entry must parse.
fn url_hosts(value: &str) -> Option<Vec<(String, Option<u16>)>> {
    if let Some(one) = url_host_port(value) {
        return Some(vec![one]);
    }
    if !value.contains(',') {
        return None;
    }
    let hosts: Option<Vec<_>> = value.split(',').map(url_host_port).collect();
    hosts.filter(|h| !h.is_empty())
}

fn url_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    if value.contains("://") {
        let url = url::Url::parse(value).ok()?;
        let host = url_host(&url)?;
        return Some((host, url.port_or_known_default()));
    }
    let url = url::Url::parse(&format!("tcp://{value}")).ok()?;
    if url.path() != "" && url.path() != "/" {
        return None;
    }
    Some((url_host(&url)?, url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_url_field_may_list_several_brokers() {
        let access = NetworkAccess {
            hosts: vec![],
            url_fields: vec!["brokers".into(), "bad".into()],
            tcp: true,
        };
        let config = json!({
            "brokers": "b1.example.io:9092, b2.example.io:9093",
            "bad": "b3.example.io:9092,not a host",
        });
        let list = HostAllowlist::for_target(&access, &config);
        assert!(list.check("b1.example.io", 9092).is_ok());
        assert!(list.check("b2.example.io", 9093).is_ok());
        assert!(list.check("b2.example.io", 9092).is_err());
        // One bad entry and the whole field is unusable, named in the denial.
        let denied = list.check("b3.example.io", 9092).unwrap_err();
        assert!(denied.reason.contains("config.bad"), "{}", denied.reason);
    }

    #[test]
    fn allowlist_from_hosts_and_url_fields() {
        let access = NetworkAccess {
            hosts: vec![
                "api.example.com".into(),
                "*.amazonaws.com".into(),
                "sqs.{region}.aws.test:8443".into(),
                "{missing}.example.org".into(),
            ],
            url_fields: vec!["url".into(), "broker".into(), "absent".into()],
            tcp: false,
        };
        let config = json!({
            "region": "eu-west-1",
            "url": "https://Hooks.Example.net/in?x=1",
            "broker": "mq.example.io:5671",
        });
        let list = HostAllowlist::for_target(&access, &config);
        assert!(list.check("api.example.com", 443).is_ok());
        assert!(list.check("API.example.com.", 8080).is_ok());
        assert!(list.check("sqs.us-east-1.amazonaws.com", 443).is_ok());
        assert!(list.check("amazonaws.com", 443).is_err());
        assert!(list.check("evilamazonaws.com", 443).is_err());
        assert!(list.check("sqs.eu-west-1.aws.test", 8443).is_ok());
        assert!(list.check("sqs.eu-west-1.aws.test", 443).is_err());
        assert!(list.check("hooks.example.net", 443).is_ok());
        assert!(list.check("hooks.example.net", 80).is_err());
        assert!(list.check("mq.example.io", 5671).is_ok());
        let err = list.check("other.example", 443).unwrap_err();
        assert!(err.reason.contains("config.missing is not set"), "{err}");
        assert!(err.reason.contains("config.absent is not set"), "{err}");
    }

    #[test]
    fn substitution_cannot_widen_a_pattern() {
        let access = NetworkAccess {
            hosts: vec!["{region}.example.com".into()],
            url_fields: vec![],
            tcp: false,
        };
        for region in ["evil.test/", "evil.test#", "a:1", "*"] {
            let list = HostAllowlist::for_target(&access, &json!({ "region": region }));
            assert!(list.rules.is_empty(), "{region}");
        }
    }

    #[test]
    fn url_fields_with_ip_literals() {
        let access = NetworkAccess {
            hosts: vec![],
            url_fields: vec!["url".into()],
            tcp: false,
        };
        let list = HostAllowlist::for_target(&access, &json!({"url": "http://[::1]:9000/x"}));
        assert!(list.check("::1", 9000).is_ok());
        assert!(list.check("[::1]", 9000).is_ok());
        let list = HostAllowlist::for_target(&access, &json!({"url": "http://2130706433:81/"}));
        assert!(list.check("127.0.0.1", 81).is_ok());
        assert!(HostAllowlist::deny_all().check("127.0.0.1", 81).is_err());
    }
}
