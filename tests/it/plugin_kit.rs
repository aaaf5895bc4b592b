//! The plugin author kit on the command line: `outrider plugin test` shows what a
//! component sent to its loopback capture server, the classified result, time and memory;
//! `outrider plugin new` + `build` give Rust, JavaScript and Python projects that build as
//! is and pass `plugin test`; a Rust scaffold, uploaded to a server, delivers.
//!
//! The Rust scaffolds build into the workspace's `target/` (`CARGO_TARGET_DIR`) with the
//! plugin profile `cargo xtask plugins` uses: what they share with the workspace's plugins
//! is reused, and what they do not (the standard library rebuilt for wasm, when the
//! toolchain needs that, and the SDK's dependencies) is built by the first run and reused
//! by later ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, plugin_path, workspace_root, TestReceiver, TestServer};

fn outrider() -> Command {
    let path = std::env::var("OUTRIDER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("test executable path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("outrider")
        });
    let mut cmd = Command::new(path);
    // componentize-py's virtualenv under target/, shared by test runs.
    cmd.env("XDG_CACHE_HOME", workspace_root().join("target"));
    cmd
}

/// Runs `outrider ARGS` in `dir`; returns (success, stdout + stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    run_with(dir, args, &[])
}

/// [`run`] with extra environment variables.
fn run_with(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = outrider();
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run outrider");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn plugin_test_shows_the_request_result_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"id":"evt_9","topic":"order.paid","data":{"customer":"Ada"}}"#,
    )
    .unwrap();
    let wasm = plugin_path("rust-destination");
    let wasm = wasm.to_str().unwrap();
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            wasm,
            "--event",
            "event.json",
            "--config",
            "template={{topic}} by {{data.customer}}",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("(the capture server)"), "{out}");
    assert!(out.contains("validate: ok"), "{out}");
    assert!(out.contains("sent #1: POST /chat_webhook"), "{out}");
    assert!(out.contains(r#"{"text":"order.paid by Ada"}"#), "{out}");
    assert!(out.contains("deliver: ok, status Some(200)"), "{out}");
    assert!(out.contains("memory: peak linear memory"), "{out}");

    // The receiver's 503 is classified as the server would: retried.
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            wasm,
            "--event",
            "event.json",
            "--respond",
            "503",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("deliver: retry"), "{out}");

    // A configuration the plugin refuses names the field and sends nothing.
    let (ok, out) = run(
        dir.path(),
        &["plugin", "test", wasm, "--config", "url=ftp://example.com"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("validate: config.url"), "{out}");
    assert!(!out.contains("sent #1"), "{out}");
}

#[test]
fn inspect_shows_wit_version_imports_and_network() {
    let wasm = plugin_path("rust-destination");
    let (ok, out) = run(
        &workspace_root(),
        &["plugin", "inspect", wasm.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    assert!(out.contains("WIT: outrider:plugin@0.1.1"), "{out}");
    assert!(
        out.contains("imports: ") && out.contains("outrider:plugin/http@0.1.1"),
        "{out}"
    );
    assert!(out.contains("network: hosts [], url fields [url]"), "{out}");
}

/// `plugin new` then `plugin build` in a fresh folder; returns the component's path.
fn scaffold_and_build(dir: &Path, name: &str, lang: &str, kind: &str) -> PathBuf {
    scaffold_and_build_with(dir, name, lang, kind, &[])
}

fn scaffold_and_build_with(
    dir: &Path,
    name: &str,
    lang: &str,
    kind: &str,
    env: &[(&str, &Path)],
) -> PathBuf {
    let (ok, out) = run(
        dir,
        &["plugin", "new", name, "--lang", lang, "--kind", kind],
    );
    assert!(ok, "{out}");
    let started = Instant::now();
    let cpu = crate::harness::exclusive_cpu();
    let (ok, out) = run_with(dir, &["plugin", "build", name], env);
    drop(cpu);
    // Seen with --nocapture: how long the build of a fresh scaffold took.
    eprintln!(
        "plugin build {name} ({lang} {kind}): {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(ok, "{out}");
    assert!(out.contains("built: "), "{out}");
    let wasm = dir.join(name).join("target").join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{out}");
    wasm
}

#[test]
fn python_scaffold_builds_and_transforms() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "py-kit", "python", "transformer");
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            "field=checked",
            "--input",
            "py-kit/input.json",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("transform: 1 outputs"), "{out}");
    assert!(out.contains(r#"{"checked":true,"order":7}"#), "{out}");

    // The per-call memory limit holds for these large components too: one whose initial
    // memory (CPython's heap, ~12 MiB) exceeds it is refused at load, naming the limit.
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            "field=checked",
            "--memory-mb",
            "8",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("exceeds the limit"), "{out}");
}

#[test]
fn javascript_scaffold_builds_and_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "js-kit", "js", "destination");
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--event",
            "js-kit/event.json",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("sent #1: POST /js_kit"), "{out}");
    assert!(out.contains(r#"{"amount":42,"order":7}"#), "{out}");
    assert!(out.contains("deliver: ok"), "{out}");
}

/// The cargo target directory of this test run (`target/`), where `cargo xtask plugins`
/// built the workspace's plugins.
fn cargo_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/it-<hash> -> target
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

#[tokio::test]
async fn rust_scaffolds_build_test_and_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let target = cargo_target_dir();
    let env = [("CARGO_TARGET_DIR", target.as_path())];

    // A destination: built as scaffolded, it posts the event's data to its URL.
    let destination = scaffold_and_build_with(dir.path(), "rust-kit", "rust", "destination", &env);
    let wasm = destination.to_str().unwrap();
    let (ok, out) = run(
        dir.path(),
        &["plugin", "test", wasm, "--event", "rust-kit/event.json"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("loaded rust-kit 0.1.0 (WIT 0.1.1"), "{out}");
    assert!(out.contains("validate: ok"), "{out}");
    assert!(out.contains("sent #1: POST /rust_kit"), "{out}");
    assert!(out.contains("x-event-topic: order.paid"), "{out}");
    let body = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("body ("))
        .and_then(|l| l.split_once("): "))
        .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
        .unwrap_or_else(|| panic!("no body shown: {out}"));
    assert_eq!(body, json!({ "order": 7, "amount": 42 }), "{out}");
    assert!(out.contains("deliver: ok, status Some(200)"), "{out}");
    // Its validate names the field; a 503 is retried, as the SDK classifies it.
    let (ok, out) = run(
        dir.path(),
        &["plugin", "test", wasm, "--config", "url=ftp://x"],
    );
    assert!(!ok && out.contains("validate: config.url"), "{out}");
    let (ok, out) = run(dir.path(), &["plugin", "test", wasm, "--respond", "503"]);
    assert!(!ok && out.contains("deliver: retry"), "{out}");

    // A transformer, built into the same target directory.
    let transformer =
        scaffold_and_build_with(dir.path(), "rust-kit-map", "rust", "transformer", &env);
    let (ok, out) = run(
        dir.path(),
        &[
            "plugin",
            "test",
            transformer.to_str().unwrap(),
            "--config",
            "field=checked",
            "--input",
            "rust-kit-map/input.json",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("transform: 1 outputs"), "{out}");
    assert!(out.contains(r#"{"checked":true,"order":7}"#), "{out}");
    let (ok, out) = run(
        dir.path(),
        &["plugin", "test", transformer.to_str().unwrap()],
    );
    assert!(!ok && out.contains("validate: config.field"), "{out}");

    // Uploaded to a server, the destination is configured through the API and delivers.
    let server = TestServer::builder()
        .no_builtin_plugins()
        .allow_loopback()
        .start()
        .await;
    let res = server
        .admin(Method::POST, "/api/v1/plugins")
        .header("content-type", "application/wasm")
        .body(std::fs::read(&destination).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let sink = TestReceiver::start().await;
    let res = server
        .admin(Method::PUT, "/api/v1/tenants/kit")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = server
        .admin(Method::POST, "/api/v1/tenants/kit/destinations")
        .json(&json!({
            "type": "rust_kit",
            "topics": ["order.paid"],
            "config": { "url": sink.url("/from-scaffold") }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({ "tenant_id": "kit", "topic": "order.paid", "data": { "order": 8 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let received = eventually(
        "the scaffolded destination to deliver",
        Duration::from_secs(20),
        || async { sink.requests().into_iter().next() },
    )
    .await;
    assert_eq!(received.uri, "/from-scaffold");
    assert_eq!(received.header("x-event-topic"), "order.paid");
    assert_eq!(received.json(), json!({ "order": 8 }));
}
