//! The publish payload end to end: delivered byte for byte as published, and refused
//! (400 naming `data`) unless it is a JSON object of characters.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::gateway::{server, tenant_with_webhook};
use crate::harness::{call, eventually, status_and_body, TestReceiver, TestServer};

/// `POST /publish` with `body` sent as written (a `json!` value would be re-encoded).
async fn publish_text(server: &TestServer, body: String) -> (u16, Value) {
    status_and_body(
        server
            .admin(Method::POST, "/api/v1/publish")
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[tokio::test]
async fn the_payload_is_delivered_as_published_and_must_be_an_object() {
    let server = server().await;
    let sink = TestReceiver::start().await;
    tenant_with_webhook(&server, "acme", &sink, json!({})).await;

    // Keys out of order, nesting, escapes and a big number: the text is kept, not re-encoded.
    let data = r#"{"z":1,"a":{"y":[1,2.50,"\u00e9"],"b":null},"n":123456789012345678901234}"#;
    let (status, res) = publish_text(
        &server,
        format!(r#"{{"id":"evt_raw","tenant_id":"acme","topic":"user.created","data":{data}}}"#),
    )
    .await;
    assert_eq!(status, 202, "{res}");
    let got = eventually("delivery", Duration::from_secs(10), || async {
        sink.requests().into_iter().next()
    })
    .await;
    assert_eq!(String::from_utf8_lossy(&got.body), data);

    // A surrogate pair is a character; a lone surrogate is none.
    for (data, status) in [(r#"{"s":"\ud83d\ude00"}"#, 202), (r#"{"s":"\ud800"}"#, 400)] {
        let (got, res) = publish_text(
            &server,
            format!(r#"{{"tenant_id":"acme","topic":"order.paid","data":{data}}}"#),
        )
        .await;
        assert_eq!(got, status, "{data}: {res}");
        if status == 400 {
            assert!(
                res["message"].as_str().unwrap().starts_with("data:"),
                "{res}"
            );
        }
    }

    for (bad, why) in [
        (json!([1, 2]), "an array"),
        (json!("text"), "a string"),
        (json!(7), "a number"),
        (Value::Null, "null"),
    ] {
        let (status, res) = call(
            &server,
            Method::POST,
            "/api/v1/publish",
            Some(json!({ "tenant_id": "acme", "topic": "user.created", "data": bad })),
        )
        .await;
        assert_eq!(status, 400, "data as {why}: {res}");
        assert!(
            res["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("data:"),
            "data as {why}: {res}"
        );
    }
}
