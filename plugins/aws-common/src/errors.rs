//! AWS error responses and what they mean for a delivery: retry (5xx, throttling,
//! timeouts), misconfigured (credentials, permissions, a queue, bucket or stream that does
//! not exist) or fail (the request itself was rejected).

use outrider_sdk::http::Response;
use outrider_sdk::serde_json::Value;
use outrider_sdk::{cap_body, time, DeliveryError};

/// An error as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: u16,
    /// Error code (`ThrottlingException`, `NoSuchBucket`), empty when none was found.
    pub code: String,
    /// AWS's message, empty when none was found.
    pub message: String,
}

/// What a delivery does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry later.
    Retry,
    /// The destination's configuration is wrong (credentials, permissions, a missing
    /// resource): stop and tell the person.
    Misconfigured,
    /// AWS rejected this request: do not retry it.
    Fail,
}

/// Throttling and transient server-side codes, retried whatever the status.
const RETRY_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "KMSThrottlingException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestTimeTooSkewed",
    "IDPCommunicationError",
];

/// Codes that mean the credentials, permissions or target resource are wrong.
const MISCONFIGURED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "AuthorizationHeaderMalformed",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "MissingAuthenticationToken",
    "NotAuthorized",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidSecurity",
    "AccountProblem",
    "AllAccessDisabled",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
    "NoSuchBucket",
    "PermanentRedirect",
    "InvalidBucketName",
    "ResourceNotFoundException",
    "InvalidAccountIdException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "KMSOptInRequired",
    "KMS.AccessDeniedException",
    "KMS.DisabledException",
    "KMS.NotFoundException",
    "KMS.InvalidStateException",
];

/// The class of an error with `code` answered with HTTP `status`.
pub fn classify(status: u16, code: &str) -> ErrorClass {
    if RETRY_CODES.contains(&code) {
        return ErrorClass::Retry;
    }
    if MISCONFIGURED_CODES.contains(&code) || status == 401 || status == 403 {
        return ErrorClass::Misconfigured;
    }
    match status {
        408 | 429 => ErrorClass::Retry,
        400..=499 => ErrorClass::Fail,
        _ => ErrorClass::Retry,
    }
}

impl AwsError {
    /// Reads the error code and message from a response of any AWS protocol: the
    /// `x-amzn-query-error` header (SQS), a JSON body's `__type`/`code` and
    /// `message` (JSON protocols), an XML `<Code>`/`<Message>` (S3, query protocols),
    /// then the `x-amzn-errortype` header.
    pub fn from_response(response: &Response) -> Self {
        let mut code = response
            .header("x-amzn-query-error")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        let mut message = String::new();
        let text = response.text();
        if let Ok(Value::Object(body)) = outrider_sdk::serde_json::from_str::<Value>(&text) {
            if code.is_empty() {
                code = ["__type", "code", "Code"]
                    .iter()
                    .find_map(|k| body.get(*k).and_then(Value::as_str))
                    .map(short_code)
                    .unwrap_or_default();
            }
            message = ["message", "Message", "errorMessage"]
                .iter()
                .find_map(|k| body.get(*k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_string();
        } else if text.trim_start().starts_with('<') {
            if code.is_empty() {
                code = xml_element(&text, "Code").unwrap_or_default();
            }
            message = xml_element(&text, "Message").unwrap_or_default();
        }
        if code.is_empty() {
            code = response
                .header("x-amzn-errortype")
                .map(short_code)
                .unwrap_or_default();
        }
        AwsError {
            status: response.status,
            code,
            message,
        }
    }

    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        classify(self.status, &self.code)
    }

    /// A delivery error for `service` (`SQS`, `S3`...): classified, with the status and
    /// the (capped) response body for the attempt log, and `Retry-After` honoured.
    pub fn into_delivery_error(self, service: &str, response: &Response) -> DeliveryError {
        let mut text = format!("{service} answered HTTP {}", self.status);
        if !self.code.is_empty() {
            text.push_str(&format!(" {}", self.code));
        }
        if !self.message.is_empty() {
            text.push_str(&format!(": {}", self.message));
        }
        let error = match self.class() {
            ErrorClass::Retry => DeliveryError::retry(text),
            ErrorClass::Misconfigured => DeliveryError::misconfigured(text),
            ErrorClass::Fail => DeliveryError::fail(text),
        }
        .status(self.status)
        .response_body(cap_body(&response.text()));
        match response.header("retry-after") {
            Some(value) => error.retry_after_header(value, time::unix_millis()),
            None => error,
        }
    }
}

/// The delivery error for a non-2xx `response` from `service`.
pub fn delivery_error(service: &str, response: &Response) -> DeliveryError {
    AwsError::from_response(response).into_delivery_error(service, response)
}

/// `com.amazonaws.sqs#QueueDoesNotExist` -> `QueueDoesNotExist`;
/// `ValidationException:http://internal.amazon.com/...` -> `ValidationException`.
fn short_code(raw: &str) -> String {
    let code = raw.rsplit('#').next().unwrap_or(raw);
    code.split(':').next().unwrap_or(code).trim().to_string()
}

/// The text of the first `<name>...</name>` element.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(xml[start..end].trim()))
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    fn kind(e: &DeliveryError) -> &'static str {
        match e {
            DeliveryError::Retry { .. } => "retry",
            DeliveryError::Fail(_) => "fail",
            DeliveryError::Misconfigured(_) => "misconfigured",
        }
    }

    #[test]
    fn reads_codes_of_every_protocol() {
        let sqs = response(
            400,
            &[(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            )],
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
        );
        let e = AwsError::from_response(&sqs);
        assert_eq!(e.code, "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(e.message, "The specified queue does not exist.");

        let kinesis = response(
            400,
            &[],
            r#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}"#,
        );
        assert_eq!(
            AwsError::from_response(&kinesis).code,
            "ProvisionedThroughputExceededException"
        );

        let s3 = response(
            404,
            &[],
            "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist &amp; never did</Message></Error>",
        );
        let e = AwsError::from_response(&s3);
        assert_eq!(e.code, "NoSuchBucket");
        assert_eq!(e.message, "The specified bucket does not exist & never did");

        let header_only = response(
            400,
            &[(
                "x-amzn-ErrorType",
                "ValidationException:http://internal.amazon.com/coral/",
            )],
            "",
        );
        assert_eq!(
            AwsError::from_response(&header_only).code,
            "ValidationException"
        );

        let nothing = response(502, &[], "Bad Gateway");
        assert_eq!(AwsError::from_response(&nothing).code, "");
    }

    #[test]
    fn classification() {
        for (status, code, expected) in [
            (500, "InternalFailure", ErrorClass::Retry),
            (503, "", ErrorClass::Retry),
            (503, "SlowDown", ErrorClass::Retry),
            (429, "", ErrorClass::Retry),
            (400, "ThrottlingException", ErrorClass::Retry),
            (
                400,
                "ProvisionedThroughputExceededException",
                ErrorClass::Retry,
            ),
            (400, "RequestLimitExceeded", ErrorClass::Retry),
            (400, "LimitExceededException", ErrorClass::Retry),
            (403, "RequestTimeTooSkewed", ErrorClass::Retry),
            (403, "SignatureDoesNotMatch", ErrorClass::Misconfigured),
            (403, "InvalidClientTokenId", ErrorClass::Misconfigured),
            (
                400,
                "UnrecognizedClientException",
                ErrorClass::Misconfigured,
            ),
            (403, "", ErrorClass::Misconfigured),
            (401, "", ErrorClass::Misconfigured),
            (
                400,
                "AWS.SimpleQueueService.NonExistentQueue",
                ErrorClass::Misconfigured,
            ),
            (404, "NoSuchBucket", ErrorClass::Misconfigured),
            (400, "ResourceNotFoundException", ErrorClass::Misconfigured),
            (301, "PermanentRedirect", ErrorClass::Misconfigured),
            (400, "InvalidParameterValue", ErrorClass::Fail),
            (400, "ValidationException", ErrorClass::Fail),
            (400, "MessageTooLong", ErrorClass::Fail),
            (413, "", ErrorClass::Fail),
            (404, "", ErrorClass::Fail),
        ] {
            assert_eq!(classify(status, code), expected, "{status} {code}");
        }
    }

    #[test]
    fn delivery_errors_keep_status_body_and_retry_after() {
        let throttled = response(
            400,
            &[("Retry-After", "3")],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        );
        let e = delivery_error("EventBridge", &throttled);
        assert_eq!(kind(&e), "retry");
        assert_eq!(e.retry_after_ms(), Some(3_000));
        assert_eq!(e.failure().status_code, Some(400));
        assert_eq!(
            e.failure().message,
            "EventBridge answered HTTP 400 ThrottlingException: Rate exceeded"
        );
        assert!(e
            .failure()
            .response_body
            .as_deref()
            .unwrap()
            .contains("Rate exceeded"));

        let denied = response(403, &[], "<Error><Code>AccessDenied</Code></Error>");
        let e = delivery_error("S3", &denied);
        assert_eq!(kind(&e), "misconfigured");
        assert_eq!(e.failure().message, "S3 answered HTTP 403 AccessDenied");

        let bad = response(400, &[], r#"{"__type":"InvalidArgumentException"}"#);
        assert_eq!(kind(&delivery_error("Kinesis", &bad)), "fail");
    }
}
