//! Plugin-runtime benchmarks without the gateway around them, run by `cargo xtask bench`
//! (always built with `--release`: a debug build's figures mean nothing).
//!
//! - `runtime/deliver`: one `LoadedPlugin::deliver` into the `webhook` component (slot,
//!   fresh store and instance from the pooled `InstancePre`, argument lowering, the guest's
//!   settings parsing, HMAC-SHA256 signing and header building, the host `http` import,
//!   result lifting) against the same logic written natively in this file and handed to
//!   the same host transport (`HttpCapability::send`). The `http` capability has no test
//!   hook, so the transport is measured two ways:
//!   - *refused*: the target URL is `http://[::1]:9/hook`, which the address policy
//!     (`127.0.0.0/8` allowed, `::1` not) refuses inside `HttpCapability::send` after the
//!     request is parsed and before any connection: both sides do everything but I/O;
//!   - *sink*: the URL is an in-process loopback HTTP sink on its own thread; a plain
//!     `reqwest` POST of the same request to the same sink is measured too, as the floor.
//!
//!   The difference of the p50s is the cost WebAssembly adds per call. The sink also
//!   notes when each request reaches it, splitting a call into "until the request is on
//!   the wire" and "after the response", and the same calls are timed on a second
//!   runtime with `instance_reuse` on (warm instance per target, off by default).
//! - `runtime/load`: `PluginRuntime::load` (validate, compile, instantiate once for the
//!   manifest, check it) of a ~1 MiB component, then the same from the on-disk compiled
//!   cache. The component is `webhook.wasm` with real core modules (the Rust-compiled
//!   modules of the other built plugins and fixtures) appended as extra, uninstantiated
//!   module sections: wasmtime validates and compiles every module of a component, so
//!   this is 1 MiB of real code for Cranelift, unlike a custom section.
//!
//! Prints `name: figure` lines. Arguments: `--plugins-dir DIR` (default
//! `target/plugins`), `--iterations N` (calls per measured variant, default 20000),
//! `--load-reps N` (compilations timed, default 3), `--only` one of `deliver`,
//! `deliver-refused`, `deliver-sink`, `load`.

mod deliver;
mod load;
mod native;
mod stats;

use std::path::PathBuf;

use deliver::deliver_bench;
use load::load_bench;

struct Options {
    plugins_dir: PathBuf,
    iterations: usize,
    load_reps: usize,
    only: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        plugins_dir: PathBuf::from("target/plugins"),
        iterations: 20_000,
        load_reps: 3,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--plugins-dir" => options.plugins_dir = PathBuf::from(value()?),
            "--iterations" => options.iterations = value()?.parse()?,
            "--load-reps" => options.load_reps = value()?.parse()?,
            "--only" => options.only = Some(value()?),
            other => anyhow::bail!("unknown argument `{other}`"),
        }
    }
    options.iterations = options.iterations.max(100);
    options.load_reps = options.load_reps.max(1);
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: bench_runtime built without optimisations; build with --release");
    }
    let options = parse_args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let want = |name: &str| options.only.as_deref().is_none_or(|o| name.starts_with(o));
    if want("deliver-refused") || want("deliver-sink") {
        rt.block_on(deliver_bench(
            &options,
            want("deliver-refused"),
            want("deliver-sink"),
        ))?;
    }
    if want("load") {
        rt.block_on(load_bench(&options))?;
    }
    Ok(())
}
