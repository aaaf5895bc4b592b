//! Calls into components built against `outrider:plugin@0.1.0`.

use std::time::Duration;

use wasmtime::component::{Instance, InstancePre};
use wasmtime::Store;

use super::TransformRejection;
use crate::runtime::bindings::v0_1_0::{destination, plugin, transformer, types};
use crate::runtime::call::CallContext;
use crate::runtime::calls::{Delivered, DeliveryFailure, Event, Target};
use crate::runtime::manifest::{FieldError, Manifest, PrototypeKind, TestCase};
use crate::runtime::validate::{ExportSet, LoadError};

pub use crate::runtime::bindings::v0_1_0::VERSION;

/// Export indices, looked up once per component.
#[derive(Clone)]
pub struct Exports {
    plugin: plugin::GuestIndices,
    destination: Option<destination::GuestIndices>,
    transformer: Option<transformer::GuestIndices>,
}

fn link_error(e: wasmtime::Error) -> LoadError {
    LoadError::Link(crate::runtime::call::describe(&e))
}

fn missing(kind: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the plugin does not export `{kind}`"))
}

impl Exports {
    pub fn new(exports: &ExportSet, pre: &InstancePre<CallContext>) -> Result<Self, LoadError> {
        Ok(Exports {
            plugin: plugin::GuestIndices::new(pre).map_err(link_error)?,
            destination: exports
                .destination
                .then(|| destination::GuestIndices::new(pre))
                .transpose()
                .map_err(link_error)?,
            transformer: exports
                .transformer
                .then(|| transformer::GuestIndices::new(pre))
                .transpose()
                .map_err(link_error)?,
        })
    }

    pub async fn manifest(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<Manifest> {
        let guest = self.plugin.load(&mut *store, instance)?;
        Ok(guest.call_manifest(&mut *store).await?.into())
    }

    pub async fn self_tests(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<Vec<TestCase>> {
        let guest = self.plugin.load(&mut *store, instance)?;
        let tests = guest.call_self_tests(&mut *store).await?;
        Ok(tests.into_iter().map(TestCase::from).collect())
    }

    pub async fn validate(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        kind: PrototypeKind,
        prototype: &str,
        config: String,
        credentials: String,
    ) -> wasmtime::Result<Vec<FieldError>> {
        let result = match kind {
            PrototypeKind::Destination => {
                let indices = self
                    .destination
                    .as_ref()
                    .ok_or_else(|| missing("destination"))?;
                let guest = indices.load(&mut *store, instance)?;
                guest
                    .call_validate(&mut *store, prototype, &config, &credentials)
                    .await?
            }
            PrototypeKind::Transformer => {
                let indices = self
                    .transformer
                    .as_ref()
                    .ok_or_else(|| missing("transformer"))?;
                let guest = indices.load(&mut *store, instance)?;
                guest
                    .call_validate(&mut *store, prototype, &config, &credentials)
                    .await?
            }
        };
        Ok(match result {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(FieldError::from).collect(),
        })
    }

    pub async fn deliver(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        event: &Event,
    ) -> wasmtime::Result<Result<Delivered, DeliveryFailure>> {
        let indices = self
            .destination
            .as_ref()
            .ok_or_else(|| missing("destination"))?;
        let guest = indices.load(&mut *store, instance)?;
        let target = wit_target(target);
        let event = destination::Event {
            id: event.id.clone(),
            tenant_id: event.tenant_id.clone(),
            topic: event.topic.clone(),
            time: event.time_ms,
            metadata: entries(event.metadata.iter()),
            data: event.data.clone(),
            attempt: event.attempt,
        };
        let result = guest.call_deliver(&mut *store, &target, &event).await?;
        Ok(match result {
            Ok(ok) => Ok(Delivered {
                status_code: ok.status_code,
                response_body: ok.response_body,
            }),
            Err(destination::DeliveryError::Retry(r)) => Err(DeliveryFailure::Retry {
                message: r.failure.message,
                status_code: r.failure.status_code,
                response_body: r.failure.response_body,
                retry_after: r.retry_after_ms.map(Duration::from_millis),
            }),
            Err(destination::DeliveryError::Fail(f)) => Err(DeliveryFailure::Fail {
                message: f.message,
                status_code: f.status_code,
                response_body: f.response_body,
            }),
            Err(destination::DeliveryError::Misconfigured(f)) => {
                Err(DeliveryFailure::Misconfigured {
                    message: f.message,
                    status_code: f.status_code,
                    response_body: f.response_body,
                })
            }
        })
    }

    pub async fn transform(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        input: String,
    ) -> wasmtime::Result<Result<Vec<String>, TransformRejection>> {
        let indices = self
            .transformer
            .as_ref()
            .ok_or_else(|| missing("transformer"))?;
        let guest = indices.load(&mut *store, instance)?;
        let target = wit_target(target);
        Ok(
            match guest.call_transform(&mut *store, &target, &input).await? {
                Ok(outputs) => Ok(outputs),
                Err(transformer::TransformError::InvalidInput(m)) => {
                    Err(TransformRejection::InvalidInput(m))
                }
                Err(transformer::TransformError::Misconfigured(m)) => {
                    Err(TransformRejection::Misconfigured(m))
                }
            },
        )
    }
}

fn entries<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<types::Entry> {
    pairs
        .map(|(k, v)| types::Entry {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn wit_target(target: &Target) -> types::Target {
    types::Target {
        prototype: target.prototype.clone(),
        id: target.id.clone(),
        tenant_id: target.tenant_id.clone(),
        config: target.config.to_string(),
        credentials: target.credentials.to_string(),
        delivery_metadata: entries(target.delivery_metadata.iter()),
    }
}
