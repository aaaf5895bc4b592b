//! A minimal HTTP/1.1 client (one keep-alive connection per client task) and the loopback
//! sink that receives deliveries, both on hyper.
//!
//! Bodies carry `"run"`, `"seq"` and `"t"` (microseconds since [`clock`]'s origin, when
//! the request left the load generator); the sink counts each `seq` of the current run
//! once and records `now - t`, so latency is measured on one monotonic clock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Microseconds since this process's benchmark clock started.
pub fn clock() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    auth: Option<String>,
}

impl Conn {
    /// Connect to `addr`; `auth` is sent as `Authorization` on every request.
    pub async fn open(addr: SocketAddr, auth: Option<&str>) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
            auth: auth.map(str::to_string),
        })
    }

    /// Send one request with a JSON body and read the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth);
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// The JSON event data of one benchmark message (~200 bytes).
pub fn event_data(run: u64, seq: usize, t: u64) -> String {
    format!(
        r#"{{"run":{run},"seq":{seq},"t":{t},"order":{{"id":"ord_{seq:08}","amount":1999,"currency":"EUR"}},"customer":{{"id":"cus_42","email":"someone@example.com"}},"note":"padding to make the body a realistic size for a webhook"}}"#
    )
}

/// The unsigned integer after `"key":` in `body`.
fn field(body: &[u8], key: &str) -> Option<u64> {
    let pattern = format!("\"{key}\":");
    let at = body
        .windows(pattern.len())
        .position(|w| w == pattern.as_bytes())?
        + pattern.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// What the sink saw during the current run.
#[derive(Default)]
pub struct Phase {
    pub run: u64,
    pub expect: usize,
    seen: Vec<bool>,
    pub unique: usize,
    pub duplicates: usize,
    pub stray: usize,
    /// Receive time minus send time, microseconds, per unique message.
    pub latencies_us: Vec<u64>,
    /// When the last unique message of the run arrived ([`clock`] microseconds).
    pub last_at: u64,
}

/// Shared sink state.
#[derive(Default)]
pub struct Sink {
    phase: Mutex<Phase>,
}

impl Sink {
    /// Start counting run `run`, expecting `expect` messages numbered `0..expect`.
    pub fn reset(&self, run: u64, expect: usize) {
        let mut p = self.phase.lock().expect("sink lock");
        *p = Phase {
            run,
            expect,
            seen: vec![false; expect],
            latencies_us: Vec::with_capacity(expect),
            ..Phase::default()
        };
    }

    /// Messages of the current run received so far (each counted once).
    pub fn unique(&self) -> usize {
        self.phase.lock().expect("sink lock").unique
    }

    /// Take what the current run recorded.
    pub fn take(&self) -> Phase {
        std::mem::take(&mut *self.phase.lock().expect("sink lock"))
    }

    fn record(&self, body: &[u8]) {
        let now = clock();
        let (Some(run), Some(seq), Some(t)) =
            (field(body, "run"), field(body, "seq"), field(body, "t"))
        else {
            self.phase.lock().expect("sink lock").stray += 1;
            return;
        };
        let mut p = self.phase.lock().expect("sink lock");
        let seq = seq as usize;
        if run != p.run || seq >= p.expect {
            p.stray += 1;
        } else if p.seen[seq] {
            p.duplicates += 1;
        } else {
            p.seen[seq] = true;
            p.unique += 1;
            p.latencies_us.push(now.saturating_sub(t));
            p.last_at = now;
        }
    }

    /// Wait until `expect` messages arrived or `timeout` passed without progress; returns
    /// whether all arrived.
    pub async fn wait_all(&self, timeout: Duration) -> bool {
        let mut last = (self.unique(), Instant::now());
        loop {
            let (unique, expect) = {
                let p = self.phase.lock().expect("sink lock");
                (p.unique, p.expect)
            };
            if unique >= expect {
                return true;
            }
            if unique != last.0 {
                last = (unique, Instant::now());
            } else if last.1.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Start the sink on a loopback port: every request is answered `200` with an empty body
/// once its body has been read and recorded.
pub async fn start_sink(sink: Arc<Sink>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let sink = sink.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let sink = sink.clone();
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            sink.record(&body);
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_in_any_key_order() {
        let body = event_data(3, 17, 123_456);
        assert_eq!(field(body.as_bytes(), "run"), Some(3));
        assert_eq!(field(body.as_bytes(), "seq"), Some(17));
        assert_eq!(field(body.as_bytes(), "t"), Some(123_456));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let reordered = value.to_string();
        assert_eq!(field(reordered.as_bytes(), "seq"), Some(17));
    }
}
