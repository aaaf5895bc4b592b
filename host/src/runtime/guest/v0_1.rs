//! Calls into components built against `outrider:plugin@0.1.x` (0.1.0 and 0.1.1).
//!
//! Functions are looked up under the component's own version (`destination@0.1.0` or
//! `@0.1.1`) and called with the 0.1.1 bindings' types: 0.1.1 only added the
//! `batch-destination` export, so the shared functions' types are the same and the
//! component model's structural type check accepts them for either version.
//!
//! The hot calls (`deliver`, `transform`) skip the generated per-call plumbing: their
//! arguments are lowered from borrowed records ([`TargetParam`], [`EventParam`]) made
//! straight from the host's `Target`/`Event` (no copies into owned WIT records), and
//! their signatures are type-checked once per component at load ([`Exports::verify`])
//! instead of on every call. Rare calls (manifest, self-tests, validate) type-check on
//! each call.

use std::time::Duration;

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, ComponentType, Instance, InstancePre, Lift, Lower,
    TypedFunc,
};
use wasmtime::Store;

use super::{TargetJson, TransformRejection};
use crate::runtime::bindings::v0_1_1::{destination, transformer, types};
use crate::runtime::call::CallContext;
use crate::runtime::calls::{
    cap_text, Delivered, DeliveryFailure, Event, Target, FIELD_ERRORS_CAP, MESSAGE_CAP,
};
use crate::runtime::manifest::{FieldError, Manifest, PrototypeKind, TestCase};
use crate::runtime::validate::{ExportSet, LoadError};

/// The versions these calls serve.
pub const VERSIONS: &[&str] = &["0.1.0", "0.1.1"];

/// Most events the host puts in one `deliver-batch` call.
pub const BATCH_MAX: usize = 128;

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
type BatchParams<'a> = (TargetParam<'a>, &'a [EventParam<'a>]);
type BatchResults = (Vec<Result<destination::DeliveryOk, destination::DeliveryError>>,);
type TransformParams<'a> = (TargetParam<'a>, &'a str);
type ValidateParams<'a> = (&'a str, &'a str, &'a str);
type ValidateResults = (Result<(), Vec<types::FieldError>>,);
type TransformResults = (Result<Vec<String>, transformer::TransformError>,);

/// Export indices, looked up once per component.
#[derive(Clone)]
pub struct Exports {
    manifest: ComponentExportIndex,
    self_tests: ComponentExportIndex,
    validate_destination: Option<ComponentExportIndex>,
    validate_transformer: Option<ComponentExportIndex>,
    deliver: Option<ComponentExportIndex>,
    deliver_batch: Option<ComponentExportIndex>,
    transform: Option<ComponentExportIndex>,
}

fn missing(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the plugin does not export `{what}`"))
}

/// The hot export at `index` (`what` names it in the error if the plugin lacks it), typed
/// without the per-call type check.
///
/// # Safety
/// [`Exports::verify`] must have type-checked this export against `Params` and `Results`
/// at load; every instance of a component has the same export types.
unsafe fn verified_func<Params, Results>(
    store: &mut Store<CallContext>,
    instance: &Instance,
    index: Option<&ComponentExportIndex>,
    what: &str,
) -> wasmtime::Result<TypedFunc<Params, Results>>
where
    Params: ComponentNamedList + Lower,
    Results: ComponentNamedList + Lift,
{
    let func = index
        .and_then(|index| instance.get_func(&mut *store, index))
        .ok_or_else(|| missing(what))?;
    // SAFETY: the caller's promise: checked against these types by `verify`.
    Ok(unsafe { TypedFunc::new_unchecked(func) })
}

/// The index of `func` in the exported interface `iface` of `version`.
fn func_index(
    pre: &InstancePre<CallContext>,
    version: &str,
    iface: &str,
    func: &str,
) -> Result<ComponentExportIndex, LoadError> {
    let iface = format!("outrider:plugin/{iface}@{version}");
    let iface = iface.as_str();
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
        let version = exports.version.as_str();
        let index = |wanted: bool, iface: &str, func: &str| {
            wanted
                .then(|| func_index(pre, version, iface, func))
                .transpose()
        };
        Ok(Exports {
            manifest: func_index(pre, version, "plugin", "manifest")?,
            self_tests: func_index(pre, version, "plugin", "self-tests")?,
            validate_destination: index(exports.destination, "destination", "validate")?,
            validate_transformer: index(exports.transformer, "transformer", "validate")?,
            deliver: index(exports.destination, "destination", "deliver")?,
            deliver_batch: index(exports.batch, "batch-destination", "deliver-batch")?,
            transform: index(exports.transformer, "transformer", "transform")?,
        })
    }

    /// Whether the component takes deliveries in batches.
    pub fn batches(&self) -> bool {
        self.deliver_batch.is_some()
    }

    /// Type-check every export against the types the calls use, once, on the load-time
    /// instance.
    pub fn verify(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        instance.get_typed_func::<(), (types::Manifest,)>(&mut *store, &self.manifest)?;
        instance.get_typed_func::<(), (Vec<types::TestCase>,)>(&mut *store, &self.self_tests)?;
        for index in [&self.validate_destination, &self.validate_transformer]
            .into_iter()
            .flatten()
        {
            instance.get_typed_func::<ValidateParams<'_>, ValidateResults>(&mut *store, index)?;
        }
        if let Some(index) = &self.deliver {
            instance.get_typed_func::<DeliverParams<'_>, DeliverResults>(&mut *store, index)?;
        }
        if let Some(index) = &self.deliver_batch {
            instance.get_typed_func::<BatchParams<'_>, BatchResults>(&mut *store, index)?;
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
        let func =
            instance.get_typed_func::<(), (types::Manifest,)>(&mut *store, &self.manifest)?;
        let (manifest,) = func.call_async(&mut *store, ()).await?;
        Ok(manifest.into())
    }

    pub async fn self_tests(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<Vec<TestCase>> {
        let func = instance
            .get_typed_func::<(), (Vec<types::TestCase>,)>(&mut *store, &self.self_tests)?;
        let (tests,) = func.call_async(&mut *store, ()).await?;
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
        let index = match kind {
            PrototypeKind::Destination => self
                .validate_destination
                .as_ref()
                .ok_or_else(|| missing("destination"))?,
            PrototypeKind::Transformer => self
                .validate_transformer
                .as_ref()
                .ok_or_else(|| missing("transformer"))?,
        };
        let func =
            instance.get_typed_func::<ValidateParams<'_>, ValidateResults>(&mut *store, index)?;
        let (result,) = func
            .call_async(&mut *store, (prototype, &config, &credentials))
            .await?;
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
        // SAFETY: `verify` type-checked `deliver` against these types at load.
        let deliver = unsafe {
            verified_func::<DeliverParams<'_>, DeliverResults>(
                store,
                instance,
                self.deliver.as_ref(),
                "destination.deliver",
            )?
        };
        let delivery_metadata = entries(target.delivery_metadata.iter());
        let metadata = entries(event.metadata.iter());
        let params = (
            target_param(target, json, &delivery_metadata),
            event_param(event, &metadata),
        );
        let (result,) = deliver.call_async(&mut *store, params).await?;
        Ok(delivery_result(result))
    }

    /// `batch-destination.deliver-batch`: one result per event, or a trap if the plugin
    /// answered with another number of results.
    pub async fn deliver_batch(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        events: &[Event],
    ) -> wasmtime::Result<Vec<Result<Delivered, DeliveryFailure>>> {
        // SAFETY: `verify` type-checked `deliver-batch` against these types at load.
        let deliver_batch = unsafe {
            verified_func::<BatchParams<'_>, BatchResults>(
                store,
                instance,
                self.deliver_batch.as_ref(),
                "batch-destination.deliver-batch",
            )?
        };
        let delivery_metadata = entries(target.delivery_metadata.iter());
        let metadata: Vec<Vec<EntryParam<'_>>> =
            events.iter().map(|e| entries(e.metadata.iter())).collect();
        let params: Vec<EventParam<'_>> = events
            .iter()
            .zip(&metadata)
            .map(|(event, metadata)| event_param(event, metadata))
            .collect();
        let (results,) = deliver_batch
            .call_async(
                &mut *store,
                (target_param(target, json, &delivery_metadata), &params),
            )
            .await?;
        if results.len() != events.len() {
            return Err(wasmtime::Error::msg(format!(
                "deliver-batch returned {} results for {} events",
                results.len(),
                events.len()
            )));
        }
        Ok(results.into_iter().map(delivery_result).collect())
    }

    pub async fn transform(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        input: &str,
    ) -> wasmtime::Result<Result<Vec<String>, TransformRejection>> {
        // SAFETY: `verify` type-checked `transform` against these types at load.
        let transform = unsafe {
            verified_func::<TransformParams<'_>, TransformResults>(
                store,
                instance,
                self.transform.as_ref(),
                "transformer.transform",
            )?
        };
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

/// The borrowed `event` record.
fn event_param<'a>(event: &'a Event, metadata: &'a [EntryParam<'a>]) -> EventParam<'a> {
    EventParam {
        id: &event.id,
        tenant_id: &event.tenant_id,
        topic: &event.topic,
        time: event.time_ms,
        metadata,
        data: &event.data,
        attempt: event.attempt,
    }
}

/// A plugin's answer for one event, in host terms.
fn delivery_result(
    result: Result<destination::DeliveryOk, destination::DeliveryError>,
) -> Result<Delivered, DeliveryFailure> {
    match result {
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
        Err(destination::DeliveryError::Misconfigured(f)) => Err(DeliveryFailure::Misconfigured {
            message: cap_text(f.message, MESSAGE_CAP),
            status_code: f.status_code,
            response_body: f.response_body,
        }),
    }
}
