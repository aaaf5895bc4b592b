//! `outrider:plugin/tcp` host implementation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::Resource;

use crate::runtime::bindings::v0_1_1::tcp::{ConnectOptions, Error, Host, HostConnection};
use crate::runtime::call::CallContext;
use crate::runtime::network::{normalize_host, ResolveError};

use super::pool::{metrics, Checkout, PoolKey};
use super::stream::{OpenError, Stream, TlsSettings};
use super::{TcpCapability, TcpConnection};

impl CallContext {
    fn deny_tcp(&mut self, reason: String) -> Error {
        metrics().denied.fetch_add(1, Ordering::Relaxed);
        self.record_denial("tcp", &reason);
        Error::Denied(reason)
    }
}

fn open_error(e: OpenError) -> Error {
    match e {
        OpenError::Timeout => Error::Timeout,
        OpenError::Config(m) | OpenError::Io(m) => Error::Io(m),
    }
}

impl Host for CallContext {
    async fn connect(
        &mut self,
        options: ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<TcpConnection>, Error>> {
        if !self.allowlist.tcp_declared() {
            let reason = "the prototype does not declare tcp network access".to_owned();
            return Ok(Err(self.deny_tcp(reason)));
        }
        if let Err(denied) = self.allowlist.check(&options.host, options.port) {
            return Ok(Err(self.deny_tcp(denied.reason)));
        }
        let tcp: TcpCapability = self.caps.tcp.clone();
        let host = normalize_host(&options.host);
        let tls = options.tls.map(|t| TlsSettings {
            server_name: t.server_name.unwrap_or_else(|| host.clone()),
            ca_pem: t.ca_pem,
        });
        // Connections of calls without a destination are limited but never pooled.
        let (scope, poolable) = match &self.state_scope {
            Some(scope) => (scope.clone(), true),
            None => (format!("unpooled\u{0}{}", self.labels.plugin), false),
        };
        let key = PoolKey {
            scope,
            host: host.clone(),
            port: options.port,
            tls: tls.clone(),
        };
        let timeout = options
            .connect_timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(tcp.config.default_connect_timeout)
            .min(self.remaining());
        let deadline = Instant::now() + timeout;

        let lease = loop {
            match tcp.pool.checkout(&key, deadline).await {
                Ok(Checkout::Pooled(mut idle)) => {
                    if idle.stream.is_idle_and_open() {
                        metrics().reused.fetch_add(1, Ordering::Relaxed);
                        let conn = TcpConnection {
                            stream: idle.stream,
                            key: Some(key),
                            session: Some(idle.session),
                            broken: false,
                            _lease: idle.lease,
                        };
                        return Ok(Ok(self.table.push(conn)?));
                    }
                    metrics().stale.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        plugin = %self.labels.plugin,
                        host = %host,
                        port = options.port,
                        "pooled tcp connection was closed by the peer; opening a new one"
                    );
                }
                Ok(Checkout::Open(lease)) => break lease,
                Err(limit) => return Ok(Err(Error::Unsupported(limit.to_string()))),
            }
        };

        let addrs = match tcp.policy.resolve(&host, options.port).await {
            Ok(addrs) => addrs,
            Err(ResolveError::Denied(denied)) => return Ok(Err(self.deny_tcp(denied.reason))),
            Err(ResolveError::Lookup(m)) => return Ok(Err(Error::Io(m))),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let stream = match Stream::open(&addrs, tls.as_ref(), left).await {
            Ok(stream) => stream,
            Err(e) => return Ok(Err(open_error(e))),
        };
        metrics().opened.fetch_add(1, Ordering::Relaxed);
        let conn = TcpConnection {
            stream,
            key: poolable.then_some(key),
            session: None,
            broken: false,
            _lease: lease,
        };
        Ok(Ok(self.table.push(conn)?))
    }
}

impl HostConnection for CallContext {
    async fn session(
        &mut self,
        conn: Resource<TcpConnection>,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.table.get(&conn)?.session.clone())
    }

    async fn write(
        &mut self,
        conn: Resource<TcpConnection>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let cap = self.caps.tcp.config.max_bytes_per_call;
        if bytes.len() > cap {
            return Ok(Err(Error::Unsupported(format!(
                "a write of {} bytes is over the {cap}-byte limit (OUTRIDER_TCP_MAX_BYTES_PER_CALL)",
                bytes.len()
            ))));
        }
        let budget = self.remaining();
        let conn = self.table.get_mut(&conn)?;
        if conn.broken {
            return Ok(Err(Error::Closed));
        }
        let outcome = match tokio::time::timeout(budget, conn.stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_error(e)),
            Err(_) => Err(Error::Timeout),
        };
        if outcome.is_err() {
            // A partial write leaves the protocol stream in an unknown state.
            conn.broken = true;
        }
        Ok(outcome)
    }

    async fn read(
        &mut self,
        conn: Resource<TcpConnection>,
        max: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        let max = (max as usize).clamp(1, self.caps.tcp.config.max_bytes_per_call);
        let wait = Duration::from_millis(timeout_ms.into()).min(self.remaining());
        let conn = self.table.get_mut(&conn)?;
        if conn.broken {
            return Ok(Err(Error::Closed));
        }
        let mut buf = vec![0u8; max];
        match tokio::time::timeout(wait, conn.stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                conn.broken = true;
                Ok(Err(Error::Closed))
            }
            Ok(Ok(n)) => {
                buf.truncate(n);
                Ok(Ok(buf))
            }
            Ok(Err(e)) => {
                conn.broken = true;
                Ok(Err(io_error(e)))
            }
            // Nothing arrived in time; the connection stays usable (the plugin decides).
            Err(_) => Ok(Err(Error::Timeout)),
        }
    }

    async fn release(
        &mut self,
        conn: Resource<TcpConnection>,
        session: Vec<u8>,
    ) -> wasmtime::Result<()> {
        let conn = self.table.delete(conn)?;
        let max_session = self.caps.tcp.config.max_session_bytes;
        let reusable = !conn.broken && session.len() <= max_session;
        // Otherwise dropping it closes the socket and frees its slot.
        if let (Some(key), true) = (conn.key, reusable) {
            self.caps
                .tcp
                .pool
                .put(key, conn.stream, session, conn._lease);
        }
        Ok(())
    }

    async fn drop(&mut self, conn: Resource<TcpConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

fn io_error(e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => Error::Closed,
        ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(e.to_string()),
    }
}
