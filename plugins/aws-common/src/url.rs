//! The little URL handling the AWS plugins need: splitting `http(s)` URLs into the parts
//! SigV4 signs, AWS's URI encoding, and service endpoints.

/// An absolute `http`/`https` URL split into the parts SigV4 needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `http` or `https`, lower case.
    pub scheme: String,
    /// Host name or IP literal (IPv6 in brackets), lower case.
    pub host: String,
    /// Explicit port, `None` when absent or the scheme's default.
    pub port: Option<u16>,
    /// Path as written, `/` when empty.
    pub path: String,
    /// Query string without `?`, empty when absent.
    pub query: String,
}

impl ParsedUrl {
    /// Parses `url`; the message says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "must be an absolute http(s) URL".to_string())?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err("must be an http or https URL".into()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err("must not contain user information".into());
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err("must name a host".into());
        }
        if !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        }) {
            return Err(format!("has an invalid host `{host}`"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("must not contain spaces".into());
        }
        Ok(ParsedUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.filter(|p| *p != default_port),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            query: query.into(),
        })
    }

    /// The `Host` header an HTTP client sends: the host, with the port when it is not
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.host_header())
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "has an unclosed IPv6 literal".to_string())?;
        let host = &authority[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| "has junk after the IPv6 literal".to_string())?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("has an invalid port `{p}`"))?,
        ),
    };
    Ok((host, port))
}

/// AWS's URI encoding: every byte except the unreserved `A-Z a-z 0-9 - _ . ~` as `%XX`
/// (upper-case hex); `/` is kept unless `encode_slash`.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !encode_slash)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The DNS suffix of AWS's public endpoints in `region` (`amazonaws.com`, or
/// `amazonaws.com.cn` in the China regions).
pub fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// The public endpoint of `service` (`sqs`, `kinesis`, `events`, `s3`) in `region`:
/// `https://kinesis.eu-west-1.amazonaws.com`.
pub fn service_endpoint(service: &str, region: &str) -> String {
    format!("https://{service}.{region}.{}", dns_suffix(region))
}

/// Checks an optional custom endpoint (`http://localhost:4566`, a VPC endpoint) and
/// returns it without a trailing `/`; query strings and fragments are refused.
pub fn check_endpoint(value: &str) -> Result<String, String> {
    let parsed = ParsedUrl::parse(value)?;
    if !parsed.query.is_empty() || value.contains('#') {
        return Err("must not have a query or fragment".into());
    }
    let path = parsed.path.trim_end_matches('/');
    Ok(format!("{}{path}", parsed.origin()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = ParsedUrl::parse("HTTPS://Sqs.US-East-1.amazonaws.com:443/123/q?a=1#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "sqs.us-east-1.amazonaws.com");
        assert_eq!(u.port, None, "default port dropped");
        assert_eq!(u.path, "/123/q");
        assert_eq!(u.query, "a=1");
        assert_eq!(u.host_header(), "sqs.us-east-1.amazonaws.com");

        let u = ParsedUrl::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (u.host_header().as_str(), u.path.as_str()),
            ("127.0.0.1:5000", "/")
        );
        assert_eq!(u.origin(), "http://127.0.0.1:5000");

        let u = ParsedUrl::parse("http://[::1]:4566/x").unwrap();
        assert_eq!(u.host_header(), "[::1]:4566");

        for bad in [
            "sqs.us-east-1.amazonaws.com",
            "ftp://x",
            "http://",
            "http://u:p@host/",
            "http://host:99999/",
            "http://ho st/",
            "http://[::1/",
        ] {
            assert!(ParsedUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c~d*é", false), "a%20b/c~d%2A%C3%A9");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(percent_decode("a%20b%2F%zz%"), "a b/%zz%");
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            service_endpoint("kinesis", "eu-west-1"),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            service_endpoint("events", "cn-north-1"),
            "https://events.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            check_endpoint("http://localhost:4566/").unwrap(),
            "http://localhost:4566"
        );
        assert_eq!(
            check_endpoint("https://vpce-1.example.com/base/").unwrap(),
            "https://vpce-1.example.com/base"
        );
        assert!(check_endpoint("http://x/?a=1").is_err());
        assert!(check_endpoint("localhost:4566").is_err());
    }
}
