//! Building Outrider plugin components, shared by `cargo xtask plugins` (the plugins,
//! examples and fixtures of this repository) and `outrider plugin build` (a plugin
//! author's project), so both find toolchains and wrap components the same way.
//!
//! - [`toolchain`]: a Rust compiler able to target wasm (rustup's target, or Debian's
//!   `rustc-web` with `-Zbuild-std`), installed when missing.
//! - [`cargo`]: one `cargo build` for wasm, collecting the `.wasm` of each `cdylib`.
//! - [`rust`]: the profile and flags every Rust plugin is built with (so builds share
//!   compiled dependencies), and building one Rust project.
//! - [`component`]: wrapping a core module into a component (`wit-component`).
//! - [`js`]: JavaScript projects through `componentize-js` (npm, pinned by the
//!   project's `package-lock.json`).
//! - [`python`]: Python projects through `componentize-py` (PyPI, pinned here,
//!   installed into a virtualenv).
//! - [`project`]: recognising a project folder and reading its settings.
//!
//! Progress goes to stdout as `step: what` lines; tool output passes through.

#![deny(missing_docs)]

pub mod cargo;
pub mod component;
pub mod js;
pub mod project;
pub mod python;
pub mod rust;
pub mod toolchain;

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

/// Runs `cmd` with inherited output, failing with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = toolchain::render(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("starting {line} (is it installed?)"))?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(())
}

/// Whether `out` exists and is newer than every file under `inputs` (recursively, skipping
/// `node_modules`, `target` and `__pycache__`).
pub fn is_up_to_date(out: &Path, inputs: &[&Path]) -> bool {
    let Some(built) = modified(out) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| newest(input).is_some_and(|newest| newest <= built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Newest modification time of `path` or anything below it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut latest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            let name = entry.file_name();
            if matches!(
                name.to_str(),
                Some("node_modules" | "target" | "__pycache__" | ".venv")
            ) {
                continue;
            }
            if let Some(t) = newest(&entry.path()) {
                latest = latest.max(t);
            }
        }
    }
    Some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_date_compares_with_every_input() {
        let dir = std::env::temp_dir().join(format!("plugin-build-utd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src/node_modules")).unwrap();
        let out = dir.join("out.wasm");
        assert!(!is_up_to_date(&out, &[&dir.join("src")]));
        std::fs::write(dir.join("src/a.js"), "1").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&out, "x").unwrap();
        assert!(is_up_to_date(&out, &[&dir.join("src")]));
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Changes under node_modules do not count; changes to sources do.
        std::fs::write(dir.join("src/node_modules/dep.js"), "2").unwrap();
        assert!(is_up_to_date(&out, &[&dir.join("src")]));
        std::fs::write(dir.join("src/a.js"), "3").unwrap();
        assert!(!is_up_to_date(&out, &[&dir.join("src")]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
