//! `outrider:plugin/tcp`: raw TCP (optionally TLS) performed by the host, for broker
//! protocols.
//!
//! Not offered yet: `connect` answers `unsupported("tcp arrives with broker support")`.
//! When it arrives it will resolve through [`NetworkPolicy::resolve`] (the same checker
//! `http` uses), check the call's allowlist, and pool connections per destination with
//! the plugin's session blob.
//!
//! [`NetworkPolicy::resolve`]: crate::runtime::network::NetworkPolicy::resolve

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::v0_1_0::tcp;
use crate::runtime::call::CallContext;

mod host;

/// Why `connect` is refused for now.
pub const UNSUPPORTED: &str = "tcp arrives with broker support";

/// A host-side TCP connection handed to the guest as `tcp.connection`. None can exist
/// yet, since `connect` is unsupported.
#[derive(Debug)]
pub struct TcpConnection {
    _private: (),
}

/// Add `outrider:plugin/tcp` to `linker`. Every `connect` currently fails with
/// `unsupported`.
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    tcp::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}
