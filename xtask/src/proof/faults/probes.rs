//! What the faults scenario watches besides latency: uploading a plugin as
//! `application/wasm`, the server's resident memory, and when each plugin shows up as
//! quarantined in `GET /api/v1/plugins`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::super::load::Api;
use super::super::procfs::rss_kib;
use crate::server::API_KEY;

/// `POST /api/v1/plugins` with the component bytes as `application/wasm`.
pub async fn upload(addr: SocketAddr, bytes: Vec<u8>) -> Result<Value> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/plugins")
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {API_KEY}"))
        .header(CONTENT_TYPE, "application/wasm")
        .body(Full::new(Bytes::from(bytes)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::CREATED {
        bail!(
            "POST /api/v1/plugins: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Samples the server's resident memory every 100 ms; `stop` answers the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { stop, peak, task }
    }

    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// Polls `GET /api/v1/plugins` every 250 ms and notes when each plugin was first seen
/// quarantined.
pub struct QuarantineWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl QuarantineWatch {
    pub fn start(api: Api, plugin_ids: BTreeMap<&'static str, String>) -> QuarantineWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
        let (s, found) = (stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(listing) = api.ok(Method::GET, "/api/v1/plugins", None).await {
                    let now = Instant::now();
                    let models = listing["models"].as_array().cloned().unwrap_or_default();
                    for (name, id) in &plugin_ids {
                        let q = models
                            .iter()
                            .any(|m| m["id"] == id.as_str() && m["quarantined"] == true);
                        if q {
                            found
                                .lock()
                                .expect("quarantine watch")
                                .entry(name.to_string())
                                .or_insert(now);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        QuarantineWatch { stop, seen, task }
    }

    pub async fn stop(self) -> BTreeMap<String, Instant> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let seen = self.seen.lock().expect("quarantine watch");
        seen.clone()
    }
}
