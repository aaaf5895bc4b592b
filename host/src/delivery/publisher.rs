//! Group commit for `POST /publish`: requests queue here, one task routes and writes
//! whatever has queued up in a single transaction, and each request is answered only after
//! that commit. Under load many events share one fsync and one routing lookup; at rest a
//! lone event commits at once.
//!
//! Deliveries are written already leased to this node's workers (up to their free queue
//! space) and handed to them in memory, so a fresh event costs no claim query and no
//! reload. The lease keeps the guarantee: if this process dies, it expires and any node
//! claims the delivery from the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};

use super::routing::{route, Routable, Route};
use crate::store::{
    ClaimedDelivery, DestinationRow, EventRow, Lease, NewEvent, PublishOutcome, Store, StoreError,
    WriterConnection,
};

/// Most events written by one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<PublishOutcome, PublishError>>;

/// A validated publish, before routing.
#[derive(Clone, Debug)]
pub struct Publication {
    /// Event id (the idempotency key within the tenant).
    pub id: String,
    /// Owner; must exist.
    pub tenant_id: String,
    /// Topic ("" when none).
    pub topic: String,
    /// Event time, ms since the epoch.
    pub time: i64,
    /// String metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// JSON payload: an object's text, kept as published (parsed again only if a
    /// destination's filter reads it).
    pub data: Box<RawValue>,
    /// Whether failed deliveries are retried.
    pub eligible_for_retry: bool,
    /// Publish to this destination only; must belong to the tenant.
    pub destination_id: Option<String>,
}

/// A delivery handed straight from the publisher to this node's workers.
pub struct LocalDelivery {
    /// The (already leased) delivery.
    pub delivery: ClaimedDelivery,
    /// Its event.
    pub event: Arc<EventRow>,
    /// Its destination as routed.
    pub destination: Arc<DestinationRow>,
}

/// Where the publisher hands deliveries to local workers.
pub struct Handoff {
    /// The workers' queue.
    pub tx: mpsc::Sender<LocalDelivery>,
    /// The workers' lease owner id.
    pub owner: String,
    /// Lease length, ms.
    pub lease_ms: i64,
}

/// Handle to the group-commit writer; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<(Publication, Reply)>,
}

/// Why a publish was not stored.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PublishError {
    /// The writer has stopped (shutdown).
    #[error("the server is shutting down")]
    Closed,
    /// No such tenant.
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    /// `destination_id` is not one of the tenant's destinations.
    #[error("destination {0} not found")]
    DestinationNotFound(String),
    /// The store failed; nothing of the batch was written.
    #[error("storing the event failed: {0}")]
    Store(Arc<StoreError>),
}

impl Publisher {
    /// Start the writer. `wake_workers` is notified after a commit that queued deliveries
    /// it could not hand over. The queue is bounded: when it is full, publishers wait.
    pub fn start(
        store: Store,
        wake_workers: Arc<Notify>,
        handoff: Option<Handoff>,
        on: &tokio::runtime::Handle,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        on.spawn(write_loop(store, rx, wake_workers, handoff));
        Self { tx }
    }

    /// Route and store one event and its deliveries; returns once they are durable.
    pub async fn publish(&self, event: Publication) -> Result<PublishOutcome, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| PublishError::Closed)?;
        answer.await.map_err(|_| PublishError::Closed)?
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<(Publication, Reply)>,
    wake_workers: Arc<Notify>,
    handoff: Option<Handoff>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        // Take the writer first, then everything that queued up meanwhile: while the
        // other writers commit, the batch grows instead of waiting in line as many.
        let waiting = std::time::Instant::now();
        let mut conn = match store.writer_connection().await {
            Ok(conn) => conn,
            Err(err) => {
                fail_all(std::mem::take(&mut queued).into_iter().map(|(_, r)| r), err);
                continue;
            }
        };
        let holding = std::time::Instant::now();
        while queued.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => queued.push(item),
                Err(_) => break,
            }
        }
        let batch = std::mem::take(&mut queued);
        let size = batch.len();
        let tenant_ids: Vec<String> = batch.iter().map(|(p, _)| p.tenant_id.clone()).collect();
        let snapshot = match store.routing_snapshot_on(&mut conn, &tenant_ids).await {
            Ok(snapshot) => snapshot,
            Err(err) => {
                fail_all(batch.into_iter().map(|(_, r)| r), err);
                continue;
            }
        };
        let routed = RoutedBatch::build(batch, snapshot);
        if routed.events.is_empty() {
            continue;
        }
        write_batch(&store, &mut conn, routed, &wake_workers, handoff.as_ref()).await;
        crate::telemetry::COUNTERS
            .writer_publish
            .batch(size, holding - waiting, holding.elapsed());
    }
}

/// The events of a batch that passed routing, with what the workers need.
struct RoutedBatch {
    events: Vec<NewEvent>,
    /// Per event, the destinations it was routed to.
    destinations: Vec<Vec<Arc<DestinationRow>>>,
    replies: Vec<Reply>,
}

impl RoutedBatch {
    /// Route each publication; answer those naming an unknown tenant or destination.
    fn build(batch: Vec<(Publication, Reply)>, snapshot: crate::store::RoutingSnapshot) -> Self {
        let mut routes: HashMap<String, Vec<Route>> = HashMap::new();
        for row in snapshot.destinations {
            routes
                .entry(row.tenant_id.clone())
                .or_default()
                .push(Route::new(Arc::new(row)));
        }
        let mut routed = RoutedBatch {
            events: Vec::with_capacity(batch.len()),
            destinations: Vec::with_capacity(batch.len()),
            replies: Vec::with_capacity(batch.len()),
        };
        for (p, reply) in batch {
            if !snapshot.tenants.contains(&p.tenant_id) {
                let _ = reply.send(Err(PublishError::TenantNotFound(p.tenant_id)));
                continue;
            }
            let tenant_routes = routes.get(&p.tenant_id).map_or(&[][..], Vec::as_slice);
            if let Some(only) = &p.destination_id {
                if !tenant_routes.iter().any(|r| &r.destination.id == only) {
                    let _ = reply.send(Err(PublishError::DestinationNotFound(only.clone())));
                    continue;
                }
            }
            let matched = route(
                tenant_routes,
                &Routable {
                    id: &p.id,
                    topic: &p.topic,
                    time: p.time,
                    metadata: p.metadata.as_ref(),
                    data: &p.data,
                },
                p.destination_id.as_deref(),
            );
            routed
                .destinations
                .push(matched.iter().map(|r| r.destination.clone()).collect());
            routed.events.push(NewEvent {
                destination_ids: matched.iter().map(|r| r.destination.id.clone()).collect(),
                metadata: p
                    .metadata
                    .as_ref()
                    .map(|m| serde_json::to_string(m).expect("map serialises")),
                data: String::from(Box::<str>::from(p.data)),
                id: p.id,
                tenant_id: p.tenant_id,
                topic: p.topic,
                time: p.time,
                eligible_for_retry: p.eligible_for_retry,
                destination_id: p.destination_id,
            });
            routed.replies.push(reply);
        }
        routed
    }
}

async fn write_batch(
    store: &Store,
    conn: &mut WriterConnection,
    routed: RoutedBatch,
    wake_workers: &Notify,
    handoff: Option<&Handoff>,
) {
    let wanted: usize = routed.events.iter().map(|e| e.destination_ids.len()).sum();
    // The writer is the only sender, so the free space can only grow before we send.
    let room = handoff.map_or(0, |h| wanted.min(h.tx.capacity()));
    let (reserved, lease) = match handoff {
        Some(h) if room > 0 => match h.tx.try_reserve_many(room) {
            Ok(permits) => (
                Some(permits),
                Some(Lease {
                    owner: h.owner.clone(),
                    duration_ms: h.lease_ms,
                    max: room,
                }),
            ),
            Err(_) => (None, None),
        },
        _ => (None, None),
    };
    let mut permits = reserved.into_iter().flatten();
    let written = match store
        .publish_events_on(conn, &routed.events, lease.as_ref())
        .await
    {
        Ok(written) => written,
        Err(err) => {
            tracing::error!(error = %err, events = routed.events.len(), "publish batch failed");
            fail_all(routed.replies.into_iter(), err);
            return;
        }
    };
    count(&written.outcomes);
    let handed = written.leased.len();
    let mut event_rows: Vec<Option<Arc<EventRow>>> = vec![None; routed.events.len()];
    for (index, delivery) in written.leased {
        let event = event_rows[index]
            .get_or_insert_with(|| Arc::new(event_row(&routed.events[index])))
            .clone();
        let destination = routed.destinations[index]
            .iter()
            .find(|d| d.id == delivery.destination_id)
            .cloned()
            .expect("a leased delivery goes to a routed destination");
        if let Some(permit) = permits.next() {
            permit.send(LocalDelivery {
                delivery,
                event,
                destination,
            });
        }
    }
    for (reply, outcome) in routed.replies.into_iter().zip(written.outcomes) {
        let _ = reply.send(Ok(outcome));
    }
    if handed < wanted {
        wake_workers.notify_one();
    }
}

fn fail_all(replies: impl Iterator<Item = Reply>, err: StoreError) {
    let err = PublishError::Store(Arc::new(err));
    for reply in replies {
        let _ = reply.send(Err(err.clone()));
    }
}

fn count(outcomes: &[PublishOutcome]) {
    let counters = &*crate::telemetry::COUNTERS;
    for outcome in outcomes {
        if outcome.duplicate {
            crate::telemetry::add(&counters.events_duplicate, 1);
        } else {
            crate::telemetry::add(&counters.events_published, 1);
            crate::telemetry::add(
                &counters.deliveries_queued,
                outcome.destination_ids.len() as u64,
            );
        }
    }
}

fn event_row(e: &NewEvent) -> EventRow {
    EventRow {
        id: e.id.clone(),
        tenant_id: e.tenant_id.clone(),
        topic: e.topic.clone(),
        time: e.time,
        metadata: e.metadata.clone(),
        data: e.data.clone(),
        eligible_for_retry: e.eligible_for_retry,
        destination_id: e.destination_id.clone(),
    }
}
