//! `outrider plugin build [DIR]`: builds a plugin project into a component with the same
//! toolchain detection and componentize steps as `cargo xtask plugins` (both use the
//! `outrider-plugin-build` crate). The component goes to `DIR/target/NAME.wasm`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use outrider_plugin_build::project::{Language, Project};
use outrider_plugin_build::toolchain::{Choice, Toolchain};
use outrider_plugin_build::{cargo, component, js, python};

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
    let manifest = project.dir.join("Cargo.toml");
    let mut cmd = toolchain.cargo_build();
    cmd.current_dir(&project.dir)
        .arg("--release")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(project.dir.join("target"));
    let outputs = cargo::build_cdylibs(cmd, &[&manifest])?;
    let module = outputs.values().next().context("cargo built no .wasm")?;
    println!("componentize: {} -> {}", module.display(), out.display());
    component::componentize_file(module, out)
}

/// Where downloaded build tools (componentize-py's virtualenv) are kept, shared by all
/// projects: `$XDG_CACHE_HOME/outrider` or `~/.cache/outrider`.
fn tools_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("outrider")
}
