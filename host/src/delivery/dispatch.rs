//! One delivery attempt: prepare the destination's target (decrypted credentials, typed
//! config; see [`targets`](super::targets)), call its plugin's `deliver`, classify the
//! outcome and decide what happens next.

use std::sync::Arc;
use std::time::Instant;

use super::alerting::AlertPolicy;
use super::lanes::PluginCalls;
use super::retry::{Outcome, RetryPolicy};
use super::targets::{string_map, TargetCache, Unprepared};
use crate::crypto::Keyring;
use crate::runtime::manifest::PrototypeKind;
use crate::runtime::{DeliveryFailure, Event, PluginRegistry};
use crate::store::{
    now_ms, AttemptRecord, ClaimedDelivery, DestinationRow, EventRow, NextStep, Store,
};

/// Longest response body kept on an attempt.
const RESPONSE_BODY_CAP: usize = 4096;

/// What a delivery attempt needs, shared by all workers.
pub struct DispatchContext {
    /// The database.
    pub store: Store,
    /// Loaded plugins.
    pub registry: Arc<PluginRegistry>,
    /// Decrypts credentials.
    pub keyring: Arc<Keyring>,
    /// When to retry.
    pub retry: RetryPolicy,
    /// Consecutive-failure alerts.
    pub alerts: AlertPolicy,
    /// Destinations' decrypted, typed values, made once per stored version.
    pub targets: TargetCache,
    /// Plugin calls (batched for plugins that take batches), with health accounting.
    pub calls: PluginCalls,
}

/// The AAD binding a destination's credentials ciphertext to it.
pub fn credentials_aad(destination_id: &str) -> String {
    format!("destination:{destination_id}:credentials")
}

fn cap(body: Option<String>) -> Option<String> {
    body.map(|mut b| {
        if b.len() > RESPONSE_BODY_CAP {
            let mut end = RESPONSE_BODY_CAP;
            while !b.is_char_boundary(end) {
                end -= 1;
            }
            b.truncate(end);
        }
        b
    })
}

/// Attempt one delivery and describe the result. Never fails: every problem becomes an
/// attempt record.
pub async fn dispatch(
    ctx: &DispatchContext,
    delivery: ClaimedDelivery,
    event: Option<Arc<EventRow>>,
    destination: Option<Arc<DestinationRow>>,
) -> AttemptRecord {
    let attempt_number = delivery.attempts + 1;
    let manual = delivery.manual;
    let mut record = AttemptRecord {
        id: ulid::Ulid::new().to_string(),
        delivery,
        attempt_number,
        status: "failed",
        response_status_code: None,
        response_body: None,
        error: None,
        error_kind: None,
        duration_ms: 0,
        plugin_id: None,
        plugin_version: None,
        manual,
        next: NextStep::GiveUp,
    };
    let (Some(event), Some(destination)) = (event, destination) else {
        record.error = Some("the event or destination no longer exists".into());
        record.error_kind = Some("skipped");
        return record;
    };
    if destination.disabled_at.is_some() {
        record.error = Some("destination is disabled".into());
        record.error_kind = Some("skipped");
        return record;
    }
    let Some(plugin) = ctx
        .registry
        .find_prototype(PrototypeKind::Destination, &destination.r#type)
    else {
        let outcome = Outcome::Retry { retry_after: None };
        record.error = Some(format!(
            "no loaded plugin provides destination type `{}`",
            destination.r#type
        ));
        record.error_kind = Some("misconfigured");
        record.next = next_step(ctx, &event, &destination, attempt_number, outcome);
        return record;
    };
    record.plugin_id = Some(plugin.id.clone());
    record.plugin_version = Some(plugin.manifest.version.clone());
    if ctx.registry.is_quarantined(&plugin.id) {
        // Kept for later: releasing the plugin (or uploading a fixed version) resumes it.
        record.error = Some(format!(
            "plugin {} is quarantined after repeated crashes",
            plugin.manifest.name
        ));
        record.error_kind = Some("quarantined");
        record.next = next_step(
            ctx,
            &event,
            &destination,
            attempt_number,
            Outcome::Retry { retry_after: None },
        );
        return record;
    }

    let target = match ctx.targets.get(&ctx.keyring, &destination, &plugin) {
        Ok(target) => target,
        Err(Unprepared::Undecryptable(err)) => {
            record.error = Some(format!("credentials cannot be decrypted: {err}"));
            record.error_kind = Some("misconfigured");
            return record;
        }
        Err(Unprepared::Misconfigured(problems)) => {
            record.error = Some(problems);
            record.error_kind = Some("misconfigured");
            record.next = next_step(
                ctx,
                &event,
                &destination,
                attempt_number,
                Outcome::Misconfigured,
            );
            return record;
        }
    };
    let call_event = Event {
        id: event.id.clone(),
        tenant_id: event.tenant_id.clone(),
        topic: event.topic.clone(),
        time_ms: event.time as u64,
        metadata: string_map(event.metadata.as_deref()),
        data: event.data.clone(),
        attempt: attempt_number as u32,
    };
    let started = Instant::now();
    // Integration layer: the destination's transformer chain may rewrite, split or drop
    // the event before the plugin sees it.
    let hooked =
        crate::integration::hook::deliver(ctx, &destination, &plugin, &target, call_event).await;
    record.duration_ms = started.elapsed().as_millis() as i64;
    let result = match hooked {
        crate::integration::hook::Hooked::Delivered(result) => result,
        stopped => {
            record.next = match stopped.fill(&mut record) {
                Some(outcome) => next_step(ctx, &event, &destination, attempt_number, outcome),
                None => NextStep::Done,
            };
            return record;
        }
    };
    let outcome = match result {
        Ok(ok) => {
            record.status = "success";
            record.response_status_code = ok.status_code.map(i64::from);
            record.response_body = cap(ok.response_body);
            record.next = NextStep::Done;
            return record;
        }
        Err(failure) => classify(&mut record, failure),
    };
    record.next = next_step(ctx, &event, &destination, attempt_number, outcome);
    record
}

/// Fill the record from a failure and say how the retry policy should treat it. (The
/// plugin's health was accounted where it was called, in [`PluginCalls`].)
fn classify(record: &mut AttemptRecord, failure: DeliveryFailure) -> Outcome {
    match failure {
        DeliveryFailure::Retry {
            message,
            status_code,
            response_body,
            retry_after,
        } => {
            record.error = Some(message);
            record.error_kind = Some("retry");
            record.response_status_code = status_code.map(i64::from);
            record.response_body = cap(response_body);
            Outcome::Retry { retry_after }
        }
        DeliveryFailure::Fail {
            message,
            status_code,
            response_body,
        } => {
            record.error = Some(message);
            record.error_kind = Some("fail");
            record.response_status_code = status_code.map(i64::from);
            record.response_body = cap(response_body);
            Outcome::Fail
        }
        DeliveryFailure::Misconfigured {
            message,
            status_code,
            response_body,
        } => {
            record.error = Some(message);
            record.error_kind = Some("misconfigured");
            record.response_status_code = status_code.map(i64::from);
            record.response_body = cap(response_body);
            Outcome::Misconfigured
        }
        DeliveryFailure::Denied(message) => {
            record.error = Some(format!("network access denied: {message}"));
            record.error_kind = Some("denied");
            Outcome::Misconfigured
        }
        DeliveryFailure::Timeout => {
            record.error = Some("the plugin call exceeded its deadline".into());
            record.error_kind = Some("timeout");
            Outcome::Crash
        }
        DeliveryFailure::MemoryLimit => {
            record.error = Some("the plugin call exceeded its memory limit".into());
            record.error_kind = Some("memory");
            Outcome::Crash
        }
        DeliveryFailure::Trap(message) => {
            record.error = Some(format!("the plugin trapped: {message}"));
            record.error_kind = Some("trap");
            Outcome::Crash
        }
    }
}

fn next_step(
    ctx: &DispatchContext,
    event: &EventRow,
    destination: &DestinationRow,
    attempt_number: i64,
    outcome: Outcome,
) -> NextStep {
    if !event.eligible_for_retry {
        return NextStep::GiveUp;
    }
    // A destination's own schedule or attempt limit replaces the server's.
    let own;
    let policy = if destination.retry_schedule.is_some() || destination.retry_max_attempts.is_some()
    {
        let max = destination
            .retry_max_attempts
            .map_or(ctx.retry.max_attempts(), |n| n as u32);
        let schedule = destination.retry_schedule.as_deref().unwrap_or("");
        own = RetryPolicy::from_config(schedule, max).unwrap_or_else(|_| ctx.retry.clone());
        &own
    } else {
        &ctx.retry
    };
    match policy.next_delay(attempt_number as u32, &outcome, &mut rand::thread_rng()) {
        Some(delay) => NextStep::RetryAt(now_ms() + delay.as_millis() as i64),
        None => NextStep::GiveUp,
    }
}

impl DispatchContext {
    /// After a batch of attempts is durable: count them and raise consecutive-failure
    /// alerts.
    pub async fn after_commit(&self, records: &[AttemptRecord], streaks: &[i64]) {
        let counters = &*crate::telemetry::COUNTERS;
        for record in records {
            let counter = if record.status == "success" {
                &counters.attempts_success
            } else {
                &counters.attempts_failed
            };
            crate::telemetry::add(counter, 1);
            crate::telemetry::add(&counters.attempt_ms_total, record.duration_ms.max(0) as u64);
        }
        for (record, streak) in records.iter().zip(streaks) {
            if record.status == "success" {
                continue;
            }
            self.alerts.on_failure(&self.store, record, *streak).await;
        }
    }
}
