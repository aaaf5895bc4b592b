//! Wrapping core modules into components and writing them safely.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use wit_component::ComponentEncoder;

/// The component for `bytes`: wrapped by `ComponentEncoder` (validated) from a core module
/// with `component-type` custom sections, or unchanged if it already is a component
/// (`wasm32-wasip2`, componentize-js and componentize-py builds).
pub fn encode(bytes: &[u8]) -> Result<Vec<u8>> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    ComponentEncoder::default()
        .module(bytes)?
        .validate(true)
        .encode()
}

/// Reads the core module (or component) at `module` and writes its component to `out`.
pub fn componentize_file(module: &Path, out: &Path) -> Result<()> {
    let bytes = fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let component =
        encode(&bytes).with_context(|| format!("componentizing {}", module.display()))?;
    write(out, &component)
}

/// A temporary file next to `out`, unique to this process (two builds of one tree may
/// run at once), renamed over `out` when complete.
pub fn temp_path(out: &Path) -> std::path::PathBuf {
    out.with_extension(format!("wasm.{}.tmp", std::process::id()))
}

/// Writes through a temporary file so a reader never sees half a component.
pub fn write(out: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = crate::component::temp_path(out);
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
}
