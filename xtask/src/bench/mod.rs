//! `cargo xtask bench`: performance figures measured as ratios within one run.
//!
//! - `runtime/deliver` and `runtime/load` run in `host/examples/bench_runtime.rs` (they
//!   need the runtime's own types): a WebAssembly `deliver` call against the same logic
//!   compiled natively, and compiling a ~1 MiB component against loading it from the
//!   compiled cache.
//! - `examples/*` run in `host/examples/bench_examples.rs`: load time (compile and
//!   cached) and per-call cost of the Rust, JavaScript and Python plugin examples.
//! - `gateway/*` (module [`gateway`]) runs the release `outrider` binary against a
//!   loopback sink in this process and compares it with POSTing the same bodies straight
//!   to the sink.
//! - `broker/rabbitmq` (module [`broker`]) publishes through the release binary to
//!   RabbitMQ via the `rabbitmq` plugin and compares it with native publishers sending
//!   the same messages with confirms (lapin, and the plugin's own codec on bare sockets);
//!   it also reports every process's CPU per event and handshakes per 10,000 events.
//!
//! - `smoke/aws_sqs` publishes through the release binary into moto_server's SQS and reads
//!   every message back: a correctness check, not a speed figure (moto is the bottleneck).
//!
//! Everything is built with `--release`. The load generator and sink are hyper code
//! monomorphised in this crate, which `cargo xtask` builds unoptimised, so a debug xtask
//! builds `xtask` in release and hands over to it (`--no-build`).
//!
//! No figure here is asserted: absolute times depend on the machine and on whatever else
//! runs on it. Read the ratios.

mod broker;
mod ceiling;
mod gateway;
pub(crate) mod http;
pub(crate) mod relay;
mod stats;
mod writer;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::process::run;
use crate::workspace::{cargo, Workspace};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CI-scale smoke run: small sizes, a few seconds per scenario.
    #[arg(long)]
    quick: bool,
    /// Events published in the gateway throughput run [default: 20000; --quick: 2000].
    #[arg(long)]
    events: Option<usize>,
    /// Concurrent keep-alive publishing clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Calls timed per variant in runtime/deliver [default: 20000; --quick: 1000].
    #[arg(long)]
    iterations: Option<usize>,
    /// Seconds of the open-loop latency run [default: 10; --quick: 2].
    #[arg(long)]
    latency_secs: Option<f64>,
    /// Also run the gateway scenario on PostgreSQL at this server URL (a fresh database
    /// is created with `psql` and dropped afterwards), e.g.
    /// postgres://postgres@127.0.0.1:5432.
    #[arg(long)]
    postgres: Option<String>,
    /// RabbitMQ (guest/guest) for the broker scenario.
    #[arg(long, default_value = "127.0.0.1:5672")]
    rabbitmq: std::net::SocketAddr,
    /// Run only these scenarios.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Use what is already built under target/ (plugins, release binaries).
    #[arg(long)]
    no_build: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// runtime/deliver: a WebAssembly deliver call vs the same logic native.
    Deliver,
    /// runtime/load: compiling a ~1 MiB component vs loading it from the cache.
    Load,
    /// gateway/*: end-to-end throughput and latency vs the raw loopback ceiling.
    Gateway,
    /// examples/*: load time and per-call cost of the Rust, JavaScript and Python plugin
    /// examples (componentize-js and componentize-py components are 12-18 MB).
    Examples,
    /// broker/rabbitmq: events/s into RabbitMQ through Outrider vs a native publisher.
    Broker,
    /// smoke/aws_sqs: events through the `aws_sqs` plugin into moto_server, all read back.
    Sqs,
}

/// Runs `cargo xtask bench`.
pub fn run_bench(args: &Args) -> Result<()> {
    let ws = Workspace::load()?;
    let root = &ws.workspace_root;
    let target = &ws.target_directory;
    if !args.no_build {
        crate::plugins::run(&crate::plugins::Args::default())?;
        run(Command::new(cargo()).current_dir(root).args([
            "build",
            "--release",
            "-p",
            "outrider",
            "--bin",
            "outrider",
            "--example",
            "bench_runtime",
            "--example",
            "bench_examples",
        ]))?;
        if cfg!(debug_assertions) {
            run(Command::new(cargo()).current_dir(root).args([
                "build",
                "--release",
                "-p",
                "xtask",
            ]))?;
            let mut release = Command::new(target.join("release").join("xtask"));
            release
                .current_dir(root)
                .args(std::env::args_os().skip(1))
                .arg("--no-build");
            let status = release.status().context("starting the release xtask")?;
            if !status.success() {
                bail!("the release xtask failed with {status}");
            }
            return Ok(());
        }
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this xtask is unoptimised; the gateway load generator will be slow");
    }
    let want = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    let started = Instant::now();
    let plugins_dir = target.join("plugins");
    println!(
        "# cargo xtask bench{}: {} CPUs, load average {}",
        if args.quick { " --quick" } else { "" },
        stats::cpus(),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    );

    if want(Scenario::Deliver) || want(Scenario::Load) {
        let iterations = args
            .iterations
            .unwrap_or(if args.quick { 1000 } else { 20_000 });
        let mut cmd = Command::new(target.join("release/examples/bench_runtime"));
        cmd.current_dir(root)
            .arg("--plugins-dir")
            .arg(&plugins_dir)
            .arg("--iterations")
            .arg(iterations.to_string())
            .arg("--load-reps")
            .arg(if args.quick { "1" } else { "3" });
        match (want(Scenario::Deliver), want(Scenario::Load)) {
            (true, false) => {
                cmd.args(["--only", "deliver"]);
            }
            (false, true) => {
                cmd.args(["--only", "load"]);
            }
            _ => {}
        }
        let status = cmd.status().context("starting bench_runtime")?;
        if !status.success() {
            bail!("bench_runtime failed with {status}");
        }
    }

    if want(Scenario::Examples) {
        let mut cmd = Command::new(target.join("release/examples/bench_examples"));
        cmd.current_dir(root)
            .arg("--plugins-dir")
            .arg(&plugins_dir)
            .arg("--calls")
            .arg(if args.quick { "30" } else { "300" });
        let status = cmd.status().context("starting bench_examples")?;
        if !status.success() {
            bail!("bench_examples failed with {status}");
        }
    }

    if want(Scenario::Gateway) {
        let events = args
            .events
            .unwrap_or(if args.quick { 2000 } else { 20_000 })
            .max(100);
        let latency = args
            .latency_secs
            .unwrap_or(if args.quick { 2.0 } else { 10.0 });
        let mut options = gateway::Options {
            binary: gateway::binary(target),
            plugins_dir: plugins_dir.clone(),
            events,
            concurrency: args.concurrency.max(1),
            latency_run: Duration::from_secs_f64(latency.max(0.5)),
            database_url: None,
            label: "gateway".into(),
            raw: true,
        };
        check_built(&options.binary)?;
        let outcome = gateway::run(&options, None)?;
        if let Some(url) = &args.postgres {
            let (db_url, name) = crate::server::create_postgres_database(url)?;
            options.database_url = Some(db_url);
            options.label = "gateway/postgres".into();
            let result = gateway::run(&options, outcome.ceilings);
            let dropped = crate::server::drop_postgres_database(url, &name);
            result?;
            dropped?;
        }
    }
    if want(Scenario::Broker) {
        let options = broker::Options {
            binary: gateway::binary(target),
            plugins_dir: plugins_dir.clone(),
            events: args
                .events
                .unwrap_or(if args.quick { 2000 } else { 20_000 })
                .max(100),
            concurrency: args.concurrency.max(1),
            broker: args.rabbitmq,
        };
        check_built(&options.binary)?;
        broker::run(&options)?;
    }
    if want(Scenario::Sqs) {
        sqs_smoke(root, target, if args.quick { 100 } else { 500 })?;
    }
    println!("# done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Correctness smoke through a real SQS API (moto_server), run by
/// `tests/python/bench_sqs_smoke.py` with the pinned boto3 and moto of the test venv.
fn sqs_smoke(root: &Path, target: &Path, events: usize) -> Result<()> {
    let binary = gateway::binary(target);
    check_built(&binary)?;
    let venv = crate::test::python_venv(root, target)?;
    run(Command::new(venv.join("bin/python"))
        .current_dir(root.join("tests/python"))
        .arg("bench_sqs_smoke.py")
        .arg("--binary")
        .arg(&binary)
        .arg("--plugins-dir")
        .arg(target.join("plugins"))
        .arg("--events")
        .arg(events.to_string()))
}

fn check_built(binary: &Path) -> Result<()> {
    if !binary.exists() {
        bail!(
            "{} is missing: run without --no-build, or `cargo build --release -p outrider`",
            binary.display()
        );
    }
    Ok(())
}
