//! Secrets: credentials never appear in plain text in the database or the logs,
//! `outrider keys rotate` re-encrypts them under a new key, and a webhook secret rotates
//! with a grace period during which both secrets sign.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{eventually, json_body, TestReceiver, TestServer, ENCRYPTION_KEY};

const SECRET: &str = "plain-secret-value-4f1d9c";

async fn setup(server: &TestServer, sink: &TestReceiver) -> String {
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    let res = server
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({
            "type": "webhook", "topics": "*",
            "config": { "url": sink.url("/hook") },
            "credentials": { "secret": SECRET, "previous_secret": "older-secret-value-77aa" }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let dest: Value = res.json().await.unwrap();
    assert_eq!(
        dest["credentials"]["secret"], SECRET,
        "webhook secrets read back as Outpost shows them"
    );
    assert_eq!(
        dest["credentials"]["previous_secret"],
        format!("olde{}", "*".repeat(19)),
        "sensitive fields are obfuscated"
    );
    dest["id"].as_str().unwrap().to_string()
}

/// Every file of the data directory, as bytes (database, WAL, logs).
fn data_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(server.data_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn credentials_are_never_stored_or_logged_in_plain_text() {
    if std::env::var("OUTRIDER_TEST_POSTGRES").is_ok() {
        // The database is not a file here; the SQLite run checks the files, the proof
        // harness checks a PostgreSQL dump.
        return;
    }
    let mut server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    setup(&server, &sink).await;
    server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "acme", "topic": "t", "data": {} }))
        .send()
        .await
        .unwrap();
    eventually("delivery", Duration::from_secs(10), || async {
        (!sink.requests().is_empty()).then_some(())
    })
    .await;
    server.stop().await; // flush the WAL into the file too
    let files = data_files(&server);
    assert!(
        files.iter().any(|(name, _)| name.ends_with("outrider.db")),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, SECRET),
            "{name} holds the secret in plain text"
        );
        assert!(
            !contains(bytes, "older-secret-value-77aa"),
            "{name} holds the previous secret"
        );
    }
    assert!(
        files.iter().any(|(_, b)| contains(b, "enc:v1:k1:")),
        "credentials are stored as ciphertext"
    );
}

#[tokio::test]
async fn keys_rotate_reencrypts_everything_under_the_new_key() {
    let mut server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    let dest = setup(&server, &sink).await;
    server.stop().await;

    let rotated = format!("k2:a-brand-new-encryption-key-5566,{ENCRYPTION_KEY}");
    let (ok, out) = server.run_cli(
        &["keys", "rotate"],
        &[("OUTRIDER_ENCRYPTION_KEY", &rotated)],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("re-encrypted 1 secret(s) under key `k2`"),
        "{out}"
    );

    // Only the new key: everything still decrypts and delivers.
    server.set_env(
        "OUTRIDER_ENCRYPTION_KEY",
        "k2:a-brand-new-encryption-key-5566",
    );
    server.restart().await;
    let read = server
        .get_json(&format!("/api/v1/tenants/acme/destinations/{dest}"))
        .await;
    assert_eq!(read["credentials"]["secret"], SECRET);

    // Only the old key: nothing decrypts any more.
    server.set_env("OUTRIDER_ENCRYPTION_KEY", ENCRYPTION_KEY);
    server.restart().await;
    let res = server
        .admin(
            Method::GET,
            &format!("/api/v1/tenants/acme/destinations/{dest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        500,
        "the old key must no longer decrypt anything"
    );
    assert!(
        !server.logs().contains(SECRET),
        "the secret must never reach the logs"
    );
}

fn signatures(req: &crate::harness::Received, secrets: &[&str]) -> Vec<bool> {
    let timestamp = req.header("x-outpost-timestamp");
    let header = req.header("x-outpost-signature");
    let sent: Vec<&str> = header
        .trim_start_matches("v0=")
        .split(',')
        .map(|s| s.trim_start_matches("v0="))
        .collect();
    secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(&req.body);
            sent.contains(&hex::encode(mac.finalize().into_bytes()).as_str())
        })
        .collect()
}

#[tokio::test]
async fn rotating_the_webhook_secret_signs_with_both_during_the_grace_window() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    let dest = json_body(
        server
            .admin(Method::POST, "/api/v1/tenants/acme/destinations")
            .json(&json!({ "type": "webhook", "topics": "*", "config": { "url": sink.url("/hook") } })),
    )
    .await;
    let old = dest["credentials"]["secret"].as_str().unwrap().to_string();
    assert!(old.starts_with("whsec_"), "a secret is generated: {dest}");
    let id = dest["id"].as_str().unwrap();

    let rotated = json_body(
        server
            .admin(
                Method::PATCH,
                &format!("/api/v1/tenants/acme/destinations/{id}"),
            )
            .json(&json!({ "credentials": { "rotate_secret": true } })),
    )
    .await;
    let new = rotated["credentials"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old, "{rotated}");
    assert!(
        rotated["credentials"]["previous_secret_invalid_at"].is_string(),
        "{rotated}"
    );

    server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "acme", "topic": "t", "data": { "x": 1 } }))
        .send()
        .await
        .unwrap();
    let req = eventually("delivery", Duration::from_secs(10), || async {
        sink.requests().into_iter().next()
    })
    .await;
    assert_eq!(
        signatures(&req, &[&new, &old, "whsec_not-a-secret"]),
        [true, true, false],
        "{}",
        req.header("x-outpost-signature")
    );
}
