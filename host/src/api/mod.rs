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
pub mod merge_patch;
mod metrics;
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

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::auth::AuthConfig;
use crate::config::ServeConfig;
use crate::crypto::Keyring;
use crate::delivery::DeliveryEngine;
use crate::runtime::{PluginRegistry, PluginRuntime};
use crate::store::Store;

pub use error::{ApiError, FieldProblem, Json, Query};

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
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

/// The whole application: `/healthz` and `/api/v1/...`.
pub fn app(state: AppState) -> Router {
    let json_limit = (state.config.max_body_kb as usize) * 1024;
    let api = Router::new()
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
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(axum::middleware::from_fn_with_state(
            audit_writer::AuditRecorder::start(state.store.clone(), json_limit),
            audit_recorder::record,
        ));
    Router::new()
        .merge(health::router())
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
