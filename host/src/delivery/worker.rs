//! Delivery workers: claim due deliveries in batches, run each through its destination
//! plugin with bounded concurrency, and write the outcomes back in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};

use super::dispatch::{dispatch, DispatchContext};
use crate::store::{AttemptRecord, ClaimedDelivery};

/// Tuning of the worker loop.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Deliveries in flight at once on this node.
    pub concurrency: usize,
    /// Most deliveries claimed per query.
    pub claim_batch: usize,
    /// How long a claim stays valid; must exceed the plugin deadline.
    pub lease: Duration,
    /// Poll interval when nothing wakes the loop (retries coming due, other nodes).
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 256,
            claim_batch: 256,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// Run the claim loop until the process stops.
pub async fn run(ctx: Arc<DispatchContext>, config: WorkerConfig, wake: Arc<Notify>) {
    let owner = ulid::Ulid::new().to_string();
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let (done_tx, done_rx) = mpsc::channel::<AttemptRecord>(config.concurrency * 2);
    tokio::spawn(complete_loop(ctx.clone(), done_rx, wake.clone()));
    loop {
        // Wait for at least one free slot before claiming, so claims never outrun capacity.
        let first = match permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        let want = (permits.available_permits() + 1).min(config.claim_batch) as i64;
        let claimed = match ctx
            .store
            .claim_deliveries(&owner, config.lease.as_millis() as i64, want)
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::error!(error = %err, "claiming deliveries failed");
                drop(first);
                tokio::time::sleep(config.poll_interval).await;
                continue;
            }
        };
        if claimed.is_empty() {
            drop(first);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
            continue;
        }
        let batch = match ctx.load_batch(&claimed).await {
            Ok(batch) => batch,
            Err(err) => {
                tracing::error!(error = %err, "loading claimed deliveries failed; their leases will expire");
                drop(first);
                tokio::time::sleep(config.poll_interval).await;
                continue;
            }
        };
        let mut first = Some(first);
        for delivery in claimed {
            let permit = match first.take() {
                Some(p) => p,
                None => permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open"),
            };
            let ctx = ctx.clone();
            let done_tx = done_tx.clone();
            let event = batch
                .events
                .get(&(delivery.tenant_id.clone(), delivery.event_id.clone()))
                .cloned();
            let destination = batch.destinations.get(&delivery.destination_id).cloned();
            tokio::spawn(async move {
                let record = dispatch(&ctx, delivery, event, destination).await;
                let _ = done_tx.send(record).await;
                drop(permit);
            });
        }
    }
}

/// Write finished attempts in batches; one transaction per batch.
async fn complete_loop(
    ctx: Arc<DispatchContext>,
    mut rx: mpsc::Receiver<AttemptRecord>,
    wake: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let records: Vec<AttemptRecord> = std::mem::take(&mut batch);
        let mut delay = Duration::from_millis(50);
        loop {
            match ctx.store.complete_attempts(&records).await {
                Ok(streaks) => {
                    ctx.after_commit(&records, &streaks).await;
                    break;
                }
                Err(err) => {
                    // Keep the outcomes rather than lose them; the leases cover the wait.
                    tracing::error!(error = %err, "recording attempts failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if records
            .iter()
            .any(|r| matches!(r.next, crate::store::NextStep::RetryAt(_)))
        {
            wake.notify_one();
        }
    }
}

/// Events and destinations of a claimed batch, loaded with one query each.
pub struct LoadedBatch {
    /// By (tenant, event id).
    pub events: HashMap<(String, String), Arc<crate::store::EventRow>>,
    /// By destination id.
    pub destinations: HashMap<String, Arc<crate::store::DestinationRow>>,
}

impl DispatchContext {
    async fn load_batch(
        &self,
        claimed: &[ClaimedDelivery],
    ) -> crate::store::StoreResult<LoadedBatch> {
        let keys: Vec<(String, String)> = claimed
            .iter()
            .map(|d| (d.tenant_id.clone(), d.event_id.clone()))
            .collect();
        let events = self.store.events_by_keys(&keys).await?;
        let ids: Vec<String> = claimed.iter().map(|d| d.destination_id.clone()).collect();
        let destinations = self.store.destinations_by_ids(&ids).await?;
        Ok(LoadedBatch {
            events: events
                .into_iter()
                .map(|e| ((e.tenant_id.clone(), e.id.clone()), Arc::new(e)))
                .collect(),
            destinations: destinations
                .into_iter()
                .map(|d| (d.id.clone(), Arc::new(d)))
                .collect(),
        })
    }
}
