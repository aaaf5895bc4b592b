//! The configured destination or transformer a call is made for.

use crate::fields::{Config, Credentials};

/// A configured instance of one of the plugin's prototypes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Prototype id within this plugin.
    pub prototype: String,
    /// Id of the configured destination or transformer.
    pub id: String,
    /// Tenant it belongs to.
    pub tenant_id: String,
    /// Validated configuration, defaults applied, `${VAR}` references resolved.
    pub config: Config,
    /// Decrypted credentials.
    pub credentials: Credentials,
    /// Static metadata the destination adds to every delivery.
    pub delivery_metadata: Vec<(String, String)>,
}

impl Target {
    /// A target of `prototype` with empty configuration (for tests).
    pub fn new(prototype: impl Into<String>) -> Self {
        Target {
            prototype: prototype.into(),
            id: String::new(),
            tenant_id: String::new(),
            config: Config::default(),
            credentials: Credentials::default(),
            delivery_metadata: Vec::new(),
        }
    }

    /// Sets the configuration (for tests).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the credentials (for tests).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }
}
