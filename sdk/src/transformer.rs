//! Transformers: the [`Transformer`] trait and its errors.

use crate::fields::{Config, Credentials, FieldError};
use crate::{Plugin, Target};
use serde_json::Value;
use std::fmt;

/// A plugin with transformer prototypes. Export it with
/// [`export_transformer!`](crate::export_transformer) (or
/// [`export_plugin!`](crate::export_plugin) if it also has destinations).
pub trait Transformer: Plugin {
    /// Checks a configuration of `prototype`; report every problem, each naming its field.
    fn validate(
        prototype: &str,
        config: &Config,
        credentials: &Credentials,
    ) -> Result<(), Vec<FieldError>>;

    /// Transforms one input into zero (drop), one (map) or more (split) outputs.
    fn transform(target: &Target, input: Value) -> Result<Vec<Value>, TransformError>;
}

/// Why a transformation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The input could not be transformed (bad shape, failed expression).
    InvalidInput(String),
    /// The configuration is wrong.
    Misconfigured(String),
}

impl TransformError {
    /// The input could not be transformed.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        TransformError::InvalidInput(message.into())
    }

    /// The configuration is wrong.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        TransformError::Misconfigured(message.into())
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            TransformError::Misconfigured(m) => write!(f, "misconfigured: {m}"),
        }
    }
}

impl std::error::Error for TransformError {}

/// A bad field found while transforming is a configuration problem.
impl From<FieldError> for TransformError {
    fn from(e: FieldError) -> Self {
        TransformError::Misconfigured(e.to_string())
    }
}

/// Bad fields found while transforming, as one configuration problem.
impl From<Vec<FieldError>> for TransformError {
    fn from(errors: Vec<FieldError>) -> Self {
        TransformError::Misconfigured(crate::fields::join_errors(&errors))
    }
}
