//! `broker/rabbitmq`: events per second into a RabbitMQ queue through Outrider (publish
//! over HTTP, stored, delivered by the `rabbitmq` WebAssembly plugin over the host's
//! pooled `tcp` connections, publisher confirms) against native publishers in this
//! process sending the same messages to the same broker with confirms, in the same run.
//!
//! The first is lapin, the standard Rust AMQP client, on as many connections as Outrider
//! may open to one destination, awaiting each message's confirm. The stricter floor is
//! the `rabbitmq` plugin's own AMQP 0-9-1 codec (`plugins/rabbitmq/src/amqp.rs`, compiled
//! natively here) on bare tokio sockets: the same protocol work without sandbox, store or
//! HTTP, in the same shape; and, second, pipelined as the plugin's batches are: one
//! connection, windows of 128 publishes written back to back, then their confirms.
//! Every phase also reports each process's CPU per event from `/proc`.
//! Handshakes are Outrider's `outrider_tcp_connections_opened_total`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(dead_code)]
#[path = "../../../plugins/rabbitmq/src/amqp.rs"]
mod amqp;

use super::gateway::{admin, Options as GatewayOptions};
use super::http::{event_data, Conn};
use super::relay::{Forward, RelayProcess};
use super::stats::{line, process_named, CpuMeter};
use crate::server::Server;

/// Connections Outrider may open to one destination by default
/// (`OUTRIDER_TCP_MAX_PER_DESTINATION`); the first native publisher uses as many.
const CONNECTIONS: usize = 16;

/// Most events in one of Outrider's `deliver-batch` calls; the pipelined native publisher
/// uses windows of as many.
const BATCH_MAX: usize = 128;

/// What to run.
pub struct Options {
    /// `outrider` release binary.
    pub binary: PathBuf,
    /// Built plugins (`target/plugins`).
    pub plugins_dir: PathBuf,
    /// Events per side.
    pub events: usize,
    /// Concurrent publishing HTTP clients.
    pub concurrency: usize,
    /// RabbitMQ address.
    pub broker: SocketAddr,
}

pub fn run(options: &Options) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: &Options) -> Result<()> {
    let queue = format!("outrider-bench-{}", std::process::id());
    let mut control = Amqp::connect(options.broker)
        .await
        .with_context(|| format!("RabbitMQ at {} (guest/guest)", options.broker))?;
    control.queue_declare(&queue, false).await?;
    let result = compare(options, &queue, &mut control).await;
    let _ = control.queue_delete(&queue).await;
    result
}

async fn compare(options: &Options, queue: &str, control: &mut Amqp) -> Result<()> {
    let n = options.events;
    // RabbitMQ's own CPU per message in each phase, when it runs on this machine.
    let rabbitmq = process_named("beam.smp");
    // Native: CONNECTIONS publishers, one confirmed message at a time each.
    let cpu = CpuMeter::start(&[None, rabbitmq]);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let next = next.clone();
        let broker = options.broker;
        let queue = queue.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut amqp = Amqp::connect(broker).await?;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    return anyhow::Ok(());
                }
                let body = event_data(1, seq, 0);
                let id = format!("native-{seq}");
                amqp.publish_confirmed(&queue, &id, body.as_bytes()).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let native_wall = started.elapsed().as_secs_f64();
    let native_rate = n as f64 / native_wall;
    let native_cpu = cpu.per_item_us(n);
    control.check_and_purge(queue, n, "native run").await?;
    line(
        "broker/rabbitmq native publisher, confirms (msg/s)",
        format!("{native_rate:.0} ({n} messages, {CONNECTIONS} connections)"),
    );

    // lapin, the standard Rust AMQP client, in the same shape: CONNECTIONS connections,
    // one confirmed message at a time each.
    let cpu = CpuMeter::start(&[None, rabbitmq]);
    let started = Instant::now();
    lapin_publishers(options.broker, queue, n).await?;
    let lapin_rate = n as f64 / started.elapsed().as_secs_f64();
    let lapin_cpu = cpu.per_item_us(n);
    control.check_and_purge(queue, n, "lapin run").await?;
    line(
        "broker/rabbitmq lapin publisher, confirms (msg/s)",
        format!(
            "{lapin_rate:.0} ({n} messages, {CONNECTIONS} connections; CPU per message: lapin {:.0} us + RabbitMQ {:.0} us)",
            lapin_cpu[0], lapin_cpu[1]
        ),
    );

    // Native, pipelined as the plugin's batches are: one connection, windows of
    // BATCH_MAX publishes written back to back, then their confirms.
    let started = Instant::now();
    let mut amqp = Amqp::connect(options.broker).await?;
    let mut seq = 0;
    while seq < n {
        let window: Vec<(String, String)> = (seq..(seq + BATCH_MAX).min(n))
            .map(|i| (format!("native-pipelined-{i}"), event_data(1, i, 0)))
            .collect();
        seq += window.len();
        amqp.publish_window(queue, &window).await?;
    }
    let pipelined_rate = n as f64 / started.elapsed().as_secs_f64();
    control
        .check_and_purge(queue, n, "native pipelined run")
        .await?;
    line(
        "broker/rabbitmq native publisher, pipelined confirms (msg/s)",
        format!("{pipelined_rate:.0} ({n} messages, 1 connection, windows of {BATCH_MAX})"),
    );

    // The native relay: the same HTTP publishes, parsed and answered 202, each event's
    // data published natively with confirms over CONNECTIONS connections. No storage, no
    // plugin: what any HTTP gateway in front of RabbitMQ must do at least.
    let relay = RelayProcess::start(&Forward::Amqp {
        broker: options.broker,
        queue: queue.to_owned(),
        connections: CONNECTIONS,
    })?;
    let cpu = CpuMeter::start(&[Some(relay.pid()), None, rabbitmq]);
    let relay_wall = publish_until_queued(relay.addr(), None, options, queue, control).await?;
    let relay_cpu = cpu.per_item_us(n);
    drop(relay);
    let relay_rate = n as f64 / relay_wall;
    control.queue_purge(queue).await?;
    line(
        "broker/rabbitmq native relay: HTTP publish -> 202 -> native publisher, confirms (events/s)",
        format!(
            "{relay_rate:.0} ({n} events, {} HTTP clients, {CONNECTIONS} connections; no storage, no plugin) = {:.2}x native",
            options.concurrency,
            relay_rate / native_rate
        ),
    );

    // Outrider.
    let gateway = GatewayOptions {
        binary: options.binary.clone(),
        plugins_dir: options.plugins_dir.clone(),
        events: n,
        concurrency: options.concurrency,
        latency_run: Duration::from_secs(1),
        database_url: None,
        label: "broker".into(),
        raw: false,
    };
    let server = Server::start(&gateway.server_config())?;
    let outcome = through_outrider(options, queue, control, &server, rabbitmq).await;
    if outcome.is_err() {
        eprintln!("broker: server log tail:\n{}", server.log_tail());
    }
    server.stop();
    let (rate, handshakes, outrider_cpu) = outcome?;
    line(
        "broker/rabbitmq Outrider publish -> rabbitmq plugin -> queue (events/s)",
        format!(
            "{rate:.0} ({n} events, {} HTTP clients) = {:.2}x lapin, {:.2}x native ({:.2}x native pipelined, {:.2}x the native relay)",
            options.concurrency,
            rate / lapin_rate,
            rate / native_rate,
            rate / pipelined_rate,
            rate / relay_rate
        ),
    );
    line(
        "broker/rabbitmq CPU per event (us): native publisher + RabbitMQ / relay + load generator + RabbitMQ / Outrider + load generator + RabbitMQ",
        format!(
            "{:.0} + {:.0} / {:.0} + {:.0} + {:.0} / {:.0} + {:.0} + {:.0}",
            native_cpu[0],
            native_cpu[1],
            relay_cpu[0],
            relay_cpu[1],
            relay_cpu[2],
            outrider_cpu[0],
            outrider_cpu[1],
            outrider_cpu[2]
        ),
    );
    line(
        "broker/rabbitmq handshakes (new connections) per 10,000 events",
        format!(
            "{:.1} ({handshakes} for {n} events)",
            handshakes as f64 * 10_000.0 / n as f64
        ),
    );
    Ok(())
}

async fn through_outrider(
    options: &Options,
    queue: &str,
    control: &mut Amqp,
    server: &Server,
    rabbitmq: Option<u32>,
) -> Result<(f64, u64, Vec<f64>)> {
    let addr = server.addr();
    admin(
        addr,
        Method::PUT,
        "/api/v1/tenants/bench",
        serde_json::Value::Null,
    )
    .await?;
    admin(
        addr,
        Method::POST,
        "/api/v1/tenants/bench/destinations",
        serde_json::json!({
            "type": "rabbitmq",
            "topics": "*",
            // The default exchange routes on the queue name: the topic.
            "config": {"server_url": options.broker.to_string(), "exchange": "", "tls": "false"},
            "credentials": {"username": "guest", "password": "guest"},
        }),
    )
    .await?;
    let n = options.events;
    let auth = format!("Bearer {}", crate::server::API_KEY);
    let cpu = CpuMeter::start(&[Some(server.pid()), None, rabbitmq]);
    let wall = publish_until_queued(addr, Some(&auth), options, queue, control).await?;
    let cpu = cpu.per_item_us(n);
    let metrics = metrics(addr).await?;
    let handshakes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("outrider_tcp_connections_opened_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .context("outrider_tcp_connections_opened_total missing from /metrics")?;
    Ok((n as f64 / wall, handshakes, cpu))
}

/// Publish `options.events` events over HTTP to `addr` from `options.concurrency`
/// keep-alive clients, topic `queue`; returns the seconds until all are in the queue.
async fn publish_until_queued(
    addr: SocketAddr,
    auth: Option<&str>,
    options: &Options,
    queue: &str,
    control: &mut Amqp,
) -> Result<f64> {
    let n = options.events;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let next = next.clone();
        let topic = queue.to_owned();
        let mut conn = Conn::open(addr, auth).await?;
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    return anyhow::Ok(());
                }
                let body = format!(
                    r#"{{"tenant_id":"bench","topic":"{topic}","data":{}}}"#,
                    event_data(2, seq, 0)
                );
                let (status, answer) = conn
                    .send(Method::POST, "/api/v1/publish", Bytes::from(body))
                    .await?;
                if status.as_u16() != 202 {
                    bail!("publish: {status}: {}", String::from_utf8_lossy(&answer));
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let count = control.queue_declare(queue, true).await? as usize;
        if count >= n {
            return Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("only {count} of {n} events reached the queue in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` messages to `queue` through lapin: CONNECTIONS connections, each with one channel in
/// confirm mode, every publish awaited until RabbitMQ confirms it.
async fn lapin_publishers(broker: SocketAddr, queue: &str, n: usize) -> Result<()> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let uri = format!("amqp://guest:guest@{broker}/%2f");
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let next = next.clone();
        let queue = queue.to_owned();
        let uri = uri.clone();
        // Connected inside the task, as the codec's publishers are: the handshakes overlap.
        tasks.push(tokio::spawn(async move {
            let connection =
                lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    break;
                }
                let body = event_data(1, seq, 0);
                let properties = lapin::BasicProperties::default()
                    .with_message_id(format!("lapin-{seq}").into());
                let confirmation = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        properties,
                    )
                    .await?
                    .await?;
                if !confirmation.is_ack() {
                    bail!("lapin: RabbitMQ did not confirm message {seq}");
                }
            }
            connection.close(200, "done".into()).await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn metrics(addr: SocketAddr) -> Result<String> {
    let mut conn = Conn::open(addr, None).await?;
    let (_, body) = conn.send(Method::GET, "/metrics", Bytes::new()).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A native AMQP 0-9-1 connection with channel 1 in confirm mode.
pub(super) struct Amqp {
    stream: TcpStream,
    buf: Vec<u8>,
    frame_max: u32,
    next_tag: u64,
}

impl Amqp {
    pub(super) async fn connect(addr: SocketAddr) -> Result<Amqp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut amqp = Amqp {
            stream,
            buf: Vec::new(),
            frame_max: 128 * 1024,
            next_tag: 1,
        };
        amqp.stream.write_all(amqp::PROTOCOL_HEADER).await?;
        amqp.expect(amqp::ids::CONNECTION_START).await?;
        amqp.stream
            .write_all(&amqp::start_ok("guest", "guest"))
            .await?;
        let tune = amqp.expect(amqp::ids::CONNECTION_TUNE).await?;
        let tune = amqp::negotiate(&mut tune.args()).context("connection.tune")?;
        amqp.frame_max = tune.frame_max;
        let mut out = amqp::tune_ok(tune);
        out.extend(amqp::open("/"));
        out.extend(amqp::channel_open(1));
        out.extend(amqp::confirm_select(1));
        amqp.stream.write_all(&out).await?;
        amqp.expect(amqp::ids::CONNECTION_OPEN_OK).await?;
        amqp.expect(amqp::ids::CHANNEL_OPEN_OK).await?;
        amqp.expect(amqp::ids::CONFIRM_SELECT_OK).await?;
        Ok(amqp)
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 65536];
            let got = self.stream.read(&mut chunk).await?;
            if got == 0 {
                bail!("RabbitMQ closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    async fn frame(&mut self) -> Result<amqp::Frame> {
        loop {
            let head = self.read_exact(7).await?;
            let (kind, channel, size) = amqp::frame_header(&head);
            let mut payload = self.read_exact(size + 1).await?;
            payload.pop();
            if kind != amqp::FRAME_HEARTBEAT {
                return Ok(amqp::Frame {
                    kind,
                    channel,
                    payload,
                });
            }
        }
    }

    async fn expect(&mut self, want: (u16, u16)) -> Result<amqp::Frame> {
        let frame = self.frame().await?;
        match frame.method() {
            Some(m) if m == want => Ok(frame),
            other => {
                let reason = amqp::close_reason(&frame);
                bail!(
                    "expected AMQP method {want:?}, got {other:?} ({} {})",
                    reason.code,
                    reason.text
                )
            }
        }
    }

    pub(super) async fn publish_confirmed(
        &mut self,
        queue: &str,
        id: &str,
        body: &[u8],
    ) -> Result<()> {
        let message = amqp::Message {
            exchange: "",
            routing_key: queue,
            headers: amqp::Table::default(),
            message_id: id,
            timestamp: 0,
            body,
        };
        self.stream
            .write_all(&amqp::publish(1, self.frame_max, &message))
            .await?;
        let tag = self.next_tag;
        self.next_tag += 1;
        loop {
            let frame = self.frame().await?;
            match frame.method() {
                Some(amqp::ids::BASIC_ACK) => {
                    let (acked, multiple) = amqp::ack_args(&frame).context("basic.ack")?;
                    if acked == tag || (multiple && acked >= tag) {
                        return Ok(());
                    }
                }
                other => bail!("expected basic.ack, got {other:?}"),
            }
        }
    }

    /// Publish `window` (message id, body) back to back, then wait until all are confirmed.
    async fn publish_window(&mut self, queue: &str, window: &[(String, String)]) -> Result<()> {
        let mut out = Vec::new();
        for (id, body) in window {
            let message = amqp::Message {
                exchange: "",
                routing_key: queue,
                headers: amqp::Table::default(),
                message_id: id,
                timestamp: 0,
                body: body.as_bytes(),
            };
            out.extend(amqp::publish(1, self.frame_max, &message));
        }
        self.stream.write_all(&out).await?;
        let last = self.next_tag + window.len() as u64 - 1;
        self.next_tag = last + 1;
        let mut acked = std::collections::HashSet::new();
        while acked.len() < window.len() {
            let frame = self.frame().await?;
            match frame.method() {
                Some(amqp::ids::BASIC_ACK) => {
                    let (tag, multiple) = amqp::ack_args(&frame).context("basic.ack")?;
                    let from = if multiple {
                        last + 1 - window.len() as u64
                    } else {
                        tag
                    };
                    acked.extend(from..=tag.min(last));
                }
                other => bail!("expected basic.ack, got {other:?}"),
            }
        }
        Ok(())
    }

    /// `queue.declare` (passive: only look); the message count.
    async fn queue_declare(&mut self, queue: &str, passive: bool) -> Result<u32> {
        let mut w = amqp::Writer::method((50, 10));
        w.u16(0)
            .short_str(queue)
            .u8(u8::from(passive))
            .table(&amqp::Table::default());
        self.stream.write_all(&amqp::method_frame(1, w)).await?;
        let ok = self.expect((50, 11)).await?;
        let mut args = ok.args();
        args.short_str();
        args.u32().context("queue.declare-ok")
    }

    /// Check that `queue` holds the `n` messages a phase published, then empty it.
    async fn check_and_purge(&mut self, queue: &str, n: usize, phase: &str) -> Result<()> {
        let count = self.queue_declare(queue, true).await?;
        if count as usize != n {
            bail!("{phase}: {count} of {n} messages in the queue");
        }
        self.queue_purge(queue).await
    }

    async fn queue_purge(&mut self, queue: &str) -> Result<()> {
        let mut w = amqp::Writer::method((50, 30));
        w.u16(0).short_str(queue).u8(0);
        self.stream.write_all(&amqp::method_frame(1, w)).await?;
        self.expect((50, 31)).await.map(|_| ())
    }

    async fn queue_delete(&mut self, queue: &str) -> Result<()> {
        let mut w = amqp::Writer::method((50, 40));
        w.u16(0).short_str(queue).u8(0);
        self.stream.write_all(&amqp::method_frame(1, w)).await?;
        self.expect((50, 41)).await.map(|_| ())
    }
}
