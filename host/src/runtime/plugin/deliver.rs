//! Delivery calls: one event (`destination.deliver`) or several to one target in one call
//! (`batch-destination.deliver-batch`, for plugins that export it).

use std::sync::Arc;

use super::LoadedPlugin;
use crate::runtime::call;
use crate::runtime::calls::{cap_text, Delivered, DeliveryFailure, Event, PreparedTarget, Target};
use crate::runtime::manifest::{Prototype, PrototypeKind};

impl LoadedPlugin {
    /// Deliver `event` to `target`.
    pub async fn deliver(
        &self,
        target: &Target,
        event: &Event,
    ) -> Result<Delivered, DeliveryFailure> {
        let prepared = Arc::new(PreparedTarget::new(target.clone()));
        self.deliver_prepared(&prepared, event.clone()).await
    }

    /// Deliver `event` to a prepared target (the delivery path's form: nothing of the
    /// target is copied or serialized per call).
    pub async fn deliver_prepared(
        &self,
        prepared: &Arc<PreparedTarget>,
        event: Event,
    ) -> Result<Delivered, DeliveryFailure> {
        let (mut results, denied) = self.call_deliver(prepared, Events::One(event)).await?;
        let result = results.pop().expect("deliver answers once");
        self.tidy(result, denied.as_deref())
    }

    /// Whether the plugin takes deliveries in batches (exports `batch-destination`).
    pub fn batches(&self) -> bool {
        self.guest.batches()
    }

    /// Deliver `events` (at most [`BATCH_MAX`](crate::runtime::guest::BATCH_MAX), all to
    /// `prepared`) in one `deliver-batch` call: one result per event, in order. `Err` is
    /// the call's own failure (trap, timeout, limit, a wrong number of results), which
    /// befalls every event of it.
    pub async fn deliver_batch(
        &self,
        prepared: &Arc<PreparedTarget>,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Delivered, DeliveryFailure>>, DeliveryFailure> {
        let (results, denied) = self.call_deliver(prepared, Events::Batch(events)).await?;
        Ok(results
            .into_iter()
            .map(|result| self.tidy(result, denied.as_deref()))
            .collect())
    }

    /// Run `deliver` or `deliver-batch` on a warm or new instance; the plugin's answers
    /// and the first network denial of the call.
    async fn call_deliver(
        &self,
        prepared: &Arc<PreparedTarget>,
        events: Events,
    ) -> Result<(Vec<Result<Delivered, DeliveryFailure>>, Option<String>), DeliveryFailure> {
        let proto = self.destination_prototype(prepared.target())?;
        let _slot = self.slot().await?;
        let (store, warm, key, uses) =
            self.store_for_target(proto, prepared.target(), prepared.json());
        let (pre, guest) = (self.pre.clone(), self.guest.clone());
        let prepared = prepared.clone();
        let outcome = call::run(store, move |mut store| async move {
            let result = async {
                let instance = match warm {
                    Some(instance) => instance,
                    None => pre.instantiate_async(&mut store).await?,
                };
                let (target, json) = (prepared.target(), prepared.json());
                let results = match &events {
                    Events::One(event) => {
                        vec![
                            guest
                                .deliver(&mut store, &instance, target, json, event)
                                .await?,
                        ]
                    }
                    Events::Batch(events) => {
                        guest
                            .deliver_batch(&mut store, &instance, target, json, events)
                            .await?
                    }
                };
                Ok((instance, results))
            }
            .await;
            (result, store)
        })
        .await;
        let ((instance, results), store) = self.finish(outcome).map_err(DeliveryFailure::from)?;
        let denied = store.data().denials.first().cloned();
        self.keep(key, store, instance, uses);
        Ok((results, denied))
    }

    /// The destination prototype a target names.
    fn destination_prototype(&self, target: &Target) -> Result<&Prototype, DeliveryFailure> {
        self.prototype(PrototypeKind::Destination, &target.prototype)
            .ok_or_else(|| DeliveryFailure::Misconfigured {
                message: format!(
                    "plugin {} has no destination prototype `{}`",
                    self.name, target.prototype
                ),
                status_code: None,
                response_body: None,
            })
    }

    /// Cap response bodies; a failure after a network denial is reported as the denial.
    fn tidy(
        &self,
        result: Result<Delivered, DeliveryFailure>,
        denied: Option<&str>,
    ) -> Result<Delivered, DeliveryFailure> {
        let cap = self.limits.response_cap;
        match result {
            Ok(mut delivered) => {
                delivered.response_body = delivered.response_body.map(|b| cap_text(b, cap));
                Ok(delivered)
            }
            Err(_) if denied.is_some() => Err(DeliveryFailure::Denied(
                denied.unwrap_or_default().to_owned(),
            )),
            Err(mut failure) => {
                if let DeliveryFailure::Retry { response_body, .. }
                | DeliveryFailure::Fail { response_body, .. }
                | DeliveryFailure::Misconfigured { response_body, .. } = &mut failure
                {
                    *response_body = response_body.take().map(|b| cap_text(b, cap));
                }
                Err(failure)
            }
        }
    }
}

/// What a delivery call carries.
enum Events {
    /// `destination.deliver`.
    One(Event),
    /// `batch-destination.deliver-batch`.
    Batch(Vec<Event>),
}
