//! `cargo xtask test`: everything CI runs, in order: plugin components, the server binary,
//! the Rust unit and end-to-end tests (on SQLite, then again on PostgreSQL), the Python
//! tests with Outpost's SDK and the Standard Webhooks verifier, and `cargo xtask proof` at
//! CI sizes against the binary built for the tests (`--no-proof` skips it).

use crate::process::run;
use crate::workspace::{cargo, Workspace};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `cargo xtask test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// PostgreSQL server for the second run of the end-to-end suite.
    #[arg(
        long,
        env = "OUTRIDER_TEST_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres: String,
    /// Skip the PostgreSQL run (and the proof scenarios that need PostgreSQL).
    #[arg(long)]
    no_postgres: bool,
    /// Skip the Python tests.
    #[arg(long)]
    no_python: bool,
    /// Skip `cargo xtask proof` (run at CI sizes after the tests, on what they built).
    #[arg(long)]
    no_proof: bool,
}

/// Runs `cargo xtask test`.
pub fn run_all(args: &Args) -> Result<()> {
    let ws = Workspace::load()?;
    let root = &ws.workspace_root;
    crate::plugins::run(&crate::plugins::Args::default())?;
    // One feature set for everything: building the binary on its own (`-p outrider`) would
    // resolve shared dependencies differently and compile them twice. The host's
    // integration tests make `cargo test` build `target/debug/outrider` as well.
    run(Command::new(cargo())
        .current_dir(root)
        .args(["test", "--workspace", "--no-run"]))?;
    // Every plugin compiled once into the cache the test servers share, before any test
    // starts one (the JavaScript and Python examples take tens of seconds of CPU).
    let target = &ws.target_directory;
    crate::plugins::warm_cache(
        &target.join("debug/outrider"),
        &target.join("plugins"),
        &target.join("debug/test-plugin-cache"),
    )?;
    run(Command::new(cargo())
        .current_dir(root)
        .args(["test", "--workspace"]))?;
    if !args.no_postgres {
        println!(
            "== end-to-end suite again on PostgreSQL ({})",
            args.postgres
        );
        run(Command::new(cargo())
            .current_dir(root)
            .args(["test", "-p", "outrider-tests"])
            .env("OUTRIDER_TEST_POSTGRES", &args.postgres))?;
    }
    if !args.no_python {
        python_tests(root, &ws.target_directory)?;
    }
    if !args.no_proof {
        println!("== cargo xtask proof (CI sizes)");
        let postgres = (!args.no_postgres).then_some(args.postgres.as_str());
        if postgres.is_none() {
            println!("(--no-postgres: without the scale-out and secrets scenarios)");
        }
        crate::proof::run_proof(&crate::proof::Args::ci(postgres))?;
    }
    Ok(())
}

/// A virtualenv under `target/` with the pinned test clients, then pytest.
fn python_tests(root: &Path, target: &Path) -> Result<()> {
    let venv = python_venv(root, target)?;
    run(Command::new(venv.join("bin/python"))
        .current_dir(root.join("tests/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .env("OUTRIDER_BIN", target.join("debug/outrider")))
}

/// `target/venv` with `tests/python/requirements.txt` installed (again only when the
/// requirements changed).
pub(crate) fn python_venv(root: &Path, target: &Path) -> Result<PathBuf> {
    let venv = target.join("venv");
    let requirements = root.join("tests/python/requirements.txt");
    let stamp = venv.join("requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).context("reading tests/python/requirements.txt")?;
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}
