//! `runtime/deliver`: one `LoadedPlugin::deliver` into the `webhook` component against
//! the same logic written natively, with the transport refused or through a loopback sink.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use outrider::runtime::capabilities::http::{HttpCapability, HttpConfig};
use outrider::runtime::manifest::NetworkAccess;
use outrider::runtime::network::NetworkPolicy;
use outrider::runtime::{
    Delivered, DeliveryFailure, Event, LoadedPlugin, PluginRuntime, PrototypeKind, RuntimeConfig,
    Target,
};
use serde_json::json;

use crate::native::{hmac_hex, native_deliver};
use crate::stats::{line, Samples};
use crate::Options;

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

pub async fn deliver_bench(options: &Options, refused: bool, sink: bool) -> anyhow::Result<()> {
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
    let raw_headers = raw_headers(event)?;
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

/// The headers the webhook sends, precomputed for the plain `reqwest` floor: the floor is
/// transport only.
fn raw_headers(event: &Event) -> anyhow::Result<reqwest::header::HeaderMap> {
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
    Ok(h)
}
