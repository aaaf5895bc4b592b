//! Tests of `alerts`.

use super::*;
use serde_json::json;
use time::macros::datetime;

/// Runs `failures` consecutive failures from zero; returns `(count, percent, disable)`
/// of every alert.
fn alerts_over(config: &ConsecutiveFailures, failures: u32) -> Vec<(u32, u8, bool)> {
    let mut count = 0;
    let mut fired = Vec::new();
    for _ in 0..failures {
        let (next, level) = config.record(false, count);
        assert_eq!(next, count + 1);
        count = next;
        if let Some(level) = level {
            assert_eq!((level.failures, level.max), (count, config.threshold()));
            fired.push((count, level.percent, level.disable));
        }
    }
    fired
}

#[test]
fn default_levels_fire_once_each() {
    let config = ConsecutiveFailures::default();
    assert_eq!(config.threshold(), 100);
    assert!(!config.auto_disable());
    assert_eq!(config.levels(), &[(50, 50), (70, 70), (90, 90), (100, 100)]);
    assert_eq!(
        alerts_over(&config, 250),
        [
            (50, 50, false),
            (70, 70, false),
            (90, 90, false),
            (100, 100, false)
        ]
    );
}

#[test]
fn auto_disable_at_one_hundred_percent_only() {
    let config = ConsecutiveFailures::new(10, true);
    assert_eq!(
        alerts_over(&config, 20),
        [
            (5, 50, false),
            (7, 70, false),
            (9, 90, false),
            (10, 100, true)
        ]
    );
}

#[test]
fn success_resets_and_levels_fire_again() {
    let config = ConsecutiveFailures::new(4, false);
    assert_eq!(config.record(false, 1).1.map(|l| l.percent), Some(50));
    assert_eq!(config.record(true, 3), (0, None));
    assert_eq!(config.record(true, 0), (0, None));
    assert_eq!(config.record(false, 0), (1, None));
    assert_eq!(config.record(false, 1).1.map(|l| l.percent), Some(50));
}

#[test]
fn small_thresholds_round_up_and_report_the_highest_level() {
    // 50 % of 3 is 2; 70 %, 90 % and 100 % of 3 are all 3.
    let config = ConsecutiveFailures::new(3, true);
    assert_eq!(config.levels(), &[(50, 2), (70, 3), (90, 3), (100, 3)]);
    assert_eq!(alerts_over(&config, 5), [(2, 50, false), (3, 100, true)]);
    let config = ConsecutiveFailures::new(1, false);
    assert_eq!(alerts_over(&config, 3), [(1, 100, false)]);
}

#[test]
fn zero_threshold_turns_alerts_off() {
    let config = ConsecutiveFailures::new(0, true);
    assert!(config.levels().is_empty());
    assert_eq!(alerts_over(&config, 10), []);
    assert_eq!(config.record(false, 41), (42, None));
}

#[test]
fn custom_levels() {
    let config = ConsecutiveFailures::with_levels(20, &[25, 75, 25], false).unwrap();
    assert_eq!(config.levels(), &[(25, 5), (75, 15), (100, 20)]);
    assert_eq!(
        alerts_over(&config, 30),
        [(5, 25, false), (15, 75, false), (20, 100, false)]
    );
    let only_disable = ConsecutiveFailures::with_levels(5, &[], true).unwrap();
    assert_eq!(alerts_over(&only_disable, 9), [(5, 100, true)]);
    assert_eq!(
        ConsecutiveFailures::with_levels(5, &[0], false),
        Err(AlertConfigError::Level(0))
    );
    let err = ConsecutiveFailures::with_levels(5, &[50, 101], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "alert level 101% must be between 1% and 100%"
    );
}

#[test]
fn counts_saturate_and_level_at_matches_record() {
    let config = ConsecutiveFailures::default();
    assert_eq!(config.record(false, u32::MAX), (u32::MAX, None));
    for count in 0..=120 {
        assert_eq!(
            config.level_at(count),
            config.record(false, count.saturating_sub(1)).1,
            "{count}"
        );
    }
    assert_eq!(config.level_at(0), None);
}

fn destination(disabled_at: Option<OffsetDateTime>) -> AlertDestination {
    AlertDestination {
        id: "des_456".into(),
        tenant_id: "tenant_123".into(),
        destination_type: "webhook".into(),
        topics: Topics::List(vec!["order.created".into()]),
        filter: None,
        config: json!({"url": "https://example.test/hook"}),
        metadata: None,
        created_at: datetime!(2025-05-01 09:00:00 UTC),
        updated_at: datetime!(2025-05-02 09:00:00 UTC),
        disabled_at,
    }
}

#[test]
fn consecutive_failure_payload() {
    let level = ConsecutiveFailures::new(100, false)
        .record(false, 49)
        .1
        .unwrap();
    let data = ConsecutiveFailureData::new(
        &level,
        destination(None),
        json!({"id": "evt_1"}),
        json!({"id": "att_1"}),
    );
    let event = OperationEvent::new("op_1", datetime!(2025-06-01 12:00:00 UTC), data);
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        json!({
            "id": "op_1",
            "topic": "alert.destination.consecutive_failure",
            "time": "2025-06-01T12:00:00Z",
            "tenant_id": "tenant_123",
            "data": {
                "tenant_id": "tenant_123",
                "event": {"id": "evt_1"},
                "attempt": {"id": "att_1"},
                "destination": {
                    "id": "des_456",
                    "tenant_id": "tenant_123",
                    "type": "webhook",
                    "topics": ["order.created"],
                    "config": {"url": "https://example.test/hook"},
                    "created_at": "2025-05-01T09:00:00Z",
                    "updated_at": "2025-05-02T09:00:00Z",
                    "disabled_at": null
                },
                "consecutive_failures": {"current": 50, "max": 100, "threshold": 50},
                "will_disable": false
            }
        })
    );
    let back: OperationEvent<ConsecutiveFailureData> =
        serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
    assert_eq!(back, event);
}

#[test]
fn destination_disabled_payload() {
    let level = ConsecutiveFailures::new(2, true)
        .record(false, 1)
        .1
        .unwrap();
    assert!(level.disable);
    let disabled_at = datetime!(2025-06-01 12:00:00 UTC);
    let data = DestinationDisabledData::consecutive_failures(
        &level,
        destination(None),
        disabled_at,
        json!({"id": "evt_1"}),
        json!({"id": "att_1"}),
    );
    let mut event = OperationEvent::new("op_2", disabled_at, data);
    event.deployment_id = Some("dep".into());
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["topic"], "alert.destination.disabled");
    assert_eq!(value["deployment_id"], "dep");
    assert_eq!(value["data"]["reason"], "consecutive_failure");
    assert_eq!(value["data"]["disabled_at"], "2025-06-01T12:00:00Z");
    assert_eq!(
        value["data"]["destination"]["disabled_at"],
        "2025-06-01T12:00:00Z"
    );
    assert_eq!(
        value["data"]["consecutive_failures"],
        json!({"current": 2, "max": 2, "threshold": 100})
    );
    assert_eq!(value["data"]["event"], json!({"id": "evt_1"}));
}

#[test]
fn callback_body() {
    let level = ConsecutiveFailures::new(10, true)
        .record(false, 9)
        .1
        .unwrap();
    let data = ConsecutiveFailureData::new(
        &level,
        destination(None),
        json!({"id": "evt_1"}),
        json!({"id": "att_1"}),
    );
    let body = AlertCallback::new(datetime!(2025-06-01 12:00:00 UTC), data);
    let value = serde_json::to_value(&body).unwrap();
    assert_eq!(value["topic"], "alert.destination.consecutive_failure");
    assert_eq!(value["timestamp"], "2025-06-01T12:00:00Z");
    assert_eq!(
        value["data"]["consecutive_failures"],
        json!({"current": 10, "max": 10, "threshold": 100})
    );
    assert_eq!(value["data"]["will_disable"], true);
    let back: AlertCallback<ConsecutiveFailureData> = serde_json::from_value(value).unwrap();
    assert_eq!(back, body);
}

#[test]
fn exhausted_retries_payload() {
    let data = ExhaustedRetriesData {
        tenant_id: "tenant_123".into(),
        event: json!({"id": "evt_1"}),
        attempt: json!({"id": "att_9"}),
        destination: destination(None),
    };
    let event = OperationEvent::new("op_3", datetime!(2025-06-01 12:00:00 UTC), data);
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["topic"], "alert.attempt.exhausted_retries");
    assert_eq!(value["tenant_id"], "tenant_123");
    assert!(value.get("deployment_id").is_none());
    assert_eq!(value["data"]["attempt"], json!({"id": "att_9"}));
}
