//! Host capabilities granted to plugins, assembled in one place.
//!
//! One module per capability (`log`, `http`, `tcp`, `state`, `wasi`), each with its
//! configuration and a documented `add_to_linker` in `mod.rs` and the WIT trait
//! implementations in `host.rs`. [`Capabilities`] is the shared, per-runtime part (the one
//! HTTP client, the network policy, the state store); per-call parts live in
//! [`CallContext`](super::call::CallContext).

use wasmtime::component::{HasSelf, Linker};

use super::bindings::v0_1_1::types;

use super::call::CallContext;
use super::long_calls::LongCalls;
use super::network::NetworkPolicy;

pub mod http;
pub mod log;
pub mod state;
pub mod tcp;
pub mod wasi;

/// Shared state of every capability, one per runtime.
#[derive(Debug)]
pub struct Capabilities {
    /// The operator's address policy (shared by `http` and `tcp`).
    pub policy: NetworkPolicy,
    /// Log caps.
    pub log: log::LogConfig,
    /// The outbound HTTP client and its caps.
    pub http: http::HttpCapability,
    /// Per-target key/value state.
    pub state: state::StateStore,
    /// Raw TCP: limits and the per-destination connection pool.
    pub tcp: tcp::TcpCapability,
    /// The gates long-running calls take turns at.
    pub long_calls: LongCalls,
}

impl Capabilities {
    /// Build the shared capability state.
    pub fn new(policy: NetworkPolicy, http: http::HttpConfig) -> anyhow::Result<Self> {
        Ok(Capabilities {
            http: http::HttpCapability::new(policy.clone(), http)?,
            tcp: tcp::TcpCapability::new(policy.clone(), tcp::TcpConfig::from_env()?),
            policy,
            log: log::LogConfig::default(),
            state: state::StateStore::default(),
            long_calls: LongCalls::for_this_machine(super::engine::EPOCH_TICK),
        })
    }
}

/// Add every granted import of `outrider:plugin@0.1.1` and WASI 0.2 to `linker`.
///
/// The linker is semver-aware, so these also satisfy the imports of components built
/// against 0.1.0 (0.1.1 only added an export).
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    // `types` has no functions; its (empty) instance must still be defined.
    types::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)?;
    wasi::add_to_linker(linker)?;
    log::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    tcp::add_to_linker(linker)?;
    state::add_to_linker(linker)?;
    Ok(())
}

impl types::Host for CallContext {}
