//! The delivery path's one call into the integration layer: pass the event's payload
//! through the destination's transformer chain, then deliver each output.
//!
//! A chain that returns no output is a skipped delivery: the attempt is recorded as
//! complete (`status: success`, `error_kind: skipped`, the error naming the transformer),
//! so it neither retries nor counts towards failure alerts.

use std::sync::Arc;

use super::chain::{before_delivery, ChainError, ChainOutputText, Transformers};
use crate::delivery::retry::Outcome;
use crate::delivery::DispatchContext;
use crate::runtime::{Delivered, DeliveryFailure, Event, LoadedPlugin, PreparedTarget};
use crate::store::{AttemptRecord, DestinationRow};

/// What happened to one delivery attempt.
pub enum Hooked {
    /// The destination plugin was called (once per chain output; the first failure
    /// stops, the last success is reported).
    Delivered(Result<Delivered, DeliveryFailure>),
    /// A transformer dropped the event.
    Skipped {
        /// Its identifier.
        by: String,
    },
    /// The chain failed.
    Failed(ChainError),
}

impl Hooked {
    /// Fill `record` for a chain that did not reach the plugin; returns the outcome for
    /// the retry policy, or `None` when the delivery is complete.
    pub fn fill(self, record: &mut AttemptRecord) -> Option<Outcome> {
        match self {
            Hooked::Delivered(_) => None,
            Hooked::Skipped { by } => {
                record.status = "success";
                record.error_kind = Some("skipped");
                record.error = Some(format!(
                    "transformer `{by}` returned no output: nothing to deliver"
                ));
                None
            }
            Hooked::Failed(err) => {
                let (kind, outcome) = err.classify();
                record.status = "failed";
                record.error_kind = Some(kind);
                record.error = Some(err.to_string());
                Some(outcome)
            }
        }
    }
}

/// Transform `event` for `destination` and deliver the result through `plugin`.
pub async fn deliver(
    ctx: &DispatchContext,
    destination: &DestinationRow,
    plugin: &Arc<LoadedPlugin>,
    target: &Arc<PreparedTarget>,
    event: Event,
) -> Hooked {
    if destination.transformers.is_none() {
        return Hooked::Delivered(ctx.calls.deliver(plugin, target, event).await);
    }
    let transformers = Transformers {
        store: &ctx.store,
        registry: &ctx.registry,
        keyring: &ctx.keyring,
    };
    let payloads = match before_delivery(transformers, destination, &event.data).await {
        Ok(ChainOutputText::Outputs(payloads)) => payloads,
        Ok(ChainOutputText::Dropped { by }) => return Hooked::Skipped { by },
        Err(err) => return Hooked::Failed(err),
    };
    // Outputs are delivered in order; a failure stops and the whole attempt is retried,
    // so outputs delivered before it are delivered again (at least once, as always).
    let mut last = None;
    for data in payloads {
        let one = Event {
            data,
            ..event.clone()
        };
        match ctx.calls.deliver(plugin, target, one).await {
            Ok(delivered) => last = Some(delivered),
            Err(failure) => return Hooked::Delivered(Err(failure)),
        }
    }
    Hooked::Delivered(Ok(last.expect("a chain yields at least one output")))
}
