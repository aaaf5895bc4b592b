//! The background writer of the audit trail: entries arrive through a bounded channel and
//! are inserted in batches, one transaction each, through the store's writer connection.
//!
//! `POST /publish` calls are not written one by one: the writer counts them per (caller,
//! tenant, status) and writes one summary entry per key every [`SUMMARY_INTERVAL`]
//! (`{"summary": "publish", "count": N, "from": ..., "to": ...}`). Publishes that find the
//! channel full are dropped from the count (and counted in [`AuditRecorder::dropped`])
//! rather than wait; every other call waits for room, so management calls are never lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::wire::rfc3339;
use crate::auth::Principal;
use crate::store::{AuditEntry, Store};

/// Entries waiting for the writer, at most.
const QUEUE: usize = 10_000;
/// Entries per insert transaction, at most.
const BATCH: usize = 500;
/// How often publish summaries are written.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);

/// What the middleware hands to the writer.
pub(super) struct Pending {
    /// The entry, `actor` still naming an API token by id.
    pub entry: AuditEntry,
    /// Who called.
    pub principal: Principal,
    /// A publish, to be folded into a summary.
    pub publish_summary: bool,
}

/// Handle of the background audit writer; cheap to clone.
#[derive(Clone)]
pub struct AuditRecorder {
    queue: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
    body_limit: usize,
}

impl AuditRecorder {
    /// Start the writer on the current runtime. `body_limit` caps the request bodies the
    /// middleware buffers (the API's JSON limit).
    pub fn start(store: Store, body_limit: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, rx));
        Self {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            body_limit,
        }
    }

    /// Publishes left out of the summaries because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Largest request body the middleware buffers.
    pub(super) fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Hand an entry to the writer: publishes never wait, other calls wait for room.
    pub(super) async fn submit(&self, pending: Pending) {
        if pending.publish_summary {
            if self.queue.try_send(pending).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        } else if self.queue.send(pending).await.is_err() {
            tracing::error!("audit writer stopped; entry lost");
        }
    }
}

/// Publishes of one caller, tenant and status since the last summary.
struct PublishTally {
    entry: AuditEntry,
    count: u64,
    last_time: i64,
    total_ms: i64,
}

type TallyKey = (String, Option<String>, i64);

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut token_names: HashMap<String, String> = HashMap::new();
    let mut tallies: HashMap<TallyKey, PublishTally> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut next_summary = Instant::now() + SUMMARY_INTERVAL;
    loop {
        let open = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n > 0,
            _ = tokio::time::sleep_until(next_summary) => true,
        };
        let mut entries = Vec::with_capacity(batch.len());
        for Pending {
            mut entry,
            principal,
            publish_summary,
        } in batch.drain(..)
        {
            if let Principal::ApiToken { id } = &principal {
                if !token_names.contains_key(id) {
                    let name = store.api_token_name(id).await.ok().flatten();
                    token_names.insert(id.clone(), name.unwrap_or_else(|| id.clone()));
                }
                entry.actor = format!("api-token:{}", token_names[id]);
            }
            if publish_summary {
                tally(&mut tallies, entry);
            } else {
                entries.push(entry);
            }
        }
        if !open || Instant::now() >= next_summary {
            entries.extend(tallies.drain().map(|(_, t)| summary(t)));
            next_summary = Instant::now() + SUMMARY_INTERVAL;
        }
        if !entries.is_empty() {
            if let Err(e) = store.insert_audit_entries(&entries).await {
                tracing::error!(error = %e, count = entries.len(), "writing audit entries failed");
            }
        }
        if !open {
            return;
        }
    }
}

fn tally(tallies: &mut HashMap<TallyKey, PublishTally>, entry: AuditEntry) {
    let key = (entry.actor.clone(), entry.tenant_id.clone(), entry.status);
    let (time, duration) = (entry.time, entry.duration_ms);
    let t = tallies.entry(key).or_insert_with(|| PublishTally {
        entry,
        count: 0,
        last_time: time,
        total_ms: 0,
    });
    t.count += 1;
    t.last_time = t.last_time.max(time);
    t.total_ms += duration;
}

fn summary(t: PublishTally) -> AuditEntry {
    let mut entry = t.entry;
    entry.request = Some(
        json!({
            "summary": "publish",
            "count": t.count,
            "from": rfc3339(entry.time),
            "to": rfc3339(t.last_time),
        })
        .to_string(),
    );
    entry.duration_ms = t.total_ms / t.count.max(1) as i64;
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(actor: &str, time: i64, status: i64) -> AuditEntry {
        AuditEntry {
            id: format!("id{time}"),
            time,
            actor_type: "admin".into(),
            actor: actor.into(),
            actor_id: None,
            tenant_id: None,
            method: "POST".into(),
            path: "/api/v1/publish".into(),
            category: "publish".into(),
            status,
            ip_address: None,
            request: None,
            duration_ms: 2,
        }
    }

    #[test]
    fn publishes_fold_into_one_summary_per_caller_and_status() {
        let mut tallies = HashMap::new();
        tally(&mut tallies, publish("admin", 1_000, 202));
        tally(&mut tallies, publish("admin", 3_000, 202));
        tally(&mut tallies, publish("admin", 2_000, 400));
        tally(&mut tallies, publish("tenant:t", 2_000, 202));
        assert_eq!(tallies.len(), 3);
        let t = tallies
            .remove(&("admin".to_string(), None, 202))
            .expect("admin 202");
        let s = summary(t);
        assert_eq!(s.time, 1_000);
        let request: serde_json::Value =
            serde_json::from_str(s.request.as_deref().unwrap()).unwrap();
        assert_eq!(request["count"], 2);
        assert_eq!(request["to"], rfc3339(3_000));
    }
}
