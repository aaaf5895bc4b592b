//! What the server's hot writer did during a phase, from its `/metrics` counters: how
//! many batches, how large, and how long each waited for the writer connection, held it
//! and spent in COMMIT. Tells a writer-bound run from a CPU-bound one.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::Method;

use super::http::Conn;
use super::stats::line;
use crate::server::API_KEY;

/// The writer counters at one moment, by `name{kind="..."}`.
pub struct WriterCounters(HashMap<String, f64>);

const KINDS: [&str; 2] = ["publish", "outcome"];

/// Plugin calls moved to the slow lane: a delivery that did should not happen in a
/// healthy run, and would explain a latency tail.
const SLOW_LANE: &str = "outrider_plugin_calls_slow_lane_total";

impl WriterCounters {
    /// Read them from the server.
    pub async fn read(addr: SocketAddr) -> Result<Self> {
        let mut conn = Conn::open(addr, Some(&format!("Bearer {API_KEY}"))).await?;
        let (status, body) = conn.send(Method::GET, "/metrics", Bytes::new()).await?;
        if !status.is_success() {
            bail!("GET /metrics: {status}");
        }
        let text = String::from_utf8_lossy(&body);
        let counters = text
            .lines()
            .filter(|l| l.starts_with("outrider_writer_") || l.starts_with(SLOW_LANE))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
            .collect();
        Ok(WriterCounters(counters))
    }

    fn get(&self, metric: &str, kind: &str) -> f64 {
        let key = format!("outrider_writer_{metric}{{kind=\"{kind}\"}}");
        self.0.get(&key).copied().unwrap_or(0.0)
    }

    /// Print one line per kind: what happened between `before` and `self`.
    pub fn report_since(&self, before: &WriterCounters, label: &str) {
        let moved = self.0.get(SLOW_LANE).copied().unwrap_or(0.0)
            - before.0.get(SLOW_LANE).copied().unwrap_or(0.0);
        if moved > 0.0 {
            line(
                &format!("{label} plugin calls moved to the slow lane"),
                format!("{moved:.0}"),
            );
        }
        for kind in KINDS {
            let delta = |metric: &str| self.get(metric, kind) - before.get(metric, kind);
            let batches = delta("batches_total");
            if batches == 0.0 {
                continue;
            }
            let per_batch_ms = |metric: &str| delta(metric) / batches / 1000.0;
            line(
                &format!("{label} writer, {kind} batches"),
                format!(
                    "{batches:.0} of {:.1} on average; per batch {:.2} ms waiting for the writer, \
                     {:.2} ms holding it, {:.2} ms of that in COMMIT",
                    delta("batch_items_total") / batches,
                    per_batch_ms("wait_microseconds_total"),
                    per_batch_ms("hold_microseconds_total"),
                    per_batch_ms("commit_microseconds_total"),
                ),
            );
        }
    }
}
