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
    let target_dir = rust_target_dir();
    match &target_dir {
        Some(dir) => println!(
            "cargo target dir: {} (shared by your plugin projects; set CARGO_TARGET_DIR to choose another)",
            dir.display()
        ),
        None => println!(
            "cargo target dir: {} (CARGO_TARGET_DIR)",
            std::env::var("CARGO_TARGET_DIR").unwrap_or_default()
        ),
    }
    rust::build(project, out, &toolchain, target_dir.as_deref())
}

/// Cargo's target directory for Rust projects: `None` when `CARGO_TARGET_DIR` is set
/// (cargo uses it), else `wasm-target` under [`tools_dir`], shared by all projects.
fn rust_target_dir() -> Option<PathBuf> {
    if std::env::var_os("CARGO_TARGET_DIR").is_some_and(|d| !d.is_empty()) {
        return None;
    }
    Some(tools_dir().join("wasm-target"))
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
