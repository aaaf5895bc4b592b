//! `runtime/load`: `PluginRuntime::load` of a ~1 MiB component (`webhook.wasm` padded
//! with real core modules), compiled and then from the on-disk cache.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outrider::runtime::{LoadedPlugin, PluginRuntime, RuntimeConfig};

use crate::stats::{line, Samples};
use crate::Options;

/// Top-level sections of a component or module: (id, content).
fn sections(bytes: &[u8]) -> anyhow::Result<Vec<(u8, &[u8])>> {
    anyhow::ensure!(bytes.len() >= 8 && &bytes[..4] == b"\0asm", "not wasm");
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let (size, used) = read_leb(&bytes[at..])?;
        at += used;
        let end = at + size as usize;
        anyhow::ensure!(end <= bytes.len(), "truncated section");
        out.push((id, &bytes[at..end]));
        at = end;
    }
    Ok(out)
}

fn read_leb(bytes: &[u8]) -> anyhow::Result<(u32, usize)> {
    let mut value = 0u32;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    anyhow::bail!("bad LEB128")
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Whether `bytes` is a core module (version 1, layer 0) rather than a component.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// The core modules inside the components (and the core modules) under `dir`.
fn core_modules(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("fixtures")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "wasm") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut modules = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if is_core_module(&bytes) {
            modules.push((name, bytes));
            continue;
        }
        // Not every file is a component (the rejection fixtures include random bytes).
        let Ok(sections) = sections(&bytes) else {
            continue;
        };
        for (i, (id, content)) in sections.into_iter().enumerate() {
            // Component section 1 is a core module; skip the small adapter shims.
            if id == 1 && content.len() > 16 * 1024 {
                modules.push((format!("{name}#{i}"), content.to_vec()));
            }
        }
    }
    Ok(modules)
}

/// `webhook.wasm` plus appended core-module sections up to at least `size` bytes.
fn padded_component(dir: &Path, size: usize) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut out = std::fs::read(dir.join("webhook.wasm"))?;
    let modules = core_modules(dir)?;
    anyhow::ensure!(
        !modules.is_empty(),
        "no core modules found under {}",
        dir.display()
    );
    let mut used = Vec::new();
    // Distinct modules first, then again in the same order (each copy is compiled anew).
    for (name, module) in modules.iter().cycle() {
        if out.len() >= size {
            break;
        }
        out.push(1);
        write_leb(&mut out, module.len() as u32);
        out.extend_from_slice(module);
        used.push(name.clone());
    }
    Ok((out, used))
}

pub async fn load_bench(options: &Options) -> anyhow::Result<()> {
    let (component, used) = padded_component(&options.plugins_dir, 1024 * 1024)?;
    let webhook = std::fs::read(options.plugins_dir.join("webhook.wasm"))?;
    line(
        "runtime/load/component",
        format!(
            "{} KiB: webhook.wasm ({} KiB) + {} appended core modules ({})",
            component.len() / 1024,
            webhook.len() / 1024,
            used.len(),
            used.join(", ")
        ),
    );
    let tmp = std::env::temp_dir().join(format!("outrider-bench-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let cache_dir = tmp.join("cache");
    let result = load_bench_in(options, &component, &webhook, &cache_dir).await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// `PluginRuntime::load` of `bytes`, timed.
async fn timed_load(
    rt: &PluginRuntime,
    bytes: &[u8],
) -> anyhow::Result<(Duration, Arc<LoadedPlugin>)> {
    let start = Instant::now();
    let plugin = rt.load(bytes).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((start.elapsed(), plugin))
}

async fn load_bench_in(
    options: &Options,
    component: &[u8],
    webhook: &[u8],
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let uncached = PluginRuntime::new(RuntimeConfig::default())?;

    // Plain webhook.wasm for scale.
    let mut small = Vec::new();
    for _ in 0..options.load_reps {
        small.push(timed_load(&uncached, webhook).await?.0.as_nanos() as u64);
    }
    let small = Samples::new(small);

    let mut big = Vec::new();
    for _ in 0..options.load_reps {
        big.push(timed_load(&uncached, component).await?.0.as_nanos() as u64);
    }
    let big = Samples::new(big);
    line(
        "runtime/load/webhook.wasm validate+compile p50 (ms)",
        format!("{:.1}", small.ms(50.0)),
    );
    line(
        "runtime/load/1MiB validate+compile p50 (ms, target < 300)",
        format!(
            "{:.1} (min {:.1}, {} runs)",
            big.ms(50.0),
            big.ms(0.0),
            big.0.len()
        ),
    );

    let serialized = compile_alone(options, component)?;
    cache_bench(options, component, cache_dir, &big, serialized).await
}

/// Just the wasmtime part (validation + Cranelift), without the runtime's checks and the
/// manifest call, on the runtime's own engine settings, and once with Cranelift's
/// optimiser off for comparison. Returns the size of the serialised artifact.
fn compile_alone(options: &Options, component: &[u8]) -> anyhow::Result<usize> {
    let engine = outrider::runtime::engine::build_engine(&RuntimeConfig::default())?;
    let mut alone = Vec::new();
    let mut compiled = None;
    for _ in 0..options.load_reps {
        let start = Instant::now();
        let c = wasmtime::component::Component::new(&engine, component)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        alone.push(start.elapsed().as_nanos() as u64);
        compiled = Some(c);
    }
    let alone = Samples::new(alone);
    line(
        "runtime/load/1MiB wasmtime Component::new alone p50 (ms)",
        format!(
            "{:.1} (Cranelift, parallel compilation on {} CPUs)",
            alone.ms(50.0),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    );
    let compiled = compiled.expect("at least one compilation");

    // For comparison: the same compilation with Cranelift's optimiser off (not what the
    // runtime uses; faster to compile, slower code).
    let mut quick = wasmtime::Config::new();
    quick
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::None)
        .parallel_compilation(true);
    let quick_engine = wasmtime::Engine::new(&quick).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let start = Instant::now();
    wasmtime::component::Component::new(&quick_engine, component)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    line(
        "runtime/load/1MiB Component::new with Cranelift opt_level=none, for comparison (ms)",
        format!("{:.1}", start.elapsed().as_secs_f64() * 1e3),
    );
    let serialized = compiled
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .len();
    Ok(serialized)
}

/// The cache: first load compiles and stores; later loads (fresh runtimes on the same
/// directory, as after a restart) deserialize. `compiled` is the uncached compilation
/// time, for the ratio.
async fn cache_bench(
    options: &Options,
    component: &[u8],
    cache_dir: &Path,
    compiled: &Samples,
    serialized: usize,
) -> anyhow::Result<()> {
    let cached = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache_dir.to_path_buf()),
        ..RuntimeConfig::default()
    })?;
    let (first, plugin) = timed_load(&cached, component).await?;
    anyhow::ensure!(!plugin.from_cache, "the first load came from the cache");
    drop(plugin);
    line(
        "runtime/load/1MiB compile+store in cache (ms)",
        format!(
            "{:.1} ({} KiB artifact)",
            first.as_secs_f64() * 1e3,
            serialized / 1024
        ),
    );
    let reps = (options.load_reps * 7).max(10);
    let mut hits = Vec::new();
    for _ in 0..reps {
        let rt = PluginRuntime::new(RuntimeConfig {
            cache_dir: Some(cache_dir.to_path_buf()),
            ..RuntimeConfig::default()
        })?;
        let (took, plugin) = timed_load(&rt, component).await?;
        anyhow::ensure!(
            plugin.from_cache,
            "a later load did not come from the cache"
        );
        hits.push(took.as_nanos() as u64);
    }
    let hits = Samples::new(hits);
    line(
        "runtime/load/1MiB from cache p50/max (ms, target < 10)",
        format!("{:.2} / {:.2}", hits.ms(50.0), hits.ms(100.0)),
    );
    line(
        "runtime/load/compile/cache ratio",
        format!("{:.0}x", compiled.pct(50.0) / hits.pct(50.0)),
    );
    Ok(())
}
