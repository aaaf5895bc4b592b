//! Named API tokens: created, used with their scopes, and revoked.

use reqwest::Method;
use serde_json::json;

use super::call_as;
use crate::harness::{call, TestServer, ADMIN_KEY};

#[tokio::test]
async fn api_tokens_are_created_used_and_revoked() {
    let server = TestServer::builder().start().await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "ci", "description": "deploy pipeline" })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["access_token"].as_str().unwrap().to_string();
    let id = created["identifier"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    // It acts as admin.
    let (status, body) = call_as(
        &server,
        &token,
        Method::PUT,
        "/api/v1/tenants/tok-t",
        Some(json!({})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, _) = call_as(&server, &token, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 200);

    let listed = server.get_json("/api/v1/api-tokens").await;
    assert_eq!(listed["metadata"]["totalCount"], 1);
    let entry = &listed["results"][0];
    assert_eq!(entry["identifier"], id.as_str());
    assert_eq!(entry["name"], "ci");
    assert_eq!(entry["description"], "deploy pipeline");
    assert_eq!(entry["createdBy"], "admin");
    assert!(entry["lastUsed"].is_string(), "{entry}");
    assert!(
        !listed.to_string().contains(&token),
        "the token is never shown again"
    );

    // Renaming keeps it working; revoking stops it at once; the admin key still works.
    let (status, body) = call(
        &server,
        Method::PATCH,
        &format!("/api/v1/api-tokens/{id}"),
        Some(json!({ "name": "ci-2" })),
    )
    .await;
    assert_eq!(
        (status, body["object"]["name"].clone()),
        (200, json!("ci-2"))
    );
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("/api/v1/api-tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"]["revoked"], true);
    let (status, _) = call_as(&server, &token, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 401);
    let (status, _) = call_as(&server, ADMIN_KEY, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 200);

    // A token signed by another server's key is refused.
    let other = TestServer::builder()
        .env("OUTRIDER_JWT_SECRET", "another-secret-0123456789")
        .start()
        .await;
    let (_, foreign) = call(
        &other,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "x" })),
    )
    .await;
    let foreign = foreign["access_token"].as_str().unwrap();
    let (status, _) = call_as(&server, foreign, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(status, 401);

    // Bad input names the field; tenants may not mint admin tokens.
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "" })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().starts_with("name:"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "x".repeat(46) })),
    )
    .await;
    assert_eq!(status, 400);
    let tenant_token = server.get_json("/api/v1/tenants/tok-t/token").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call_as(
        &server,
        &tenant_token,
        Method::POST,
        "/api/v1/api-tokens",
        Some(json!({ "name": "t" })),
    )
    .await;
    assert_eq!(status, 403);
}
