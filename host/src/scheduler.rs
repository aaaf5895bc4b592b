//! Scheduled sends: when each schedule is due ([`Timing`]) and the background loop that
//! publishes its stored message through the ordinary publish path.
//!
//! Each run publishes an event with the id `sch_<schedule>_<slot ms>`, so a slot that
//! runs twice (a crash between publishing and advancing the schedule, or two nodes
//! racing) is stored once: the second publish is a duplicate. The schedule then moves on
//! with a compare-and-set on `next_run_at`, so only one node records the run.
//!
//! Missed runs: when the server was down (or the loop fell behind) across one or more
//! slots, the schedule fires **once**, for the latest slot that is due, records how many
//! earlier slots it skipped (`missed`), and resumes at the first slot after now. It
//! never replays a backlog.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone as _;
use serde_json::Value;
use tokio::sync::Notify;

use crate::delivery::publisher::{Publication, PublishError, Publisher};
use crate::store::{now_ms, ScheduleRow, ScheduleRunRow, Store};

/// How often the loop looks for due schedules when nothing wakes it.
const TICK: Duration = Duration::from_millis(200);
/// Schedules handled per look.
const BATCH: i64 = 100;
/// Most slots counted when working out how many were missed.
const MAX_COUNTED_MISSES: i64 = 100_000;

/// Why a timing is not valid; the message names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TimingError {
    /// The request field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// When a schedule runs.
#[derive(Clone, Debug)]
pub enum Timing {
    /// A cron expression (5 fields, or 6 with seconds first) in a time zone.
    Cron {
        /// Parsed expression.
        cron: Box<croner::Cron>,
        /// Its time zone.
        tz: chrono_tz::Tz,
    },
    /// Every `every_ms`, counted from `anchor` (ms).
    Interval {
        /// Period.
        every_ms: i64,
        /// A slot.
        anchor: i64,
    },
    /// Once, at this time (ms): a delayed publish.
    Once(i64),
}

/// Shortest accepted interval.
pub const MIN_INTERVAL_MS: i64 = 1_000;

impl Timing {
    /// The timing of a stored schedule.
    pub fn of(s: &ScheduleRow) -> Result<Timing, TimingError> {
        Timing::new(
            s.cron.as_deref(),
            s.interval_ms,
            s.run_at,
            &s.timezone,
            s.created_at,
        )
    }

    /// Exactly one of `cron`, `interval_ms` and `run_at` must be given.
    pub fn new(
        cron: Option<&str>,
        interval_ms: Option<i64>,
        run_at: Option<i64>,
        timezone: &str,
        anchor: i64,
    ) -> Result<Timing, TimingError> {
        let tz = chrono_tz::Tz::from_str(timezone).map_err(|_| TimingError {
            field: "timezone",
            message: format!("`{timezone}` is not an IANA time zone (e.g. Europe/Amsterdam)"),
        })?;
        match (cron, interval_ms, run_at) {
            (Some(expr), None, None) => {
                let cron = croner::Cron::new(expr)
                    .with_seconds_optional()
                    .parse()
                    .map_err(|e| TimingError {
                        field: "cron",
                        message: format!("`{expr}` is not a cron expression: {e}"),
                    })?;
                Ok(Timing::Cron {
                    cron: Box::new(cron),
                    tz,
                })
            }
            (None, Some(every_ms), None) if every_ms < MIN_INTERVAL_MS => Err(TimingError {
                field: "interval",
                message: format!("must be at least {MIN_INTERVAL_MS} ms"),
            }),
            (None, Some(every_ms), None) => Ok(Timing::Interval { every_ms, anchor }),
            (None, None, Some(at)) => Ok(Timing::Once(at)),
            _ => Err(TimingError {
                field: "cron",
                message: "give exactly one of cron, interval and run_at".into(),
            }),
        }
    }

    /// The first slot strictly after `after` (ms), if any.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Timing::Interval { every_ms, anchor } => {
                let k = (after - anchor).div_euclid(*every_ms) + 1;
                Some(anchor + k * every_ms)
            }
            Timing::Once(at) => (*at > after).then_some(*at),
            Timing::Cron { cron, tz } => {
                let start = tz.timestamp_millis_opt(after).single()?;
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
        }
    }

    /// The next `count` slots after `after`.
    pub fn upcoming(&self, after: i64, count: usize) -> Vec<i64> {
        let mut slots = Vec::with_capacity(count);
        let mut t = after;
        while slots.len() < count {
            match self.next_after(t) {
                Some(next) => {
                    slots.push(next);
                    t = next;
                }
                None => break,
            }
        }
        slots
    }

    /// The latest slot at or before `now`, starting from the due slot `due`, and how
    /// many slots between them are skipped.
    fn latest_due(&self, due: i64, now: i64) -> (i64, i64) {
        if let Timing::Interval { every_ms, .. } = self {
            let skipped = (now - due).div_euclid(*every_ms);
            return (due + skipped * every_ms, skipped);
        }
        let (mut latest, mut skipped) = (due, 0);
        while skipped < MAX_COUNTED_MISSES {
            match self.next_after(latest) {
                Some(next) if next <= now => {
                    latest = next;
                    skipped += 1;
                }
                _ => break,
            }
        }
        (latest, skipped)
    }
}

/// Handle of the running scheduler; wake it after creating or enabling a schedule.
#[derive(Clone, Default)]
pub struct Scheduler {
    wake: Arc<Notify>,
}

impl Scheduler {
    /// Start the loop on the current runtime.
    pub fn start(store: Store, publisher: Publisher) -> Self {
        let scheduler = Scheduler::default();
        let wake = scheduler.wake.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = run_due(&store, &publisher).await {
                    tracing::error!(error = %e, "running due schedules failed");
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        });
        scheduler
    }

    /// Look for due schedules now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn run_due(store: &Store, publisher: &Publisher) -> crate::store::StoreResult<()> {
    let now = now_ms();
    for schedule in store.due_schedules(now, BATCH).await? {
        run_one(store, publisher, schedule, now).await?;
    }
    Ok(())
}

async fn run_one(
    store: &Store,
    publisher: &Publisher,
    schedule: ScheduleRow,
    now: i64,
) -> crate::store::StoreResult<()> {
    let Some(due) = schedule.next_run_at else {
        return Ok(());
    };
    let timing = match Timing::of(&schedule) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(schedule = %schedule.id, error = %e, "stored schedule is invalid; stopping it");
            store.advance_schedule(&schedule.id, due, None).await?;
            return Ok(());
        }
    };
    let (slot, missed) = timing.latest_due(due, now);
    let next = timing.next_after(now.max(slot));
    let event_id = format!("sch_{}_{}", schedule.id, slot);
    let (status, error) = match publisher
        .publish(publication(&schedule, &event_id, slot))
        .await
    {
        Ok(outcome) if outcome.duplicate => ("duplicate", None),
        Ok(_) => ("published", None),
        Err(PublishError::Closed) => return Ok(()),
        Err(e) => ("failed", Some(e.to_string())),
    };
    if !store.advance_schedule(&schedule.id, due, next).await? {
        return Ok(()); // another node ran this slot
    }
    if missed > 0 {
        tracing::warn!(schedule = %schedule.id, missed, "missed schedule slots skipped; ran once");
    }
    tracing::info!(schedule = %schedule.id, event = %event_id, status, "schedule ran");
    store
        .insert_schedule_run(&ScheduleRunRow {
            id: ulid::Ulid::new().to_string(),
            schedule_id: schedule.id.clone(),
            scheduled_for: slot,
            ran_at: now_ms(),
            event_id: (status != "failed").then_some(event_id),
            status: status.into(),
            missed,
            error,
        })
        .await
}

fn publication(s: &ScheduleRow, event_id: &str, slot: i64) -> Publication {
    let data: Value = serde_json::from_str(&s.data).unwrap_or(Value::Object(Default::default()));
    let data = serde_json::value::to_raw_value(&data).expect("a JSON value serialises");
    Publication {
        id: event_id.to_string(),
        tenant_id: s.tenant_id.clone(),
        topic: s.topic.clone(),
        time: slot,
        metadata: s
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
        data,
        eligible_for_retry: true,
        destination_id: s.destination_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_count_from_their_anchor() {
        let t = Timing::new(None, Some(1_000), None, "UTC", 500).unwrap();
        assert_eq!(t.next_after(500), Some(1_500));
        assert_eq!(t.next_after(1_499), Some(1_500));
        assert_eq!(t.upcoming(500, 3), vec![1_500, 2_500, 3_500]);
        // Down from 1_500 to 5_200: one run for 4_500, three slots skipped.
        assert_eq!(t.latest_due(1_500, 5_200), (4_500, 3));
    }

    #[test]
    fn cron_in_a_time_zone() {
        // 09:00 in Amsterdam is 08:00 UTC in winter.
        let t = Timing::new(Some("0 9 * * *"), None, None, "Europe/Amsterdam", 0).unwrap();
        let nov_23_midnight_utc = 1_795_392_000_000; // 2026-11-23T00:00:00Z
        let next = t.next_after(nov_23_midnight_utc).unwrap();
        assert_eq!(next - nov_23_midnight_utc, 8 * 3_600_000);
        let (latest, skipped) = t.latest_due(next, next + 3 * 86_400_000 + 1);
        assert_eq!((latest - next, skipped), (3 * 86_400_000, 3));
    }

    #[test]
    fn bad_timings_name_the_field() {
        let e = Timing::new(Some("61 * * * *"), None, None, "UTC", 0).unwrap_err();
        assert_eq!(e.field, "cron");
        let e = Timing::new(None, Some(10), None, "UTC", 0).unwrap_err();
        assert_eq!(e.field, "interval");
        let e = Timing::new(None, Some(1000), None, "Mars/Olympus", 0).unwrap_err();
        assert_eq!(e.field, "timezone");
        let e = Timing::new(Some("* * * * *"), Some(1000), None, "UTC", 0).unwrap_err();
        assert_eq!(e.field, "cron");
        assert!(Timing::new(None, None, Some(5), "UTC", 0)
            .unwrap()
            .next_after(10)
            .is_none());
    }
}
