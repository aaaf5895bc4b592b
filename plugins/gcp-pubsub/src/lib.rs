//! Outrider's `gcp_pubsub` destination: publishes each event as one message to a Google
//! Cloud Pub/Sub topic with the REST API
//! (`POST {endpoint}/v1/projects/{project}/topics/{topic}:publish`).
//!
//! Authentication follows Google's service account flow: an RS256 JWT assertion signed
//! with the key file's private key is exchanged at its `token_uri` for an access token
//! ([`service_account`], [`token`]), cached in the host's per-destination state until
//! shortly before it expires. With a custom `endpoint` and no key (the Pub/Sub emulator)
//! requests go unauthenticated, as in Outpost.
//!
//! The message data is the event data; `event-id`, `topic`, `timestamp` and the metadata
//! become message attributes.

mod publish;
mod service_account;
mod settings;
mod token;

use outrider_sdk::http;
use outrider_sdk::prelude::*;
use outrider_sdk::{log, time};
use publish::{authorized, build_request, interpret};
use service_account::PUBSUB_SCOPE;
use settings::Settings;

struct GcpPubSub;

/// The Pub/Sub API used when `endpoint` is not set.
const DEFAULT_ENDPOINT: &str = "https://pubsub.googleapis.com";

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="24px" height="24px" viewBox="0 0 24 24"><defs><style>.cls-1{filter:url(#luminosity-noclip);}.cls-2{fill:#669df6;}.cls-3{mask:url(#mask);}.cls-4{fill:#4285f4;}.cls-5{fill:#aecbfa;}</style><filter id="luminosity-noclip" x="4.64" y="4.19" width="14.73" height="12.76" filterUnits="userSpaceOnUse" color-interpolation-filters="sRGB"><feFlood flood-color="#fff" result="bg"/><feBlend in="SourceGraphic" in2="bg"/></filter><mask id="mask" x="4.64" y="4.19" width="14.73" height="12.76" maskUnits="userSpaceOnUse"><circle class="cls-1" cx="12" cy="12.23" r="3.58"/></mask></defs><title>Icon_24px_Pub-Sub_Color</title><g data-name="Product Icons"><circle class="cls-2" cx="18.97" cy="8.21" r="1.72"/><circle class="cls-2" cx="5.03" cy="8.21" r="1.72"/><circle class="cls-2" cx="12" cy="20.28" r="1.72"/><g class="cls-3"><rect class="cls-4" x="14.69" y="10.22" width="1.59" height="8.04" transform="matrix(0.5, -0.87, 0.87, 0.5, -4.59, 20.53)"/><rect class="cls-4" x="4.49" y="13.45" width="8.04" height="1.59" transform="translate(-5.98 6.17) rotate(-30)"/><rect class="cls-4" x="11.2" y="4.19" width="1.59" height="8.04"/></g><circle class="cls-5" cx="12" cy="12.23" r="2.78"/><circle class="cls-5" cx="5.03" cy="16.25" r="2.19"/><circle class="cls-5" cx="18.97" cy="16.25" r="2.19"/><circle class="cls-5" cx="12" cy="4.19" r="2.19"/></g></svg>"##;

const INSTRUCTIONS: &str = "\
[Google Cloud Pub/Sub](https://cloud.google.com/pubsub) is a fully managed messaging \
service for sending events between independent applications.

With the [gcloud CLI](https://cloud.google.com/sdk/docs/install):

1. Enable the API: `gcloud services enable pubsub.googleapis.com --project=PROJECT_ID`
2. Create the topic if needed: `gcloud pubsub topics create TOPIC --project=PROJECT_ID`
3. Create a service account: `gcloud iam service-accounts create SERVICE_ACCOUNT \
--project=PROJECT_ID`
4. Let it publish to the topic: `gcloud pubsub topics add-iam-policy-binding TOPIC \
--project=PROJECT_ID --member=\"serviceAccount:SERVICE_ACCOUNT@PROJECT_ID.iam.gserviceaccount.com\" \
--role=\"roles/pubsub.publisher\"`
5. Create a key: `gcloud iam service-accounts keys create key.json \
--iam-account=\"SERVICE_ACCOUNT@PROJECT_ID.iam.gserviceaccount.com\"`
6. Enter the Project ID and Topic, and paste the contents of `key.json` into Service \
Account JSON.

Each event becomes one message: the event data is the message data, and `event-id`, \
`topic`, `timestamp` and the event's metadata are attributes. Outrider signs a JWT with the \
key, exchanges it for an access token at the key's `token_uri` and reuses the token until \
shortly before it expires; the key never leaves Outrider.

For the [Pub/Sub emulator](https://cloud.google.com/pubsub/docs/emulator), set Endpoint to \
the emulator's address (e.g. `localhost:8085`) and leave Service Account JSON empty (or \
`{}`): requests then go unauthenticated. With a key, requests to a custom endpoint are \
authenticated (regional or private endpoints).

Throttling (429) and server errors (5xx) are retried; a rejected key, missing permission \
(403) or unknown topic (404) fail the attempt.";

impl Plugin for GcpPubSub {
    fn manifest() -> Manifest {
        Manifest::new("gcp-pubsub", env!("CARGO_PKG_VERSION"))
            .description("Google Cloud Pub/Sub through the REST API, with service account keys.")
            .prototype(
                Prototype::destination("gcp_pubsub")
                    .label("GCP Pub/Sub")
                    .description(
                        "Send events to Google Cloud Pub/Sub topics using service account \
                         authentication.",
                    )
                    .icon(ICON)
                    .instructions(INSTRUCTIONS)
                    .config_field(
                        Field::text("project_id")
                            .label("Project ID")
                            .description("The GCP project ID")
                            .required(),
                    )
                    .config_field(
                        Field::text("topic")
                            .label("Topic")
                            .description("The Pub/Sub topic")
                            .required(),
                    )
                    .config_field(
                        Field::text("endpoint")
                            .label("Endpoint")
                            .description("Custom endpoint URL (e.g., localhost:8085 for emulator)"),
                    )
                    .credential_field(
                        Field::text("service_account_json")
                            .label("Service Account JSON")
                            .description(
                                "Service account key JSON (the whole key file). Required \
                                 unless Endpoint points at the Pub/Sub emulator.",
                            )
                            .sensitive(),
                    )
                    .host("pubsub.googleapis.com")
                    .host("oauth2.googleapis.com")
                    .url_field("endpoint"),
            )
    }

    fn self_tests() -> Vec<TestCase> {
        vec![
            TestCase::new("accepts the emulator without a key", "gcp_pubsub").config(json!({
                "project_id": "demo-project",
                "topic": "events",
                "endpoint": "localhost:8085",
            })),
            TestCase::new("requires a key for Google's endpoint", "gcp_pubsub")
                .config(json!({"project_id": "demo-project", "topic": "events"}))
                .expect_error(),
            TestCase::new("rejects a key that is not JSON", "gcp_pubsub")
                .config(json!({"project_id": "demo-project", "topic": "events"}))
                .credentials(json!({"service_account_json": "not json"}))
                .expect_error(),
            TestCase::new("rejects an invalid topic name", "gcp_pubsub")
                .config(json!({
                    "project_id": "demo-project",
                    "topic": "goog-reserved",
                    "endpoint": "localhost:8085",
                }))
                .expect_error(),
        ]
    }
}

impl Destination for GcpPubSub {
    fn validate(
        _prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>> {
        let settings = Settings::parse(config, credentials)?;
        // Decode the key once here, so that a broken key is reported at configuration
        // time (deliveries decode it only when they need a new token).
        if let Some(account) = &settings.account {
            account
                .signing_key()
                .map_err(|why| vec![credentials.error("service_account_json", why)])?;
        }
        Ok(())
    }

    fn deliver(target: &Target, event: &Event) -> Result<Delivered, DeliveryError> {
        let settings = Settings::parse(&target.config, &target.credentials)?;
        let now_s = time::unix_seconds();
        let request = build_request(&settings, event, &target.delivery_metadata, now_s);
        let Some(account) = &settings.account else {
            return interpret(&http::send(request)?);
        };
        let (access_token, was_cached) = match token::cached(account, PUBSUB_SCOPE, now_s) {
            Some(t) => (t, true),
            None => (token::fetch(account, PUBSUB_SCOPE, now_s)?, false),
        };
        let response = http::send(authorized(request.clone(), &access_token.token))?;
        if response.status == 401 && was_cached {
            // Revoked or expired early: get a new token and try once more.
            log::info!("cached access token rejected (401); fetching a new one");
            token::forget(account, PUBSUB_SCOPE);
            let fresh = token::fetch(account, PUBSUB_SCOPE, now_s)?;
            return interpret(&http::send(authorized(request, &fresh.token))?);
        }
        interpret(&response)
    }
}

export_destination!(GcpPubSub);

#[cfg(test)]
mod tests;
