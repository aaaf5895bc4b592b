//! Destinations: the [`Destination`] trait, the event it delivers, and how a delivery
//! reports success ([`Delivered`]) or failure ([`DeliveryError`]: retry, fail or
//! misconfigured).

use crate::fields::{Config, Credentials, FieldError};
use crate::http::{self, HttpError, Response};
use crate::{Plugin, Target};
use std::fmt;

/// A plugin with destination prototypes. Export it with
/// [`export_destination!`](crate::export_destination) (or
/// [`export_plugin!`](crate::export_plugin) if it also has transformers).
pub trait Destination: Plugin {
    /// Checks a configuration of `prototype`; report every problem, each naming its field
    /// (`config.url`, `credentials.secret`).
    fn validate(
        prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>>;

    /// Delivers one event to the configured target.
    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError>;
}

/// A destination that delivers several events to one target better in one call than one
/// by one (pipelined publishes on one broker connection, a batch API). Export it with
/// [`export_batch_destination!`](crate::export_batch_destination): the host then groups
/// deliveries that are due together for one destination (up to 128) into one
/// `deliver_batch` call, and keeps one such call in flight per destination.
pub trait BatchDestination: Destination {
    /// Delivers `events` (at least one) to `target`: exactly one result per event, in
    /// order. Any other number of results fails the whole call, as a crash.
    fn deliver_batch(target: &Target, events: &[Event]) -> Vec<Result<Delivered, DeliveryError>>;
}

/// An event to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event id (the idempotency key).
    pub id: String,
    /// Tenant the event belongs to.
    pub tenant_id: String,
    /// Topic.
    pub topic: String,
    /// Event time, Unix milliseconds.
    pub time_ms: u64,
    /// Event metadata.
    pub metadata: Vec<(String, String)>,
    /// Payload, JSON text exactly as published.
    pub data: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl Event {
    /// The payload parsed as JSON.
    pub fn data_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.data)
    }

    /// The metadata value for `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Longest response body kept for the attempt log, in bytes.
pub const RESPONSE_BODY_CAP: usize = 4096;

/// `body` cut to [`RESPONSE_BODY_CAP`] bytes at a character boundary.
pub fn cap_body(body: &str) -> String {
    if body.len() <= RESPONSE_BODY_CAP {
        return body.to_string();
    }
    let mut end = RESPONSE_BODY_CAP;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

/// A successful delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Status code reported by the receiver (HTTP status), if any.
    pub status_code: Option<u16>,
    /// Receiver's response for the attempt log.
    pub response_body: Option<String>,
}

impl Delivered {
    /// Delivered, with nothing to report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivered over HTTP with `status` and `body` (capped).
    pub fn http(status: u16, body: &str) -> Self {
        Delivered {
            status_code: Some(status),
            response_body: Some(cap_body(body)),
        }
    }

    /// Delivered with the status and (capped) body of `response`.
    pub fn from_response(response: &Response) -> Self {
        Self::http(response.status, &response.text())
    }

    /// The usual HTTP outcome: a 2xx is delivered, anything else is classified by
    /// [`DeliveryError::from_response`] (5xx and 429 retried, honouring `Retry-After`).
    pub fn check(response: &Response) -> Result<Self, DeliveryError> {
        if response.is_success() {
            Ok(Self::from_response(response))
        } else {
            Err(DeliveryError::from_response(response))
        }
    }
}

/// Details of a failed delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for a person.
    pub message: String,
    /// Receiver's status code, if any.
    pub status_code: Option<u16>,
    /// Receiver's response, if any.
    pub response_body: Option<String>,
}

/// Why a delivery failed, which decides what the host does next.
///
/// ```
/// use outrider_sdk::DeliveryError;
///
/// let throttled = DeliveryError::from_http_status(429, "slow down").retry_after(30_000);
/// assert_eq!(throttled.retry_after_ms(), Some(30_000));
/// assert!(matches!(DeliveryError::from_http_status(404, ""), DeliveryError::Fail(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Transient (timeouts, 5xx, throttling): retried by the schedule.
    Retry {
        /// What went wrong.
        failure: Failure,
        /// Minimum delay before the next attempt (e.g. from `Retry-After`).
        retry_after_ms: Option<u64>,
    },
    /// Permanent for this event (e.g. a 4xx rejection): not retried.
    Fail(Failure),
    /// The destination's configuration is wrong: not retried, counts towards alerts.
    Misconfigured(Failure),
}

impl DeliveryError {
    /// A transient failure.
    pub fn retry(message: impl Into<String>) -> Self {
        DeliveryError::Retry {
            failure: failure(message),
            retry_after_ms: None,
        }
    }

    /// A permanent failure for this event.
    pub fn fail(message: impl Into<String>) -> Self {
        DeliveryError::Fail(failure(message))
    }

    /// A configuration problem.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        DeliveryError::Misconfigured(failure(message))
    }

    /// Maps a non-2xx HTTP status: 408, 429, 5xx and anything else that is not a 4xx are
    /// retried; other 4xx fail. `body` is kept (capped) for the attempt log.
    pub fn from_http_status(status: u16, body: &str) -> Self {
        let message = format!("receiver answered HTTP {status}");
        let error = if (400..500).contains(&status) && status != 408 && status != 429 {
            Self::fail(message)
        } else {
            Self::retry(message)
        };
        error.status(status).response_body(cap_body(body))
    }

    /// Like [`from_http_status`](Self::from_http_status), honouring the response's
    /// `Retry-After` header (seconds or HTTP-date) when retrying.
    pub fn from_response(response: &Response) -> Self {
        let error = Self::from_http_status(response.status, &response.text());
        match response.header("retry-after") {
            Some(value) => error.retry_after_header(value, crate::time::unix_millis()),
            None => error,
        }
    }

    /// Sets the retry delay from a `Retry-After` value, relative to `now_ms` (Unix
    /// milliseconds). Unparsable values and non-retry errors are left unchanged.
    pub fn retry_after_header(self, value: &str, now_ms: u64) -> Self {
        match http::parse_retry_after(value, now_ms) {
            Some(ms) => self.retry_after(ms),
            None => self,
        }
    }

    /// Sets the minimum delay before the next attempt (retry errors only).
    pub fn retry_after(mut self, ms: u64) -> Self {
        if let DeliveryError::Retry { retry_after_ms, .. } = &mut self {
            *retry_after_ms = Some(ms);
        }
        self
    }

    /// Attaches the receiver's status code.
    pub fn status(mut self, status: u16) -> Self {
        self.failure_mut().status_code = Some(status);
        self
    }

    /// Attaches the receiver's response (not capped; see [`cap_body`]).
    pub fn response_body(mut self, body: impl Into<String>) -> Self {
        self.failure_mut().response_body = Some(body.into());
        self
    }

    /// The failure details.
    pub fn failure(&self) -> &Failure {
        match self {
            DeliveryError::Retry { failure, .. }
            | DeliveryError::Fail(failure)
            | DeliveryError::Misconfigured(failure) => failure,
        }
    }

    /// The retry delay, for retry errors that have one.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            DeliveryError::Retry { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    fn failure_mut(&mut self) -> &mut Failure {
        match self {
            DeliveryError::Retry { failure, .. }
            | DeliveryError::Fail(failure)
            | DeliveryError::Misconfigured(failure) => failure,
        }
    }
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        status_code: None,
        response_body: None,
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            DeliveryError::Retry { .. } => "retry",
            DeliveryError::Fail(_) => "failed",
            DeliveryError::Misconfigured(_) => "misconfigured",
        };
        write!(f, "{kind}: {}", self.failure().message)
    }
}

impl std::error::Error for DeliveryError {}

/// Network policy denials and bad requests are configuration problems; timeouts and
/// connection failures are retried; an oversized body fails the event.
impl From<HttpError> for DeliveryError {
    fn from(e: HttpError) -> Self {
        let message = e.to_string();
        match e {
            HttpError::Denied(_) | HttpError::InvalidRequest(_) => Self::misconfigured(message),
            HttpError::Timeout | HttpError::Transport(_) => Self::retry(message),
            HttpError::BodyTooLarge => Self::fail(message),
        }
    }
}

/// A bad field found while delivering is a configuration problem.
impl From<FieldError> for DeliveryError {
    fn from(e: FieldError) -> Self {
        Self::misconfigured(e.to_string())
    }
}

/// Bad fields found while delivering (e.g. parsing settings again in `deliver`), as one
/// configuration problem naming each field.
impl From<Vec<FieldError>> for DeliveryError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::misconfigured(crate::fields::join_errors(&errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &DeliveryError) -> &'static str {
        match e {
            DeliveryError::Retry { .. } => "retry",
            DeliveryError::Fail(_) => "fail",
            DeliveryError::Misconfigured(_) => "misconfigured",
        }
    }

    #[test]
    fn http_status_mapping() {
        for (status, expected) in [
            (500, "retry"),
            (502, "retry"),
            (503, "retry"),
            (408, "retry"),
            (429, "retry"),
            (301, "retry"),
            (400, "fail"),
            (401, "fail"),
            (404, "fail"),
            (410, "fail"),
            (422, "fail"),
        ] {
            let e = DeliveryError::from_http_status(status, "body");
            assert_eq!(kind(&e), expected, "{status}");
            assert_eq!(e.failure().status_code, Some(status));
            assert_eq!(e.failure().response_body.as_deref(), Some("body"));
            assert_eq!(
                e.failure().message,
                format!("receiver answered HTTP {status}")
            );
        }
    }

    #[test]
    fn retry_after_applies_to_retries_only() {
        let now = 1_000_000;
        let e = DeliveryError::from_http_status(503, "").retry_after_header("7", now);
        assert_eq!(e.retry_after_ms(), Some(7_000));
        let e = DeliveryError::from_http_status(404, "").retry_after_header("7", now);
        assert_eq!(e.retry_after_ms(), None);
        let e = DeliveryError::from_http_status(429, "").retry_after_header("later", now);
        assert_eq!(e.retry_after_ms(), None);
        assert_eq!(
            DeliveryError::retry("x").retry_after(5).retry_after_ms(),
            Some(5)
        );
    }

    #[test]
    fn from_response_reads_retry_after() {
        let response = Response {
            status: 429,
            headers: vec![("Retry-After".into(), "2".into())],
            body: b"slow down".to_vec(),
            truncated: false,
        };
        let e = DeliveryError::from_response(&response);
        assert_eq!(e.retry_after_ms(), Some(2_000));
        assert_eq!(e.failure().response_body.as_deref(), Some("slow down"));
    }

    #[test]
    fn bodies_are_capped_on_char_boundaries() {
        let long = "é".repeat(RESPONSE_BODY_CAP);
        let capped = cap_body(&long);
        assert!(capped.len() <= RESPONSE_BODY_CAP && capped.len() >= RESPONSE_BODY_CAP - 1);
        assert_eq!(
            Delivered::http(200, "ok").response_body.as_deref(),
            Some("ok")
        );
        let e = DeliveryError::from_http_status(500, &long);
        assert!(e.failure().response_body.as_ref().unwrap().len() <= RESPONSE_BODY_CAP);
    }

    #[test]
    fn error_conversions() {
        assert_eq!(kind(&HttpError::Timeout.into()), "retry");
        assert_eq!(kind(&HttpError::Transport("reset".into()).into()), "retry");
        assert_eq!(
            kind(&HttpError::Denied("10.0.0.1".into()).into()),
            "misconfigured"
        );
        assert_eq!(kind(&HttpError::BodyTooLarge.into()), "fail");
        let e: DeliveryError = FieldError::new("config.url", "is required").into();
        assert_eq!(e.to_string(), "misconfigured: config.url is required");
    }
}
