//! Raw TCP (optionally TLS) performed by the host, for broker protocols.
//!
//! Connections are pooled per destination: [`Connection::release`] hands one back with a
//! session blob ("handshake done, channel 1 open"), and a later [`connect`] to the same
//! endpoint may return it with that blob from [`Connection::session`], so a stream of
//! events pays for one handshake.

use std::fmt;

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Name checked against the certificate; defaults to the host.
    pub server_name: Option<String>,
    /// Extra trusted CA certificates (PEM) besides the system roots.
    pub ca_pem: Option<String>,
}

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS settings; `None` for plain TCP.
    pub tls: Option<Tls>,
    /// Connect timeout.
    pub connect_timeout_ms: Option<u32>,
}

impl ConnectOptions {
    /// Plain TCP to `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            tls: None,
            connect_timeout_ms: None,
        }
    }

    /// Uses TLS.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout_ms(mut self, ms: u32) -> Self {
        self.connect_timeout_ms = Some(ms);
        self
    }
}

/// A TCP failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpError {
    /// Refused by network access or address policy; no connection was made.
    Denied(String),
    /// The host does not offer this (limits reached, capability disabled).
    Unsupported(String),
    /// Timed out.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// Other I/O or TLS failure.
    Io(String),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpError::Denied(why) => write!(f, "connection denied by network policy: {why}"),
            TcpError::Unsupported(why) => write!(f, "tcp unsupported: {why}"),
            TcpError::Timeout => f.write_str("tcp timed out"),
            TcpError::Closed => f.write_str("connection closed by peer"),
            TcpError::Io(why) => write!(f, "tcp error: {why}"),
        }
    }
}

impl std::error::Error for TcpError {}

/// Denials are configuration problems; everything else is retried.
impl From<TcpError> for crate::DeliveryError {
    fn from(e: TcpError) -> Self {
        match e {
            TcpError::Denied(_) => crate::DeliveryError::misconfigured(e.to_string()),
            _ => crate::DeliveryError::retry(e.to_string()),
        }
    }
}

/// An open (possibly pooled) connection. Dropping it without [`release`](Self::release)
/// closes it.
#[derive(Debug)]
pub struct Connection {
    inner: crate::bindings::tcp::Connection,
}

/// Opens a connection, or takes a pooled one for the same endpoint.
pub fn connect(options: ConnectOptions) -> Result<Connection, TcpError> {
    imp::connect(options)
}

impl Connection {
    /// The session blob stored by the last `release`, or `None` for a fresh connection.
    pub fn session(&self) -> Option<Vec<u8>> {
        self.inner.session()
    }

    /// Writes all of `bytes`.
    pub fn write(&self, bytes: &[u8]) -> Result<(), TcpError> {
        self.inner.write(bytes).map_err(imp::error)
    }

    /// Reads at least one and at most `max` bytes, waiting up to `timeout_ms`.
    pub fn read(&self, max: u32, timeout_ms: u32) -> Result<Vec<u8>, TcpError> {
        self.inner.read(max, timeout_ms).map_err(imp::error)
    }

    /// Returns the connection to the host's pool with `session` attached.
    pub fn release(self, session: &[u8]) {
        crate::bindings::tcp::Connection::release(self.inner, session)
    }
}

mod imp {
    use super::*;
    use crate::bindings::tcp as wit;

    pub fn error(e: wit::Error) -> TcpError {
        match e {
            wit::Error::Denied(why) => TcpError::Denied(why),
            wit::Error::Unsupported(why) => TcpError::Unsupported(why),
            wit::Error::Timeout => TcpError::Timeout,
            wit::Error::Closed => TcpError::Closed,
            wit::Error::Io(why) => TcpError::Io(why),
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub fn connect(options: ConnectOptions) -> Result<Connection, TcpError> {
        let options = wit::ConnectOptions {
            host: options.host,
            port: options.port,
            tls: options.tls.map(|t| wit::Tls {
                server_name: t.server_name,
                ca_pem: t.ca_pem,
            }),
            connect_timeout_ms: options.connect_timeout_ms,
        };
        wit::connect(&options)
            .map(|inner| Connection { inner })
            .map_err(error)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn connect(_options: ConnectOptions) -> Result<Connection, TcpError> {
        Err(TcpError::Unsupported(
            "host tcp is only available inside the Outrider host".into(),
        ))
    }
}
