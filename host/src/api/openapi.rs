//! The OpenAPI 3.1 document of the API, generated from the code: every handler carries a
//! `#[utoipa::path]` annotation and is routed by `utoipa_axum::routes!` from that same
//! annotation, so a route and its operation are registered together. [`document`] adds
//! what every operation shares (security schemes, the error answers of the common
//! extractors and middleware, unique operation ids); `GET /api/v1/openapi.json` serves
//! it without credentials, as Outpost serves its own.

use std::sync::Arc;

use axum::extract::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

/// Security scheme of the admin API key (`OUTRIDER_API_KEY`).
pub const ADMIN_KEY: &str = "admin_key";
/// Security scheme of tenant JWTs (`GET /api/v1/tenants/{tenant_id}/token`).
pub const TENANT_JWT: &str = "tenant_jwt";
/// Security scheme of named API tokens (`POST /api/v1/api-tokens`).
pub const API_TOKEN: &str = "api_token";

/// The parts of the document no handler declares: info, security schemes, tags and the
/// default security (admin credentials; tenant-scoped operations list `tenant_jwt` too,
/// public ones list none).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Outrider API",
        description = "Outrider's HTTP API: Hookdeck Outpost's `/api/v1` (tenants, \
            destinations, publish, events, attempts, metrics) plus plugins, prototypes, \
            configurations, transformers, environment variables, tasks, API tokens, audit \
            trail, schedules, event statistics and retention. Errors answer \
            `{\"status\", \"message\", \"data\"}` with the field at fault named.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    security(("admin_key" = []), ("api_token" = [])),
    components(schemas(super::error::ErrorBody, super::error::FieldProblem)),
    tags(
        (name = "tenants", description = "Outpost tenants and their JWTs"),
        (name = "destinations", description = "Outpost destinations of a tenant"),
        (name = "publish", description = "Publishing events and retrying deliveries"),
        (name = "events", description = "Stored events, their deliveries and topics"),
        (name = "attempts", description = "Delivery attempts"),
        (name = "metrics", description = "Counts over time (Outpost's metrics API)"),
        (name = "event-stats", description = "Event histograms and keys"),
        (name = "plugins", description = "WebAssembly plugin components"),
        (name = "prototypes", description = "Prototypes of the loaded plugins"),
        (name = "configurations", description = "Named, validated prototype instances"),
        (name = "transformers", description = "Running transformers"),
        (name = "environment-variables", description = "Values configurations reference"),
        (name = "tasks", description = "Deliveries as tasks, bulk actions and statistics"),
        (name = "api-tokens", description = "Named, revocable admin tokens"),
        (name = "audit-trail", description = "Who changed what"),
        (name = "schedules", description = "Scheduled and delayed publishes"),
        (name = "retention", description = "How long data is kept"),
        (name = "meta", description = "Health, Prometheus metrics and this document"),
    )
)]
struct Root;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: Option<&str>, description: &str| {
            let mut http = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description));
            if let Some(format) = format {
                http = http.bearer_format(format);
            }
            SecurityScheme::Http(http.build())
        };
        components.add_security_scheme(
            ADMIN_KEY,
            bearer(
                None,
                "The admin API key (`OUTRIDER_API_KEY`): every operation.",
            ),
        );
        components.add_security_scheme(
            TENANT_JWT,
            bearer(
                Some("JWT"),
                "A tenant JWT from `GET /api/v1/tenants/{tenant_id}/token`: the operations \
                 that list it, on its own tenant's resources only (403 for another tenant's).",
            ),
        );
        components.add_security_scheme(
            API_TOKEN,
            bearer(
                Some("JWT"),
                "A named API token from `POST /api/v1/api-tokens`: admin rights, revocable.",
            ),
        );
    }
}

/// The served document: `paths` (the routers' operations, paths as served) under the
/// shared parts, with the common error answers and unique operation ids filled in.
pub fn document(paths: OpenApi) -> OpenApi {
    let mut doc = Root::openapi();
    doc.merge(paths);
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            common_errors(path, method, operation);
            let tag = operation
                .tags
                .as_ref()
                .and_then(|t| t.first().cloned())
                .unwrap_or_default();
            if let Some(id) = &mut operation.operation_id {
                if !tag.is_empty() && !id.starts_with(&format!("{tag}.")) {
                    *id = format!("{tag}.{id}");
                }
            }
        }
    }
    doc
}

/// Every operation of a path item with its method.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("head", &mut item.head),
        ("options", &mut item.options),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

/// Whether an operation needs no credentials (`security: [{}]`).
pub fn is_public(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    })
}

/// The answers every handler can give through the shared parts, added where the handler
/// did not describe them itself: 401/403 from the `Principal` extractor, 404 for paths
/// that name a resource, 400 from query and body checks, 413/415/422 from the `Json`
/// extractor and the audit middleware's body limit, 500 for internal failures (logged,
/// never detailed).
fn common_errors(path: &str, method: &str, operation: &mut Operation) {
    if path.ends_with("/openapi.json") {
        return;
    }
    let public = is_public(operation);
    let has_query = operation.parameters.as_ref().is_some_and(|p| {
        p.iter()
            .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
    });
    let paginated = operation
        .parameters
        .as_ref()
        .is_some_and(|p| p.iter().any(|p| p.name == "dir"));
    let json_body = operation.request_body.as_ref().is_some_and(|body| {
        body.content
            .keys()
            .any(|content_type| content_type == "application/json")
    });
    let mutating = matches!(method, "post" | "put" | "patch" | "delete");
    let mut add = |status: &str, description: &str, when: bool| {
        if when && !operation.responses.responses.contains_key(status) {
            operation
                .responses
                .responses
                .insert(status.to_string(), RefOr::T(error_response(description)));
        }
    };
    add(
        "400",
        "Bad input; the message names the field or parameter",
        has_query || operation.request_body.is_some(),
    );
    add("401", "Missing or invalid credentials", !public);
    add(
        "403",
        "Valid credentials that may not do this (a tenant JWT on an admin operation or on another tenant)",
        !public,
    );
    add(
        "404",
        "The resource named in the path does not exist",
        path.contains('{'),
    );
    add("413", "The request body is too large", mutating);
    add("415", "The body is not `application/json`", json_body);
    add(
        "422",
        "The body is JSON of the wrong shape, or failed validation (`data` lists the fields); \
         or `dir`/`order_by` is not one of its values",
        json_body || paginated,
    );
    add(
        "500",
        "Internal error (logged on the server, never detailed)",
        true,
    );
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// The document as served, rendered once.
#[derive(Clone)]
pub struct Spec(Arc<String>);

impl Spec {
    /// Renders `doc`.
    pub fn new(doc: &OpenApi) -> Spec {
        Spec(Arc::new(
            doc.to_json().expect("the OpenAPI document serialises"),
        ))
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
    )
)]
pub async fn openapi_json(Extension(spec): Extension<Spec>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.0.as_str().to_owned(),
    )
        .into_response()
}
