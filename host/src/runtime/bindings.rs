//! Generated host bindings for every released `outrider:plugin` WIT version.
//!
//! This is the only place that runs `wasmtime::component::bindgen!`. Each released WIT
//! version gets its own module (`v0_1_0`, later `v0_2_0`, ...) generated from its frozen
//! folder under `wit/`. Only the newest version has real host implementations (see
//! `capabilities/`); an older version's module will delegate the interfaces it shares
//! with the newest one and convert the rest.
//!
//! Imports are async (host `http` parks the calling task instead of blocking a worker)
//! and trappable (a host bug or limit becomes a trap of that call only). `log` and
//! `state` are cheap and synchronous, so they skip the async machinery. Exports are
//! async so calls run on wasmtime's fibers and yield at epoch ticks.

/// Bindings for `outrider:plugin@0.1.0` (`wit/v0.1.0`).
pub mod v0_1_0 {
    #![allow(missing_docs, clippy::all)]

    /// The WIT version these bindings were generated from.
    pub const VERSION: &str = "0.1.0";

    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "full-plugin",
        imports: {
            "outrider:plugin/log": trappable,
            "outrider:plugin/state": trappable,
            default: async | trappable,
        },
        exports: { default: async },
        with: {
            // WASI clocks and random come from wasmtime-wasi's p2 implementation, which
            // is linked separately (semver-compatible with the vendored 0.2.0 subset).
            "wasi:clocks/wall-clock": wasmtime_wasi::p2::bindings::clocks::wall_clock,
            "wasi:random/random": wasmtime_wasi::p2::bindings::random::random,
            "outrider:plugin/tcp.connection": crate::runtime::capabilities::tcp::TcpConnection,
        },
    });

    pub use self::exports::outrider::plugin::{destination, plugin, transformer};
    pub use self::outrider::plugin::{http, log, state, tcp, types};
}
