//! The HTTP API: one router per resource, merged under `/api/v1`.

pub mod api_tokens;
mod attempts;
pub mod audit_recorder;
mod audit_trail;
pub mod audit_writer;
mod configurations;
mod destination_view;
mod destinations;
mod duration;
mod environment;
pub mod error;
mod event_stats;
mod events;
mod health;
mod input;
pub mod merge_patch;
mod metrics;
pub mod openapi;
pub mod pagination;
mod plugins;
mod prototype_tests;
mod prototypes;
mod publish;
mod retention;
mod schedules;
mod secrets;
mod tasks;
mod tenants;
mod transformers;
pub(crate) mod wire;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, FromRef};
use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthConfig;
use crate::config::ServeConfig;
use crate::crypto::Keyring;
use crate::delivery::DeliveryEngine;
use crate::runtime::{PluginRegistry, PluginRuntime};
use crate::store::Store;

pub use error::{ApiError, FieldProblem, Json, Query};

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Shared state of every handler: one reference count, since axum clones the state for
/// every request and extractor (a clone per field was a dozen contended atomic updates
/// per request, ~2% of the server's CPU at saturation).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Share `parts` with every handler.
    pub fn new(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppParts {
    /// The database.
    pub store: Store,
    /// Compiles and runs plugin components.
    pub runtime: Arc<PluginRuntime>,
    /// Loaded plugins and their prototypes.
    pub registry: Arc<PluginRegistry>,
    /// Who may call what.
    pub auth: Arc<AuthConfig>,
    /// Encrypts secrets at rest.
    pub keyring: Arc<Keyring>,
    /// The server's configuration.
    pub config: Arc<ServeConfig>,
    /// Publisher and delivery workers.
    pub delivery: DeliveryEngine,
}

impl FromRef<AppState> for Arc<AuthConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Every route of the application with its OpenAPI operation, registered together:
/// `/healthz`, `/metrics` and `/api/v1/...` (the layers of the API included).
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let json_limit = (state.config.max_body_kb as usize) * 1024;
    let api = OpenApiRouter::new()
        .merge(plugins::router(&state.config))
        .merge(prototypes::router())
        .merge(prototype_tests::router())
        .merge(configurations::router())
        .merge(transformers::router())
        .merge(environment::router())
        .merge(tenants::router())
        .merge(destinations::router())
        .merge(publish::router())
        .merge(events::router())
        .merge(attempts::router())
        .merge(metrics::router())
        .merge(tasks::router())
        .merge(api_tokens::router())
        .merge(audit_trail::router())
        .merge(schedules::router())
        .merge(event_stats::router())
        .merge(retention::router())
        .routes(routes!(openapi::openapi_json))
        .route_layer(axum::middleware::from_fn(input::reject_nul_parameters))
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(axum::middleware::from_fn_with_state(
            audit_writer::AuditRecorder::start(state.store.clone(), json_limit),
            audit_recorder::record,
        ));
    OpenApiRouter::new()
        .merge(health::router())
        .nest("/api/v1", api)
}

/// The whole application: `/healthz`, `/metrics` and `/api/v1/...`, with the OpenAPI
/// document of exactly these routes at `/api/v1/openapi.json`.
pub fn app(state: AppState) -> Router {
    let (router, paths) = routes(&state).split_for_parts();
    let spec = openapi::Spec::new(&openapi::document(paths));
    router
        .fallback(|| async { ApiError::not_found("route") })
        .layer(Extension(spec))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
