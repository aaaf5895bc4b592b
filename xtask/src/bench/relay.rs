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
//! The broker bench uses it too, forwarding to RabbitMQ with the native AMQP publisher
//! (confirms, a pool of connections) instead of to the HTTP sink.
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

use super::broker::Amqp;
use super::http::Conn;

/// Forwards in flight at once (Outrider's default delivery concurrency), and the size of
/// the connection pool to the HTTP sink.
const IN_FLIGHT: usize = 256;
const POOL: usize = 64;

/// Options of the hidden `xtask bench-relay` command: where to forward events.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// POST each event's data to `http://SINK/hook`.
    #[arg(long, conflicts_with = "amqp")]
    sink: Option<SocketAddr>,
    /// Or publish it to this RabbitMQ (guest/guest), default exchange, with confirms...
    #[arg(long, requires = "queue")]
    amqp: Option<SocketAddr>,
    /// ...routed to this queue...
    #[arg(long)]
    queue: Option<String>,
    /// ...over this many connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

/// Where the relay forwards to.
#[derive(Clone, Debug)]
pub enum Forward {
    /// The HTTP sink, over [`POOL`] keep-alive connections.
    Http { sink: SocketAddr },
    /// A RabbitMQ queue, each publish confirmed, over `connections` connections.
    Amqp {
        broker: SocketAddr,
        queue: String,
        connections: usize,
    },
}

impl Forward {
    fn from_args(args: &Args) -> Result<Self> {
        match (args.sink, args.amqp, &args.queue) {
            (Some(sink), None, _) => Ok(Forward::Http { sink }),
            (None, Some(broker), Some(queue)) => Ok(Forward::Amqp {
                broker,
                queue: queue.clone(),
                connections: args.connections.max(1),
            }),
            _ => anyhow::bail!("give --sink, or --amqp with --queue"),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Forward::Http { sink } => vec!["--sink".into(), sink.to_string()],
            Forward::Amqp {
                broker,
                queue,
                connections,
            } => vec![
                "--amqp".into(),
                broker.to_string(),
                "--queue".into(),
                queue.clone(),
                "--connections".into(),
                connections.to_string(),
            ],
        }
    }

    fn connections(&self) -> usize {
        match self {
            Forward::Http { .. } => POOL,
            Forward::Amqp { connections, .. } => *connections,
        }
    }
}

/// A connection of either kind.
enum Link {
    Http(Conn),
    Amqp(Amqp),
}

/// Connections to the destination, each used by one forward at a time.
struct Pool {
    to: Forward,
    free: Mutex<Vec<Link>>,
    slots: Semaphore,
}

impl Pool {
    async fn open(&self) -> Result<Link> {
        Ok(match &self.to {
            Forward::Http { sink } => Link::Http(Conn::open(*sink, None).await?),
            Forward::Amqp { broker, .. } => Link::Amqp(Amqp::connect(*broker).await?),
        })
    }

    async fn forward(&self, id: &str, body: Bytes) {
        let _slot = self.slots.acquire().await.expect("pool open");
        let link = self.free.lock().await.pop();
        let mut link = match link {
            Some(link) => link,
            None => match self.open().await {
                Ok(link) => link,
                Err(err) => return eprintln!("relay: connecting: {err:#}"),
            },
        };
        let sent = match (&mut link, &self.to) {
            (Link::Http(conn), _) => conn.send(Method::POST, "/hook", body).await.map(drop),
            (Link::Amqp(amqp), Forward::Amqp { queue, .. }) => {
                amqp.publish_confirmed(queue, id, &body).await
            }
            (Link::Amqp(_), Forward::Http { .. }) => unreachable!("links match the pool"),
        };
        match sent {
            Ok(()) => self.free.lock().await.push(link),
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
    fn new(to: Forward) -> Arc<Self> {
        Arc::new(Relay {
            pool: Pool {
                free: Mutex::new(Vec::with_capacity(to.connections())),
                slots: Semaphore::new(to.connections()),
                to,
            },
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            next_id: AtomicU64::new(0),
        })
    }

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
        let id = format!("relay-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let answer_body =
            format!(r#"{{"id":"{id}","duplicate":false,"destination_ids":["relay"]}}"#);
        tokio::spawn(async move {
            relay.pool.forward(&id, data).await;
            drop(permit);
        });
        answer(StatusCode::ACCEPTED, answer_body)
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
    let to = Forward::from_args(args)?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let relay = Relay::new(to);
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
    /// Start `xtask bench-relay` (this executable) forwarding `to`.
    pub fn start(to: &Forward) -> Result<Self> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("bench-relay")
            .args(to.args())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::http::{event_data, start_sink, Sink};
    use super::*;

    #[tokio::test]
    async fn the_relay_answers_202_and_forwards_the_data_or_refuses_a_bad_body() {
        let sink = Arc::new(Sink::default());
        let sink_addr = start_sink(sink.clone()).await.unwrap();
        let relay = Relay::new(Forward::Http { sink: sink_addr });
        sink.reset(7, 3);
        for seq in 0..3 {
            let body = format!(
                r#"{{"tenant_id":"t","topic":"x","data":{}}}"#,
                event_data(7, seq, 0)
            );
            let answer = relay.publish(Bytes::from(body)).await;
            assert_eq!(answer.status(), StatusCode::ACCEPTED);
        }
        assert!(sink.wait_all(Duration::from_secs(5)).await);
        let phase = sink.take();
        assert_eq!((phase.unique, phase.duplicates, phase.stray), (3, 0, 0));

        let bad = relay.publish(Bytes::from_static(b"{not json")).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let no_data = relay.publish(Bytes::from_static(br#"{"topic":"x"}"#)).await;
        assert_eq!(no_data.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn forward_arguments_round_trip() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        for to in [
            Forward::Http {
                sink: "127.0.0.1:9".parse().unwrap(),
            },
            Forward::Amqp {
                broker: "127.0.0.1:5672".parse().unwrap(),
                queue: "q".into(),
                connections: 3,
            },
        ] {
            let argv = std::iter::once("relay".to_string()).chain(to.args());
            let parsed = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
            let back = Forward::from_args(&parsed.args).unwrap();
            assert_eq!(back.args(), to.args());
        }
        let neither = <Cli as clap::Parser>::try_parse_from(["relay"]).unwrap();
        assert!(Forward::from_args(&neither.args).is_err());
    }
}
