//! Compiling all plugin crates for wasm in one cargo invocation (so the standard
//! library, when rebuilt, is built once) and collecting the `.wasm` each produced.

use super::discover::WasmCrate;
use crate::workspace::Workspace;
use anyhow::Result;
use outrider_plugin_build::rust::PROFILE;
use outrider_plugin_build::toolchain::Toolchain;
use std::collections::HashMap;
use std::path::PathBuf;

/// Builds `crates` with the plugin profile (`[profile.plugin]` of the root `Cargo.toml`,
/// the profile `outrider plugin build` uses too) and returns each crate's `.wasm` output by manifest path.
pub fn build(
    toolchain: &Toolchain,
    ws: &Workspace,
    crates: &[WasmCrate],
) -> Result<HashMap<PathBuf, PathBuf>> {
    let mut cmd = toolchain.cargo_build();
    cmd.current_dir(&ws.workspace_root)
        .args(["--profile", PROFILE])
        .arg("--target-dir")
        .arg(&ws.target_directory);
    for c in crates {
        cmd.args(["-p", &c.package]);
    }
    let expected: Vec<_> = crates.iter().map(|c| c.manifest_path.as_path()).collect();
    outrider_plugin_build::cargo::build_cdylibs(cmd, &expected)
}
