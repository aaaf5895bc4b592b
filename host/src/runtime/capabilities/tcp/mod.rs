//! `outrider:plugin/tcp`: raw TCP (optionally TLS) performed by the host, for broker
//! protocols.
//!
//! Every `connect` is checked first against the call's [`HostAllowlist`] (the prototype
//! must declare `network.tcp` and list the host, usually through a `url_field` such as
//! `server_url`), then resolved through [`NetworkPolicy::resolve`], the same address
//! guard `http` uses, so a refused address is never contacted.
//!
//! Connections are pooled per destination ([`pool`]): `release` puts a connection back
//! with the plugin's session blob ("handshake done, channel 1 open"); the next `connect`
//! of the same destination to the same host, port and TLS settings gets it back, after a
//! liveness check, with that blob, so a stream of events pays for one broker handshake.
//! A pooled connection found closed (the broker restarted, an operator killed it) is
//! dropped and the plugin gets a fresh one with no session, so it handshakes again.
//!
//! Limits ([`TcpConfig`], from `OUTRIDER_TCP_*`): open connections per destination and in
//! total (a `connect` over a limit waits for one to be released, up to its timeout),
//! idle time in the pool, and bytes per `read`/`write`.
//!
//! [`HostAllowlist`]: crate::runtime::network::HostAllowlist
//! [`NetworkPolicy::resolve`]: crate::runtime::network::NetworkPolicy::resolve

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::v0_1_1::tcp;
use crate::runtime::call::CallContext;
use crate::runtime::network::NetworkPolicy;

mod host;
pub mod pool;
mod stream;

pub use pool::{metrics, render_metrics};
use pool::{Lease, Pool, PoolKey};
use stream::Stream;

/// Limits of the `tcp` capability.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Open connections (in use or pooled) across all destinations.
    pub max_connections: usize,
    /// Open connections of one destination.
    pub max_per_destination: usize,
    /// A pooled connection unused this long is closed.
    pub idle_timeout: Duration,
    /// How long a call waits for a busy connection of its destination before opening
    /// another (see [`pool`]).
    pub grow_after: Duration,
    /// Largest `write`, and most bytes one `read` returns.
    pub max_bytes_per_call: usize,
    /// Connect timeout when the plugin does not ask for one.
    pub default_connect_timeout: Duration,
    /// Largest session blob kept with a pooled connection.
    pub max_session_bytes: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 1024,
            max_per_destination: 16,
            idle_timeout: Duration::from_secs(60),
            grow_after: Duration::from_millis(50),
            max_bytes_per_call: 16 * 1024 * 1024,
            default_connect_timeout: Duration::from_secs(10),
            max_session_bytes: 64 * 1024,
        }
    }
}

impl TcpConfig {
    /// Defaults overridden by `OUTRIDER_TCP_MAX_CONNECTIONS`,
    /// `OUTRIDER_TCP_MAX_PER_DESTINATION`, `OUTRIDER_TCP_IDLE_TIMEOUT_MS`,
    /// `OUTRIDER_TCP_GROW_AFTER_MS` and
    /// `OUTRIDER_TCP_MAX_BYTES_PER_CALL`. A value that is not a positive number is an
    /// error naming the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            match lookup(name) {
                None => Ok(None),
                Some(text) if text.trim().is_empty() => Ok(None),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => anyhow::bail!("{name}: `{text}` is not a positive whole number"),
                },
            }
        };
        let mut config = TcpConfig::default();
        if let Some(n) = number("OUTRIDER_TCP_MAX_CONNECTIONS")? {
            config.max_connections = n as usize;
        }
        if let Some(n) = number("OUTRIDER_TCP_MAX_PER_DESTINATION")? {
            config.max_per_destination = n as usize;
        }
        if let Some(n) = number("OUTRIDER_TCP_IDLE_TIMEOUT_MS")? {
            config.idle_timeout = Duration::from_millis(n);
        }
        if let Some(n) = number("OUTRIDER_TCP_GROW_AFTER_MS")? {
            config.grow_after = Duration::from_millis(n);
        }
        if let Some(n) = number("OUTRIDER_TCP_MAX_BYTES_PER_CALL")? {
            config.max_bytes_per_call = n as usize;
        }
        Ok(config)
    }
}

/// The shared part of the capability: policy, limits, TLS roots and the pool.
#[derive(Clone, Debug)]
pub struct TcpCapability {
    policy: NetworkPolicy,
    config: Arc<TcpConfig>,
    pool: Arc<Pool>,
}

impl TcpCapability {
    /// Build the capability (and start the idle sweeper when inside a tokio runtime).
    pub fn new(policy: NetworkPolicy, config: TcpConfig) -> Self {
        let pool = Pool::new(
            config.max_connections,
            config.max_per_destination,
            config.idle_timeout,
            config.grow_after,
        );
        TcpCapability {
            policy,
            config: Arc::new(config),
            pool,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &TcpConfig {
        &self.config
    }
}

/// A host-side TCP connection handed to the guest as `tcp.connection`.
///
/// Dropping it (the guest dropped the handle, or the call ended by a trap or timeout)
/// closes the socket and frees its slot under the limits.
#[derive(Debug)]
pub struct TcpConnection {
    stream: Stream,
    /// Where `release` puts it back; `None` when the call has no destination to pool
    /// for (the connection is closed instead).
    key: Option<PoolKey>,
    session: Option<Vec<u8>>,
    /// Set after an I/O failure or a close by the peer: never pooled again.
    broken: bool,
    _lease: Lease,
}

/// Add `outrider:plugin/tcp` to `linker`: `connect` opens (or takes from the pool) a
/// connection under the call's allowlist and the address policy; `release` pools it.
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    tcp::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_environment_names_bad_values() {
        let config = TcpConfig::from_lookup(|name| match name {
            "OUTRIDER_TCP_MAX_PER_DESTINATION" => Some("4".into()),
            "OUTRIDER_TCP_IDLE_TIMEOUT_MS" => Some("1500".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.max_per_destination, 4);
        assert_eq!(config.idle_timeout, Duration::from_millis(1500));
        assert_eq!(config.max_connections, 1024);
        let err = TcpConfig::from_lookup(|name| {
            (name == "OUTRIDER_TCP_MAX_CONNECTIONS").then(|| "lots".into())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("OUTRIDER_TCP_MAX_CONNECTIONS"),
            "{err}"
        );
    }
}
