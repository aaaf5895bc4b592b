//! End-to-end tests: each starts the real `outrider` binary on `127.0.0.1:0` with its own
//! data directory, talks to it over HTTP, and checks what real loopback sinks receive.
//!
//! Needs `target/debug/outrider` and `target/plugins/*.wasm`: `cargo xtask test` builds
//! both before running this.

mod harness;

mod batches;
mod compat;
mod configurations;
mod destination_changes;
mod gateway;
mod net_check;
mod openapi;
mod operations;
mod payload;
mod plugin_examples;
mod plugin_kit;
mod plugins_api;
mod scale_out;
mod secrets;
mod tasks;
mod transformers;
