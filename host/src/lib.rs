//! Outrider: a self-hosted event gateway and integration host whose destination types and
//! transformers are sandboxed WebAssembly components.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod inspect;
pub mod integration;
pub mod keys;
pub mod net_check;
pub mod plugin_kit;
pub mod retention;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod telemetry;
