//! Outbound HTTP, performed by the host under the prototype's network access.
//!
//! ```no_run
//! use outrider_sdk::http::{self, Request};
//!
//! let response = http::send(
//!     Request::post("https://example.com/hook")
//!         .header("content-type", "application/json")
//!         .body(r#"{"ok":true}"#),
//! )?;
//! assert!(response.is_success());
//! # Ok::<(), outrider_sdk::http::HttpError>(())
//! ```

use std::fmt;

/// An HTTP request to send through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS`.
    pub method: String,
    /// Absolute `http`/`https` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Per-request timeout; the host caps it at the call's remaining deadline.
    pub timeout_ms: Option<u32>,
    /// Whether the host follows redirects (each hop checked). Default: no.
    pub follow_redirects: bool,
}

impl Request {
    /// A request with any method.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
            follow_redirects: false,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new("PATCH", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| HttpError::InvalidRequest(format!("body is not JSON: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sets the timeout.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sets whether redirects are followed.
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }
}

/// A response received by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// Body, truncated at the host's cap.
    pub body: Vec<u8>,
    /// Whether `body` was truncated.
    pub truncated: bool,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why the host could not complete a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Refused by network access or address policy; no connection was made.
    Denied(String),
    /// Bad URL, method or header.
    InvalidRequest(String),
    /// No response within the timeout.
    Timeout,
    /// Connection, TLS or protocol failure.
    Transport(String),
    /// The request body exceeds the host's cap.
    BodyTooLarge,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied(why) => write!(f, "request denied by network policy: {why}"),
            HttpError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            HttpError::Timeout => f.write_str("request timed out"),
            HttpError::Transport(why) => write!(f, "connection failed: {why}"),
            HttpError::BodyTooLarge => f.write_str("request body exceeds the host's limit"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends `request` through the host and waits for the whole response.
///
/// Outside the Outrider host (native unit tests) this fails with
/// [`HttpError::Transport`].
pub fn send(request: Request) -> Result<Response, HttpError> {
    imp::send(request)
}

/// Parses a `Retry-After` value, delay seconds or an HTTP-date, into milliseconds from
/// `now_ms` (Unix milliseconds). A date in the past is zero; anything else unparsable is
/// `None`.
///
/// ```
/// use outrider_sdk::http::parse_retry_after;
///
/// assert_eq!(parse_retry_after("120", 0), Some(120_000));
/// assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4_000), Some(6_000));
/// assert_eq!(parse_retry_after("soon", 0), None);
/// ```
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .unwrap_or(u64::MAX)
                .saturating_mul(1000),
        );
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis()
        .min(u128::from(u64::MAX)) as u64;
    Some(at_ms.saturating_sub(now_ms))
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::http as wit;
    use crate::bindings::types::Entry;

    pub fn send(request: Request) -> Result<Response, HttpError> {
        let request = wit::Request {
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect(),
            body: request.body,
            timeout_ms: request.timeout_ms,
            follow_redirects: request.follow_redirects,
        };
        match wit::send(&request) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers.into_iter().map(|e| (e.key, e.value)).collect(),
                body: r.body,
                truncated: r.truncated,
            }),
            Err(wit::Error::Denied(why)) => Err(HttpError::Denied(why)),
            Err(wit::Error::InvalidRequest(why)) => Err(HttpError::InvalidRequest(why)),
            Err(wit::Error::Timeout) => Err(HttpError::Timeout),
            Err(wit::Error::Transport(why)) => Err(HttpError::Transport(why)),
            Err(wit::Error::BodyTooLarge) => Err(HttpError::BodyTooLarge),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    pub fn send(_request: Request) -> Result<Response, HttpError> {
        Err(HttpError::Transport(
            "host http is only available inside the Outrider host".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("0", 5), Some(0));
        assert_eq!(parse_retry_after(" 30 ", 5), Some(30_000));
        assert_eq!(
            parse_retry_after("99999999999999999999999", 0),
            Some(u64::MAX)
        );
        assert_eq!(parse_retry_after("-1", 0), None);
        assert_eq!(parse_retry_after("1.5", 0), None);
        assert_eq!(parse_retry_after("", 0), None);
    }

    #[test]
    fn retry_after_dates() {
        // 2015-10-21T07:28:00Z = 1445412480 s
        let at = 1_445_412_480_000;
        let imf = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(imf, at - 90_000), Some(90_000));
        assert_eq!(parse_retry_after(imf, at + 1), Some(0));
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", at - 1_000),
            Some(1_000)
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", at - 2_000),
            Some(2_000)
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28", 0), None);
    }

    #[test]
    fn request_builder_and_response_helpers() {
        let r = Request::post("https://x")
            .json(&serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(
            r.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, br#"{"a":1}"#);
        let resp = Response {
            status: 204,
            headers: vec![("Retry-After".into(), "3".into())],
            body: b"ok".to_vec(),
            truncated: false,
        };
        assert!(resp.is_success());
        assert_eq!(resp.header("retry-after"), Some("3"));
        assert_eq!(resp.text(), "ok");
    }
}
