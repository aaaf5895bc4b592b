//! The integration layer's domain logic, shared by the API and the delivery path:
//! `${NAME}` environment-variable references ([`variables`]), sealing of sensitive
//! configuration values ([`parameters`]), and running transformer configurations alone
//! or as a destination's chain ([`chain`]).

pub mod chain;
pub mod hook;
pub mod parameters;
pub mod rotation;
pub mod variables;

/// The configuration types (prototype kinds) the configurations API serves.
pub const CONFIGURATION_TYPES: [&str; 2] = ["destination", "transformer"];
