//! Delivery: storing published events (group commit), routing them to destinations, and
//! the workers that deliver them through plugins with retries, attempts and alerts.
//!
//! - `publisher`: group commit for publishes.
//! - `routing`: which destinations an event goes to.
//! - `worker`: claiming due deliveries and writing outcomes back, in batches.
//! - `dispatch`: one attempt through a plugin.
//! - `retry`, `filter`, `alerts`: the policies.

pub mod alerting;
pub mod alerts;
pub mod dispatch;
pub mod filter;
pub mod publisher;
pub mod retry;
pub mod routing;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

pub use dispatch::{credentials_aad, DispatchContext};
pub use publisher::{PublishError, Publisher};
pub use worker::WorkerConfig;

/// The running delivery machinery of one node.
#[derive(Clone)]
pub struct DeliveryEngine {
    /// Stores published events.
    pub publisher: Publisher,
    wake: Arc<Notify>,
}

impl DeliveryEngine {
    /// Start the publisher and the worker loop.
    pub fn start(ctx: DispatchContext, config: WorkerConfig) -> Self {
        let wake = Arc::new(Notify::new());
        let publisher = Publisher::start(ctx.store.clone(), wake.clone());
        tokio::spawn(worker::run(Arc::new(ctx), config, wake.clone()));
        Self { publisher, wake }
    }

    /// Wake the workers (after a manual retry, say).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
