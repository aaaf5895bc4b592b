//! `gateway/relay`: the least any HTTP event gateway must do on this path, written natively
//! and measured in the same run as Outrider and the raw client. It accepts the same
//! `POST /api/v1/publish` bodies over keep-alive HTTP, parses them, answers `202`, and
//! forwards each event's `data` to the same sink over a pool of keep-alive connections.
//! No storage, no WebAssembly, no signing, no retries beyond reconnecting.
//!
//! Why it is measured: the raw ceiling is one HTTP exchange per event (client → sink),
//! while any gateway makes two (client → gateway, gateway → sink) on the same cores. The
//! relay shows what that second exchange alone costs here, so Outrider's own costs
//! (durable storage, the plugin call, signing, the attempt log) read as the gap between
//! Outrider and the relay, not between Outrider and a path no gateway can take.
//!
//! It runs as its own process (`xtask bench-relay`), like the server, so its CPU time is
//! read from `/proc` the same way.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

use super::http::Conn;

/// Forwards in flight at once (Outrider's default delivery concurrency), and the size of
/// the connection pool to the sink.
const IN_FLIGHT: usize = 256;
const POOL: usize = 64;

/// Options of the hidden `xtask bench-relay` command.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to forward events.
    #[arg(long)]
    sink: SocketAddr,
}

/// Keep-alive connections to the sink, each used by one forward at a time.
struct Pool {
    sink: SocketAddr,
    free: Mutex<Vec<Conn>>,
    slots: Semaphore,
}

impl Pool {
    async fn forward(&self, body: Bytes) {
        let _slot = self.slots.acquire().await.expect("pool open");
        let conn = self.free.lock().await.pop();
        let mut conn = match conn {
            Some(conn) => conn,
            None => match Conn::open(self.sink, None).await {
                Ok(conn) => conn,
                Err(err) => return eprintln!("relay: connecting to the sink: {err:#}"),
            },
        };
        match conn.send(Method::POST, "/hook", body).await {
            Ok(_) => self.free.lock().await.push(conn),
            Err(err) => eprintln!("relay: forwarding: {err:#}"),
        }
    }
}

struct Relay {
    pool: Pool,
    in_flight: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl Relay {
    async fn publish(self: &Arc<Self>, body: Bytes) -> Response<Full<Bytes>> {
        let event: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(event) => event,
            Err(err) => return answer(StatusCode::BAD_REQUEST, format!("body: {err}")),
        };
        let Some(data) = event.get("data") else {
            return answer(StatusCode::UNPROCESSABLE_ENTITY, "data: required".into());
        };
        let data = Bytes::from(data.to_string());
        // Backpressure as a gateway applies it: accept only what can be in flight.
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let relay = self.clone();
        tokio::spawn(async move {
            relay.pool.forward(data).await;
            drop(permit);
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        answer(
            StatusCode::ACCEPTED,
            format!(r#"{{"id":"relay-{id}","duplicate":false,"destination_ids":["relay"]}}"#),
        )
    }
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Serve until killed; prints `listening on <addr>` first.
pub fn serve(args: &Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let relay = Arc::new(Relay {
            pool: Pool {
                sink: args.sink,
                free: Mutex::new(Vec::with_capacity(POOL)),
                slots: Semaphore::new(POOL),
            },
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            next_id: AtomicU64::new(0),
        });
        loop {
            let (stream, _) = listener.accept().await.context("accepting")?;
            let _ = stream.set_nodelay(true);
            let relay = relay.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let relay = relay.clone();
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(relay.publish(body).await)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A running relay process, killed on drop.
pub struct RelayProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl RelayProcess {
    /// Start `xtask bench-relay` (this executable) forwarding to `sink`.
    pub fn start(sink: SocketAddr) -> Result<Self> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["bench-relay", "--sink", &sink.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the relay")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut first = String::new();
        std::io::BufReader::new(stdout).read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("relay said {first:?}"))?
            .parse()?;
        Ok(RelayProcess { child, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
