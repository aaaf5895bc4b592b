//! The plugin author kit behind `outrider plugin new | build | test`:
//!
//! - [`scaffold`]: a new project (Rust, JavaScript or Python; destination or
//!   transformer) from templates embedded in the binary, that builds as is.
//! - [`build`]: a project into a component, with the toolchain detection and
//!   componentize steps of `cargo xtask plugins` (the shared `outrider-plugin-build`
//!   crate).
//! - [`trial`]: a component loaded as the server loads it, `validate` then `deliver`
//!   against a loopback [`capture`] server (or `transform`), with what it sent, the
//!   result, time and memory.
//!
//! `outrider plugin inspect` (WIT version, imports, declared network access) is
//! [`crate::inspect`].

pub mod build;
pub mod capture;
pub mod scaffold;
pub mod trial;
