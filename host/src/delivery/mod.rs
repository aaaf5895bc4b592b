//! Delivery: storing published events (group commit), routing them to destinations, and
//! the workers that deliver them through plugins with retries, attempts and alerts.
//!
//! - `publisher`: group commit for publishes.
//! - `routing`: which destinations an event goes to.
//! - `worker`: claiming due deliveries and writing outcomes back, in batches.
//! - `dispatch`: one attempt through a plugin; `targets`: destinations prepared for it;
//!   `lanes`: the plugin call, batched for plugins that take batches.
//! - `retry`, `filter`, `alerts`: the policies.

pub mod alerting;
pub mod alerts;
pub mod dispatch;
pub mod filter;
pub mod lanes;
pub mod publisher;
pub mod retry;
pub mod routing;
pub mod targets;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

pub use dispatch::{credentials_aad, DispatchContext};
pub use publisher::{Publication, PublishError, Publisher};
pub use worker::WorkerConfig;

/// The running delivery machinery of one node.
#[derive(Clone)]
pub struct DeliveryEngine {
    /// Stores published events.
    pub publisher: Publisher,
    wake: Arc<Notify>,
}

impl DeliveryEngine {
    /// Start the publisher and the worker loop, joined by the in-memory handoff of fresh
    /// deliveries.
    pub fn start(ctx: DispatchContext, config: WorkerConfig) -> Self {
        let wake = Arc::new(Notify::new());
        let owner = ulid::Ulid::new().to_string();
        let (handoff_tx, handoff_rx) = tokio::sync::mpsc::channel(config.concurrency * 2);
        let handoff = publisher::Handoff {
            tx: handoff_tx,
            owner: owner.clone(),
            lease_ms: config.lease.as_millis() as i64,
        };
        let writer = match ctx.store.dialect() {
            crate::store::Dialect::Sqlite => writer_thread(),
            crate::store::Dialect::Postgres => tokio::runtime::Handle::current(),
        };
        let publisher = Publisher::start(ctx.store.clone(), wake.clone(), Some(handoff), &writer);
        let workers = worker::Workers {
            ctx: Arc::new(ctx),
            config,
            wake: wake.clone(),
            owner,
            writer,
        };
        tokio::spawn(workers.run(handoff_rx));
        Self { publisher, wake }
    }

    /// Wake the workers (after a manual retry, say).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// A thread of its own for the SQLite write loops (group commit, outcomes). Their
/// statements run one after another on one connection; on the shared runtime every step
/// waited in line behind hundreds of delivery and HTTP tasks, which set the pace of the
/// whole gateway. sqlx's SQLite driver has no runtime-bound I/O, so it may run here.
fn writer_thread() -> tokio::runtime::Handle {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the writer runtime starts");
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("outrider-writer".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .expect("the writer thread starts");
    handle
}
