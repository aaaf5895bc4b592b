//! What Outrider's AWS destination plugins (`aws-sqs`, `aws-s3`, `aws-kinesis`,
//! `aws-eventbridge`) share, so that each stays a small component:
//!
//! - [`sigv4`]: AWS Signature Version 4, computed inside the component (HMAC-SHA256,
//!   time from the host's clock), checked against AWS's published test vectors;
//! - [`credentials`]: Outpost's credential fields `key`, `secret`, `session`;
//! - [`fields`]: the shared `region` and `endpoint` fields and their checks;
//! - [`errors`]: reading AWS error responses (JSON, XML and SQS's query-error header) and
//!   classifying them as retry, fail or misconfigured;
//! - [`template`]: `{{event.topic}}/{{event.id}}.json` key templates;
//! - [`metadata`]: the metadata attached to each message, merged as Outpost does;
//! - [`url`] and [`clock`]: the small URL and date handling these need.
//!
//! It is a plain library, not a component: `cargo xtask plugins` only builds it as a
//! dependency. Everything here is pure and unit-tested natively, except [`send`], which
//! goes through the host's `http` capability.

pub mod clock;
pub mod credentials;
pub mod errors;
pub mod fields;
pub mod metadata;
pub mod sigv4;
pub mod template;
pub mod url;

pub use credentials::{credential_fields, AwsCredentials};
pub use errors::{AwsError, ErrorClass};
pub use sigv4::{Scope, SignOptions};
pub use template::Template;

use outrider_sdk::http::{self, Request, Response};
use outrider_sdk::{time, DeliveryError};

/// Signs `request` for `scope` at the current time, sends it through the host and returns
/// the 2xx response. Any other status becomes a classified [`DeliveryError`] whose
/// message starts with `service` (`"SQS answered HTTP 400 ..."`); timeouts and
/// connection failures are retried, network-policy denials are configuration problems.
pub fn send(
    request: Request,
    credentials: &AwsCredentials,
    scope: Scope<'_>,
    options: SignOptions,
    service: &str,
) -> Result<Response, DeliveryError> {
    let signed = sigv4::sign(request, credentials, scope, time::unix_seconds(), options)
        .map_err(DeliveryError::misconfigured)?;
    let response = http::send(signed)?;
    if response.is_success() {
        Ok(response)
    } else {
        Err(errors::delivery_error(service, &response))
    }
}
