//! Kafka error codes a producer meets, their names, and what each means for a delivery.

/// What an error code means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Transient: retried by the host's schedule.
    Retry,
    /// The cached partition leaders are out of date (leadership moved, a broker is
    /// down): refresh the metadata, then try again.
    StaleMetadata,
    /// Permanent for this event (too large, malformed): not retried.
    Fail,
    /// The destination's configuration is wrong (authentication, authorisation, topic).
    Misconfigured,
}

/// `(code, name, class)` of the codes a producer can get; any other code is retried.
const CODES: &[(i16, &str, Class)] = &[
    (-1, "UNKNOWN_SERVER_ERROR", Class::Retry),
    (2, "CORRUPT_MESSAGE", Class::Retry),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", Class::StaleMetadata),
    (5, "LEADER_NOT_AVAILABLE", Class::StaleMetadata),
    (6, "NOT_LEADER_OR_FOLLOWER", Class::StaleMetadata),
    (7, "REQUEST_TIMED_OUT", Class::Retry),
    (8, "BROKER_NOT_AVAILABLE", Class::StaleMetadata),
    (10, "MESSAGE_TOO_LARGE", Class::Fail),
    (13, "NETWORK_EXCEPTION", Class::StaleMetadata),
    (17, "INVALID_TOPIC_EXCEPTION", Class::Misconfigured),
    (18, "RECORD_LIST_TOO_LARGE", Class::Fail),
    (19, "NOT_ENOUGH_REPLICAS", Class::Retry),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", Class::Retry),
    (21, "INVALID_REQUIRED_ACKS", Class::Misconfigured),
    (29, "TOPIC_AUTHORIZATION_FAILED", Class::Misconfigured),
    (31, "CLUSTER_AUTHORIZATION_FAILED", Class::Misconfigured),
    (32, "INVALID_TIMESTAMP", Class::Fail),
    (33, "UNSUPPORTED_SASL_MECHANISM", Class::Misconfigured),
    (34, "ILLEGAL_SASL_STATE", Class::Retry),
    (35, "UNSUPPORTED_VERSION", Class::Misconfigured),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", Class::Misconfigured),
    (56, "KAFKA_STORAGE_ERROR", Class::StaleMetadata),
    (58, "SASL_AUTHENTICATION_FAILED", Class::Misconfigured),
    (74, "FENCED_LEADER_EPOCH", Class::StaleMetadata),
    (75, "UNKNOWN_LEADER_EPOCH", Class::StaleMetadata),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", Class::Fail),
    (87, "INVALID_RECORD", Class::Fail),
    (89, "THROTTLING_QUOTA_EXCEEDED", Class::Retry),
];

/// The code's name, or `error N` for one this plugin does not know.
pub fn name(code: i16) -> String {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, _)| (*name).to_owned())
        .unwrap_or_else(|| format!("error {code}"))
}

/// What `code` (non-zero) means for the delivery.
pub fn class(code: i16) -> Class {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, class)| *class)
        .unwrap_or(Class::Retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_what_the_producer_can_do_about_them() {
        assert_eq!(class(6), Class::StaleMetadata);
        assert_eq!(class(7), Class::Retry);
        assert_eq!(class(89), Class::Retry);
        assert_eq!(class(10), Class::Fail);
        assert_eq!(class(58), Class::Misconfigured);
        assert_eq!(class(29), Class::Misconfigured);
        assert_eq!(class(999), Class::Retry);
        assert_eq!(name(10), "MESSAGE_TOO_LARGE");
        assert_eq!(name(999), "error 999");
    }
}
