//! `cargo xtask proof`: each promise Outrider makes under faults, checked against the real
//! binary with a figure. Every scenario prints `name: figure` lines and fails when its
//! promise breaks; the run fails if any scenario failed. Sizes are bounded for CI by
//! default; `--full` takes the larger sizes, `--soak` adds the hour-long soak.

mod address_guard;
mod crash;
mod faults;
mod fuzz;
mod isolation;
pub mod load;
pub mod procfs;
mod receivers;
mod scale_out;
mod secrets;
pub mod sink;
mod soak;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::process::run;
use crate::server::{Server, ServerConfig};
use crate::workspace::{cargo, Workspace};

/// Options of `cargo xtask proof`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only these scenarios.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Larger sizes than CI's (more kills, more events, longer outages).
    #[arg(long)]
    full: bool,
    /// Also run the soak: `--soak-secs` (default an hour) at half of peak throughput.
    #[arg(long)]
    soak: bool,
    /// Length of the soak in seconds.
    #[arg(long, default_value_t = 3600)]
    soak_secs: u64,
    /// PostgreSQL server for the scale-out and secrets scenarios.
    #[arg(
        long,
        env = "OUTRIDER_TEST_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres: String,
    /// Use the release binary (built with `cargo build --release`) instead of the debug one.
    #[arg(long)]
    release: bool,
    /// Use what is already built under target/ (plugins, binary).
    #[arg(long)]
    no_build: bool,
}

impl Args {
    /// What `cargo xtask test` runs: every scenario but the soak, CI sizes, the debug
    /// binary and plugins it has just built. Without a PostgreSQL server (`None`), the
    /// scenarios that need one are left out.
    pub fn ci(postgres: Option<&str>) -> Args {
        let only = match postgres {
            Some(_) => Vec::new(),
            None => <Scenario as clap::ValueEnum>::value_variants()
                .iter()
                .copied()
                .filter(|s| !matches!(s, Scenario::ScaleOut | Scenario::Secrets | Scenario::Soak))
                .collect(),
        };
        Args {
            only,
            full: false,
            soak: false,
            soak_secs: 3600,
            postgres: postgres.unwrap_or_default().to_string(),
            release: false,
            no_build: true,
        }
    }
}

/// The promises, in the order they run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// crash: kill -9 the server during a publish burst, restart; no accepted event lost.
    Crash,
    /// scale-out: two servers on one PostgreSQL, one killed mid-burst; nothing lost or
    /// claimed twice at once.
    ScaleOut,
    /// faults: fault plugins beside a healthy destination; its p99, host RSS, quarantine.
    Faults,
    /// receivers: a hanging and a 503 sink; bounded memory, schedule kept, nothing lost.
    Receivers,
    /// address-guard: blocked addresses refused at the policy layer and end to end.
    AddressGuard,
    /// isolation: every tenant-scoped endpoint with another tenant's JWT.
    Isolation,
    /// secrets: no known credential in the SQLite file, a PostgreSQL dump or the logs;
    /// key rotation.
    Secrets,
    /// fuzz: schemathesis against /api/v1/openapi.json.
    Fuzz,
    /// soak (only with --soak): RSS and latency drift at half of peak.
    Soak,
}

/// What every scenario gets.
pub struct Ctx {
    /// Workspace root.
    pub root: PathBuf,
    /// `target/`.
    pub target: PathBuf,
    /// The `outrider` binary under test.
    pub binary: PathBuf,
    /// `target/plugins` (built-in plugins, examples, test fixtures).
    pub plugins_dir: PathBuf,
    /// PostgreSQL server URL (no database).
    pub postgres: String,
    /// `--full` sizes.
    pub full: bool,
    /// Soak length.
    pub soak: Duration,
}

impl Ctx {
    /// A server of the binary under test with the built plugins, SQLite, fresh data dir,
    /// and the compiled-plugin cache the test suites share.
    pub fn server(&self) -> ServerConfig {
        ServerConfig::new(&self.binary, &self.plugins_dir).env(
            "OUTRIDER_CACHE_DIR",
            self.target
                .join("debug/test-plugin-cache")
                .to_string_lossy(),
        )
    }

    /// `ci` or `full`, whichever applies.
    pub fn size<T>(&self, ci: T, full: T) -> T {
        if self.full {
            full
        } else {
            ci
        }
    }
}

/// Prints one figure line: `name: figure`.
pub fn figure(name: &str, value: impl std::fmt::Display) {
    println!("{name}: {value}");
}

/// Starts a server with `config` and runs `scenario` against it on a fresh runtime. When
/// the scenario fails, prints the server's log tail, labelled `label`, before returning
/// the error.
fn on_server(
    label: &str,
    config: &ServerConfig,
    scenario: impl AsyncFnOnce(&Server) -> Result<()>,
) -> Result<()> {
    let server = Server::start(config)?;
    let rt = load::runtime()?;
    let result = rt.block_on(scenario(&server));
    if result.is_err() {
        eprintln!("{label}: server log tail:\n{}", server.log_tail());
    }
    result
}

/// Runs `cargo xtask proof`.
pub fn run_proof(args: &Args) -> Result<()> {
    let ws = Workspace::load()?;
    let root = ws.workspace_root.clone();
    let target = ws.target_directory.clone();
    if !args.no_build {
        crate::plugins::run(&crate::plugins::Args::default())?;
        if args.release {
            run(Command::new(cargo()).current_dir(&root).args([
                "build",
                "--release",
                "-p",
                "outrider",
                "--bin",
                "outrider",
            ]))?;
        } else {
            // The same feature set as `cargo xtask test`, so nothing is compiled twice.
            run(Command::new(cargo()).current_dir(&root).args([
                "test",
                "--workspace",
                "--no-run",
            ]))?;
        }
    }
    let ctx = Ctx {
        binary: target
            .join(if args.release { "release" } else { "debug" })
            .join("outrider"),
        plugins_dir: target.join("plugins"),
        root,
        target,
        postgres: args.postgres.clone(),
        full: args.full,
        soak: Duration::from_secs(args.soak_secs),
    };
    let selected: Vec<Scenario> = <Scenario as clap::ValueEnum>::value_variants()
        .iter()
        .copied()
        .filter(|s| {
            if args.only.is_empty() {
                *s != Scenario::Soak || args.soak
            } else {
                args.only.contains(s)
            }
        })
        .collect();
    let mut failed = Vec::new();
    for scenario in selected {
        let name = <Scenario as clap::ValueEnum>::to_possible_value(&scenario)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        println!("== proof/{name}");
        let started = Instant::now();
        let outcome = match scenario {
            Scenario::Crash => crash::run(&ctx),
            Scenario::ScaleOut => scale_out::run(&ctx),
            Scenario::Faults => faults::run(&ctx),
            Scenario::Receivers => receivers::run(&ctx),
            Scenario::AddressGuard => address_guard::run(&ctx),
            Scenario::Isolation => isolation::run(&ctx),
            Scenario::Secrets => secrets::run(&ctx),
            Scenario::Fuzz => fuzz::run(&ctx),
            Scenario::Soak => soak::run(&ctx),
        };
        match outcome {
            Ok(()) => println!(
                "proof/{name}: kept ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                println!("proof/{name}: BROKEN: {e:#}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("broken promises: {}", failed.join(", "));
    }
    Ok(())
}
