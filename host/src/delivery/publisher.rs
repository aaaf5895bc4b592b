//! Group commit for `POST /publish`: requests queue here, one task writes whatever has
//! queued up in a single transaction, and each request is answered only after that commit.
//! Under load many events share one fsync; at rest a lone event commits at once.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use crate::store::{NewEvent, PublishOutcome, Store, StoreError};

/// Most events written by one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<PublishOutcome, Arc<StoreError>>>;

/// Handle to the group-commit writer; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<(NewEvent, Reply)>,
}

/// Why a publish was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The writer has stopped (shutdown).
    #[error("the server is shutting down")]
    Closed,
    /// The store failed; nothing of the batch was written.
    #[error("storing the event failed: {0}")]
    Store(Arc<StoreError>),
}

impl Publisher {
    /// Start the writer. `delivered` is notified after each commit so workers wake at once.
    /// The queue is bounded: when it is full, publishers wait (backpressure).
    pub fn start(store: Store, wake_workers: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_loop(store, rx, wake_workers));
        Self { tx }
    }

    /// Store one event and its deliveries; returns once they are durable.
    pub async fn publish(&self, event: NewEvent) -> Result<PublishOutcome, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| PublishError::Closed)?;
        answer
            .await
            .map_err(|_| PublishError::Closed)?
            .map_err(PublishError::Store)
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<(NewEvent, Reply)>,
    wake_workers: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        match store.publish_events(&events).await {
            Ok(outcomes) => {
                let counters = &*crate::telemetry::COUNTERS;
                for outcome in &outcomes {
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
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                wake_workers.notify_one();
            }
            Err(err) => {
                tracing::error!(error = %err, events = events.len(), "publish batch failed");
                let err = Arc::new(err);
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}
