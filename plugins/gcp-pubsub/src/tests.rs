//! Unit tests of the destination: configuration, the publish request and answers, tokens.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use outrider_sdk::http::Response;
use outrider_sdk::prelude::*;

use crate::publish::{authorized, build_request, interpret};
use crate::service_account::{KeyFile, PUBSUB_SCOPE};
use crate::settings::Settings;
use crate::{token, GcpPubSub};

#[test]
fn self_tests_hold() {
    let cases = <GcpPubSub as Plugin>::self_tests();
    assert!(!cases.is_empty());
    for case in cases {
        let result = GcpPubSub::validate(
            &case.prototype,
            &Config::from_value(case.config.clone()).unwrap(),
            &Credentials::from_value(case.credentials.clone()).unwrap(),
        );
        assert_eq!(
            result.is_err(),
            case.expect_error,
            "{}: {result:?}",
            case.name
        );
    }
}

const KEY: &str = include_str!("../testdata/test-only-rsa-key.pem");

fn key_file() -> String {
    json!({
        "type": "service_account",
        "private_key_id": "kid-1",
        "private_key": KEY,
        "client_email": "publisher@demo.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

fn parse(config: Value, credentials: Value) -> Result<Settings, Vec<String>> {
    Settings::parse(
        &Config::from_value(config).unwrap(),
        &Credentials::from_value(credentials).unwrap(),
    )
    .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

fn validate(config: Value, credentials: Value) -> Result<(), Vec<String>> {
    GcpPubSub::validate(
        "gcp_pubsub",
        &Config::from_value(config).unwrap(),
        &Credentials::from_value(credentials).unwrap(),
    )
    .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

#[test]
fn urls() {
    let s = parse(
        json!({"project_id": "demo-project", "topic": "orders+eu%1"}),
        json!({"service_account_json": key_file()}),
    )
    .unwrap();
    assert_eq!(
        s.publish_url(),
        "https://pubsub.googleapis.com/v1/projects/demo-project/topics/orders%2Beu%251:publish"
    );
    assert!(s.account.is_some());
    let s = parse(
        json!({"project_id": "demo", "topic": "events", "endpoint": "localhost:8085"}),
        json!({"service_account_json": "{}"}),
    )
    .unwrap();
    assert_eq!(
        s.publish_url(),
        "http://localhost:8085/v1/projects/demo/topics/events:publish"
    );
    assert_eq!(s.account, None, "emulator: no authentication");
    let s = parse(
        json!({"project_id": "demo", "topic": "events", "endpoint": "https://europe-west1-pubsub.googleapis.com/"}),
        json!({"service_account_json": key_file()}),
    )
    .unwrap();
    assert_eq!(
        s.publish_url(),
        "https://europe-west1-pubsub.googleapis.com/v1/projects/demo/topics/events:publish"
    );
    assert!(s.account.is_some(), "a key authenticates custom endpoints");
}

#[test]
fn reports_every_problem_by_field() {
    assert_eq!(
        validate(json!({}), json!({})).unwrap_err(),
        [
            "config.project_id is required",
            "config.topic is required",
            "credentials.service_account_json is required (the service account key file), unless Endpoint points at the Pub/Sub emulator",
        ]
    );
    let errors = validate(
        json!({"project_id": "Demo Project", "topic": "goog-x", "endpoint": "ftp://x"}),
        json!({"service_account_json": "{not json"}),
    )
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(
        errors[0],
        "config.project_id must be a GCP project ID (lowercase letters, digits and hyphens)"
    );
    assert!(errors[1].starts_with("config.topic must be a Pub/Sub topic ID"));
    assert_eq!(
        errors[2],
        "config.endpoint must be an http(s) URL or host:port (e.g. localhost:8085)"
    );
    assert!(errors[3].starts_with("credentials.service_account_json is not valid JSON: "));
    let broken_key = json!({
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "client_email": "a@b",
    });
    assert_eq!(
        validate(
            json!({"project_id": "demo", "topic": "events"}),
            json!({"service_account_json": broken_key.to_string()}),
        )
        .unwrap_err(),
        ["credentials.service_account_json has a `private_key` that is not an RSA private key in PEM"]
    );
    assert!(validate(
        json!({"project_id": "demo", "topic": "events"}),
        json!({"service_account_json": key_file()}),
    )
    .is_ok());
}

#[test]
fn publish_body_has_base64_data_and_attributes() {
    let s = parse(
        json!({"project_id": "demo", "topic": "events"}),
        json!({"service_account_json": key_file()}),
    )
    .unwrap();
    let event = Event {
        id: "evt_1".into(),
        tenant_id: "t".into(),
        topic: "order.paid".into(),
        time_ms: 0,
        metadata: vec![
            ("source".into(), "api".into()),
            ("topic".into(), "spoofed".into()),
            ("googReserved".into(), "x".into()),
        ],
        data: r#"{"order":42}"#.into(),
        attempt: 1,
    };
    let delivery = [
        ("env".to_string(), "prod".to_string()),
        ("source".to_string(), "static".to_string()),
    ];
    let r = authorized(
        build_request(&s, &event, &delivery, 1_700_000_000),
        "ya29.t",
    );
    assert_eq!(r.method, "POST");
    assert!(r
        .headers
        .contains(&("authorization".to_string(), "Bearer ya29.t".to_string())));
    let body: Value = outrider_sdk::serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{
            "data": BASE64.encode(r#"{"order":42}"#),
            "attributes": {
                "env": "prod",
                "source": "api",
                "event-id": "evt_1",
                "topic": "order.paid",
                "timestamp": "1700000000",
            },
        }]})
    );
}

#[test]
fn publish_answers_map_to_outcomes() {
    let response = |status: u16, body: &str| Response {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
        truncated: false,
    };
    assert!(interpret(&response(200, r#"{"messageIds":["1"]}"#)).is_ok());
    let e = interpret(&response(
        404,
        r#"{"error":{"code":404,"message":"Resource not found (resource=events).","status":"NOT_FOUND"}}"#,
    ))
    .unwrap_err();
    assert!(matches!(e, DeliveryError::Fail(_)));
    assert_eq!(
        e.failure().message,
        "Pub/Sub answered HTTP 404: NOT_FOUND: Resource not found (resource=events)."
    );
    assert!(matches!(
        interpret(&response(503, "unavailable")).unwrap_err(),
        DeliveryError::Retry { .. }
    ));
    assert!(matches!(
        interpret(&response(429, "{}")).unwrap_err(),
        DeliveryError::Retry { .. }
    ));
}

#[test]
fn tokens_are_cached_per_key() {
    let account = match KeyFile::parse(&key_file()).unwrap() {
        KeyFile::Key(a) => a,
        KeyFile::Empty => unreachable!(),
    };
    assert_eq!(token::cached(&account, PUBSUB_SCOPE, 0), None);
    // Native builds have no host http: fetching fails as a retry, caching nothing.
    assert!(matches!(
        token::fetch(&account, PUBSUB_SCOPE, 0),
        Err(DeliveryError::Retry { .. })
    ));
    assert_eq!(token::cached(&account, PUBSUB_SCOPE, 0), None);
}
