//! The metadata an AWS destination attaches to each message, merged as Outpost does:
//! system fields, then the destination's delivery metadata, then the event's metadata.

use outrider_sdk::Event;
use std::collections::BTreeMap;

/// Keys the system sets (each may be overridden by delivery or event metadata).
pub const SYSTEM_KEYS: [&str; 3] = ["event-id", "topic", "timestamp"];

/// `event-id`, `topic` and `timestamp` (Unix seconds of the delivery), overridden by
/// `delivery_metadata`, overridden by the event's own metadata.
pub fn merged(
    event: &Event,
    delivery_metadata: &[(String, String)],
    now_unix_seconds: u64,
) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    metadata.insert("event-id".to_string(), event.id.clone());
    metadata.insert("topic".to_string(), event.topic.clone());
    metadata.insert("timestamp".to_string(), now_unix_seconds.to_string());
    for (key, value) in delivery_metadata.iter().chain(&event.metadata) {
        metadata.insert(key.clone(), value.clone());
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_win() {
        let event = Event {
            id: "evt_1".into(),
            tenant_id: "t".into(),
            topic: "order.paid".into(),
            time_ms: 0,
            metadata: vec![
                ("source".into(), "api".into()),
                ("topic".into(), "x".into()),
            ],
            data: "{}".into(),
            attempt: 1,
        };
        let delivery = [
            ("source".to_string(), "static".to_string()),
            ("env".to_string(), "prod".to_string()),
        ];
        let m = merged(&event, &delivery, 1_700_000_000);
        assert_eq!(m["event-id"], "evt_1");
        assert_eq!(m["timestamp"], "1700000000");
        assert_eq!(m["env"], "prod");
        assert_eq!(m["source"], "api");
        assert_eq!(
            m["topic"], "x",
            "event metadata may override system keys, as in Outpost"
        );
    }
}
