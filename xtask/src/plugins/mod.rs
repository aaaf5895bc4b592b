//! `cargo xtask plugins`: build every plugin, example and test fixture into a
//! WebAssembly component.
//!
//! 1. [`discover`] finds the crates (workspace members under `plugins/`, `examples/`,
//!    `tests/fixtures/`) and the JavaScript and Python examples.
//! 2. `toolchain` (from `outrider-plugin-build`, shared with `outrider plugin build`)
//!    picks rustup's wasm target or Debian's toolchain.
//! 3. [`build`] compiles all crates in one cargo invocation (`--profile plugin`).
//! 4. [`componentize`] wraps each core module into a component:
//!    `target/plugins/NAME.wasm`, `target/plugins/fixtures/NAME.wasm`, plus the
//!    rejection fixtures `core-module.wasm` and `random-bytes.wasm`.
//! 5. JavaScript examples are built by componentize-js (`npm install --no-save` from the
//!    lock first) and Python examples by componentize-py (installed into
//!    `target/componentize-py`), into `target/plugins/NAME.wasm` next to the built-in
//!    plugins, so servers started on `target/plugins` (tests, `cargo xtask run`) load them.
//!    They embed a JavaScript engine or a Python interpreter (12-18 MB, seconds of compile
//!    each); a server compiles them once into its compiled-code cache (`cache_dir`, shared
//!    by the test servers) and loads them from there afterwards.
//! 6. With `--list`, [`inspect`] prints each component's imports and exports.
//!
//! [`warm_cache`] compiles them all once into a compiled-plugin cache (`cargo xtask test`
//! does so for the cache its test servers share).

mod build;
mod componentize;
mod discover;
mod inspect;
mod warm;

pub use warm::warm_cache;

use crate::workspace::{relative, Workspace};
use anyhow::{Context, Result};
use discover::{Group, WasmCrate};
use outrider_plugin_build::project::{Language, Project};
use outrider_plugin_build::toolchain;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `cargo xtask plugins`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the WIT interfaces each component imports and exports.
    #[arg(long)]
    list: bool,
    /// Toolchain to build with.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "OUTRIDER_WASM_TOOLCHAIN"
    )]
    toolchain: toolchain::Choice,
}

impl Default for Args {
    /// The options of a bare `cargo xtask plugins` (environment variables still apply), for
    /// subcommands that build the plugins first.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Bare {
            #[command(flatten)]
            args: Args,
        }
        <Bare as clap::Parser>::parse_from(["plugins"]).args
    }
}

/// Crate whose core module becomes the `core-module.wasm` rejection fixture.
const CORE_MODULE_SOURCE: &str = "webhook";

/// One file written (or found up to date) under `target/plugins/`.
struct Written {
    path: PathBuf,
    rebuilt: bool,
}

/// Runs `cargo xtask plugins`.
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let ws = Workspace::load()?;
    let root = &ws.workspace_root;
    let found = discover::discover(&ws)?;
    for skipped in &found.skipped {
        println!(
            "skip: {}: {}",
            relative(&skipped.dir, root).display(),
            skipped.reason
        );
    }

    let out_dir = ws.target_directory.join("plugins");
    let fixtures_dir = out_dir.join("fixtures");
    let mut written = Vec::new();
    let mut core_module_source = None;
    if found.crates.is_empty() {
        println!("build: no plugin crates found");
    } else {
        let toolchain = toolchain::Toolchain::detect(args.toolchain)?;
        println!("toolchain: {}", toolchain.describe());
        let modules = build::build(&toolchain, &ws, &found.crates)?;
        for c in &found.crates {
            let module = &modules[&c.manifest_path];
            let out = component_path(&out_dir, c);
            let rebuilt = componentize::componentize(module, &out)
                .with_context(|| format!("component for `{}`", c.package))?;
            written.push(Written { path: out, rebuilt });
            if c.group == Group::Plugin && c.name == CORE_MODULE_SOURCE {
                core_module_source = Some(module.clone());
            }
        }
    }

    for dir in &found.scripted {
        written.push(build_scripted(dir, &out_dir, &ws.target_directory)?);
    }
    remove_old_examples_dir(&out_dir.join("examples"))?;

    let core_module = fixtures_dir.join("core-module.wasm");
    let rebuilt = componentize::write_core_module(core_module_source.as_deref(), &core_module)?;
    written.push(Written {
        path: core_module,
        rebuilt,
    });
    let random = fixtures_dir.join("random-bytes.wasm");
    let rebuilt = componentize::write_random_bytes(&random)?;
    written.push(Written {
        path: random,
        rebuilt,
    });

    for w in &written {
        summarize(root, w)?;
        if args.list {
            list(&w.path)?;
        }
    }
    let rebuilt = written.iter().filter(|w| w.rebuilt).count();
    println!(
        "plugins: {} files in {} ({} written, {} up to date) in {:.1}s",
        written.len(),
        relative(&out_dir, root).display(),
        rebuilt,
        written.len() - rebuilt,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds a JavaScript or Python example into `out_dir/NAME.wasm`.
fn build_scripted(dir: &Path, out_dir: &Path, target: &Path) -> Result<Written> {
    let project = Project::open(dir)?;
    let out = out_dir.join(format!("{}.wasm", project.name));
    let rebuilt = match project.language {
        Language::JavaScript => outrider_plugin_build::js::build(&project, &out),
        Language::Python => outrider_plugin_build::python::build(&project, &out, target),
        Language::Rust => unreachable!("Rust examples are workspace members"),
    }
    .with_context(|| format!("building {}", dir.display()))?;
    Ok(Written { path: out, rebuilt })
}

/// Earlier builds wrote the JavaScript and Python examples to `target/plugins/examples/`;
/// remove what they left there so no stale copy is uploaded by mistake.
fn remove_old_examples_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    if std::fs::remove_dir(dir).is_ok() {
        println!(
            "removed {} (examples now build into its parent)",
            dir.display()
        );
    }
    Ok(())
}

fn component_path(out_dir: &Path, c: &WasmCrate) -> PathBuf {
    let file = format!("{}.wasm", c.name);
    match c.group {
        Group::Plugin | Group::Example => out_dir.join(file),
        Group::Fixture => out_dir.join("fixtures").join(file),
    }
}

fn summarize(root: &Path, w: &Written) -> Result<()> {
    let size = std::fs::metadata(&w.path)
        .with_context(|| format!("reading {}", w.path.display()))?
        .len();
    let name = w.path.file_stem().unwrap_or_default().to_string_lossy();
    println!(
        "  {:<16} {:>10}  {}{}",
        name,
        human_size(size),
        relative(&w.path, root).display(),
        if w.rebuilt { "" } else { "  (up to date)" }
    );
    Ok(())
}

fn list(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if wasmparser::Parser::is_core_wasm(&bytes) {
        println!("      (core module, not a component)");
        return Ok(());
    }
    if !wasmparser::Parser::is_component(&bytes) {
        println!("      (not WebAssembly)");
        return Ok(());
    }
    match inspect::interfaces(&bytes) {
        Ok(found) => {
            for i in &found.imports {
                println!("      import {i}");
            }
            for e in &found.exports {
                println!("      export {e}");
            }
        }
        Err(e) => println!("      not a component: {e:#}"),
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.00 MiB");
    }
}
