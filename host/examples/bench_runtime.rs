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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use outrider::runtime::capabilities::http::{HttpCapability, HttpConfig, OutboundRequest};
use outrider::runtime::manifest::NetworkAccess;
use outrider::runtime::network::{HostAllowlist, NetworkPolicy};
use outrider::runtime::{
    Delivered, DeliveryFailure, Event, LoadedPlugin, PluginRuntime, PrototypeKind, RuntimeConfig,
    Target,
};
use serde_json::{json, Value};
use sha2::Sha256;

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

// ---------------------------------------------------------------------------------------
// Statistics

/// Sorted samples in nanoseconds.
struct Samples(Vec<u64>);

impl Samples {
    fn new(mut v: Vec<u64>) -> Self {
        v.sort_unstable();
        Samples(v)
    }

    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)] as f64
    }

    fn us(&self, p: f64) -> f64 {
        self.pct(p) / 1000.0
    }

    fn ms(&self, p: f64) -> f64 {
        self.pct(p) / 1e6
    }
}

fn line(name: &str, figure: impl std::fmt::Display) {
    println!("{name}: {figure}");
}

// ---------------------------------------------------------------------------------------
// runtime/deliver

/// When the sink last saw a request, in [`since_origin`] nanoseconds.
static ARRIVAL: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since the first call (a clock shared by the measuring and sink threads).
fn since_origin() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A loopback HTTP sink answering `200 ok` to everything, on its own thread and runtime
/// so it does not share the measuring thread.
fn start_sink() -> anyhow::Result<SocketAddr> {
    since_origin();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("bench-sink".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("sink runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(|| async {
                    ARRIVAL.store(since_origin(), Ordering::Relaxed);
                    "ok"
                });
                axum::serve(listener, app).await.expect("sink");
            });
        })?;
    Ok(addr)
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn bench_event() -> Event {
    let data = json!({
        "order": {"id": "ord_01J9Z8K4", "amount": 1999, "currency": "EUR"},
        "customer": {"id": "cus_42", "email": "someone@example.com"},
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    });
    Event {
        id: "evt_01j9z8k4q6v3m2x1c0b9n8r7t6".into(),
        tenant_id: "bench".into(),
        topic: "order.paid".into(),
        time_ms: 1_700_000_000_000,
        metadata: BTreeMap::from([("source".to_string(), "bench".to_string())]),
        data: data.to_string(),
        attempt: 1,
    }
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `webhook` plugin's `deliver` (Outpost signature mode), written natively: read the
/// settings, sign `<timestamp>.<body>` with HMAC-SHA256, build the headers, send through
/// the host's HTTP capability, map the response.
async fn native_deliver(
    http: &HttpCapability,
    network: &NetworkAccess,
    target: &Target,
    event: &Event,
) -> Result<Delivered, DeliveryFailure> {
    let misconfigured = |message: &str| DeliveryFailure::Misconfigured {
        message: message.to_string(),
        status_code: None,
        response_body: None,
    };
    let config = &target.config;
    let url = config
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| misconfigured("url"))?;
    let mode = config
        .get("signature_mode")
        .and_then(Value::as_str)
        .unwrap_or("outpost");
    if mode != "outpost" {
        return Err(misconfigured("signature_mode"));
    }
    let mut custom: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(Value::Object(map)) = config.get("custom_headers") {
        for (k, v) in map {
            custom.insert(
                k,
                v.as_str().ok_or_else(|| misconfigured("custom_headers"))?,
            );
        }
    }
    let secret = target.credentials.get("secret").and_then(Value::as_str);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let timestamp = (now_ms / 1000).to_string();
    let body = event.data.as_bytes();

    let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
    headers.push(("content-type".into(), "application/json".into()));
    for (k, v) in custom {
        headers.push((k.to_string(), v.to_string()));
    }
    headers.push(("x-outpost-event-id".into(), event.id.clone()));
    headers.push(("x-outpost-timestamp".into(), timestamp.clone()));
    headers.push(("x-outpost-topic".into(), event.topic.clone()));
    if let Some(secret) = secret {
        let sig = hmac_hex(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
        headers.push(("x-outpost-signature".into(), format!("v0={sig}")));
    }
    let mut metadata = BTreeMap::new();
    for (k, v) in target.delivery_metadata.iter().chain(&event.metadata) {
        metadata.insert(k.to_ascii_lowercase(), v);
    }
    for (k, v) in metadata {
        if is_token(&k) && !["event-id", "timestamp", "topic", "signature"].contains(&k.as_str()) {
            headers.push((format!("x-outpost-{k}"), v.clone()));
        }
    }
    let request = OutboundRequest {
        method: "POST".into(),
        url: url.to_string(),
        headers,
        body: body.to_vec(),
        timeout: None,
        follow_redirects: false,
    };
    let allowlist = HostAllowlist::for_target(network, config);
    match http
        .send(request, &allowlist, Duration::from_secs(10))
        .await
    {
        Ok(r) if (200..300).contains(&r.status) => Ok(Delivered {
            status_code: Some(r.status),
            response_body: Some(String::from_utf8_lossy(&r.body).into_owned()),
        }),
        Ok(r) => Err(DeliveryFailure::Retry {
            message: format!("HTTP {}", r.status),
            status_code: Some(r.status),
            response_body: Some(String::from_utf8_lossy(&r.body).into_owned()),
            retry_after: None,
        }),
        Err(outrider::runtime::capabilities::http::HttpFailure::Denied(reason)) => {
            Err(DeliveryFailure::Denied(reason))
        }
        Err(other) => Err(DeliveryFailure::Retry {
            message: other.to_string(),
            status_code: None,
            response_body: None,
            retry_after: None,
        }),
    }
}

fn target_for(plugin: &LoadedPlugin, url: &str) -> anyhow::Result<Target> {
    let mut config = json!({"url": url});
    let mut credentials = json!({"secret": SECRET});
    let problems = plugin.normalize(
        PrototypeKind::Destination,
        "webhook",
        &mut config,
        &mut credentials,
    )?;
    anyhow::ensure!(problems.is_empty(), "webhook config refused: {problems:?}");
    Ok(Target {
        prototype: "webhook".into(),
        id: "des_bench".into(),
        tenant_id: "bench".into(),
        config,
        credentials,
        delivery_metadata: BTreeMap::new(),
    })
}

/// Time `iterations` calls of each variant, interleaved in blocks so that drift (other
/// processes, frequency changes) hits every variant alike. Returns per variant the call
/// times and, for calls that reached the sink, the time from the call's start to the
/// sink's handler.
async fn interleaved<F>(variants: usize, iterations: usize, mut call: F) -> Vec<(Samples, Samples)>
where
    F: AsyncFnMut(usize) -> bool,
{
    const BLOCK: usize = 500;
    // Warm-up: pool slots, connections, caches.
    for v in 0..variants {
        for _ in 0..(iterations / 10).clamp(200, 2000) {
            call(v).await;
        }
    }
    let mut samples: Vec<(Vec<u64>, Vec<u64>)> = (0..variants)
        .map(|_| {
            (
                Vec::with_capacity(iterations),
                Vec::with_capacity(iterations),
            )
        })
        .collect();
    let mut done = 0;
    while done < iterations {
        let n = BLOCK.min(iterations - done);
        for (v, (total, to_sink)) in samples.iter_mut().enumerate() {
            for _ in 0..n {
                let started = since_origin();
                let start = Instant::now();
                let ok = call(v).await;
                let elapsed = start.elapsed().as_nanos() as u64;
                assert!(ok, "variant {v} returned an unexpected outcome");
                total.push(elapsed);
                let arrival = ARRIVAL.load(Ordering::Relaxed);
                if arrival > started {
                    to_sink.push(arrival - started);
                }
            }
        }
        done += n;
    }
    samples
        .into_iter()
        .map(|(a, b)| (Samples::new(a), Samples::new(b)))
        .collect()
}

async fn deliver_bench(options: &Options, refused: bool, sink: bool) -> anyhow::Result<()> {
    let wasm = std::fs::read(options.plugins_dir.join("webhook.wasm"))?;
    let runtime = PluginRuntime::new(RuntimeConfig {
        allow_networks: vec!["127.0.0.0/8".parse()?],
        ..RuntimeConfig::default()
    })?;
    let plugin = runtime
        .load(&wasm)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let network = plugin
        .prototype(PrototypeKind::Destination, "webhook")
        .ok_or_else(|| anyhow::anyhow!("webhook.wasm has no webhook prototype"))?
        .network
        .clone();
    // The same client configuration the runtime builds, with the same policy.
    let http = HttpCapability::new(
        NetworkPolicy::new(vec!["127.0.0.0/8".parse()?]),
        HttpConfig::default(),
    )?;
    let event = bench_event();
    let n = options.iterations;

    if refused {
        deliver_refused(&plugin, &http, &network, &event, n).await?;
    }
    if sink {
        // The same component on a runtime that keeps warm instances per target (opt-in,
        // `instance_reuse`), to show what instantiation and teardown cost.
        let reuse_runtime = PluginRuntime::new(RuntimeConfig {
            allow_networks: vec!["127.0.0.0/8".parse()?],
            instance_reuse: 1000,
            ..RuntimeConfig::default()
        })?;
        let reusing = reuse_runtime
            .load(&wasm)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        deliver_sink(&plugin, &reusing, &http, &network, &event, n).await?;
    }
    Ok(())
}

/// Transport refused before any connection: everything but I/O.
async fn deliver_refused(
    plugin: &LoadedPlugin,
    http: &HttpCapability,
    network: &NetworkAccess,
    event: &Event,
    n: usize,
) -> anyhow::Result<()> {
    let refused = target_for(plugin, "http://[::1]:9/hook")?;
    let is_denied =
        |r: &Result<Delivered, DeliveryFailure>| matches!(r, Err(DeliveryFailure::Denied(_)));
    let r = interleaved(2, n, async |v| match v {
        0 => is_denied(&plugin.deliver(&refused, event).await),
        _ => is_denied(&native_deliver(http, network, &refused, event).await),
    })
    .await;
    let (wasm_r, native_r) = (&r[0].0, &r[1].0);
    line(
        "runtime/deliver/refused wasm p50/p99 (us)",
        format!("{:.1} / {:.1}", wasm_r.us(50.0), wasm_r.us(99.0)),
    );
    line(
        "runtime/deliver/refused native p50/p99 (us)",
        format!("{:.1} / {:.1}", native_r.us(50.0), native_r.us(99.0)),
    );
    line(
        "runtime/deliver/refused added by wasm at p50 (us, target < 5)",
        format!("{:.1}", wasm_r.us(50.0) - native_r.us(50.0)),
    );
    line(
        "runtime/deliver/refused wasm/native p50 ratio",
        format!("{:.2}", wasm_r.pct(50.0) / native_r.pct(50.0)),
    );

    Ok(())
}

/// Through a loopback sink on another thread.
async fn deliver_sink(
    plugin: &LoadedPlugin,
    reusing: &LoadedPlugin,
    http: &HttpCapability,
    network: &NetworkAccess,
    event: &Event,
    n: usize,
) -> anyhow::Result<()> {
    let sink = start_sink()?;
    let url = format!("http://{sink}/hook");
    let to_sink = target_for(plugin, &url)?;
    let raw = reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()?;
    let raw_headers = {
        // The headers the webhook sends, precomputed: the floor is transport only.
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("content-type", "application/json".parse()?);
        h.insert("x-outpost-event-id", event.id.parse()?);
        h.insert("x-outpost-timestamp", "1700000000".parse()?);
        h.insert("x-outpost-topic", event.topic.parse()?);
        h.insert(
            "x-outpost-signature",
            format!(
                "v0={}",
                hmac_hex(SECRET.as_bytes(), &[b"1700000000.", event.data.as_bytes()])
            )
            .parse()?,
        );
        h.insert("x-outpost-source", "bench".parse()?);
        h
    };
    let body = bytes::Bytes::from(event.data.clone());
    let sink_n = (n / 2).max(100);
    let r = interleaved(4, sink_n, async |v| match v {
        0 => plugin.deliver(&to_sink, event).await.is_ok(),
        1 => native_deliver(http, network, &to_sink, event).await.is_ok(),
        2 => reusing.deliver(&to_sink, event).await.is_ok(),
        _ => match raw
            .post(&url)
            .headers(raw_headers.clone())
            .body(body.clone())
            .send()
            .await
        {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        },
    })
    .await;
    let (wasm_s, native_s, reuse_s, raw_s) = (&r[0].0, &r[1].0, &r[2].0, &r[3].0);
    line(
        "runtime/deliver/sink wasm p50/p99 (us)",
        format!("{:.1} / {:.1}", wasm_s.us(50.0), wasm_s.us(99.0)),
    );
    line(
        "runtime/deliver/sink native p50/p99 (us)",
        format!("{:.1} / {:.1}", native_s.us(50.0), native_s.us(99.0)),
    );
    line(
        "runtime/deliver/sink plain reqwest p50/p99 (us)",
        format!("{:.1} / {:.1}", raw_s.us(50.0), raw_s.us(99.0)),
    );
    line(
        "runtime/deliver/sink call start -> request at sink p50: wasm / native / reqwest (us)",
        format!(
            "{:.1} / {:.1} / {:.1}",
            r[0].1.us(50.0),
            r[1].1.us(50.0),
            r[3].1.us(50.0)
        ),
    );
    line(
        "runtime/deliver/sink added by wasm at p50 (us, target < 5)",
        format!("{:.1}", wasm_s.us(50.0) - native_s.us(50.0)),
    );
    line(
        "runtime/deliver/sink wasm/native p50 ratio",
        format!("{:.2}", wasm_s.pct(50.0) / native_s.pct(50.0)),
    );
    line(
        "runtime/deliver/sink wasm with instance_reuse p50/p99 (us)",
        format!("{:.1} / {:.1}", reuse_s.us(50.0), reuse_s.us(99.0)),
    );
    line(
        "runtime/deliver/sink added by wasm with instance_reuse at p50 (us)",
        format!("{:.1}", reuse_s.us(50.0) - native_s.us(50.0)),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// runtime/load

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

async fn load_bench(options: &Options) -> anyhow::Result<()> {
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

async fn load_bench_in(
    options: &Options,
    component: &[u8],
    webhook: &[u8],
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let uncached = PluginRuntime::new(RuntimeConfig::default())?;
    let load = |rt: &PluginRuntime, bytes: Vec<u8>| {
        let rt = rt.clone();
        async move {
            let start = Instant::now();
            let plugin = rt.load(&bytes).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::Ok((start.elapsed(), plugin))
        }
    };

    // Plain webhook.wasm for scale.
    let mut small = Vec::new();
    for _ in 0..options.load_reps {
        small.push(load(&uncached, webhook.to_vec()).await?.0.as_nanos() as u64);
    }
    let small = Samples::new(small);

    let mut big = Vec::new();
    for _ in 0..options.load_reps {
        big.push(load(&uncached, component.to_vec()).await?.0.as_nanos() as u64);
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

    // Just the wasmtime part (validation + Cranelift), without the runtime's checks and
    // the manifest call, on the runtime's own engine settings.
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

    // The cache: first load compiles and stores; later loads (fresh runtimes on the same
    // directory, as after a restart) deserialize.
    let cached = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache_dir.to_path_buf()),
        ..RuntimeConfig::default()
    })?;
    let (first, plugin) = load(&cached, component.to_vec()).await?;
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
        let (took, plugin) = load(&rt, component.to_vec()).await?;
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
        format!("{:.0}x", big.pct(50.0) / hits.pct(50.0)),
    );
    Ok(())
}
