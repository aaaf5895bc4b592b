//! `cargo xtask bench --only examples`: what the plugin examples cost. For the Rust
//! (`rust-destination`), JavaScript (`js-destination`, componentize-js) and Python
//! (`python-transformer`, componentize-py) components, all built into
//! `target/plugins/NAME.wasm` by `cargo xtask plugins`: load time (validate
//! and compile, then from the compiled cache), and the per-call cost of `deliver` (to a
//! loopback capture server) or `transform`, each call on a fresh instance as the server
//! runs them, with the peak linear memory a call used. Ratios are against the Rust
//! example, measured in the same run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outrider::plugin_kit::capture::CaptureServer;
use outrider::runtime::{Event, LoadedPlugin, PluginRuntime, RuntimeConfig, Target};
use serde_json::json;

struct Options {
    plugins_dir: PathBuf,
    calls: usize,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        plugins_dir: PathBuf::from("target/plugins"),
        calls: 300,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--plugins-dir" => options.plugins_dir = PathBuf::from(value()?),
            "--calls" => options.calls = value()?.parse()?,
            other => anyhow::bail!("unknown argument `{other}`"),
        }
    }
    options.calls = options.calls.max(10);
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: bench_examples built without optimisations; build with --release");
    }
    let options = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&options))
}

/// p50 and p99 of `samples`, in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() - 1) as f64 * p).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}

struct Figures {
    name: &'static str,
    call_p50_us: f64,
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let sink = CaptureServer::start(200).await?;
    let cases = [
        ("rust", "rust-destination.wasm", "chat_webhook"),
        ("js", "js-destination.wasm", "js_webhook"),
        ("python", "python-transformer.wasm", "py_reshape"),
    ];
    let mut figures = Vec::new();
    for (name, file, prototype) in cases {
        let path = options.plugins_dir.join(file);
        if !path.is_file() {
            println!(
                "examples/{name}: {} missing (cargo xtask plugins)",
                path.display()
            );
            continue;
        }
        figures.push(bench_one(name, &path, prototype, &sink, options.calls).await?);
    }
    if let Some(rust) = figures.iter().find(|f| f.name == "rust") {
        for f in figures.iter().filter(|f| f.name != "rust") {
            println!(
                "examples/{}/call p50 vs rust deliver p50: {:.1}x",
                f.name,
                f.call_p50_us / rust.call_p50_us
            );
        }
    }
    Ok(())
}

async fn bench_one(
    name: &'static str,
    path: &Path,
    prototype: &str,
    sink: &CaptureServer,
    calls: usize,
) -> anyhow::Result<Figures> {
    let bytes = std::fs::read(path)?;
    let cache =
        std::env::temp_dir().join(format!("outrider-bench-ex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let config = |cache_dir: Option<PathBuf>| RuntimeConfig {
        cache_dir,
        allow_networks: vec!["127.0.0.0/8".parse().expect("cidr")],
        max_instances: 16,
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    let plugin = PluginRuntime::new(config(Some(cache.clone())))?
        .load(&bytes)
        .await?;
    let compile = started.elapsed();
    let started = Instant::now();
    let cached = PluginRuntime::new(config(Some(cache.clone())))?
        .load(&bytes)
        .await?;
    let from_cache = started.elapsed();
    assert!(cached.from_cache, "second load must come from the cache");
    let _ = std::fs::remove_dir_all(&cache);
    println!(
        "examples/{name}/load: {:.2} MiB component, validate+compile {:.0} ms, from cache {:.0} ms",
        bytes.len() as f64 / (1024.0 * 1024.0),
        compile.as_secs_f64() * 1000.0,
        from_cache.as_secs_f64() * 1000.0
    );

    let target = target_for(&plugin, prototype, &sink.url())?;
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls {
        let started = Instant::now();
        call(&plugin, &target, i).await?;
        samples.push(started.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    let what = if name == "python" {
        "transform"
    } else {
        "deliver"
    };
    println!(
        "examples/{name}/{what} per call (fresh instance): p50 {p50:.0} us, p99 {p99:.0} us, {:.0} calls/s serial; peak memory {:.1} MiB",
        1e6 / p50,
        plugin.peak_memory() as f64 / (1024.0 * 1024.0)
    );
    Ok(Figures {
        name,
        call_p50_us: p50,
    })
}

fn target_for(plugin: &LoadedPlugin, prototype: &str, url: &str) -> anyhow::Result<Target> {
    let kind = plugin
        .manifest
        .prototypes
        .iter()
        .find(|p| p.id == prototype)
        .ok_or_else(|| anyhow::anyhow!("no prototype {prototype}"))?
        .kind;
    let mut config = match prototype {
        "py_reshape" => json!({ "keep": "order", "split_on": "items" }),
        _ => json!({ "url": format!("{url}/bench") }),
    };
    let mut credentials = json!({});
    let errors = plugin.normalize(kind, prototype, &mut config, &mut credentials)?;
    anyhow::ensure!(errors.is_empty(), "{errors:?}");
    Ok(Target {
        prototype: prototype.into(),
        id: "des_bench".into(),
        tenant_id: "bench".into(),
        config,
        credentials,
        ..Target::default()
    })
}

async fn call(plugin: &LoadedPlugin, target: &Target, i: usize) -> anyhow::Result<()> {
    if target.prototype == "py_reshape" {
        let input = json!({ "order": i, "drop": true, "items": [1, 2, 3] });
        let outputs = plugin.transform(target, &input).await?;
        anyhow::ensure!(outputs.len() == 3, "{outputs:?}");
    } else {
        let event = Event {
            id: format!("evt_{i}"),
            tenant_id: "bench".into(),
            topic: "order.paid".into(),
            time_ms: 1,
            data: r#"{"customer":"Ada","amount":42}"#.into(),
            attempt: 1,
            ..Event::default()
        };
        plugin.deliver(target, &event).await?;
    }
    Ok(())
}
