//! Generated host bindings for the `outrider:plugin` WIT versions.
//!
//! This is the only place that runs `wasmtime::component::bindgen!`. Each released WIT
//! version is frozen in its own folder under `wit/`. Versions that only add to the one
//! before (0.1.0 → 0.1.1 added the `batch-destination` export) need no module of their
//! own: wasmtime's linker is semver-aware, so the newest 0.1.x imports satisfy a
//! component built against 0.1.0, and the export glue (`guest/v0_1.rs`) looks functions
//! up under the component's own version and lifts their results with these types, which
//! match structurally. A breaking version (0.2.0) will get its own module here.
//!
//! Imports are async (host `http` parks the calling task instead of blocking a worker)
//! and trappable (a host bug or limit becomes a trap of that call only). `log` and
//! `state` are cheap and synchronous, so they skip the async machinery. Exports are
//! async so calls run on wasmtime's fibers and yield at epoch ticks.

/// Bindings for `outrider:plugin@0.1.1` (`wit/v0.1.1`), which also serve 0.1.0.
pub mod v0_1_1 {
    #![allow(missing_docs, clippy::all)]

    wasmtime::component::bindgen!({
        path: "../wit/v0.1.1",
        world: "full-batch-plugin",
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

    pub use self::exports::outrider::plugin::{
        batch_destination, destination, plugin, transformer,
    };
    pub use self::outrider::plugin::{http, log, state, tcp, types};
}
