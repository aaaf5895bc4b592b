//! Runtime tests with small components built here from WAT (a core module wrapped by
//! `wit-component` against the real WIT), so they run without the plugin toolchain.
//! The fixtures built by `cargo xtask plugins` are exercised in `tests/runtime_faults.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

mod components;

use components::{component, component_with, Behaviour};

fn config() -> RuntimeConfig {
    RuntimeConfig {
        memory_limit: 8 * 1024 * 1024,
        call_timeout: Duration::from_millis(300),
        max_instances: 16,
        ..RuntimeConfig::default()
    }
}

fn target() -> Target {
    Target {
        prototype: "test".into(),
        id: "des_1".into(),
        tenant_id: "t1".into(),
        config: serde_json::json!({}),
        credentials: serde_json::json!({}),
        ..Target::default()
    }
}

fn event() -> Event {
    Event {
        id: "evt_1".into(),
        tenant_id: "t1".into(),
        topic: "user.created".into(),
        time_ms: 1,
        data: r#"{"hello":"world"}"#.into(),
        attempt: 1,
        ..Event::default()
    }
}

#[tokio::test]
async fn loads_and_delivers() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let plugin = runtime.load(&component("ok", Behaviour::Ok)).await.unwrap();
    assert_eq!(plugin.manifest.name, "ok");
    assert_eq!(plugin.wit_version, "0.1.0");
    assert!(plugin.id.starts_with("sha256:") && plugin.id.len() == 7 + 64);
    assert!(plugin
        .exports
        .contains(&"outrider:plugin/destination@0.1.0".to_string()));
    assert!(plugin
        .prototype(PrototypeKind::Destination, "test")
        .is_some());
    assert!(plugin
        .prototype(PrototypeKind::Transformer, "test")
        .is_none());
    let delivered = plugin.deliver(&target(), &event()).await.unwrap();
    assert_eq!(
        delivered,
        Delivered {
            status_code: None,
            response_body: None
        }
    );
    assert!(plugin.self_tests().await.unwrap().is_empty());
    let errors = plugin
        .validate(
            PrototypeKind::Destination,
            "test",
            &serde_json::json!({}),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert!(errors.is_empty());
    let unknown = Target {
        prototype: "nope".into(),
        ..target()
    };
    assert!(matches!(
        plugin.deliver(&unknown, &event()).await,
        Err(DeliveryFailure::Misconfigured { .. })
    ));
}

#[tokio::test]
async fn faults_fail_only_their_call() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let good = runtime
        .load(&component("good", Behaviour::Ok))
        .await
        .unwrap();

    let looping = runtime
        .load(&component("looping", Behaviour::Loop))
        .await
        .unwrap();
    let started = Instant::now();
    let moved = crate::runtime::slow_lane::moved_calls();
    assert_eq!(
        looping.deliver(&target(), &event()).await,
        Err(DeliveryFailure::Timeout)
    );
    assert!(
        crate::runtime::slow_lane::moved_calls() > moved,
        "the spinning call did not move to the slow lane"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    good.deliver(&target(), &event()).await.unwrap();

    let trap = runtime
        .load(&component("trapping", Behaviour::Trap))
        .await
        .unwrap();
    match trap.deliver(&target(), &event()).await {
        Err(DeliveryFailure::Trap(message)) => {
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    good.deliver(&target(), &event()).await.unwrap();

    let hog = runtime
        .load(&component("hog", Behaviour::Hog))
        .await
        .unwrap();
    assert_eq!(
        hog.deliver(&target(), &event()).await,
        Err(DeliveryFailure::MemoryLimit)
    );
    good.deliver(&target(), &event()).await.unwrap();

    // A plugin that ran long or hit the memory limit starts its next calls on the slow
    // lane; a healthy one, or one that only trapped, does not.
    assert!(looping.starts_on_slow_lane());
    assert!(hog.starts_on_slow_lane());
    assert!(!trap.starts_on_slow_lane());
    assert!(!good.starts_on_slow_lane());
}

#[tokio::test]
async fn repeated_crashes_quarantine_a_plugin() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let plugin = runtime
        .load(&component("crashy", Behaviour::Trap))
        .await
        .unwrap();
    let registry = PluginRegistry::with_quarantine_threshold(3);
    registry.insert(plugin.clone());
    for i in 0..3 {
        assert!(matches!(
            plugin.deliver(&target(), &event()).await,
            Err(DeliveryFailure::Trap(_))
        ));
        assert_eq!(registry.record_crash(&plugin.id), i == 2);
    }
    assert!(plugin.quarantined());
    assert!(registry.is_quarantined(&plugin.id));
    assert!(registry.list()[0].quarantined());
    assert!(registry.release_quarantine(&plugin.id));
    assert!(!plugin.quarantined());
    assert_eq!(plugin.crash_streak(), 0);
}

#[tokio::test]
async fn success_resets_the_crash_streak() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let plugin = runtime
        .load(&component("flaky", Behaviour::Ok))
        .await
        .unwrap();
    let registry = PluginRegistry::with_quarantine_threshold(3);
    registry.insert(plugin.clone());
    for _ in 0..2 {
        registry.record_crash(&plugin.id);
    }
    assert_eq!(plugin.crash_streak(), 2);
    registry.record_success(&plugin.id);
    assert_eq!(plugin.crash_streak(), 0);
    registry.record_crash(&plugin.id);
    assert!(!plugin.quarantined());
    assert!(!registry.record_crash("sha256:unknown"));
}

#[tokio::test]
async fn rejects_what_is_not_a_plugin() {
    let runtime = PluginRuntime::new(config()).unwrap();
    assert_eq!(
        runtime.load(b"definitely not wasm").await.unwrap_err(),
        LoadError::NotWasm
    );
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    assert_eq!(
        runtime.load(&core).await.unwrap_err(),
        LoadError::CoreModule
    );
    let empty = wat::parse_str("(component)").unwrap();
    assert!(matches!(
        runtime.load(&empty).await.unwrap_err(),
        LoadError::MissingPluginExport { .. }
    ));
    let future = wat::parse_str(
        r#"(component (instance $i) (export "outrider:plugin/plugin@9.9.9" (instance $i)))"#,
    )
    .unwrap();
    let err = runtime.load(&future).await.unwrap_err();
    assert_eq!(
        err,
        LoadError::UnknownWitVersion {
            version: "9.9.9".into()
        }
    );
    assert!(
        err.to_string().contains("9.9.9") && err.to_string().contains("0.1.0"),
        "{err}"
    );
    let mut truncated = component("cut", Behaviour::Ok);
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        runtime.load(&truncated).await.unwrap_err(),
        LoadError::Invalid(_)
    ));
}

#[tokio::test]
async fn rejects_ungranted_imports_by_name() {
    let extra = r#"
        package test:evil;
        interface api { steal: func(); }
        world test {
            include outrider:plugin/destination-plugin@0.1.0;
            import api;
        }
    "#;
    let bytes = component_with(
        "evil",
        "1.0.0",
        "test",
        Behaviour::Ok,
        Some(extra),
        r#"(import "test:evil/api" "steal" (func))"#,
    );
    let runtime = PluginRuntime::new(config()).unwrap();
    let err = runtime.load(&bytes).await.unwrap_err();
    assert_eq!(
        err,
        LoadError::UngrantedImport {
            import: "test:evil/api".into()
        }
    );
    assert!(err.to_string().contains("`test:evil/api`"), "{err}");
}

#[tokio::test]
async fn rejects_bad_manifests() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let bytes = component_with("Bad Name", "one", "Proto", Behaviour::Ok, None, "");
    match runtime.load(&bytes).await.unwrap_err() {
        LoadError::InvalidManifest(errors) => {
            assert!(
                errors.contains(&ManifestError::PluginName("Bad Name".into())),
                "{errors:?}"
            );
            assert!(
                errors.contains(&ManifestError::PluginVersion("one".into())),
                "{errors:?}"
            );
            assert!(
                errors.contains(&ManifestError::PrototypeId("Proto".into())),
                "{errors:?}"
            );
        }
        other => panic!("expected an invalid manifest, got {other}"),
    }
}

#[tokio::test]
async fn second_load_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component("cached", Behaviour::Ok);
    {
        let runtime = PluginRuntime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("cache")),
            ..config()
        })
        .unwrap();
        let first = runtime.load(&bytes).await.unwrap();
        assert!(!first.from_cache);
        assert_eq!((runtime.compiles(), runtime.cache_hits()), (1, 0));
        let second = runtime.load(&bytes).await.unwrap();
        assert!(second.from_cache);
        assert_eq!((runtime.compiles(), runtime.cache_hits()), (1, 1));
        second.deliver(&target(), &event()).await.unwrap();
    }
    // A new process (runtime) with the same settings reuses the artifact too.
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..config()
    })
    .unwrap();
    let again = runtime.load(&bytes).await.unwrap();
    assert!(again.from_cache);
    again.deliver(&target(), &event()).await.unwrap();
}

#[tokio::test]
async fn registry_replaces_versions_and_keeps_in_flight_arcs() {
    let runtime = PluginRuntime::new(config()).unwrap();
    let v1 = runtime
        .load(&component_with(
            "hook",
            "1.0.0",
            "hook",
            Behaviour::Ok,
            None,
            "",
        ))
        .await
        .unwrap();
    let v2 = runtime
        .load(&component_with(
            "hook",
            "2.0.0",
            "hook",
            Behaviour::Ok,
            None,
            "",
        ))
        .await
        .unwrap();
    let other = runtime
        .load(&component_with(
            "other",
            "1.0.0",
            "other",
            Behaviour::Ok,
            None,
            "",
        ))
        .await
        .unwrap();
    let registry = PluginRegistry::default();
    assert!(registry.insert(v1.clone()).is_none());
    assert!(registry.insert(other.clone()).is_none());
    let in_flight = registry
        .find_prototype(PrototypeKind::Destination, "hook")
        .unwrap();
    assert_eq!(in_flight.id, v1.id);
    let replaced = registry.insert(v2.clone()).unwrap();
    assert_eq!(replaced.id, v1.id);
    assert_eq!(
        registry
            .find_prototype(PrototypeKind::Destination, "hook")
            .unwrap()
            .id,
        v2.id
    );
    assert_eq!(registry.list().len(), 2);
    // The old version still works for whoever holds it.
    let t = Target {
        prototype: "hook".into(),
        ..target()
    };
    in_flight.deliver(&t, &event()).await.unwrap();
    assert!(registry.remove(&v2.id).is_some());
    assert!(registry
        .find_prototype(PrototypeKind::Destination, "hook")
        .is_none());
    assert!(registry.get_by_name("other").is_some());
    assert!(registry
        .find_prototype(PrototypeKind::Transformer, "other")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_beyond_the_instance_pool_wait_for_a_slot() {
    // 16 slots, 200 concurrent calls: every call completes, none is refused.
    let runtime = PluginRuntime::new(config()).unwrap();
    let plugin: Arc<LoadedPlugin> = runtime
        .load(&component("busy", Behaviour::Ok))
        .await
        .unwrap();
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move { plugin.deliver(&target(), &event()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn warm_instances_serve_the_same_target_only() {
    let runtime = PluginRuntime::new(RuntimeConfig {
        instance_reuse: 3,
        ..config()
    })
    .unwrap();
    let plugin = runtime
        .load(&component("warm", Behaviour::Ok))
        .await
        .unwrap();
    for _ in 0..5 {
        plugin.deliver(&target(), &event()).await.unwrap();
    }
    // Calls 2 and 3 reuse the first instance, which is then retired after 3 uses;
    // call 4 starts a fresh one that call 5 reuses.
    assert_eq!(plugin.warm_calls(), 3);
    assert_eq!(plugin.idle_instances(), 1);
    assert_eq!(runtime.idle_instances(), 1);

    // Another target, or the same one with other credentials, gets its own instance.
    let other = Target {
        id: "des_2".into(),
        ..target()
    };
    plugin.deliver(&other, &event()).await.unwrap();
    let rotated = Target {
        credentials: serde_json::json!({"secret": "new"}),
        ..target()
    };
    plugin.deliver(&rotated, &event()).await.unwrap();
    assert_eq!(plugin.warm_calls(), 3);
    assert_eq!(plugin.idle_instances(), 3);

    // A crash discards the instance instead of keeping it.
    let trap = runtime
        .load(&component("trap-warm", Behaviour::Trap))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            trap.deliver(&target(), &event()).await,
            Err(DeliveryFailure::Trap(_))
        ));
    }
    assert_eq!(trap.idle_instances(), 0);
    assert_eq!(trap.warm_calls(), 0);

    plugin.release_idle();
    assert_eq!(runtime.idle_instances(), 0);
}

#[tokio::test]
#[ignore = "timing probe; run with --ignored --nocapture in release"]
async fn probe_call_overhead() {
    let runtime = PluginRuntime::new(RuntimeConfig {
        max_instances: 64,
        ..config()
    })
    .unwrap();
    let plugin = runtime
        .load(&component("fast", Behaviour::Ok))
        .await
        .unwrap();
    let (t, e) = (target(), event());
    for _ in 0..1000 {
        plugin.deliver(&t, &e).await.unwrap();
    }
    let n: usize = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        plugin.deliver(&t, &e).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "deliver p50 {:?} p90 {:?} p99 {:?}",
        samples[n / 2],
        samples[n * 9 / 10],
        samples[n * 99 / 100]
    );
}
