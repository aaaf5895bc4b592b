//! `outrider plugin build [DIR]`: builds a plugin project into a component with the same
//! toolchain detection and componentize steps as `cargo xtask plugins` (both use the
//! `outrider-plugin-build` crate). The component goes to `DIR/target/NAME.wasm`.
//!
//! Rust projects build with the plugin profile and flags of the Outrider workspace into
//! one cargo target directory shared by every project of the user ([`rust_target_dir`]),
//! so the standard library (rebuilt for wasm with Debian's toolchain) and the SDK's
//! dependencies are compiled once, not once per project.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use outrider_plugin_build::project::{Language, Project};
use outrider_plugin_build::toolchain::{Choice, Toolchain};
use outrider_plugin_build::{js, python, rust};

/// Builds the project in `dir`; returns the component's path.
pub fn build(dir: &Path, out: Option<PathBuf>, toolchain: Choice) -> Result<PathBuf> {
    let started = Instant::now();
    let project = Project::open(dir)?;
    let out = out.unwrap_or_else(|| {
        project
            .dir
            .join("target")
            .join(format!("{}.wasm", project.name))
    });
    println!(
        "build: {} ({:?}) -> {}",
        project.dir.display(),
        project.language,
        out.display()
    );
    match project.language {
        Language::Rust => build_rust(&project, &out, toolchain)?,
        Language::JavaScript => {
            js::build(&project, &out)?;
        }
        Language::Python => {
            python::build(&project, &out, &tools_dir())?;
        }
    }
    let size = std::fs::metadata(&out)
        .with_context(|| format!("reading {}", out.display()))?
        .len();
    println!(
        "built: {} ({:.1} KiB) in {:.1}s",
        out.display(),
        size as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

fn build_rust(project: &Project, out: &Path, choice: Choice) -> Result<()> {
    let toolchain = Toolchain::detect(choice)?;
    println!("toolchain: {}", toolchain.describe());
    let (target_dir, shared) = rust_target_dir();
    println!(
        "cargo target dir: {}{}",
        target_dir.display(),
        if shared {
            " (shared by your plugin projects; CARGO_TARGET_DIR chooses another)"
        } else {
            " (CARGO_TARGET_DIR)"
        }
    );
    rust::build(project, out, &toolchain, Some(&target_dir))
}

/// Cargo's target directory for Rust projects and whether it is the shared default:
/// `CARGO_TARGET_DIR` when set (relative to the current folder, as cargo would take it
/// there; cargo itself runs in the project), else `wasm-target` under [`tools_dir`],
/// shared by all projects.
fn rust_target_dir() -> (PathBuf, bool) {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let dir = std::env::current_dir().map_or(dir.clone(), |cwd| cwd.join(dir));
            (dir, false)
        }
        None => (tools_dir().join("wasm-target"), true),
    }
}

/// Where build tools (componentize-py's virtualenv) and the Rust target directory are
/// kept, shared by all projects: `$XDG_CACHE_HOME/outrider` or `~/.cache/outrider`.
fn tools_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("outrider")
}
