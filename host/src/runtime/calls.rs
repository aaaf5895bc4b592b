//! Host-side inputs and outcomes of plugin calls, independent of the WIT version:
//! [`Target`], [`Event`], [`Delivered`], and the failures [`DeliveryFailure`],
//! [`TransformFailure`] and [`CallError`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::call::Fault;
use super::guest::TargetJson;
use super::manifest::PrototypeKind;

/// The configured destination or transformer a call is made for.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// Prototype id within the plugin (the destination `type`).
    pub prototype: String,
    /// Id of the configured destination/transformer.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Validated configuration object (defaults applied, references resolved).
    pub config: Value,
    /// Decrypted credentials object.
    pub credentials: Value,
    /// Static metadata added to every delivery.
    pub delivery_metadata: BTreeMap<String, String>,
}

/// A [`Target`] with its JSON text made once, shared by every call to it: the delivery
/// path keeps one per destination while the stored destination is unchanged, so a call
/// neither copies nor re-serializes the configuration and credentials.
#[derive(Clone, Debug)]
pub struct PreparedTarget {
    target: Target,
    json: TargetJson,
}

impl PreparedTarget {
    /// Serialize `target`'s configuration and credentials once.
    pub fn new(target: Target) -> Self {
        let json = TargetJson::new(&target);
        PreparedTarget { target, json }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Its configuration and credentials as JSON text.
    pub fn json(&self) -> &TargetJson {
        &self.json
    }
}

/// An event to deliver.
#[derive(Clone, Debug, Default)]
pub struct Event {
    /// Event id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Topic.
    pub topic: String,
    /// Event time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Event metadata.
    pub metadata: BTreeMap<String, String>,
    /// Payload as JSON text (passed to the plugin as is, without re-serializing).
    pub data: String,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
}

/// A successful delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Status code reported by the receiver (HTTP status), if any.
    pub status_code: Option<u16>,
    /// Receiver's response (capped by the host).
    pub response_body: Option<String>,
}

/// Why a delivery did not succeed. Traps, timeouts and limits are failures of this call
/// only; the host keeps running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryFailure {
    /// Transient: retry by the schedule (not before `retry_after`, if given).
    #[error("{message}")]
    Retry {
        /// What went wrong.
        message: String,
        /// Receiver's status code.
        status_code: Option<u16>,
        /// Receiver's response (capped).
        response_body: Option<String>,
        /// Minimum delay before the next attempt.
        retry_after: Option<Duration>,
    },
    /// Permanent for this event.
    #[error("{message}")]
    Fail {
        /// What went wrong.
        message: String,
        /// Receiver's status code.
        status_code: Option<u16>,
        /// Receiver's response (capped).
        response_body: Option<String>,
    },
    /// The destination's configuration is wrong.
    #[error("misconfigured: {message}")]
    Misconfigured {
        /// What is wrong.
        message: String,
        /// Receiver's status code.
        status_code: Option<u16>,
        /// Receiver's response (capped).
        response_body: Option<String>,
    },
    /// The plugin trapped.
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("plugin call timed out")]
    Timeout,
    /// The plugin exceeded its memory limit.
    #[error("plugin exceeded its memory limit")]
    MemoryLimit,
    /// The plugin's network access was refused (no connection was made to the refused
    /// address); takes precedence over the plugin's own error for the same call.
    #[error("network access denied: {0}")]
    Denied(String),
}

impl DeliveryFailure {
    /// Whether retrying later may succeed (the delivery layer decides; this is the
    /// plugin-level hint): retries, timeouts, traps and limits are retryable; permanent
    /// failures, misconfiguration and denials are not.
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            DeliveryFailure::Fail { .. }
                | DeliveryFailure::Misconfigured { .. }
                | DeliveryFailure::Denied(_)
        )
    }
}

impl From<Fault> for DeliveryFailure {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Trap(m) => DeliveryFailure::Trap(m),
            Fault::Timeout => DeliveryFailure::Timeout,
            Fault::MemoryLimit => DeliveryFailure::MemoryLimit,
            // The host was too busy to start the call: nothing went wrong with the
            // destination, so the schedule simply tries again.
            Fault::Unavailable(message) => DeliveryFailure::Retry {
                message,
                status_code: None,
                response_body: None,
                retry_after: Some(Duration::from_secs(1)),
            },
        }
    }
}

/// Why a transformation did not produce outputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformFailure {
    /// The input could not be transformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The configuration is wrong.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// The plugin returned something that is not JSON.
    #[error("plugin returned invalid output: {0}")]
    BadOutput(String),
    /// The plugin trapped.
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("plugin call timed out")]
    Timeout,
    /// The plugin exceeded its memory limit.
    #[error("plugin exceeded its memory limit")]
    MemoryLimit,
    /// Network access refused.
    #[error("network access denied: {0}")]
    Denied(String),
    /// The host could not run the call now (all instance slots busy); try again.
    #[error("plugin unavailable: {0}")]
    Unavailable(String),
}

impl From<Fault> for TransformFailure {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Trap(m) => TransformFailure::Trap(m),
            Fault::Timeout => TransformFailure::Timeout,
            Fault::MemoryLimit => TransformFailure::MemoryLimit,
            Fault::Unavailable(m) => TransformFailure::Unavailable(m),
        }
    }
}

/// Why a `validate` or `self_tests` call failed (field problems are not errors: they
/// are the `Ok` value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin has no such prototype of that kind.
    #[error("plugin has no {kind} prototype `{prototype}`")]
    UnknownPrototype {
        /// Kind asked for.
        kind: PrototypeKind,
        /// Prototype id asked for.
        prototype: String,
    },
    /// The call failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

/// Longest message kept from a plugin's failure (delivery, transformation, field error):
/// messages end up in logs, attempt rows and API answers, so megabytes returned by a
/// plugin are cut here, once, right after the call.
pub const MESSAGE_CAP: usize = 4096;

/// Most field errors kept from one `validate` call.
pub const FIELD_ERRORS_CAP: usize = 100;

/// Cut `text` to at most `cap` bytes on a char boundary.
pub(crate) fn cap_text(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
