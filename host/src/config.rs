//! Server configuration: defaults, then `outrider.toml`, then `OUTRIDER_*` environment
//! variables, then command-line flags, each layer overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything `outrider serve` needs. Field names are the `outrider.toml` keys and, upper-
/// cased with an `OUTRIDER_` prefix, the environment variables.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the compiled-plugin cache.
    pub data_dir: PathBuf,
    /// Directory whose `*.wasm` components are loaded at start (built-in plugins).
    pub plugins_dir: Option<PathBuf>,
    /// Where compiled plugins are cached; `<data_dir>/cache` when absent. Servers of one
    /// user may share it: entries are keyed by component digest and engine settings.
    pub cache_dir: Option<PathBuf>,
    /// `postgres://...` to use PostgreSQL; SQLite under `data_dir` when absent.
    #[serde(deserialize_with = "lenient::optional_string")]
    pub database_url: Option<String>,
    /// Admin API key (`Authorization: Bearer ...`).
    #[serde(deserialize_with = "lenient::optional_string")]
    pub api_key: Option<String>,
    /// Key material for secrets at rest: `kid:secret[,kid:secret...]`, first is current.
    #[serde(deserialize_with = "lenient::optional_string")]
    pub encryption_key: Option<String>,
    /// Secret for tenant JWTs; derived from the admin key when absent.
    #[serde(deserialize_with = "lenient::optional_string")]
    pub jwt_secret: Option<String>,
    /// Allow starting without an admin key (every request is admin). Development only.
    pub insecure_dev: bool,
    /// Comma-separated CIDRs that plugins may reach despite the address guard
    /// (e.g. `127.0.0.0/8` for local testing).
    #[serde(deserialize_with = "lenient::string")]
    pub allow_networks: String,
    /// `pretty` or `json`.
    #[serde(deserialize_with = "lenient::string")]
    pub log_format: String,
    /// Memory limit of one plugin call, in MiB.
    pub plugin_memory_mb: u64,
    /// Wall-clock deadline of one plugin call, in milliseconds.
    pub plugin_timeout_ms: u64,
    /// Calls a warm plugin instance may serve for the same destination (same tenant,
    /// configuration and credentials) before it is discarded; `0` gives every call a
    /// fresh instance. A trap, timeout or limit hit always discards it.
    pub plugin_instance_reuse: u32,
    /// Largest component accepted by `POST /api/v1/plugins`, in MiB.
    pub max_plugin_mb: u64,
    /// Largest JSON request body, in KiB.
    pub max_body_kb: u64,
    /// Maximum destinations per tenant.
    pub max_destinations_per_tenant: u32,
    /// Delays between attempts, e.g. `30s,1m,5m,30m,2h`; empty for exponential backoff.
    #[serde(deserialize_with = "lenient::string")]
    pub retry_schedule: String,
    /// Attempts per delivery, the first included.
    pub retry_max_attempts: u32,
    /// Consecutive failures of a destination that count as 100% for alerts.
    pub alert_consecutive_failures: u32,
    /// Disable a destination when it reaches 100% of the alert threshold.
    pub alert_auto_disable: bool,
    /// URL that receives alert callbacks (JSON POST), if any.
    #[serde(deserialize_with = "lenient::optional_string")]
    pub alert_callback_url: Option<String>,
    /// Deliveries in flight at once on this node.
    pub delivery_concurrency: usize,
    /// SQLite commit durability: `full` (fsync every commit; a 202 survives power loss)
    /// or `normal` (WAL without fsync per commit; a 202 survives a process crash, not a
    /// power cut).
    #[serde(deserialize_with = "lenient::string")]
    pub sqlite_synchronous: String,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3333".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            plugins_dir: None,
            cache_dir: None,
            database_url: None,
            api_key: None,
            encryption_key: None,
            jwt_secret: None,
            insecure_dev: false,
            allow_networks: String::new(),
            log_format: "pretty".into(),
            plugin_memory_mb: 64,
            plugin_timeout_ms: 10_000,
            plugin_instance_reuse: 1000,
            max_plugin_mb: 128,
            max_body_kb: 1024,
            max_destinations_per_tenant: 20,
            retry_schedule: String::new(),
            retry_max_attempts: 10,
            alert_consecutive_failures: 100,
            alert_auto_disable: false,
            alert_callback_url: None,
            delivery_concurrency: 256,
            sqlite_synchronous: "full".into(),
        }
    }
}

impl ServeConfig {
    /// Layer defaults, the TOML file (when it exists), `OUTRIDER_*` variables and the
    /// flags given on the command line (`overrides`, only the ones set).
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> anyhow::Result<Self> {
        let default_file = Path::new("outrider.toml");
        let mut figment = Figment::from(Serialized::defaults(ServeConfig::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None if default_file.exists() => figment = figment.merge(Toml::file(default_file)),
            None => {}
        }
        figment = figment
            .merge(Env::prefixed("OUTRIDER_").ignore(&["config"]))
            .merge(Serialized::defaults(overrides));
        figment.extract().context("invalid configuration")
    }

    /// The networks plugins may reach despite the address guard.
    pub fn sqlite_sync(&self) -> anyhow::Result<crate::store::SqliteSync> {
        match self.sqlite_synchronous.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(crate::store::SqliteSync::Full),
            "normal" => Ok(crate::store::SqliteSync::Normal),
            other => anyhow::bail!("sqlite_synchronous: `{other}` is not `full` or `normal`"),
        }
    }

    /// The `allow_networks` CIDRs, parsed.
    pub fn allowed_networks(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.allow_networks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| format!("OUTRIDER_ALLOW_NETWORKS: `{s}` is not a CIDR"))
            })
            .collect()
    }

    /// Deadline of one plugin call.
    pub fn plugin_timeout(&self) -> Duration {
        Duration::from_millis(self.plugin_timeout_ms)
    }
}

/// Environment values are typed by figment (`OUTRIDER_API_KEY=1234` reads as a number);
/// text settings accept any scalar and keep its text.
mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Bool(bool),
    }

    impl Scalar {
        fn into_string(self) -> String {
            match self {
                Scalar::Text(s) => s,
                Scalar::Unsigned(n) => n.to_string(),
                Scalar::Signed(n) => n.to_string(),
                Scalar::Float(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
            }
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Scalar::deserialize(d).map(Scalar::into_string)
    }

    pub fn optional_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<Scalar>::deserialize(d).map(|s| s.map(Scalar::into_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own large error
    fn numeric_environment_values_stay_text() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OUTRIDER_API_KEY", "12345678901234567890");
            jail.set_env("OUTRIDER_RETRY_MAX_ATTEMPTS", "3");
            let config = ServeConfig::load(None, &serde_json::json!({})).expect("loads");
            assert_eq!(config.api_key.as_deref(), Some("12345678901234567890"));
            assert_eq!(config.retry_max_attempts, 3);
            Ok(())
        });
    }

    #[test]
    fn parses_allowed_networks() {
        let config = ServeConfig {
            allow_networks: "127.0.0.0/8, ::1".into(),
            ..Default::default()
        };
        let nets = config.allowed_networks().unwrap();
        assert_eq!(nets.len(), 2);
        assert!(nets[1].contains(&"::1".parse::<std::net::IpAddr>().unwrap()));
        let bad = ServeConfig {
            allow_networks: "localhost".into(),
            ..Default::default()
        };
        let err = bad.allowed_networks().unwrap_err().to_string();
        assert!(err.contains("localhost"), "{err}");
    }
}
