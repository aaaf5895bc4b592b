//! Write Outrider plugins in Rust.
//!
//! An Outrider plugin is a WebAssembly component that exports a manifest and one or both
//! of the `destination` and `transformer` interfaces of the `outrider:plugin` WIT
//! package. With this crate a plugin is a type implementing [`Plugin`] plus
//! [`Destination`] and/or [`Transformer`], exported with one macro:
//! [`export_destination!`], [`export_transformer!`] or [`export_plugin!`] (both kinds).
//! The generated bindings stay inside the SDK.
//!
//! What the host grants, as safe functions: [`http::send`], [`log`] (`log::info!`, ...),
//! [`state`] (small per-target key/value), [`tcp::connect`], [`time::now`] and
//! [`random`]. Configuration arrives as typed [`Config`] and [`Credentials`] views whose
//! errors name the field (`config.url is required`); failures map onto
//! [`DeliveryError`]'s retry / fail / misconfigured, with
//! [`DeliveryError::from_response`] honouring `Retry-After`.
//!
//! # Example
//!
//! A complete destination: it declares one prototype with a required `url` field (and
//! may reach only the host in that URL), checks the configuration, and POSTs each event.
//! The same crate compiles natively, so the logic is unit-tested with `cargo test`, as
//! the end of this example does.
//!
//! ```
//! use outrider_sdk::http::{self, Request};
//! use outrider_sdk::prelude::*;
//!
//! struct Ping;
//!
//! impl Plugin for Ping {
//!     fn manifest() -> Manifest {
//!         Manifest::new("ping", "0.1.0").prototype(
//!             Prototype::destination("ping")
//!                 .label("Ping")
//!                 .config_field(Field::text("url").label("URL").required())
//!                 .url_field("url"),
//!         )
//!     }
//! }
//!
//! impl Destination for Ping {
//!     fn validate(
//!         _prototype: &str,
//!         config: &Config,
//!         _credentials: &Credentials,
//!     ) -> Result<(), Vec<FieldError>> {
//!         let url = config.str("url").map_err(|e| vec![e])?;
//!         if !url.starts_with("http://") && !url.starts_with("https://") {
//!             return Err(vec![FieldError::new("config.url", "must be an http(s) URL")]);
//!         }
//!         Ok(())
//!     }
//!
//!     fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
//!         let request = Request::post(target.config.str("url")?)
//!             .header("content-type", "application/json")
//!             .body(event.data.as_bytes());
//!         let response = http::send(request)?;
//!         if response.is_success() {
//!             Ok(Delivered::from_response(&response))
//!         } else {
//!             Err(DeliveryError::from_response(&response))
//!         }
//!     }
//! }
//!
//! export_destination!(Ping);
//!
//! # fn main() {
//! // What `validate` reports names the field; the API answers 422 with it.
//! let config = Config::from_json(r#"{"url": "ftp://example.com"}"#).unwrap();
//! let errors = Ping::validate("ping", &config, &Credentials::default()).unwrap_err();
//! assert_eq!(errors[0].field, "config.url");
//!
//! // Natively the host's `http` is a stand-in that fails: a transport error, which the
//! // host would retry.
//! let target = Target::new("ping")
//!     .with_config(Config::from_json(r#"{"url": "https://example.com/hook"}"#).unwrap());
//! let event = Event {
//!     id: "evt_1".into(),
//!     tenant_id: "acme".into(),
//!     topic: "user.created".into(),
//!     time_ms: 0,
//!     metadata: Vec::new(),
//!     data: r#"{"hello":"world"}"#.into(),
//!     attempt: 1,
//! };
//! let error = Ping::deliver(&target, &event).unwrap_err();
//! assert!(matches!(error, DeliveryError::Retry { .. }), "{error}");
//! # }
//! ```
//!
//! Plugins in JavaScript and Python, the WIT world, limits, error classification and
//! versioning rules: `docs/plugins.md` in the Outrider repository. Scaffold, build and
//! try a plugin with `outrider plugin new | build | test`.
//!
//! Build with `cargo xtask plugins` (crate type `cdylib`, target
//! `wasm32-unknown-unknown`, wrapped into a component by `wit-component`). Natively the
//! crate compiles too, so plugin logic can be unit-tested with `cargo test`: host
//! functions then have stand-ins (`http` and `tcp` fail, `log` prints to stderr, `state`
//! is an in-memory map, `time` and `random` use the system).

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
mod destination;
mod export;
mod fields;
pub mod http;
pub mod log;
mod manifest;
pub mod random;
pub mod state;
mod target;
pub mod tcp;
pub mod time;
mod transformer;

pub use destination::{
    cap_body, BatchDestination, Delivered, DeliveryError, Destination, Event, Failure,
    RESPONSE_BODY_CAP,
};
pub use fields::{Config, Credentials, FieldError, Record};
pub use manifest::{
    Field, FieldType, Manifest, NetworkAccess, Prototype, PrototypeKind, SelectOption, SetupLink,
    TestCase,
};
pub use serde_json;
pub use target::Target;
pub use transformer::{TransformError, Transformer};

/// A plugin: its manifest and self-tests. Implement [`Destination`] and/or
/// [`Transformer`] as well, then export it.
pub trait Plugin {
    /// The manifest; must be deterministic and use no host capability.
    fn manifest() -> Manifest;

    /// Self-tests run by `POST /api/v1/prototypes/test`.
    fn self_tests() -> Vec<TestCase> {
        Vec::new()
    }
}

/// The names most plugins need: `use outrider_sdk::prelude::*;`.
pub mod prelude {
    pub use serde_json::{json, Value};

    pub use crate::{
        export_batch_destination, export_destination, export_plugin, export_transformer,
        BatchDestination, Config, Credentials, Delivered, DeliveryError, Destination, Event, Field,
        FieldError, Manifest, Plugin, Prototype, Record, Target, TestCase, TransformError,
        Transformer,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::{
        BATCH_DESTINATION_WORLD, BATCH_DESTINATION_WORLD_LEN, DESTINATION_WORLD,
        DESTINATION_WORLD_LEN, FULL_WORLD, FULL_WORLD_LEN, TRANSFORMER_WORLD,
        TRANSFORMER_WORLD_LEN,
    };
    pub use crate::export::Export;

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __outrider_plugin_cabi {
        ($ty:ident) => {
            $crate::bindings::exports::outrider::plugin::plugin::__export_outrider_plugin_plugin_0_1_1_cabi!(
                $ty with_types_in $crate::bindings::exports::outrider::plugin::plugin
            );
        };
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __outrider_destination_cabi {
        ($ty:ident) => {
            $crate::bindings::exports::outrider::plugin::destination::__export_outrider_plugin_destination_0_1_1_cabi!(
                $ty with_types_in $crate::bindings::exports::outrider::plugin::destination
            );
        };
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __outrider_transformer_cabi {
        ($ty:ident) => {
            $crate::bindings::exports::outrider::plugin::transformer::__export_outrider_plugin_transformer_0_1_1_cabi!(
                $ty with_types_in $crate::bindings::exports::outrider::plugin::transformer
            );
        };
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __outrider_batch_destination_cabi {
        ($ty:ident) => {
            $crate::bindings::exports::outrider::plugin::batch_destination::__export_outrider_plugin_batch_destination_0_1_1_cabi!(
                $ty with_types_in $crate::bindings::exports::outrider::plugin::batch_destination
            );
        };
    }

    pub use crate::{
        __outrider_batch_destination_cabi as batch_destination_cabi,
        __outrider_destination_cabi as destination_cabi, __outrider_plugin_cabi as plugin_cabi,
        __outrider_transformer_cabi as transformer_cabi,
    };
}
