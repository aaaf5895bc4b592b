//! Shared parts of Outrider's broker destinations (`rabbitmq`, `nats`, `mqtt`, `redis`).
//!
//! - [`endpoint`]: the `server_url` field (`host:port` as Outpost writes it, or
//!   `scheme://host[:port][/path]`) and the `tls` field.
//! - [`link`]: a connection over the host's `tcp` capability with buffered reads, and
//!   [`link::deliver`], which takes a pooled connection (resuming the protocol session
//!   the plugin stored with it), runs one publish, and returns the connection to the
//!   pool, re-handshaking on a fresh connection when a pooled one turns out broken.
//! - Subject / topic / key templates are aws-common's `{{event.topic}}` templates,
//!   re-exported as [`Template`].

#![deny(missing_docs)]

pub mod endpoint;
pub mod link;

pub use aws_common::template::{render_event, Template};
pub use endpoint::Endpoint;
pub use link::{deliver, Link, StepError};

use outrider_sdk::{Event, Target};
use std::collections::BTreeMap;

/// The metadata a broker message carries: Outpost's `event-id`, `topic` and `timestamp`
/// (Unix seconds), then the destination's delivery metadata, then the event's metadata
/// (later entries win on equal keys).
pub fn message_metadata(target: &Target, event: &Event) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("event-id".to_owned(), event.id.clone());
    out.insert("topic".to_owned(), event.topic.clone());
    out.insert("timestamp".to_owned(), (event.time_ms / 1000).to_string());
    for (k, v) in target.delivery_metadata.iter().chain(&event.metadata) {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// A short fingerprint of everything a broker session depends on (address, user,
/// password, virtual host, ...), stored at the start of the session blob so that a
/// pooled connection opened with other settings is not resumed after an edit.
pub fn fingerprint(parts: &[&str]) -> Vec<u8> {
    // FNV-1a: not a secret (the blob stays in the host), just a change detector.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_change_with_any_part() {
        let a = fingerprint(&["h:1", "guest", "guest"]);
        assert_eq!(a, fingerprint(&["h:1", "guest", "guest"]));
        assert_ne!(a, fingerprint(&["h:1", "guest", "other"]));
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn metadata_has_outpost_keys_and_event_metadata_wins() {
        let mut target = Target::new("x");
        target.delivery_metadata = vec![("source".into(), "dest".into())];
        let event = Event {
            id: "evt_1".into(),
            tenant_id: "t".into(),
            topic: "order.paid".into(),
            time_ms: 1_700_000_000_123,
            metadata: vec![("source".into(), "event".into())],
            data: "{}".into(),
            attempt: 1,
        };
        let m = message_metadata(&target, &event);
        assert_eq!(m["event-id"], "evt_1");
        assert_eq!(m["topic"], "order.paid");
        assert_eq!(m["timestamp"], "1700000000");
        assert_eq!(m["source"], "event");
    }
}
