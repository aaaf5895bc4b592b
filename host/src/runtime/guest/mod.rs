//! Calling into a plugin's exports, whatever WIT version it was built against.
//!
//! [`GuestExports`] holds the pre-computed export indices of one component and
//! dispatches each call to the module of its WIT version family (`v0_1` serves 0.1.0 and
//! 0.1.1), which converts host-side types to that version's records and back. A breaking
//! version adds a variant and a module; [`dispatch!`] keeps the per-method matches in one
//! place.

use wasmtime::component::{Instance, InstancePre};
use wasmtime::Store;

use super::call::CallContext;
use super::calls::{Delivered, DeliveryFailure, Event, Target};
use super::manifest::{FieldError, Manifest, PrototypeKind, TestCase};
use super::validate::{ExportSet, LoadError};

mod v0_1;

pub use v0_1::BATCH_MAX;

/// JSON text of a target's config and credentials, made once per prepared target (and
/// hashed by instance reuse).
#[derive(Clone, Debug)]
pub struct TargetJson {
    /// `target.config` as JSON text.
    pub config: String,
    /// `target.credentials` as JSON text.
    pub credentials: String,
}

impl TargetJson {
    /// Serialize `target`'s config and credentials.
    pub fn new(target: &Target) -> Self {
        TargetJson {
            config: target.config.to_string(),
            credentials: target.credentials.to_string(),
        }
    }
}

/// A plugin's own answer to `transform` when it declines the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformRejection {
    /// The input could not be transformed.
    InvalidInput(String),
    /// The configuration is wrong.
    Misconfigured(String),
}

/// Export indices of one component, by WIT version.
#[derive(Clone)]
pub enum GuestExports {
    /// `outrider:plugin@0.1.0` and `@0.1.1`.
    V0_1(v0_1::Exports),
}

/// Run `$body` with `$g` bound to the version-specific exports.
macro_rules! dispatch {
    ($self:expr, $g:ident => $body:expr) => {
        match $self {
            GuestExports::V0_1($g) => $body,
        }
    };
}

impl GuestExports {
    /// Look up the exports of `pre` for the WIT version in `exports`.
    pub fn new(exports: &ExportSet, pre: &InstancePre<CallContext>) -> Result<Self, LoadError> {
        match exports.version.as_str() {
            v if v0_1::VERSIONS.contains(&v) => {
                Ok(GuestExports::V0_1(v0_1::Exports::new(exports, pre)?))
            }
            other => Err(LoadError::UnknownWitVersion {
                version: other.to_owned(),
            }),
        }
    }

    /// Whether the component exports `batch-destination`.
    pub fn batches(&self) -> bool {
        dispatch!(self, g => g.batches())
    }

    /// Type-check the exports once on the load-time instance (the hot calls then skip
    /// per-call type checks).
    pub fn verify(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        dispatch!(self, g => g.verify(store, instance))
    }

    /// `plugin.manifest`.
    pub async fn manifest(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<Manifest> {
        dispatch!(self, g => g.manifest(store, instance).await)
    }

    /// `plugin.self-tests`.
    pub async fn self_tests(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
    ) -> wasmtime::Result<Vec<TestCase>> {
        dispatch!(self, g => g.self_tests(store, instance).await)
    }

    /// `destination.validate` or `transformer.validate`.
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
        dispatch!(self, g => g.validate(store, instance, kind, prototype, config, credentials).await)
    }

    /// `destination.deliver`.
    pub async fn deliver(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        event: &Event,
    ) -> wasmtime::Result<Result<Delivered, DeliveryFailure>> {
        dispatch!(self, g => g.deliver(store, instance, target, json, event).await)
    }

    /// `batch-destination.deliver-batch`: one result per event.
    pub async fn deliver_batch(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        events: &[Event],
    ) -> wasmtime::Result<Vec<Result<Delivered, DeliveryFailure>>> {
        dispatch!(self, g => g.deliver_batch(store, instance, target, json, events).await)
    }

    /// `transformer.transform`; outputs are JSON texts.
    pub async fn transform(
        &self,
        store: &mut Store<CallContext>,
        instance: &Instance,
        target: &Target,
        json: &TargetJson,
        input: &str,
    ) -> wasmtime::Result<Result<Vec<String>, TransformRejection>> {
        dispatch!(self, g => g.transform(store, instance, target, json, input).await)
    }
}
