//! `cargo xtask`: project tasks that need more than plain `cargo`.
//!
//! Each subcommand lives in its own module; this file only parses the command line and
//! dispatches.

mod bench;
mod plugins;
mod process;
mod proof;
mod run;
mod server;
mod test;
mod workspace;

use clap::{Parser, Subcommand};

/// Project tasks for Outrider.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure performance as ratios in one run: a WASM deliver call vs native, compile vs
    /// compiled cache, and the gateway vs a raw loopback HTTP client (release builds).
    Bench(bench::Args),
    /// Build every plugin, example and test fixture into WebAssembly components under
    /// `target/plugins/`.
    Plugins(plugins::Args),
    /// Build the plugins and the server, then serve on 127.0.0.1:3333 with the built-in
    /// plugins and the embedded SQLite store under ./data.
    Run(run::Args),
    /// Check each promise (no lost event, tenant isolation, plugin faults contained,
    /// secrets at rest, address guard, API schema) against the real binary, one figure
    /// per line.
    Proof(proof::Args),
    /// Run every test CI runs: plugin builds, unit tests, end-to-end tests on SQLite and
    /// PostgreSQL, and the Python client tests.
    Test(test::Args),
    /// The bench's native relay ceiling (started by `cargo xtask bench`).
    #[command(hide = true)]
    BenchRelay(bench::relay::Args),
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Bench(args) => bench::run_bench(&args),
        Command::Plugins(args) => plugins::run(&args),
        Command::Proof(args) => proof::run_proof(&args),
        Command::Run(args) => run::serve(&args),
        Command::Test(args) => test::run_all(&args),
        Command::BenchRelay(args) => bench::relay::serve(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
