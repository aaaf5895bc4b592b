//! Compiling all plugin crates for wasm in one cargo invocation (so the standard
//! library, when rebuilt, is built once) and collecting the `.wasm` each produced.

use super::discover::WasmCrate;
use super::toolchain::{render, Toolchain};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

/// Cargo profile for plugins, defined in the root `Cargo.toml`.
pub const PROFILE: &str = "plugin";

/// The part of cargo's `compiler-artifact` JSON message used here.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: PathBuf,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    target: Option<MessageTarget>,
}

#[derive(Deserialize)]
struct MessageTarget {
    kind: Vec<String>,
}

/// Builds `crates` and returns each crate's `.wasm` output by manifest path.
pub fn build(
    toolchain: &Toolchain,
    ws: &Workspace,
    crates: &[WasmCrate],
) -> Result<HashMap<PathBuf, PathBuf>> {
    let mut cmd = toolchain.cargo_build();
    cmd.current_dir(&ws.workspace_root)
        .args([
            "--profile",
            PROFILE,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--target-dir")
        .arg(&ws.target_directory);
    for c in crates {
        cmd.args(["-p", &c.package]);
    }
    println!("build: {}", render(&cmd));

    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", render(&cmd)))?;
    let stdout = child.stdout.take().context("no stdout from cargo")?;
    let mut outputs = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo output")?;
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            // Build scripts may print plain lines; pass them on.
            println!("{line}");
            continue;
        };
        let is_cdylib = msg
            .target
            .as_ref()
            .is_some_and(|t| t.kind.iter().any(|k| k == "cdylib"));
        if msg.reason != "compiler-artifact" || !is_cdylib {
            continue;
        }
        if let Some(wasm) = msg
            .filenames
            .into_iter()
            .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        {
            outputs.insert(msg.manifest_path, wasm);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build for {} failed ({status})", toolchain.target());
    }
    for c in crates {
        if !outputs.contains_key(&c.manifest_path) {
            bail!(
                "cargo reported no .wasm for `{}`; is it a `cdylib`?",
                c.package
            );
        }
    }
    Ok(outputs)
}
