//! A destination changed between two deliveries: the second one uses the new values.
//! (The delivery path keeps each destination's decrypted, typed values prepared while
//! the stored row is unchanged; this is what would break if it missed a change.)

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{eventually, Received, TestReceiver, TestServer};

const FIRST_SECRET: &str = "first-secret-value-0c41aa";
const SECOND_SECRET: &str = "second-secret-value-7be3d2";

fn signed_with(req: &Received, secret: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.", req.header("x-outpost-timestamp")).as_bytes());
    mac.update(&req.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    req.header("x-outpost-signature")
        .split(',')
        .any(|s| s.trim_start_matches("v0=") == expected)
}

async fn publish(server: &TestServer, n: u32) {
    let res = server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "acme", "topic": "t", "data": { "n": n } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn a_destination_patched_between_deliveries_is_delivered_with_its_new_values() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    let dest: Value = server
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({
            "type": "webhook", "topics": "*",
            "config": { "url": sink.url("/one") },
            "credentials": { "secret": FIRST_SECRET }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = dest["id"].as_str().unwrap();

    publish(&server, 1).await;
    let first = eventually("the first delivery", Duration::from_secs(10), || async {
        sink.requests().into_iter().next()
    })
    .await;
    assert_eq!(first.uri, "/one");
    assert!(signed_with(&first, FIRST_SECRET));

    let res = server
        .admin(
            Method::PATCH,
            &format!("/api/v1/tenants/acme/destinations/{id}"),
        )
        .json(&json!({
            "config": { "url": sink.url("/two") },
            "credentials": { "secret": SECOND_SECRET }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    publish(&server, 2).await;
    let second = eventually("the second delivery", Duration::from_secs(10), || async {
        sink.requests().into_iter().nth(1)
    })
    .await;
    assert_eq!(second.json(), json!({ "n": 2 }));
    assert_eq!(second.uri, "/two", "delivered to the old URL");
    assert!(
        signed_with(&second, SECOND_SECRET),
        "not signed with the new secret"
    );
    assert!(
        !signed_with(&second, FIRST_SECRET),
        "still signed with the replaced secret"
    );
}
