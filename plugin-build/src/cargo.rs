//! One `cargo build` for wasm (the standard library, when rebuilt, is built once for all
//! crates), collecting the `.wasm` each `cdylib` produced from cargo's JSON messages.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::toolchain::render;

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

/// Runs `cmd` (a `cargo build` for a wasm target, packages and profile chosen by the
/// caller), showing diagnostics as they come, and returns each `cdylib`'s `.wasm` by
/// manifest path. Fails unless every manifest in `expected` produced one.
pub fn build_cdylibs(mut cmd: Command, expected: &[&Path]) -> Result<HashMap<PathBuf, PathBuf>> {
    cmd.arg("--message-format=json-render-diagnostics");
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
        bail!("{} failed ({status})", render(&cmd));
    }
    for manifest in expected {
        if !outputs.contains_key(*manifest) {
            bail!(
                "cargo reported no .wasm for {}; is it a `cdylib` (`[lib] crate-type = [\"cdylib\"]`)?",
                manifest.display()
            );
        }
    }
    Ok(outputs)
}
