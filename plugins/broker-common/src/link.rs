//! A broker connection with buffered reads, and the publish driver that pools it.
//!
//! [`deliver`] asks the host for a connection. A pooled one comes with the session blob
//! the plugin stored when it released it; the blob starts with a fingerprint of the
//! settings it was opened with, then the protocol's own state (e.g. the AMQP channel and
//! the next delivery tag). The `step` closure gets that state (or `None` on a fresh
//! connection, meaning "handshake first"), publishes, and returns the state to store.
//! When a pooled connection fails with a connection error (the broker closed it since),
//! the step runs again on another connection, so the plugin re-handshakes transparently
//! within the same delivery; an error on a fresh connection is the delivery's outcome.

use outrider_sdk::tcp::{self, ConnectOptions, Connection, TcpError};
use outrider_sdk::DeliveryError;

/// Default wait for one read from the broker.
pub const READ_TIMEOUT_MS: u32 = 10_000;

/// How many connections one delivery tries before giving up (pooled ones that turn out
/// broken or were opened with other settings, then one fresh).
const MAX_CONNECTIONS_PER_DELIVERY: usize = 20;

/// An open connection with a read buffer.
#[derive(Debug)]
pub struct Link {
    conn: Connection,
    buf: Vec<u8>,
}

/// How one attempt on a connection failed.
#[derive(Debug)]
pub enum StepError {
    /// The connection failed (closed, reset, timed out, or the broker closed it with a
    /// protocol-level "connection forced"). Retried on another connection when this one
    /// came from the pool.
    Connection(String),
    /// The broker answered, and the answer decides the delivery. `keep` is the session
    /// to release the connection with when it is still usable, `None` to close it.
    Broker {
        /// The delivery's outcome.
        error: DeliveryError,
        /// Session to keep the connection with, if it is still usable.
        keep: Option<Vec<u8>>,
    },
}

impl StepError {
    /// A broker answer that ends the delivery and leaves the connection unusable.
    pub fn broker(error: DeliveryError) -> Self {
        StepError::Broker { error, keep: None }
    }
}

impl From<TcpError> for StepError {
    fn from(e: TcpError) -> Self {
        match e {
            TcpError::Denied(_) | TcpError::Unsupported(_) => {
                StepError::broker(DeliveryError::from(e))
            }
            other => StepError::Connection(other.to_string()),
        }
    }
}

/// A malformed answer from the broker: the stream is out of step, so the connection is
/// treated as broken.
impl From<String> for StepError {
    fn from(why: String) -> Self {
        StepError::Connection(why)
    }
}

impl Link {
    /// Write all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StepError> {
        Ok(self.conn.write(bytes)?)
    }

    fn fill(&mut self) -> Result<(), StepError> {
        let chunk = self.conn.read(64 * 1024, READ_TIMEOUT_MS)?;
        self.buf.extend_from_slice(&chunk);
        Ok(())
    }

    /// Exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, StepError> {
        while self.buf.len() < n {
            self.fill()?;
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Bytes up to and including the next `\r\n`, without it.
    pub fn read_line(&mut self) -> Result<Vec<u8>, StepError> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut line = self.read_exact(at + 2)?;
                line.truncate(at);
                return Ok(line);
            }
            if self.buf.len() > 1024 * 1024 {
                return Err(StepError::Connection(
                    "broker sent an over-long line".into(),
                ));
            }
            self.fill()?;
        }
    }
}

/// Publish over a pooled connection to `options`. `fingerprint` identifies the settings
/// (see [`crate::fingerprint`]); `step` gets the resumed protocol state (`None`: fresh
/// connection, handshake first) and returns its outcome and the state to store.
pub fn deliver<T>(
    options: &ConnectOptions,
    fingerprint: &[u8],
    mut step: impl FnMut(&mut Link, Option<&[u8]>) -> Result<(T, Vec<u8>), StepError>,
) -> Result<T, DeliveryError> {
    let mut last_error = None;
    for _ in 0..MAX_CONNECTIONS_PER_DELIVERY {
        let conn = tcp::connect(options.clone()).map_err(DeliveryError::from)?;
        let stored = conn.session();
        let resumed = match &stored {
            Some(blob) if blob.starts_with(fingerprint) => Some(&blob[fingerprint.len()..]),
            // Opened with other settings (the destination was edited): close it.
            Some(_) => continue,
            None => None,
        };
        let pooled = resumed.is_some();
        let mut link = Link {
            conn,
            buf: Vec::new(),
        };
        match step(&mut link, resumed) {
            Ok((value, state)) => {
                release(link, fingerprint, state);
                return Ok(value);
            }
            Err(StepError::Broker { error, keep }) => {
                if let Some(state) = keep {
                    release(link, fingerprint, state);
                }
                return Err(error);
            }
            Err(StepError::Connection(why)) if pooled => {
                outrider_sdk::log::log(
                    outrider_sdk::log::Level::Info,
                    "pooled broker connection failed; retrying on another",
                    &[("reason", why.as_str())],
                );
                last_error = Some(why);
            }
            Err(StepError::Connection(why)) => return Err(DeliveryError::retry(why)),
        }
    }
    Err(DeliveryError::retry(format!(
        "no usable broker connection after {MAX_CONNECTIONS_PER_DELIVERY} tries{}",
        last_error.map(|e| format!(": {e}")).unwrap_or_default()
    )))
}

/// Pool the connection with `fingerprint ++ state`, unless unread bytes are left (the
/// protocol stream would be out of step; closing it is safer).
fn release(link: Link, fingerprint: &[u8], state: Vec<u8>) {
    if !link.buf.is_empty() {
        return;
    }
    let mut blob = fingerprint.to_vec();
    blob.extend_from_slice(&state);
    link.conn.release(&blob);
}
