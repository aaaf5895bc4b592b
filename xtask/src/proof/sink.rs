//! A loopback HTTP receiver for the proof scenarios. It records every request (the event
//! id the `webhook` plugin sends, when it arrived, when it ended, what was answered, which
//! process sent it) and behaves as told: answer a status, after a delay if asked, or hang
//! without ever answering. Two requests for one event in flight at the same time are
//! counted as they happen: that is a delivery claimed twice at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Headers carrying the event id: the `webhook` plugin's Outpost and Standard Webhooks
/// modes.
const EVENT_ID_HEADERS: [&str; 2] = ["x-outpost-event-id", "webhook-id"];

/// How the sink answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer `status` once `after` has passed.
    Answer { status: u16, after: Duration },
    /// Read the request, never answer (until the sender gives up and closes).
    Hang,
}

impl Behaviour {
    /// `200` at once.
    pub const OK: Behaviour = Behaviour::Answer {
        status: 200,
        after: Duration::ZERO,
    };

    /// `status` at once.
    pub fn status(status: u16) -> Behaviour {
        Behaviour::Answer {
            status,
            after: Duration::ZERO,
        }
    }
}

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The event id header, empty when there was none.
    pub event_id: String,
    /// The request path.
    pub path: String,
    /// When the request arrived (its head).
    pub started: Instant,
    /// When it was answered, or when the sender closed the connection before an answer.
    pub ended: Option<Instant>,
    /// What was answered; `None` if nothing was (hung, or the sender went away).
    pub status: Option<u16>,
    /// Who sent it, as the [`Sink::identify_peers`] function named the sending process.
    pub sender: Option<String>,
}

impl Received {
    /// Answered with a 2xx: the receiver got the event.
    pub fn delivered(&self) -> bool {
        matches!(self.status, Some(s) if (200..300).contains(&s))
    }
}

/// Deliveries of a set of accepted events, as a sink saw them.
pub struct Tally {
    /// Accepted events never answered with a 2xx, sorted.
    pub lost: Vec<String>,
    /// 2xx answers beyond the first per event.
    pub duplicates: usize,
    /// Events delivered that were not among the accepted (their 202 never arrived).
    pub unaccepted: usize,
    /// 2xx answers per sender name (`unknown` when unnamed).
    pub by_sender: BTreeMap<String, usize>,
}

/// Names the process behind a connection from its peer address (see
/// [`super::procfs::socket_owner`]).
pub type PeerNamer = Arc<dyn Fn(SocketAddr) -> Option<String> + Send + Sync>;

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Requests of each event currently in flight.
    in_flight: HashMap<String, usize>,
    /// Event ids of requests that arrived while another request of the same event was in
    /// flight.
    concurrent: Vec<String>,
}

/// The sink; cheap to clone.
#[derive(Clone)]
pub struct Sink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    behaviour: Arc<Mutex<Behaviour>>,
    namer: Arc<Mutex<Option<PeerNamer>>>,
}

impl Sink {
    /// Starts a sink on a loopback port of the current tokio runtime, answering 200.
    pub async fn start() -> Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let sink = Sink {
            addr: listener.local_addr()?,
            state: Arc::default(),
            behaviour: Arc::new(Mutex::new(Behaviour::OK)),
            namer: Arc::default(),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let sink = accepting.clone();
                tokio::spawn(async move {
                    // Named at the first request that finds a name (the process may be
                    // named only once it has started listening).
                    let sender: Arc<Mutex<Option<String>>> = Arc::default();
                    let service = hyper::service::service_fn(move |request| {
                        let sink = sink.clone();
                        let sender = sender.clone();
                        async move {
                            let name = sink.name(peer, &sender);
                            sink.answer(request, name).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(sink)
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer from now on like this (requests already hanging keep hanging).
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("sink behaviour") = behaviour;
    }

    /// Name the sender of each new connection with `namer` (e.g. which server process).
    pub fn identify_peers(&self, namer: PeerNamer) {
        *self.namer.lock().expect("sink namer") = Some(namer);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("sink state").received.clone()
    }

    /// Takes everything received so far that has ended, leaving requests in flight (for
    /// long runs that look at the records window by window).
    pub fn drain_ended(&self) -> Vec<Received> {
        let mut state = self.state.lock().expect("sink state");
        let (ended, open): (Vec<_>, Vec<_>) = std::mem::take(&mut state.received)
            .into_iter()
            .partition(|r| r.ended.is_some());
        state.received = open;
        ended
    }

    /// Event ids of requests that arrived while another of the same event was in flight.
    pub fn concurrent(&self) -> Vec<String> {
        self.state.lock().expect("sink state").concurrent.clone()
    }

    /// How many distinct events were answered with a 2xx.
    pub fn delivered_count(&self) -> usize {
        self.delivered_ids().len()
    }

    /// Event ids answered with a 2xx.
    pub fn delivered_ids(&self) -> HashSet<String> {
        let state = self.state.lock().expect("sink state");
        state
            .received
            .iter()
            .filter(|r| r.delivered())
            .map(|r| r.event_id.clone())
            .collect()
    }

    /// Waits until every event of `accepted` has been answered with a 2xx; fails when no
    /// new event arrived for `stall`.
    pub fn wait_delivered(&self, accepted: &HashSet<String>, stall: Duration) -> Result<()> {
        super::load::wait_until(
            "every accepted event delivered",
            stall,
            || self.delivered_count(),
            || accepted.is_subset(&self.delivered_ids()),
        )
    }

    /// How the events of `accepted` fared at this sink.
    pub fn tally(&self, accepted: &HashSet<String>) -> Tally {
        let mut deliveries: HashMap<String, usize> = HashMap::new();
        let mut by_sender: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.received().into_iter().filter(Received::delivered) {
            let sender = r.sender.unwrap_or_else(|| "unknown".into());
            *by_sender.entry(sender).or_default() += 1;
            *deliveries.entry(r.event_id).or_default() += 1;
        }
        let mut lost: Vec<String> = accepted
            .iter()
            .filter(|id| !deliveries.contains_key(*id))
            .cloned()
            .collect();
        lost.sort();
        Tally {
            lost,
            duplicates: deliveries.values().map(|n| n - 1).sum(),
            unaccepted: deliveries
                .keys()
                .filter(|id| !accepted.contains(*id))
                .count(),
            by_sender,
        }
    }

    /// The name of the process behind `peer`, looked up until one is found.
    fn name(&self, peer: SocketAddr, known: &Mutex<Option<String>>) -> Option<String> {
        let mut known = known.lock().expect("sender");
        if known.is_none() {
            let namer = self.namer.lock().expect("sink namer").clone();
            *known = namer.and_then(|name| name(peer));
        }
        known.clone()
    }

    async fn answer(
        &self,
        request: Request<hyper::body::Incoming>,
        sender: Option<String>,
    ) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let event_id = EVENT_ID_HEADERS
            .iter()
            .find_map(|name| request.headers().get(*name))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = request.uri().path().to_string();
        let started = Instant::now();
        request.into_body().collect().await?;
        let guard = self.arrived(Received {
            event_id,
            path,
            started,
            ended: None,
            status: None,
            sender,
        });
        let behaviour = *self.behaviour.lock().expect("sink behaviour");
        match behaviour {
            Behaviour::Hang => {
                // Ends when the sender closes the connection: hyper drops this future
                // and the guard records the end.
                std::future::pending::<()>().await;
                unreachable!("pending never completes")
            }
            Behaviour::Answer { status, after } => {
                if !after.is_zero() {
                    tokio::time::sleep(after).await;
                }
                guard.finish(status);
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Ok(response)
            }
        }
    }

    fn arrived(&self, received: Received) -> InFlight {
        let mut state = self.state.lock().expect("sink state");
        let count = state
            .in_flight
            .entry(received.event_id.clone())
            .or_default();
        *count += 1;
        if *count > 1 && !received.event_id.is_empty() {
            state.concurrent.push(received.event_id.clone());
        }
        let event_id = received.event_id.clone();
        state.received.push(received);
        InFlight {
            state: self.state.clone(),
            index: state.received.len() - 1,
            started: state.received.last().map(|r| r.started),
            event_id,
            done: false,
        }
    }
}

/// A request in flight; records its end when answered or dropped.
struct InFlight {
    state: Arc<Mutex<State>>,
    /// Position in `received` (while nothing was drained; checked against `started`).
    index: usize,
    started: Option<Instant>,
    event_id: String,
    done: bool,
}

impl InFlight {
    fn finish(mut self, status: u16) {
        self.end(Some(status));
        self.done = true;
    }

    fn end(&self, status: Option<u16>) {
        let mut state = self.state.lock().expect("sink state");
        let now = Instant::now();
        let found = match state.received.get(self.index) {
            Some(r) if Some(r.started) == self.started && r.event_id == self.event_id => {
                Some(self.index)
            }
            // Drained meanwhile: find it again.
            _ => state
                .received
                .iter()
                .position(|r| Some(r.started) == self.started && r.event_id == self.event_id),
        };
        if let Some(i) = found {
            let record = &mut state.received[i];
            record.ended = Some(now);
            record.status = status;
        }
        if let Some(count) = state.in_flight.get_mut(&self.event_id) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(&self.event_id);
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.end(None);
        }
    }
}
