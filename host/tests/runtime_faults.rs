//! The plugin runtime against the real fault fixtures and plugins built by
//! `cargo xtask plugins` (`target/plugins/fixtures/*.wasm`, `target/plugins/*.wasm`).
//!
//! Each fault (infinite loop, memory hog, trap) fails its own call with the right error,
//! and a well-behaved plugin keeps delivering to a loopback sink afterwards. Without an
//! operator allowance, delivery to 127.0.0.1 is refused before any connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outrider::runtime::{
    DeliveryFailure, Event, LoadError, LoadedPlugin, PluginRuntime, PrototypeKind, RuntimeConfig,
    Target,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn built(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); build the plugins and fixtures first with `cargo xtask plugins`",
            path.display()
        )
    })
}

fn fixture(name: &str) -> Vec<u8> {
    built(&format!("fixtures/{name}.wasm"))
}

fn config(allow_loopback: bool) -> RuntimeConfig {
    RuntimeConfig {
        memory_limit: 16 * 1024 * 1024,
        // Long enough that a good call on a loaded CI machine (debug host, parallel
        // tests) never reaches it; the infinite loop's test bounds it from above.
        call_timeout: Duration::from_secs(1),
        max_instances: 16,
        allow_networks: if allow_loopback {
            vec!["127.0.0.0/8".parse().unwrap()]
        } else {
            vec![]
        },
        ..RuntimeConfig::default()
    }
}

/// A loopback HTTP sink answering 200 to everything and counting connections.
struct Sink {
    url: String,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Sink {
    async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, r) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() < end + 4 + length {
                            continue;
                        }
                        seen.drain(..end + 4 + length);
                        r.fetch_add(1, Ordering::SeqCst);
                        let body = "ok";
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Sink {
            url,
            accepted,
            requests,
        }
    }
}

fn first_destination(plugin: &LoadedPlugin) -> String {
    plugin
        .manifest
        .prototypes
        .iter()
        .find(|p| p.kind == PrototypeKind::Destination)
        .unwrap_or_else(|| panic!("{} has no destination prototype", plugin.manifest.name))
        .id
        .clone()
}

/// A stand-in value for a required field the test does not care about.
fn placeholder(field: &outrider::runtime::manifest::Field) -> Value {
    use outrider::runtime::manifest::FieldType;
    match field.r#type {
        FieldType::Text => json!("test-value-0123456789abcdef"),
        FieldType::Checkbox => json!(false),
        FieldType::Number => json!(1),
        FieldType::Select => json!(field
            .options
            .first()
            .map(|o| o.value.clone())
            .unwrap_or_default()),
        FieldType::KeyValueMap | FieldType::Json => json!({}),
    }
}

/// A target for `plugin`'s first destination prototype whose URL fields point at `url`
/// and whose other required fields get placeholders.
fn target_for(plugin: &LoadedPlugin, url: &str) -> Target {
    let prototype = first_destination(plugin);
    let proto = plugin
        .prototype(PrototypeKind::Destination, &prototype)
        .unwrap();
    let fill = |fields: &[outrider::runtime::manifest::Field], urls: &[String]| {
        let mut map = serde_json::Map::new();
        for f in fields {
            if urls.contains(&f.key) {
                map.insert(f.key.clone(), json!(url));
            } else if f.required && f.default.is_none() {
                map.insert(f.key.clone(), placeholder(f));
            }
        }
        Value::Object(map)
    };
    let mut config = fill(&proto.config_fields, &proto.network.url_fields);
    let mut credentials = fill(&proto.credential_fields, &[]);
    let errors = plugin
        .normalize(
            PrototypeKind::Destination,
            &prototype,
            &mut config,
            &mut credentials,
        )
        .unwrap();
    assert!(
        errors.is_empty(),
        "test config for {} is incomplete: {errors:?}",
        plugin.manifest.name
    );
    Target {
        prototype,
        id: "des_test".into(),
        tenant_id: "tenant_1".into(),
        config,
        credentials,
        delivery_metadata: BTreeMap::new(),
    }
}

fn event() -> Event {
    Event {
        id: "evt_1".into(),
        tenant_id: "tenant_1".into(),
        topic: "user.created".into(),
        time_ms: 1_700_000_000_000,
        metadata: BTreeMap::from([("source".to_string(), "test".to_string())]),
        data: r#"{"user":{"id":1}}"#.into(),
        attempt: 1,
    }
}

#[tokio::test]
async fn rejection_fixtures_fail_to_load_with_distinct_errors() {
    let runtime = PluginRuntime::new(config(false)).unwrap();
    assert_eq!(
        runtime.load(&fixture("random-bytes")).await.unwrap_err(),
        LoadError::NotWasm
    );
    assert_eq!(
        runtime.load(&fixture("core-module")).await.unwrap_err(),
        LoadError::CoreModule
    );
    let err = runtime.load(&fixture("fault-import")).await.unwrap_err();
    match &err {
        LoadError::UngrantedImport { import } => {
            assert!(import.starts_with("outrider:evil/files"), "{import}")
        }
        other => panic!("expected an ungranted import, got {other}"),
    }
    assert!(err.to_string().contains("outrider:evil/files"), "{err}");
}

#[tokio::test]
async fn faults_fail_only_their_call_and_good_plugins_keep_delivering() {
    let sink = Sink::start().await;
    let runtime = PluginRuntime::new(config(true)).unwrap();
    let echo = runtime.load(&fixture("echo")).await.expect("echo loads");
    let echo_target = target_for(&echo, &sink.url);
    let webhook = runtime
        .load(&built("webhook.wasm"))
        .await
        .expect("webhook loads");
    let webhook_target = target_for(&webhook, &sink.url);

    let mut delivered = 0;
    let mut check_good = |label: &str| {
        let (echo, webhook) = (echo.clone(), webhook.clone());
        let (et, wt) = (echo_target.clone(), webhook_target.clone());
        let label = label.to_owned();
        delivered += 2;
        async move {
            let ok = echo.deliver(&et, &event()).await;
            assert!(ok.is_ok(), "echo after {label}: {ok:?}");
            let ok = webhook.deliver(&wt, &event()).await;
            assert!(ok.is_ok(), "webhook after {label}: {ok:?}");
        }
    };
    check_good("start").await;

    let looping = runtime.load(&fixture("fault-loop")).await.unwrap();
    let started = Instant::now();
    let result = looping
        .deliver(&target_for(&looping, &sink.url), &event())
        .await;
    assert_eq!(result, Err(DeliveryFailure::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped after {:?}",
        started.elapsed()
    );
    check_good("an infinite loop").await;

    let hog = runtime.load(&fixture("fault-memory")).await.unwrap();
    let result = hog.deliver(&target_for(&hog, &sink.url), &event()).await;
    assert_eq!(result, Err(DeliveryFailure::MemoryLimit));
    check_good("a memory hog").await;

    let trap = runtime.load(&fixture("fault-trap")).await.unwrap();
    let result = trap.deliver(&target_for(&trap, &sink.url), &event()).await;
    assert!(
        matches!(result, Err(DeliveryFailure::Trap(_))),
        "{result:?}"
    );
    check_good("a trap").await;

    assert!(
        sink.requests.load(Ordering::SeqCst) >= delivered,
        "sink saw too few requests"
    );
}

#[tokio::test]
async fn loopback_delivery_is_denied_without_an_allowance() {
    let sink = Sink::start().await;
    let runtime = PluginRuntime::new(config(false)).unwrap();
    for plugin in [
        runtime.load(&fixture("echo")).await.unwrap(),
        runtime.load(&built("webhook.wasm")).await.unwrap(),
    ] {
        let result = plugin
            .deliver(&target_for(&plugin, &sink.url), &event())
            .await;
        match result {
            Err(DeliveryFailure::Denied(reason)) => {
                assert!(
                    reason.contains("127.0.0.1"),
                    "{}: {reason}",
                    plugin.manifest.name
                )
            }
            other => panic!("{}: expected a denial, got {other:?}", plugin.manifest.name),
        }
    }
    assert_eq!(
        sink.accepted.load(Ordering::SeqCst),
        0,
        "a refused delivery reached the sink"
    );
}

#[tokio::test]
async fn an_instance_that_grew_large_is_not_kept_warm() {
    let runtime = PluginRuntime::new(RuntimeConfig {
        memory_limit: 64 * 1024 * 1024,
        instance_reuse: 100,
        // This test is about what is kept warm, not deadlines: building 24 MiB can take
        // longer than the 1 s default here on a loaded CI machine, and a timed-out call is
        // never kept.
        call_timeout: Duration::from_secs(10),
        ..config(true)
    })
    .unwrap();
    // fault-output returns normally (a `fail`) after building ~24 MiB of output.
    let big = runtime.load(&fixture("fault-output")).await.unwrap();
    let target = target_for(&big, "http://127.0.0.1:9/");
    for _ in 0..2 {
        let outcome = big.deliver(&target, &event()).await;
        assert!(
            matches!(outcome, Err(DeliveryFailure::Fail { .. })),
            "expected the fixture's own `fail`, got {outcome:?}"
        );
    }
    assert_eq!(big.idle_instances(), 0, "a grown instance must not be held");
    assert_eq!(big.warm_calls(), 0);

    // A small one, failing the same way, is kept and reused.
    let echo = runtime.load(&fixture("echo")).await.unwrap();
    let sink = Sink::start().await;
    let target = target_for(&echo, &sink.url);
    for _ in 0..2 {
        let _ = echo.deliver(&target, &event()).await;
    }
    assert_eq!(echo.idle_instances(), 1);
    assert_eq!(echo.warm_calls(), 1);
}
