//! `/api/v1/api-tokens`: named admin API tokens, in the integration-platform reference's
//! shapes. A token is a JWT signed with the server's key material (see
//! [`crate::auth::ApiTokenKeys`]); the store keeps only its id (`jti`) and SHA-256, and
//! every use is checked against the store, so a revoked token stops working at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{rfc3339, Results};
use super::{ApiError, ApiResult, AppState, Json};
use crate::auth::{token_digest, ApiTokenKeys, ApiTokenLookup, LookupFuture, Principal};
use crate::store::{now_ms, ApiTokenRow, Store};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, update, revoke))
        .routes(routes!(revoke_by_post))
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

/// An API token (never the token itself, which is shown once, on creation).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiToken)]
struct TokenView {
    identifier: String,
    name: String,
    description: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// Who created it (`admin`, `api-token:<name>`).
    created_by: String,
    #[schema(format = DateTime)]
    last_used: Option<String>,
    revoked: bool,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

fn token_view(t: &ApiTokenRow) -> TokenView {
    TokenView {
        identifier: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        created_at: rfc3339(t.created_at),
        created_by: t.created_by.clone(),
        last_used: t.last_used_at.map(rfc3339),
        revoked: t.revoked_at.is_some(),
        revoked_at: t.revoked_at.map(rfc3339),
    }
}

/// A token with a word on what was done.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenAnswer {
    /// `ok`, `updated` or `revoked`.
    message: &'static str,
    object: TokenView,
}

/// The token, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    /// Use as `Authorization: Bearer <access_token>`.
    access_token: String,
    identifier: String,
}

/// Create or change a token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiTokenRequest)]
struct TokenRequest {
    /// 1 to 45 characters; required on create.
    #[schema(max_length = 45)]
    name: Option<String>,
    /// At most 64000 characters.
    #[schema(max_length = 64000)]
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

/// Create a named API token (admin rights).
#[utoipa::path(
    post,
    path = "/api-tokens",
    tag = "api-tokens",
    responses((status = 201, description = "Created; the token is in `access_token`", body = CreatedToken))
)]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
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
        Json(CreatedToken {
            access_token: token,
            identifier: id,
        }),
    ))
}

/// Every API token, revoked ones included.
#[utoipa::path(
    get,
    path = "/api-tokens",
    tag = "api-tokens",
    responses((status = 200, description = "The tokens", body = Results<TokenView>))
)]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> ApiResult<Json<Results<TokenView>>> {
    principal.require_admin()?;
    let rows = state.store.list_api_tokens().await?;
    Ok(Json(Results::all(rows.iter().map(token_view).collect())))
}

/// One API token.
#[utoipa::path(
    get,
    path = "/api-tokens/{token_id}",
    tag = "api-tokens",
    responses((status = 200, description = "The token", body = TokenAnswer))
)]
async fn get_one(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenAnswer>> {
    principal.require_admin()?;
    let row = state.store.api_token(&token_id).await?;
    Ok(Json(TokenAnswer {
        message: "ok",
        object: token_view(&row),
    }))
}

/// Rename a token or change its description (as `PATCH`).
#[utoipa::path(
    put,
    path = "/api-tokens/{token_id}",
    tag = "api-tokens",
    responses((status = 200, description = "The token as changed", body = TokenAnswer))
)]
async fn replace(
    principal: Principal,
    state: State<AppState>,
    path: Path<String>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Json<TokenAnswer>> {
    update(principal, state, path, Json(req)).await
}

/// Rename a token or change its description; absent fields keep their value.
#[utoipa::path(
    patch,
    path = "/api-tokens/{token_id}",
    tag = "api-tokens",
    responses((status = 200, description = "The token as changed", body = TokenAnswer))
)]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Json<TokenAnswer>> {
    principal.require_admin()?;
    let current = state.store.api_token(&token_id).await?;
    let name = req.name.unwrap_or(current.name);
    let description = req.description.unwrap_or(current.description);
    check_fields(&name, &description)?;
    let row = state
        .store
        .update_api_token(&token_id, &name, &description)
        .await?;
    Ok(Json(TokenAnswer {
        message: "updated",
        object: token_view(&row),
    }))
}

/// Revoke a token: it stops working at once.
#[utoipa::path(
    delete,
    path = "/api-tokens/{token_id}",
    tag = "api-tokens",
    responses((status = 200, description = "The token, revoked", body = TokenAnswer))
)]
async fn revoke(
    principal: Principal,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenAnswer>> {
    principal.require_admin()?;
    let row = state.store.revoke_api_token(&token_id).await?;
    tracing::info!(token = %row.id, name = %row.name, "API token revoked");
    Ok(Json(TokenAnswer {
        message: "revoked",
        object: token_view(&row),
    }))
}

/// Revoke a token (as `DELETE /api-tokens/{token_id}`).
#[utoipa::path(
    post,
    path = "/api-tokens/{token_id}/revoke",
    tag = "api-tokens",
    responses((status = 200, description = "The token, revoked", body = TokenAnswer))
)]
async fn revoke_by_post(
    principal: Principal,
    state: State<AppState>,
    path: Path<String>,
) -> ApiResult<Json<TokenAnswer>> {
    revoke(principal, state, path).await
}
