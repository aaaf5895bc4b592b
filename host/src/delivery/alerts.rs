//! Consecutive-failure alerts and auto-disable, as Outpost does them, and the payloads of
//! the alert operation events.
//!
//! Each destination keeps a count of consecutive failed attempts; a successful attempt
//! resets it. With a threshold `N` (Outpost's `ALERT_CONSECUTIVE_FAILURE_COUNT`, default
//! 100), alerts fire when the count reaches 50 %, 70 %, 90 % and 100 % of `N` (rounded
//! up), each level once per run of failures (Outpost repeats the 100 % alert on every
//! further failure; a destination disabled at 100 % gets no further attempts anyway). At
//! 100 % the destination is disabled if auto-disable is on
//! (`ALERT_AUTO_DISABLE_DESTINATION`); re-enabling it should reset its count.
//!
//! The payloads are Outpost's: [`ConsecutiveFailureData`]
//! (`alert.destination.consecutive_failure`), [`DestinationDisabledData`]
//! (`alert.destination.disabled`) and [`ExhaustedRetriesData`]
//! (`alert.attempt.exhausted_retries`), wrapped either in an [`AlertCallback`] (the body
//! of Outpost's alert callback URL) or in an [`OperationEvent`] (the envelope of its
//! operation events). Event and attempt are carried as the JSON the API answers for them;
//! the destination as [`AlertDestination`], which has no credentials.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::filter::Topics;

/// Consecutive failures at which the 100 % level fires, unless configured.
pub const DEFAULT_THRESHOLD: u32 = 100;

/// Alert levels in percent of the threshold, unless configured.
pub const DEFAULT_LEVELS: [u8; 4] = [50, 70, 90, 100];

/// Topic of the alert raised at each level.
pub const TOPIC_CONSECUTIVE_FAILURE: &str = "alert.destination.consecutive_failure";

/// Topic of the alert raised when a destination is disabled automatically.
pub const TOPIC_DESTINATION_DISABLED: &str = "alert.destination.disabled";

/// Topic of the alert raised when a delivery has used up its attempts.
pub const TOPIC_EXHAUSTED_RETRIES: &str = "alert.attempt.exhausted_retries";

/// `reason` of a destination disabled for consecutive failures.
pub const DISABLED_FOR_CONSECUTIVE_FAILURES: &str = "consecutive_failure";

/// Alert levels that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertConfigError {
    /// A level outside 1..=100 percent.
    #[error("alert level {0}% must be between 1% and 100%")]
    Level(u8),
}

/// When consecutive failures raise alerts and disable a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsecutiveFailures {
    threshold: u32,
    auto_disable: bool,
    /// `(percent, failures)`, ascending by failures then percent; 100 % always included.
    levels: Vec<(u8, u32)>,
}

impl Default for ConsecutiveFailures {
    fn default() -> Self {
        ConsecutiveFailures::new(DEFAULT_THRESHOLD, false)
    }
}

/// An alert level reached by a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLevel {
    /// The level, in percent of the threshold (50, 70, 90 or 100 by default).
    pub percent: u8,
    /// Consecutive failures so far.
    pub failures: u32,
    /// The threshold: failures at 100 %.
    pub max: u32,
    /// True at 100 % with auto-disable on: the destination must be disabled now.
    pub disable: bool,
}

impl AlertLevel {
    /// The counts as the alert payload carries them.
    pub fn counts(&self) -> FailureCounts {
        FailureCounts {
            current: self.failures,
            max: self.max,
            threshold: self.percent,
        }
    }
}

impl ConsecutiveFailures {
    /// Alerts at the default levels of `threshold` failures; `auto_disable` disables the
    /// destination at 100 %. A threshold of 0 turns alerts (and auto-disable) off.
    pub fn new(threshold: u32, auto_disable: bool) -> Self {
        Self::with_levels(threshold, &DEFAULT_LEVELS, auto_disable)
            .expect("the default levels are valid")
    }

    /// Alerts at `levels` percent of `threshold` failures (100 % is always added).
    pub fn with_levels(
        threshold: u32,
        levels: &[u8],
        auto_disable: bool,
    ) -> Result<Self, AlertConfigError> {
        if let Some(&bad) = levels.iter().find(|&&p| p == 0 || p > 100) {
            return Err(AlertConfigError::Level(bad));
        }
        let mut pairs: Vec<(u8, u32)> = levels
            .iter()
            .chain(std::iter::once(&100))
            .map(|&percent| {
                // Rounded up, as Outpost does: 70 % of 3 failures is 3.
                let failures = (u64::from(threshold) * u64::from(percent)).div_ceil(100);
                (
                    percent,
                    u32::try_from(failures).expect("at most the threshold"),
                )
            })
            .collect();
        pairs.sort_by_key(|&(percent, failures)| (failures, percent));
        pairs.dedup();
        let levels = if threshold == 0 { Vec::new() } else { pairs };
        Ok(ConsecutiveFailures {
            threshold,
            auto_disable,
            levels,
        })
    }

    /// Consecutive failures at 100 %.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Whether the destination is disabled at 100 %.
    pub fn auto_disable(&self) -> bool {
        self.auto_disable
    }

    /// The levels as `(percent, failures)`, ascending.
    pub fn levels(&self) -> &[(u8, u32)] {
        &self.levels
    }

    /// Records an attempt on a destination whose count of consecutive failures was
    /// `current_count`: returns the new count (0 after a success) and the alert level the
    /// failure reaches, if any.
    ///
    /// ```
    /// use outrider::delivery::alerts::ConsecutiveFailures;
    ///
    /// let alerts = ConsecutiveFailures::new(10, true);
    /// assert_eq!(alerts.record(false, 3), (4, None));
    /// let (count, level) = alerts.record(false, 4);
    /// assert_eq!((count, level.unwrap().percent), (5, 50));
    /// assert!(alerts.record(false, 9).1.unwrap().disable);
    /// assert_eq!(alerts.record(true, 9), (0, None));
    /// ```
    pub fn record(&self, success: bool, current_count: u32) -> (u32, Option<AlertLevel>) {
        if success {
            return (0, None);
        }
        let count = current_count.saturating_add(1);
        (count, self.crossed(current_count, count))
    }

    /// The alert level of the failure that brought the count to `count`, for stores that
    /// increment the count atomically and read it back (the previous count being
    /// `count - 1`).
    pub fn level_at(&self, count: u32) -> Option<AlertLevel> {
        self.crossed(count.saturating_sub(1), count)
    }

    /// The highest level whose failure count lies in `(before, after]`.
    fn crossed(&self, before: u32, after: u32) -> Option<AlertLevel> {
        let &(percent, _) = self
            .levels
            .iter()
            .rev()
            .find(|&&(_, failures)| before < failures && failures <= after)?;
        Some(AlertLevel {
            percent,
            failures: after,
            max: self.threshold,
            disable: percent == 100 && self.auto_disable,
        })
    }
}

/// The `consecutive_failures` member of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts {
    /// Consecutive failures so far.
    pub current: u32,
    /// Failures at which the 100 % level fires.
    pub max: u32,
    /// The level reached, in percent.
    pub threshold: u8,
}

/// The destination as alerts describe it: no credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDestination {
    /// Destination id.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Destination type, e.g. `webhook`.
    #[serde(rename = "type")]
    pub destination_type: String,
    /// Subscribed topics.
    pub topics: Topics,
    /// The destination's filter, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// Type-specific configuration (never credentials).
    pub config: Value,
    /// The destination's metadata, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last update.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it was disabled; `null` while enabled.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
}

/// Payload of an alert: fixes its topic and tenant.
pub trait AlertData: Serialize {
    /// The event's topic.
    const TOPIC: &'static str;

    /// The tenant concerned.
    fn tenant_id(&self) -> &str;
}

/// The envelope of every operation event, as Outpost sends them to its sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationEvent<T> {
    /// Unique id, for consumers to deduplicate.
    pub id: String,
    /// What happened, e.g. [`TOPIC_CONSECUTIVE_FAILURE`].
    pub topic: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The deployment, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The tenant concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Topic-specific payload.
    pub data: T,
}

impl<T: AlertData> OperationEvent<T> {
    /// Wraps `data` with its topic and tenant; no deployment id.
    pub fn new(id: impl Into<String>, time: OffsetDateTime, data: T) -> Self {
        OperationEvent {
            id: id.into(),
            topic: T::TOPIC.to_owned(),
            time,
            deployment_id: None,
            tenant_id: Some(data.tenant_id().to_owned()),
            data,
        }
    }
}

/// The body POSTed to an alert callback URL, as Outpost's `ALERT_CALLBACK_URL` (before
/// its operation events): `{"topic", "timestamp", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertCallback<T> {
    /// What happened, e.g. [`TOPIC_CONSECUTIVE_FAILURE`].
    pub topic: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Topic-specific payload.
    pub data: T,
}

impl<T: AlertData> AlertCallback<T> {
    /// Wraps `data` with its topic.
    pub fn new(timestamp: OffsetDateTime, data: T) -> Self {
        AlertCallback {
            topic: T::TOPIC.to_owned(),
            timestamp,
            data,
        }
    }
}

/// `alert.destination.consecutive_failure`: a destination reached an alert level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsecutiveFailureData {
    /// The tenant.
    pub tenant_id: String,
    /// The event whose attempt failed, as the API shows it.
    pub event: Value,
    /// The failed attempt, as the API shows it.
    pub attempt: Value,
    /// The destination (already disabled when `will_disable`).
    pub destination: AlertDestination,
    /// Counts and the level reached.
    pub consecutive_failures: FailureCounts,
    /// True when this failure disables the destination (Outrider's addition to Outpost's
    /// payload).
    pub will_disable: bool,
}

impl ConsecutiveFailureData {
    /// The alert for `level`, reached by `attempt` of `event` on `destination`.
    pub fn new(
        level: &AlertLevel,
        destination: AlertDestination,
        event: Value,
        attempt: Value,
    ) -> Self {
        ConsecutiveFailureData {
            tenant_id: destination.tenant_id.clone(),
            event,
            attempt,
            destination,
            consecutive_failures: level.counts(),
            will_disable: level.disable,
        }
    }
}

impl AlertData for ConsecutiveFailureData {
    const TOPIC: &'static str = TOPIC_CONSECUTIVE_FAILURE;

    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}

/// `alert.destination.disabled`: a destination was disabled automatically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationDisabledData {
    /// The tenant.
    pub tenant_id: String,
    /// The destination, now disabled.
    pub destination: AlertDestination,
    /// When it was disabled.
    #[serde(with = "time::serde::rfc3339")]
    pub disabled_at: OffsetDateTime,
    /// Why: [`DISABLED_FOR_CONSECUTIVE_FAILURES`].
    pub reason: String,
    /// The event of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
    /// The last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Value>,
    /// Counts at the time.
    pub consecutive_failures: FailureCounts,
}

impl DestinationDisabledData {
    /// The alert for a destination disabled at `disabled_at` because `attempt` of `event`
    /// reached `level`; sets the destination's `disabled_at` to match.
    pub fn consecutive_failures(
        level: &AlertLevel,
        mut destination: AlertDestination,
        disabled_at: OffsetDateTime,
        event: Value,
        attempt: Value,
    ) -> Self {
        destination.disabled_at = Some(disabled_at);
        DestinationDisabledData {
            tenant_id: destination.tenant_id.clone(),
            destination,
            disabled_at,
            reason: DISABLED_FOR_CONSECUTIVE_FAILURES.to_owned(),
            event: Some(event),
            attempt: Some(attempt),
            consecutive_failures: level.counts(),
        }
    }
}

impl AlertData for DestinationDisabledData {
    const TOPIC: &'static str = TOPIC_DESTINATION_DISABLED;

    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}

/// `alert.attempt.exhausted_retries`: a delivery used up its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExhaustedRetriesData {
    /// The tenant.
    pub tenant_id: String,
    /// The event, as the API shows it.
    pub event: Value,
    /// The last attempt, as the API shows it.
    pub attempt: Value,
    /// The destination.
    pub destination: AlertDestination,
}

impl AlertData for ExhaustedRetriesData {
    const TOPIC: &'static str = TOPIC_EXHAUSTED_RETRIES;

    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}

#[cfg(test)]
mod tests;
