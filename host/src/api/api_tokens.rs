//! `/api/v1/api-tokens`: named admin API tokens, in the integration-platform reference's
//! shapes. A token is a JWT signed with the server's key material (see
//! [`crate::auth::ApiTokenKeys`]); the store keeps only its id (`jti`) and SHA-256, and
//! every use is checked against the store, so a revoked token stops working at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::wire::rfc3339;
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::{token_digest, ApiTokenKeys, ApiTokenLookup, LookupFuture, Principal};
use crate::store::{now_ms, ApiTokenRow, Store};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api-tokens", get(list).post(create))
        .route(
            "/api-tokens/{token_id}",
            get(get_one).put(update).patch(update).delete(revoke),
        )
        .route("/api-tokens/{token_id}/revoke", post(revoke))
}

/// Longest token name, as in the reference.
const MAX_NAME: usize = 45;
/// Longest description, as in the reference.
const MAX_DESCRIPTION: usize = 64_000;

/// Resolves presented API tokens against the store, for [`crate::auth::AuthConfig`].
pub struct StoreApiTokens {
    store: Store,
    keys: ApiTokenKeys,
}

impl StoreApiTokens {
    /// A resolver over `store`, checking signatures with `keys`.
    pub fn new(store: Store, keys: ApiTokenKeys) -> Arc<Self> {
        Arc::new(Self { store, keys })
    }
}

impl ApiTokenLookup for StoreApiTokens {
    fn lookup<'a>(&'a self, token: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            // Only tokens this server signed reach the database.
            let id = self.keys.verify(token)?;
            match self.store.use_api_token(&id, &token_digest(token)).await {
                Ok(true) => Some(id),
                Ok(false) => None,
                Err(e) => {
                    tracing::error!(error = %e, "looking up an API token failed");
                    None
                }
            }
        })
    }
}

/// Who is calling, as the audit trail and `createdBy` name them.
pub(super) async fn principal_name(store: &Store, principal: &Principal) -> String {
    match principal {
        Principal::Admin => "admin".into(),
        Principal::Tenant(id) => format!("tenant:{id}"),
        Principal::ApiToken { id } => match store.api_token_name(id).await {
            Ok(Some(name)) => format!("api-token:{name}"),
            _ => format!("api-token:{id}"),
        },
    }
}

fn token_view(t: &ApiTokenRow) -> Value {
    json!({
        "identifier": t.id,
        "name": t.name,
        "description": t.description,
        "createdAt": rfc3339(t.created_at),
        "createdBy": t.created_by,
        "lastUsed": t.last_used_at.map(rfc3339),
        "revoked": t.revoked_at.is_some(),
        "revokedAt": t.revoked_at.map(rfc3339),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    name: Option<String>,
    description: Option<String>,
}

fn check_fields(name: &str, description: &str) -> ApiResult<()> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("name: is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "name: at most {MAX_NAME} characters"
        )));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::bad_request(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require_admin()?;
    let name = req.name.unwrap_or_default();
    let description = req.description.unwrap_or_default();
    check_fields(&name, &description)?;
    let id = format!("tok_{}", ulid::Ulid::new().to_string().to_lowercase());
    let token = state
        .auth
        .api_token_keys
        .issue(&id)
        .map_err(ApiError::internal)?;
    let row = ApiTokenRow {
        id: id.clone(),
        name,
        description,
        created_by: principal_name(&state.store, &principal).await,
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    state
        .store
        .insert_api_token(&row, &token_digest(&token))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "access_token": token, "identifier": id })),
    ))
}

async fn list(principal: Principal, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let rows = state.store.list_api_tokens().await?;
    Ok(Json(json!({
        "metadata": { "totalCount": rows.len() },
        "results": rows.iter().map(token_view).collect::<Vec<_>>(),
    })))
}

async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let row = state.store.api_token(&token_id).await?;
    Ok(Json(json!({ "message": "ok", "object": token_view(&row) })))
}

async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let current = state.store.api_token(&token_id).await?;
    let name = req.name.unwrap_or(current.name);
    let description = req.description.unwrap_or(current.description);
    check_fields(&name, &description)?;
    let row = state
        .store
        .update_api_token(&token_id, &name, &description)
        .await?;
    Ok(Json(
        json!({ "message": "updated", "object": token_view(&row) }),
    ))
}

async fn revoke(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let row = state.store.revoke_api_token(&token_id).await?;
    tracing::info!(token = %row.id, name = %row.name, "API token revoked");
    Ok(Json(
        json!({ "message": "revoked", "object": token_view(&row) }),
    ))
}
