//! Glue between the generated bindings and the SDK's traits, and the export macros.
//!
//! [`Export<T>`] implements the generated `Guest` traits for any `T` implementing the
//! SDK traits, converting records on the way in and out. The macros expand, in the
//! plugin crate, the generated per-interface export macros for `Export<T>` and embed
//! the component type of the world the plugin implements.

use crate::bindings::exports::outrider::plugin::{
    batch_destination as wit_batch, destination as wit_destination, plugin as wit_plugin,
    transformer as wit_transformer,
};
use crate::bindings::types as wit;
use crate::manifest::{FieldType, Manifest, PrototypeKind, TestCase};
use crate::{
    BatchDestination, Config, Credentials, Delivered, DeliveryError, Destination, Event,
    FieldError, Plugin, Record, Target, TransformError, Transformer,
};
use std::marker::PhantomData;

/// Implements the generated export traits for a plugin type `T`.
pub struct Export<T>(PhantomData<T>);

/// Logs panics through the host before the `abort` trap, once per instance.
fn init() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::log::log(
                    crate::log::Level::Error,
                    &format!("plugin panicked: {info}"),
                    &[],
                );
            }))
        });
    }
}

impl<T: Plugin> wit_plugin::Guest for Export<T> {
    fn manifest() -> wit::Manifest {
        init();
        manifest_to_wit(T::manifest())
    }

    fn self_tests() -> Vec<wit::TestCase> {
        init();
        T::self_tests().into_iter().map(test_case_to_wit).collect()
    }
}

impl<T: Destination> wit_destination::Guest for Export<T> {
    fn validate(
        prototype: String,
        config: String,
        credentials: String,
    ) -> Result<(), Vec<wit::FieldError>> {
        init();
        validate::<T>(
            &prototype,
            PrototypeKind::Destination,
            &config,
            &credentials,
            T::validate,
        )
    }

    fn deliver(
        target: wit::Target,
        event: wit_destination::Event,
    ) -> Result<wit_destination::DeliveryOk, wit_destination::DeliveryError> {
        init();
        let result = target_from_wit::<T>(target, PrototypeKind::Destination)
            .map_err(DeliveryError::from)
            .and_then(|target| T::deliver(&target, &event_from_wit(event)));
        result.map(delivered_to_wit).map_err(delivery_error_to_wit)
    }
}

impl<T: BatchDestination> wit_batch::Guest for Export<T> {
    fn deliver_batch(
        target: wit::Target,
        events: Vec<wit_destination::Event>,
    ) -> Vec<Result<wit_destination::DeliveryOk, wit_destination::DeliveryError>> {
        init();
        let count = events.len();
        let results = match target_from_wit::<T>(target, PrototypeKind::Destination) {
            Ok(target) => {
                let events: Vec<Event> = events.into_iter().map(event_from_wit).collect();
                T::deliver_batch(&target, &events)
            }
            Err(e) => {
                let error = DeliveryError::from(e);
                (0..count).map(|_| Err(error.clone())).collect()
            }
        };
        results
            .into_iter()
            .map(|r| r.map(delivered_to_wit).map_err(delivery_error_to_wit))
            .collect()
    }
}

impl<T: Transformer> wit_transformer::Guest for Export<T> {
    fn validate(
        prototype: String,
        config: String,
        credentials: String,
    ) -> Result<(), Vec<wit::FieldError>> {
        init();
        validate::<T>(
            &prototype,
            PrototypeKind::Transformer,
            &config,
            &credentials,
            T::validate,
        )
    }

    fn transform(
        target: wit::Target,
        input: String,
    ) -> Result<Vec<String>, wit_transformer::TransformError> {
        init();
        let result = target_from_wit::<T>(target, PrototypeKind::Transformer)
            .map_err(TransformError::from)
            .and_then(|target| {
                let input = serde_json::from_str(&input).map_err(|e| {
                    TransformError::invalid_input(format!("input is not valid JSON: {e}"))
                })?;
                T::transform(&target, input)
            });
        match result {
            Ok(outputs) => Ok(outputs.iter().map(|v| v.to_string()).collect()),
            Err(TransformError::InvalidInput(m)) => {
                Err(wit_transformer::TransformError::InvalidInput(m))
            }
            Err(TransformError::Misconfigured(m)) => {
                Err(wit_transformer::TransformError::Misconfigured(m))
            }
        }
    }
}

type ValidateFn = fn(&str, &Config, &Credentials) -> Result<(), Vec<FieldError>>;

fn validate<T: Plugin>(
    prototype: &str,
    kind: PrototypeKind,
    config: &str,
    credentials: &str,
    check: ValidateFn,
) -> Result<(), Vec<wit::FieldError>> {
    let mut errors = Vec::new();
    check_prototype::<T>(prototype, kind).record(&mut errors);
    let config = Config::from_json(config).record(&mut errors);
    let credentials = Credentials::from_json(credentials).record(&mut errors);
    let result = match (config, credentials) {
        (Some(config), Some(credentials)) if errors.is_empty() => {
            check(prototype, &config, &credentials)
        }
        _ => Err(errors),
    };
    result.map_err(|errors| errors.into_iter().map(field_error_to_wit).collect())
}

/// Checks that `prototype` is one of `T`'s prototypes of `kind`.
fn check_prototype<T: Plugin>(prototype: &str, kind: PrototypeKind) -> Result<(), FieldError> {
    let known = T::manifest()
        .prototypes
        .iter()
        .any(|p| p.id == prototype && p.kind == kind);
    let kind = match kind {
        PrototypeKind::Destination => "destination",
        PrototypeKind::Transformer => "transformer",
    };
    if known {
        Ok(())
    } else {
        Err(FieldError::new(
            "prototype",
            format!("`{prototype}` is not a {kind} prototype of this plugin"),
        ))
    }
}

fn target_from_wit<T: Plugin>(t: wit::Target, kind: PrototypeKind) -> Result<Target, FieldError> {
    check_prototype::<T>(&t.prototype, kind)?;
    Ok(Target {
        config: Config::from_json(&t.config)?,
        credentials: Credentials::from_json(&t.credentials)?,
        prototype: t.prototype,
        id: t.id,
        tenant_id: t.tenant_id,
        delivery_metadata: entries(t.delivery_metadata),
    })
}

fn entries(entries: Vec<wit::Entry>) -> Vec<(String, String)> {
    entries.into_iter().map(|e| (e.key, e.value)).collect()
}

fn event_from_wit(e: wit_destination::Event) -> Event {
    Event {
        id: e.id,
        tenant_id: e.tenant_id,
        topic: e.topic,
        time_ms: e.time,
        metadata: entries(e.metadata),
        data: e.data,
        attempt: e.attempt,
    }
}

fn delivered_to_wit(d: Delivered) -> wit_destination::DeliveryOk {
    wit_destination::DeliveryOk {
        status_code: d.status_code,
        response_body: d.response_body,
    }
}

fn delivery_error_to_wit(e: DeliveryError) -> wit_destination::DeliveryError {
    let failure = |f: crate::destination::Failure| wit_destination::Failure {
        message: f.message,
        status_code: f.status_code,
        response_body: f.response_body,
    };
    match e {
        DeliveryError::Retry {
            failure: f,
            retry_after_ms,
        } => wit_destination::DeliveryError::Retry(wit_destination::RetryFailure {
            failure: failure(f),
            retry_after_ms,
        }),
        DeliveryError::Fail(f) => wit_destination::DeliveryError::Fail(failure(f)),
        DeliveryError::Misconfigured(f) => {
            wit_destination::DeliveryError::Misconfigured(failure(f))
        }
    }
}

fn field_error_to_wit(e: FieldError) -> wit::FieldError {
    wit::FieldError {
        field: e.field,
        message: e.message,
    }
}

fn manifest_to_wit(m: Manifest) -> wit::Manifest {
    wit::Manifest {
        name: m.name,
        version: m.version,
        description: m.description,
        prototypes: m
            .prototypes
            .into_iter()
            .map(|p| wit::Prototype {
                id: p.id,
                kind: match p.kind {
                    PrototypeKind::Destination => wit::PrototypeKind::Destination,
                    PrototypeKind::Transformer => wit::PrototypeKind::Transformer,
                },
                label: p.label,
                description: p.description,
                icon: p.icon,
                instructions: p.instructions,
                setup_link: p.setup_link.map(|l| wit::SetupLink {
                    href: l.href,
                    cta: l.cta,
                }),
                config_fields: p.config_fields.into_iter().map(field_to_wit).collect(),
                credential_fields: p.credential_fields.into_iter().map(field_to_wit).collect(),
                network: wit::NetworkAccess {
                    hosts: p.network.hosts,
                    url_fields: p.network.url_fields,
                    tcp: p.network.tcp,
                },
            })
            .collect(),
    }
}

fn field_to_wit(f: crate::manifest::Field) -> wit::Field {
    wit::Field {
        key: f.key,
        type_: match f.field_type {
            FieldType::Text => wit::FieldType::Text,
            FieldType::Checkbox => wit::FieldType::Checkbox,
            FieldType::Select => wit::FieldType::Select,
            FieldType::KeyValueMap => wit::FieldType::KeyValueMap,
            FieldType::Number => wit::FieldType::Number,
            FieldType::Json => wit::FieldType::Json,
        },
        label: f.label,
        description: f.description,
        required: f.required,
        sensitive: f.sensitive,
        default: f.default,
        min_length: f.min_length,
        max_length: f.max_length,
        pattern: f.pattern,
        options: f
            .options
            .into_iter()
            .map(|o| wit::SelectOption {
                value: o.value,
                label: o.label,
            })
            .collect(),
        generate: f
            .generate
            .map(|(prefix, bytes)| wit::SecretGenerator { prefix, bytes }),
    }
}

fn test_case_to_wit(t: TestCase) -> wit::TestCase {
    wit::TestCase {
        name: t.name,
        prototype: t.prototype,
        config: t.config.to_string(),
        credentials: t.credentials.to_string(),
        input: t.input.map(|v| v.to_string()),
        expected: t.expected.map(|v| serde_json::Value::Array(v).to_string()),
        expect_error: t.expect_error,
    }
}

/// Exports a type implementing [`Destination`](crate::Destination) as a
/// `destination-plugin` component.
///
/// Natively (unit tests) it only checks the trait bounds.
#[macro_export]
macro_rules! export_destination {
    ($plugin:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __outrider_check<T: $crate::Destination>() {}
            #[allow(dead_code)]
            type __OutriderExport = $crate::__private::Export<$plugin>;
            #[allow(dead_code)]
            const __OUTRIDER_CHECK: fn() = __outrider_check::<$plugin>;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::plugin_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::destination_cabi!(__OutriderExport);

            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "component-type:outrider-sdk:destination-plugin")]
            #[doc(hidden)]
            pub static __OUTRIDER_COMPONENT_TYPE: [u8; $crate::__private::DESTINATION_WORLD_LEN] =
                $crate::__private::DESTINATION_WORLD;
        };
    };
}

/// Exports a type implementing [`Transformer`](crate::Transformer) as a
/// `transformer-plugin` component.
///
/// Natively (unit tests) it only checks the trait bounds.
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __outrider_check<T: $crate::Transformer>() {}
            #[allow(dead_code)]
            type __OutriderExport = $crate::__private::Export<$plugin>;
            #[allow(dead_code)]
            const __OUTRIDER_CHECK: fn() = __outrider_check::<$plugin>;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::plugin_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::transformer_cabi!(__OutriderExport);

            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "component-type:outrider-sdk:transformer-plugin")]
            #[doc(hidden)]
            pub static __OUTRIDER_COMPONENT_TYPE: [u8; $crate::__private::TRANSFORMER_WORLD_LEN] =
                $crate::__private::TRANSFORMER_WORLD;
        };
    };
}

/// Exports a type implementing [`BatchDestination`](crate::BatchDestination) as a
/// `batch-destination-plugin` component (`destination` and `batch-destination`).
///
/// Natively (unit tests) it only checks the trait bounds.
#[macro_export]
macro_rules! export_batch_destination {
    ($plugin:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __outrider_check<T: $crate::BatchDestination>() {}
            #[allow(dead_code)]
            type __OutriderExport = $crate::__private::Export<$plugin>;
            #[allow(dead_code)]
            const __OUTRIDER_CHECK: fn() = __outrider_check::<$plugin>;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::plugin_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::destination_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::batch_destination_cabi!(__OutriderExport);

            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "component-type:outrider-sdk:batch-destination-plugin")]
            #[doc(hidden)]
            pub static __OUTRIDER_COMPONENT_TYPE: [u8;
                $crate::__private::BATCH_DESTINATION_WORLD_LEN] =
                $crate::__private::BATCH_DESTINATION_WORLD;
        };
    };
}

/// Exports a type implementing both [`Destination`](crate::Destination) and
/// [`Transformer`](crate::Transformer) as a `full-plugin` component.
///
/// Natively (unit tests) it only checks the trait bounds.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __outrider_check<T: $crate::Destination + $crate::Transformer>() {}
            #[allow(dead_code)]
            type __OutriderExport = $crate::__private::Export<$plugin>;
            #[allow(dead_code)]
            const __OUTRIDER_CHECK: fn() = __outrider_check::<$plugin>;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::plugin_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::destination_cabi!(__OutriderExport);
            #[cfg(target_arch = "wasm32")]
            $crate::__private::transformer_cabi!(__OutriderExport);

            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "component-type:outrider-sdk:full-plugin")]
            #[doc(hidden)]
            pub static __OUTRIDER_COMPONENT_TYPE: [u8; $crate::__private::FULL_WORLD_LEN] =
                $crate::__private::FULL_WORLD;
        };
    };
}
