//! `cargo xtask`: project tasks that need more than plain `cargo`.
//!
//! Each subcommand lives in its own module; this file only parses the command line and
//! dispatches.

mod plugins;
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
    /// Build every plugin, example and test fixture into WebAssembly components under
    /// `target/plugins/`.
    Plugins(plugins::Args),
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Plugins(args) => plugins::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
