//! Acting on consecutive-failure alerts: a `tracing` event, the optional operator
//! callback (a JSON POST to `alert_callback_url`), and auto-disable at 100%.

use serde_json::json;
use time::OffsetDateTime;

use super::alerts::{
    AlertCallback, AlertDestination, AlertLevel, ConsecutiveFailureData, ConsecutiveFailures,
};
use super::filter::Topics;
use crate::store::{AttemptRecord, DestinationRow, Store};

/// What to do when a destination keeps failing.
pub struct AlertPolicy {
    levels: ConsecutiveFailures,
    callback_url: Option<String>,
    http: reqwest::Client,
}

fn time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn alert_destination(d: &DestinationRow) -> AlertDestination {
    AlertDestination {
        id: d.id.clone(),
        tenant_id: d.tenant_id.clone(),
        destination_type: d.r#type.clone(),
        topics: serde_json::from_str(&d.topics).unwrap_or(Topics::All),
        filter: d
            .filter
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok()),
        config: serde_json::from_str(&d.config).unwrap_or_default(),
        metadata: d
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
        disabled_at: d.disabled_at.map(time),
    }
}

impl AlertPolicy {
    /// Alerts at 50/70/90/100% of `threshold` failures in a row (0 turns them off).
    pub fn new(threshold: u32, auto_disable: bool, callback_url: Option<String>) -> Self {
        Self {
            levels: ConsecutiveFailures::new(threshold, auto_disable),
            callback_url,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        }
    }

    /// The alert level a destination reaches with `streak` failures in a row, if any.
    pub fn level(&self, streak: i64) -> Option<AlertLevel> {
        self.levels
            .level_at(u32::try_from(streak).unwrap_or(u32::MAX))
    }

    /// Called after a failed attempt is durable, with the destination's new streak.
    pub async fn on_failure(&self, store: &Store, record: &AttemptRecord, streak: i64) {
        let Some(level) = self.level(streak) else {
            return;
        };
        let d = &record.delivery;
        tracing::warn!(
            tenant = %d.tenant_id,
            destination = %d.destination_id,
            event = %d.event_id,
            consecutive_failures = streak,
            percent = level.percent,
            will_disable = level.disable,
            "destination keeps failing"
        );
        let destination = match store.destination(&d.tenant_id, &d.destination_id).await {
            Ok(destination) => destination,
            Err(err) => {
                tracing::error!(error = %err, "alert: destination lookup failed");
                return;
            }
        };
        let destination = if level.disable && destination.disabled_at.is_none() {
            match store
                .set_destination_disabled(
                    &d.tenant_id,
                    &d.destination_id,
                    Some(crate::store::now_ms()),
                )
                .await
            {
                Ok(disabled) => {
                    tracing::warn!(destination = %d.destination_id, "destination disabled after consecutive failures");
                    disabled
                }
                Err(err) => {
                    tracing::error!(error = %err, "alert: disabling the destination failed");
                    destination
                }
            }
        } else {
            destination
        };
        let Some(url) = &self.callback_url else {
            return;
        };
        let data = ConsecutiveFailureData::new(
            &level,
            alert_destination(&destination),
            json!({ "id": d.event_id, "tenant_id": d.tenant_id }),
            json!({
                "id": record.id,
                "attempt_number": record.attempt_number,
                "status": record.status,
                "code": record.response_status_code,
                "error": record.error,
            }),
        );
        let body = AlertCallback::new(OffsetDateTime::now_utc(), data);
        let (http, url) = (self.http.clone(), url.clone());
        tokio::spawn(async move {
            if let Err(err) = http
                .post(&url)
                .json(&body)
                .send()
                .await
                .and_then(|r| r.error_for_status())
            {
                tracing::error!(error = %err, url = %url, "alert callback failed");
            }
        });
    }
}
