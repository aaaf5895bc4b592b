//! Delivery workers: claim due deliveries in batches, run each through its destination
//! plugin with bounded concurrency, and write the outcomes back in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::dispatch::{dispatch, DispatchContext};
use super::publisher::LocalDelivery;
use crate::runtime::guest::BATCH_MAX;
use crate::store::{AttemptRecord, ClaimedDelivery, DestinationRow, EventRow};

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

/// How long a claim must stay valid on a node running `concurrency` deliveries with
/// calls of at most `plugin_timeout`.
///
/// A delivery to a batching plugin waits in its destination's lane, which runs one call at
/// a time: the last of `concurrency` deliveries to one destination waits for the running
/// call and the full batches ahead of it, then runs in its own, up to
/// `1 + ceil((concurrency - 1) / BATCH_MAX)` calls in all (3 at the defaults). The lease
/// covers those, at least two calls, plus 5 s to write the outcome; were it shorter,
/// another node could claim a delivery still waiting here and deliver it twice.
pub fn lease_for(plugin_timeout: Duration, concurrency: usize) -> Duration {
    let calls = 1 + concurrency.saturating_sub(1).div_ceil(BATCH_MAX);
    plugin_timeout * (calls.max(2) as u32) + Duration::from_secs(5)
}

/// The delivery workers of one node.
pub struct Workers {
    /// What dispatching needs.
    pub ctx: Arc<DispatchContext>,
    /// Tuning.
    pub config: WorkerConfig,
    /// Notified when deliveries are queued in the store (not handed over).
    pub wake: Arc<Notify>,
    /// Lease owner id of this node's claims.
    pub owner: String,
    /// Where the outcome writer runs (see `writer_thread`).
    pub writer: tokio::runtime::Handle,
}

impl Workers {
    /// Deliver until the process stops: deliveries handed over by the local publisher
    /// first, then due ones claimed from the store (retries, other nodes' overflow, leases
    /// of dead nodes).
    pub async fn run(self, mut handoff: mpsc::Receiver<LocalDelivery>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let (done_tx, done_rx) = mpsc::channel::<AttemptRecord>(self.config.concurrency * 2);
        self.writer
            .spawn(complete_loop(self.ctx.clone(), done_rx, self.wake.clone()));
        // The store is asked for due work only when something may be there: at start, when
        // woken (overflow, manual retry, retries written) and on a steady tick (retries
        // coming due, other nodes' expired leases) — not once per handed-over delivery.
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim_due = true;
        loop {
            // Wait for a free slot before taking work, so work never outruns capacity.
            let Ok(first) = permits.clone().acquire_owned().await else {
                return;
            };
            if let Ok(local) = handoff.try_recv() {
                self.spawn_local(local, first, &done_tx);
                continue;
            }
            if claim_due {
                let want = (permits.available_permits() + 1).min(self.config.claim_batch);
                match self.claim(want).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        claim_due = claimed.len() == want;
                        self.spawn_claimed(claimed, first, &permits, &done_tx).await;
                        continue;
                    }
                    Ok(_) => claim_due = false,
                    Err(err) => {
                        tracing::error!(error = %err, "claiming deliveries failed; their leases will expire");
                        claim_due = false;
                    }
                }
            }
            tokio::select! {
                local = handoff.recv() => match local {
                    Some(local) => self.spawn_local(local, first, &done_tx),
                    None => return,
                },
                _ = self.wake.notified() => claim_due = true,
                _ = tick.tick() => claim_due = true,
            }
        }
    }

    fn spawn_local(
        &self,
        local: LocalDelivery,
        permit: OwnedSemaphorePermit,
        done_tx: &mpsc::Sender<AttemptRecord>,
    ) {
        self.spawn(
            local.delivery,
            Some(local.event),
            Some(local.destination),
            permit,
            done_tx,
        );
    }

    /// Start a claimed batch: the first with `first`, each other one as a slot frees up.
    async fn spawn_claimed(
        &self,
        claimed: Vec<Claimed>,
        first: OwnedSemaphorePermit,
        permits: &Arc<Semaphore>,
        done_tx: &mpsc::Sender<AttemptRecord>,
    ) {
        let mut first = Some(first);
        for (delivery, event, destination) in claimed {
            let permit = match first.take() {
                Some(p) => p,
                None => permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open"),
            };
            self.spawn(delivery, event, destination, permit, done_tx);
        }
    }

    /// Claim due deliveries (as many as there are free slots) with their events and
    /// destinations.
    async fn claim(&self, want: usize) -> crate::store::StoreResult<Vec<Claimed>> {
        let want = want as i64;
        let lease_ms = self.config.lease.as_millis() as i64;
        // On the writer's thread, where the hot paths' connection is driven.
        let (store, owner) = (self.ctx.store.clone(), self.owner.clone());
        let claimed = self
            .writer
            .spawn(async move { store.claim_deliveries(&owner, lease_ms, want).await })
            .await
            .unwrap_or_else(|err| match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(crate::store::StoreError::WriterStopped),
            })?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.ctx.load_batch(&claimed).await?;
        Ok(claimed
            .into_iter()
            .map(|delivery| {
                let event = batch
                    .events
                    .get(&(delivery.tenant_id.clone(), delivery.event_id.clone()))
                    .cloned();
                let destination = batch.destinations.get(&delivery.destination_id).cloned();
                (delivery, event, destination)
            })
            .collect())
    }

    fn spawn(
        &self,
        delivery: ClaimedDelivery,
        event: Option<Arc<EventRow>>,
        destination: Option<Arc<DestinationRow>>,
        permit: OwnedSemaphorePermit,
        done_tx: &mpsc::Sender<AttemptRecord>,
    ) {
        let ctx = self.ctx.clone();
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let record = dispatch(&ctx, delivery, event, destination).await;
            let _ = done_tx.send(record).await;
            drop(permit);
        });
    }
}

/// A claimed delivery with what was found of its event and destination.
type Claimed = (
    ClaimedDelivery,
    Option<Arc<EventRow>>,
    Option<Arc<DestinationRow>>,
);

/// Write finished attempts in batches; one transaction per batch. Like the publisher, it
/// takes the writer first and then everything that finished meanwhile.
async fn complete_loop(
    ctx: Arc<DispatchContext>,
    mut rx: mpsc::Receiver<AttemptRecord>,
    wake: Arc<Notify>,
) {
    const MAX_BATCH: usize = 1024;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut delay = Duration::from_millis(50);
        loop {
            let waiting = std::time::Instant::now();
            let written = match ctx.store.writer_connection().await {
                Ok(mut conn) => {
                    let holding = std::time::Instant::now();
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(record) => batch.push(record),
                            Err(_) => break,
                        }
                    }
                    let written = ctx.store.complete_attempts_on(&mut conn, &batch).await;
                    crate::telemetry::COUNTERS.writer_outcome.batch(
                        batch.len(),
                        holding - waiting,
                        holding.elapsed(),
                    );
                    written
                }
                Err(err) => Err(err),
            };
            match written {
                Ok(streaks) => {
                    ctx.after_commit(&batch, &streaks).await;
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
        if batch
            .iter()
            .any(|r| matches!(r.next, crate::store::NextStep::RetryAt(_)))
        {
            wake.notify_one();
        }
        batch.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_the_longest_wait_in_a_batch_lane() {
        let call = Duration::from_secs(30);
        let five = Duration::from_secs(5);
        // Alone, or within one batch behind the running call: two calls, as before.
        assert_eq!(lease_for(call, 1), call * 2 + five);
        assert_eq!(lease_for(call, BATCH_MAX + 1), call * 2 + five);
        // The default 256: one delivery running, 255 queued = a full batch, then the last
        // one's batch: three calls.
        assert_eq!(lease_for(call, 256), call * 3 + five);
        assert_eq!(lease_for(call, 4 * BATCH_MAX + 1), call * 5 + five);
    }
}
