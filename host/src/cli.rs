//! Command line: `outrider serve | plugin inspect | migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::ServeConfig;

#[derive(Parser)]
#[command(
    name = "outrider",
    version,
    about = "Self-hosted event gateway with WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and delivery workers.
    Serve(ServeArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate(ServeArgs),
    /// Manage the keys that encrypt secrets at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-encrypt every secret under the first key of OUTRIDER_ENCRYPTION_KEY.
    Rotate(ServeArgs),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate a component and print its manifest.
    Inspect {
        /// Path to the `.wasm` component.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Flags of `serve`; each also comes from `OUTRIDER_<NAME>` or `outrider.toml`.
#[derive(Args, Serialize, Default)]
struct ServeArgs {
    /// Configuration file (default: ./outrider.toml when present).
    #[arg(long, env = "OUTRIDER_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [env: OUTRIDER_LISTEN] [default: 127.0.0.1:3333].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Data directory [env: OUTRIDER_DATA_DIR] [default: ./data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Directory of built-in plugin components [env: OUTRIDER_PLUGINS_DIR].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    plugins_dir: Option<PathBuf>,
    /// PostgreSQL URL; SQLite when absent [env: OUTRIDER_DATABASE_URL].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Comma-separated CIDRs plugins may reach [env: OUTRIDER_ALLOW_NETWORKS].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_networks: Option<String>,
    /// Log format, pretty or json [env: OUTRIDER_LOG_FORMAT].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// Start without an admin key: every request is admin. Development only.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_dev: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            load(&args).and_then(|config| run_async(crate::server::serve(config)))
        }
        Command::Migrate(args) => {
            load(&args).and_then(|config| run_async(crate::server::migrate(config)))
        }
        Command::Keys(KeysCommand::Rotate(args)) => {
            load(&args).and_then(|config| run_async(crate::keys::rotate(config)))
        }
        Command::Plugin(PluginCommand::Inspect { file, json }) => {
            run_async(crate::inspect::inspect(file, json))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    ServeConfig::load(args.config.as_deref(), args)
}

fn run_async<F: std::future::Future<Output = anyhow::Result<()>>>(future: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
