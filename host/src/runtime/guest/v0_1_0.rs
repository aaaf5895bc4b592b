//! Calls into components built against `outrider:plugin@0.1.0`.
//!
//! The hot calls (`deliver`, `transform`) skip the generated per-call plumbing: their
//! arguments are lowered from borrowed records ([`TargetParam`], [`EventParam`]) made
//! straight from the host's `Target`/`Event` (no copies into owned WIT records), and
//! their signatures are type-checked once per component at load ([`Exports::verify`])
//! instead of on every call. Rare calls (manifest, self-tests, validate) use the
//! generated bindings as they are.

use std::time::Duration;

use wasmtime::component::{
    ComponentExportIndex, ComponentType, Instance, InstancePre, Lower, TypedFunc,
};
use wasmtime::Store;

use super::{TargetJson, TransformRejection};
use crate::runtime::bindings::v0_1_0::{destination, plugin, transformer};
use crate::runtime::call::CallContext;
use crate::runtime::calls::{
    cap_text, Delivered, DeliveryFailure, Event, Target, FIELD_ERRORS_CAP, MESSAGE_CAP,
};
use crate::runtime::manifest::{FieldError, Manifest, PrototypeKind, TestCase};
use crate::runtime::validate::{ExportSet, LoadError};

pub use crate::runtime::bindings::v0_1_0::VERSION;

const DESTINATION: &str = "outrider:plugin/destination@0.1.0";
const TRANSFORMER: &str = "outrider:plugin/transformer@0.1.0";

/// `types.entry`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
struct EntryParam<'a> {
    #[component(name = "key")]
    key: &'a str,
    #[component(name = "value")]
    value: &'a str,
}

/// `types.target`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
struct TargetParam<'a> {
    #[component(name = "prototype")]
    prototype: &'a str,
    #[component(name = "id")]
    id: &'a str,
    #[component(name = "tenant-id")]
    tenant_id: &'a str,
    #[component(name = "config")]
    config: &'a str,
    #[component(name = "credentials")]
    credentials: &'a str,
    #[component(name = "delivery-metadata")]
    delivery_metadata: &'a [EntryParam<'a>],
}

/// `destination.event`, borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
struct EventParam<'a> {
    #[component(name = "id")]
    id: &'a str,
    #[component(name = "tenant-id")]
    tenant_id: &'a str,
    #[component(name = "topic")]
    topic: &'a str,
    #[component(name = "time")]
    time: u64,
    #[component(name = "metadata")]
    metadata: &'a [EntryParam<'a>],
    #[component(name = "data")]
    data: &'a str,
    #[component(name = "attempt")]
    attempt: u32,
}

type DeliverParams<'a> = (TargetParam<'a>, EventParam<'a>);
type DeliverResults = (Result<destination::DeliveryOk, destination::DeliveryError>,);
type TransformParams<'a> = (TargetParam<'a>, &'a str);
type TransformResults = (Result<Vec<String>, transformer::TransformError>,);

/// Export indices, looked up once per component.
#[derive(Clone)]
pub struct Exports {
    plugin: plugin::GuestIndices,
    destination: Option<destination::GuestIndices>,
    transformer: Option<transformer::GuestIndices>,
    deliver: Option<ComponentExportIndex>,
    transform: Option<ComponentExportIndex>,
}

fn link_error(e: wasmtime::Error) -> LoadError {
    LoadError::Link(crate::runtime::call::describe(&e))
}

fn missing(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the plugin does not export `{what}`"))
}

/// The index of `func` in the exported interface `iface`.
fn func_index(
    pre: &InstancePre<CallContext>,
    iface: &str,
    func: &str,
) -> Result<ComponentExportIndex, LoadError> {
    let component = pre.component();
    let instance = component
        .get_export_index(None, iface)
        .ok_or_else(|| LoadError::Link(format!("no exported instance `{iface}`")))?;
    component
        .get_export_index(Some(&instance), func)
        .ok_or_else(|| LoadError::Link(format!("`{iface}` does not export `{func}`")))
}

/// Metadata entries as borrowed records.
fn entries<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<EntryParam<'a>> {
    pairs
        .map(|(k, v)| EntryParam { key: k, value: v })
        .collect()
}

/// The borrowed `target` record.
fn target_param<'a>(
    target: &'a Target,
    json: &'a TargetJson,
    metadata: &'a [EntryParam<'a>],
) -> TargetParam<'a> {
    TargetParam {
        prototype: &target.prototype,
        id: &target.id,
        tenant_id: &target.tenant_id,
        config: &json.config,
        credentials: &json.credentials,
        delivery_metadata: metadata,
    }
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
            deliver: exports
                .destination
                .then(|| func_index(pre, DESTINATION, "deliver"))
                .transpose()?,
            transform: exports
                .transformer
                .then(|| func_index(pre, TRANSFORMER, "transform"))
                .transpose()?,
        })
    }

    /// Type-check every export against the generated bindings, and the hot calls
    /// against their borrowed signatures, once, on the load-time instance.
    pub fn verify(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        self.plugin.load(&mut *store, instance)?;
        if let Some(d) = &self.destination {
            d.load(&mut *store, instance)?;
        }
        if let Some(t) = &self.transformer {
            t.load(&mut *store, instance)?;
        }
        if let Some(index) = &self.deliver {
            instance.get_typed_func::<DeliverParams<'_>, DeliverResults>(&mut *store, index)?;
        }
        if let Some(index) = &self.transform {
            instance.get_typed_func::<TransformParams<'_>, TransformResults>(&mut *store, index)?;
        }
        Ok(())
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

    #[allow(clippy::too_many_arguments)]
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
            Err(errors) => errors
                .into_iter()
                .take(FIELD_ERRORS_CAP)
                .map(|e| {
                    let mut e = FieldError::from(e);
                    e.field = cap_text(e.field, MESSAGE_CAP);
                    e.message = cap_text(e.message, MESSAGE_CAP);
                    e
                })
                .collect(),
        })
    }

    pub async fn deliver(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        event: &Event,
    ) -> wasmtime::Result<Result<Delivered, DeliveryFailure>> {
        let index = self
            .deliver
            .as_ref()
            .ok_or_else(|| missing("destination"))?;
        let func = instance
            .get_func(&mut *store, index)
            .ok_or_else(|| missing("destination.deliver"))?;
        // SAFETY: `verify` type-checked `deliver` of this component against exactly these
        // parameter and result types at load, and every instance of a component has the
        // same export types.
        let deliver =
            unsafe { TypedFunc::<DeliverParams<'_>, DeliverResults>::new_unchecked(func) };
        let delivery_metadata = entries(target.delivery_metadata.iter());
        let metadata = entries(event.metadata.iter());
        let params = (
            target_param(target, json, &delivery_metadata),
            EventParam {
                id: &event.id,
                tenant_id: &event.tenant_id,
                topic: &event.topic,
                time: event.time_ms,
                metadata: &metadata,
                data: &event.data,
                attempt: event.attempt,
            },
        );
        let (result,) = deliver.call_async(&mut *store, params).await?;
        Ok(match result {
            Ok(ok) => Ok(Delivered {
                status_code: ok.status_code,
                response_body: ok.response_body,
            }),
            Err(destination::DeliveryError::Retry(r)) => Err(DeliveryFailure::Retry {
                message: cap_text(r.failure.message, MESSAGE_CAP),
                status_code: r.failure.status_code,
                response_body: r.failure.response_body,
                retry_after: r.retry_after_ms.map(Duration::from_millis),
            }),
            Err(destination::DeliveryError::Fail(f)) => Err(DeliveryFailure::Fail {
                message: cap_text(f.message, MESSAGE_CAP),
                status_code: f.status_code,
                response_body: f.response_body,
            }),
            Err(destination::DeliveryError::Misconfigured(f)) => {
                Err(DeliveryFailure::Misconfigured {
                    message: cap_text(f.message, MESSAGE_CAP),
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
        json: &TargetJson,
        input: &str,
    ) -> wasmtime::Result<Result<Vec<String>, TransformRejection>> {
        let index = self
            .transform
            .as_ref()
            .ok_or_else(|| missing("transformer"))?;
        let func = instance
            .get_func(&mut *store, index)
            .ok_or_else(|| missing("transformer.transform"))?;
        // SAFETY: as in `deliver`: checked against these types by `verify` at load.
        let transform =
            unsafe { TypedFunc::<TransformParams<'_>, TransformResults>::new_unchecked(func) };
        let delivery_metadata = entries(target.delivery_metadata.iter());
        let params = (target_param(target, json, &delivery_metadata), input);
        let (result,) = transform.call_async(&mut *store, params).await?;
        Ok(match result {
            Ok(outputs) => Ok(outputs),
            Err(transformer::TransformError::InvalidInput(m)) => {
                Err(TransformRejection::InvalidInput(cap_text(m, MESSAGE_CAP)))
            }
            Err(transformer::TransformError::Misconfigured(m)) => {
                Err(TransformRejection::Misconfigured(cap_text(m, MESSAGE_CAP)))
            }
        })
    }
}
