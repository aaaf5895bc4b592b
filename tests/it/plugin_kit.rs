//! The plugin author kit on the command line: `outrider plugin test` shows what a
//! component sent to its loopback capture server, the classified result, time and memory;
//! `outrider plugin new` + `build` give JavaScript and Python projects that build as is
//! and pass `plugin test`. (The Rust scaffold builds the same way; its -Zbuild-std build
//! takes minutes, so it is not repeated here.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{plugin_path, workspace_root};

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
    let out = outrider()
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
    assert!(out.contains("WIT: outrider:plugin@0.1.0"), "{out}");
    assert!(
        out.contains("imports: ") && out.contains("outrider:plugin/http@0.1.0"),
        "{out}"
    );
    assert!(out.contains("network: hosts [], url fields [url]"), "{out}");
}

/// `plugin new` then `plugin build` in a fresh folder; returns the component's path.
fn scaffold_and_build(dir: &Path, name: &str, lang: &str, kind: &str) -> PathBuf {
    let (ok, out) = run(
        dir,
        &["plugin", "new", name, "--lang", lang, "--kind", kind],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(dir, &["plugin", "build", name]);
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
