//! Command line: `outrider serve | plugin inspect|new|build|test | migrate | keys rotate |
//! net check`.

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
    /// Network tools for operators.
    #[command(subcommand)]
    Net(NetCommand),
}

#[derive(Subcommand)]
enum NetCommand {
    /// Run URLs through the address guard deliveries use, without connecting to anything.
    Check(crate::net_check::CheckArgs),
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
    /// Create a plugin project that builds as is.
    New(NewArgs),
    /// Build a plugin project into a component (DIR/target/NAME.wasm).
    Build(BuildArgs),
    /// Run validate and deliver (or transform) against a loopback capture server.
    Test(TestArgs),
}

#[derive(Args)]
struct NewArgs {
    /// Project name (lowercase letters, digits, `-`); also the folder created.
    name: String,
    /// What the plugin provides.
    #[arg(long, value_enum, default_value = "destination")]
    kind: crate::plugin_kit::scaffold::Kind,
    /// Language of the project.
    #[arg(long, value_enum, default_value = "rust")]
    lang: crate::plugin_kit::scaffold::Lang,
    /// Folder to create [default: ./NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `sdk/` folder of an Outrider source tree (Rust projects depend on it by path)
    /// [default: the one this binary was built from].
    #[arg(long, env = "OUTRIDER_SDK_PATH")]
    sdk: Option<PathBuf>,
}

#[derive(Args)]
struct BuildArgs {
    /// Project folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component [default: DIR/target/NAME.wasm].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Rust toolchain: rustup's wasm target, Debian's rustc-web, or whichever is there.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "OUTRIDER_WASM_TOOLCHAIN"
    )]
    toolchain: outrider_plugin_build::toolchain::Choice,
}

#[derive(Args)]
struct TestArgs {
    /// Path to the `.wasm` component.
    file: PathBuf,
    /// Prototype to test (may be left out when the plugin has only one).
    #[arg(long)]
    prototype: Option<String>,
    /// Config entry `key=value` (repeatable); `{capture}` is the capture server's URL.
    /// URL fields left out point at the capture server.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Credential entry `key=value` (repeatable).
    #[arg(long = "credential", value_name = "KEY=VALUE")]
    credentials: Vec<String>,
    /// Event to deliver: JSON file with `id`, `topic`, `data`, `metadata` (or just data).
    #[arg(long)]
    event: Option<PathBuf>,
    /// Transformer input JSON file [default: the --event file].
    #[arg(long)]
    input: Option<PathBuf>,
    /// HTTP status the capture server answers with.
    #[arg(long, default_value_t = 200)]
    respond: u16,
    /// Linear memory cap per call, in MiB (the server's default is 64).
    #[arg(long, default_value_t = 64)]
    memory_mb: usize,
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
        Command::Net(NetCommand::Check(args)) => run_async(crate::net_check::run(args)),
        Command::Plugin(PluginCommand::New(args)) => new_project(args),
        Command::Plugin(PluginCommand::Build(args)) => {
            crate::plugin_kit::build::build(&args.dir, args.out, args.toolchain).map(|_| ())
        }
        Command::Plugin(PluginCommand::Test(args)) => run_async(crate::plugin_kit::trial::run(
            crate::plugin_kit::trial::Trial {
                file: args.file,
                prototype: args.prototype,
                config: args.config,
                credentials: args.credentials,
                event: args.event,
                input: args.input,
                respond: args.respond,
                memory_mb: args.memory_mb,
            },
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn new_project(args: NewArgs) -> anyhow::Result<()> {
    use crate::plugin_kit::scaffold;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let new = scaffold::NewProject {
        name: args.name,
        kind: args.kind,
        lang: args.lang,
        dir: dir.clone(),
        sdk: args.sdk.unwrap_or_else(scaffold::default_sdk_path),
    };
    for file in scaffold::create(&new)? {
        println!("created {}", dir.join(file).display());
    }
    println!(
        "next: outrider plugin build {0} && outrider plugin test {0}/target/{1}.wasm --event {0}/event.json",
        dir.display(),
        new.name
    );
    Ok(())
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
