//! `TestReceiver`: a loopback HTTP sink that records every request and counts every TCP
//! connection, so a test can prove that a refused delivery never even connected.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, lower-case names.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
}

impl Received {
    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("sink body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Received>>,
    /// Statuses to answer with, in order; 200 once exhausted.
    script: Mutex<VecDeque<u16>>,
    connections: AtomicUsize,
}

/// A recording HTTP sink on 127.0.0.1.
#[derive(Clone)]
pub struct TestReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct CountingListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for CountingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.inner.accept().await {
                self.shared.connections.fetch_add(1, Ordering::SeqCst);
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl TestReceiver {
    /// Start a sink that answers 200 to everything.
    pub async fn start() -> Self {
        Self::with_script(&[]).await
    }

    /// Start a sink that answers the given statuses in order, then 200.
    pub async fn with_script(statuses: &[u16]) -> Self {
        let shared = Arc::new(Shared::default());
        shared
            .script
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().unwrap();
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.requests.lock().unwrap().push(Received {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        headers,
                        body,
                    });
                    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    (
                        StatusCode::from_u16(status).unwrap(),
                        format!("sink answered {status}"),
                    )
                        .into_response()
                }
            },
        );
        let listener = CountingListener {
            inner: listener,
            shared: shared.clone(),
        };
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, shared }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}
