//! Events and their fan-out into deliveries, written together in one transaction so a
//! 202 from `POST /publish` always means "stored with every delivery it needs".
//!
//! A batch is written with a few multi-row statements rather than one per row: the group
//! commit hands over hundreds of events at a time under load.

use std::collections::{HashMap, HashSet};

use super::deliveries::ClaimedDelivery;
use super::hot::HotTx;
use super::sql::{Bind, SqlBuilder};
use super::{now_ms, Dialect, Store, StoreResult, WriterConnection};

/// Rows per multi-row INSERT: about a thousand bound values, far under PostgreSQL's
/// 65,535 and SQLite's 32,766 limits.
const ROWS_PER_STATEMENT: usize = 100;

/// An event to store with the destinations it matched.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Event id (the idempotency key within the tenant).
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Topic ("" when none).
    pub topic: String,
    /// Event time, ms since the epoch.
    pub time: i64,
    /// JSON object of strings.
    pub metadata: Option<String>,
    /// JSON payload.
    pub data: String,
    /// Whether failed deliveries are retried.
    pub eligible_for_retry: bool,
    /// When published to a single destination.
    pub destination_id: Option<String>,
    /// Destinations to deliver to.
    pub destination_ids: Vec<String>,
}

/// What happened to one [`NewEvent`].
#[derive(Clone, Debug, PartialEq)]
pub struct PublishOutcome {
    /// The event id.
    pub id: String,
    /// True when the id was already stored; nothing new was queued.
    pub duplicate: bool,
    /// Destinations the event is (or was, for a duplicate) delivered to.
    pub destination_ids: Vec<String>,
}

/// Deliveries written already claimed by this node's workers, so they start without a
/// claim query; if the node dies the lease expires and any node claims them again.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The claiming worker.
    pub owner: String,
    /// Lease length in ms.
    pub duration_ms: i64,
    /// Most deliveries of the batch to claim this way (the rest wait in the queue).
    pub max: usize,
}

/// The result of [`Store::publish_events`].
#[derive(Debug, Default)]
pub struct PublishedBatch {
    /// One per event, in order.
    pub outcomes: Vec<PublishOutcome>,
    /// Deliveries written under the lease, each with the index of its event.
    pub leased: Vec<(usize, ClaimedDelivery)>,
}

struct DeliveryRow<'a> {
    id: String,
    event: &'a NewEvent,
    destination_id: &'a str,
    leased: bool,
}

impl Store {
    /// Store a batch of events with their deliveries in ONE transaction (group commit):
    /// either all are durable when this returns, or none is. A repeated (tenant, id), in
    /// the store or earlier in the batch, is a duplicate and queues nothing.
    pub async fn publish_events(
        &self,
        events: &[NewEvent],
        lease: Option<&Lease>,
    ) -> StoreResult<PublishedBatch> {
        let mut conn = self.writer_connection().await?;
        self.publish_events_on(&mut conn, events, lease).await
    }

    /// [`Store::publish_events`] on a writer connection the caller already holds (the
    /// group commit takes it first, then drains its queue: the batch grows while it waits).
    pub async fn publish_events_on(
        &self,
        conn: &mut WriterConnection,
        events: &[NewEvent],
        lease: Option<&Lease>,
    ) -> StoreResult<PublishedBatch> {
        let now = now_ms();
        let mut tx = conn.begin().await?;
        let mut first_in_batch: HashMap<(&str, &str), usize> = HashMap::new();
        let mut fresh = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            first_in_batch
                .entry((&event.tenant_id, &event.id))
                .or_insert_with(|| {
                    fresh.push(index);
                    index
                });
        }
        let mut inserted: HashSet<(String, String)> = HashSet::new();
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            let mut b = SqlBuilder::for_dialect(
                self.dialect(),
                "INSERT INTO events (tenant_id, id, topic, time, metadata, data, eligible_for_retry, destination_id, created_at) VALUES ",
            );
            for (n, &index) in chunk.iter().enumerate() {
                let e = &events[index];
                b.push(if n == 0 { "" } else { ", " });
                b.push_binds(
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        Bind::Text(e.tenant_id.clone()),
                        Bind::Text(e.id.clone()),
                        Bind::Text(e.topic.clone()),
                        Bind::Int(e.time),
                        Bind::OptText(e.metadata.clone()),
                        Bind::Text(e.data.clone()),
                        Bind::Int(e.eligible_for_retry as i64),
                        Bind::OptText(e.destination_id.clone()),
                        Bind::Int(now),
                    ],
                );
            }
            b.push(" ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id");
            inserted.extend(tx.fetch::<(String, String)>(&b).await?);
        }
        // Whether each event's first occurrence was written (not already stored).
        let written: Vec<bool> = events
            .iter()
            .map(|e| inserted.contains(&(e.tenant_id.clone(), e.id.clone())))
            .collect();
        let mut deliveries = Vec::new();
        let mut budget = lease.map_or(0, |l| l.max);
        for &index in &fresh {
            let event = &events[index];
            if !written[index] {
                continue;
            }
            // An event timed in the future is a delayed publish: it waits in the queue.
            let delayed = event.time > now;
            for destination_id in &event.destination_ids {
                let leased = budget > 0 && !delayed;
                if leased {
                    budget -= 1;
                }
                deliveries.push((
                    index,
                    DeliveryRow {
                        id: ulid::Ulid::new().to_string(),
                        event,
                        destination_id,
                        leased,
                    },
                ));
            }
        }
        for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
            insert_deliveries(
                self.dialect(),
                &mut tx,
                chunk.iter().map(|(_, d)| d),
                lease,
                now,
            )
            .await?;
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let key = (event.tenant_id.as_str(), event.id.as_str());
            let first = first_in_batch[&key];
            let is_new = first == index && written[index];
            let destination_ids = if is_new {
                event.destination_ids.clone()
            } else if written[index] {
                // Repeated within this batch: the first occurrence was just written.
                events[first].destination_ids.clone()
            } else {
                stored_destination_ids(&mut tx, &event.tenant_id, &event.id).await?
            };
            outcomes.push(PublishOutcome {
                id: event.id.clone(),
                duplicate: !is_new,
                destination_ids,
            });
        }
        let committing = std::time::Instant::now();
        tx.commit().await?;
        crate::telemetry::COUNTERS
            .writer_publish
            .commit(committing.elapsed());
        let leased = deliveries
            .into_iter()
            .filter(|(_, d)| d.leased)
            .map(|(index, d)| {
                (
                    index,
                    ClaimedDelivery {
                        id: d.id,
                        tenant_id: d.event.tenant_id.clone(),
                        event_id: d.event.id.clone(),
                        destination_id: d.destination_id.to_string(),
                        attempts: 0,
                        manual: false,
                    },
                )
            })
            .collect();
        Ok(PublishedBatch { outcomes, leased })
    }
}

async fn insert_deliveries<'a>(
    dialect: Dialect,
    tx: &mut HotTx<'_>,
    rows: impl Iterator<Item = &'a DeliveryRow<'a>>,
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<()> {
    let mut b = SqlBuilder::for_dialect(
        dialect,
        "INSERT INTO deliveries (id, tenant_id, event_id, destination_id, status, attempts, next_attempt_at, \
         lease_owner, lease_until, created_at, updated_at) VALUES ",
    );
    for (n, d) in rows.enumerate() {
        let (status, owner, until) = match lease {
            Some(l) if d.leased => (
                "processing",
                Some(l.owner.clone()),
                Some(now + l.duration_ms),
            ),
            _ => ("pending", None, None),
        };
        b.push(if n == 0 { "" } else { ", " });
        b.push_binds(
            "(?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            [
                Bind::Text(d.id.clone()),
                Bind::Text(d.event.tenant_id.clone()),
                Bind::Text(d.event.id.clone()),
                Bind::Text(d.destination_id.to_string()),
                Bind::Text(status.into()),
                Bind::Int(d.event.time.max(now)),
                Bind::OptText(owner),
                Bind::OptInt(until),
                Bind::Int(now),
                Bind::Int(now),
            ],
        );
    }
    if !b.is_empty() {
        tx.execute(&b).await?;
    }
    Ok(())
}

/// Destinations a stored event was routed to (answer to a duplicate publish).
async fn stored_destination_ids(
    tx: &mut HotTx<'_>,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Vec<String>> {
    let mut b = SqlBuilder::new("SELECT destination_id FROM deliveries WHERE ");
    b.push_binds(
        "tenant_id = ? AND event_id = ? ORDER BY destination_id",
        [Bind::Text(tenant_id.into()), Bind::Text(id.into())],
    );
    tx.fetch(&b).await
}

/// What routing a batch of publishes needs: which tenants exist and their destinations.
#[derive(Debug, Default)]
pub struct RoutingSnapshot {
    /// Tenants of the batch that exist.
    pub tenants: HashSet<String>,
    /// Their destinations, oldest first per tenant.
    pub destinations: Vec<super::DestinationRow>,
}

impl Store {
    /// Tenants and destinations for routing a batch of events, in two queries on the
    /// writer the caller holds (on SQLite that is the direct connection: no thread
    /// handoff, and it sees every commit).
    pub async fn routing_snapshot_on(
        &self,
        conn: &mut WriterConnection,
        tenant_ids: &[String],
    ) -> StoreResult<RoutingSnapshot> {
        let mut unique = tenant_ids.to_vec();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(RoutingSnapshot::default());
        }
        let mut b = SqlBuilder::for_dialect(self.dialect(), "SELECT id FROM tenants WHERE 1 = 1");
        b.push_in(" AND id", &unique);
        let tenants = conn.read::<String>(&b).await?.into_iter().collect();
        let mut b = SqlBuilder::for_dialect(
            self.dialect(),
            format!(
                "SELECT {} FROM destinations WHERE 1 = 1",
                super::destinations::COLUMNS
            ),
        );
        b.push_in(" AND tenant_id", &unique);
        b.push(" ORDER BY created_at, id");
        Ok(RoutingSnapshot {
            tenants,
            destinations: conn.read(&b).await?,
        })
    }
}

#[cfg(test)]
mod tests;
