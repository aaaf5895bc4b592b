//! `outrider serve`: open the store, load plugins, serve the API until stopped.

use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, AppParts, AppState};
use crate::auth::AuthConfig;
use crate::catalog;
use crate::config::ServeConfig;
use crate::crypto::Keyring;
use crate::delivery::alerting::AlertPolicy;
use crate::delivery::lanes::PluginCalls;
use crate::delivery::retry::RetryPolicy;
use crate::delivery::{DeliveryEngine, DispatchContext, WorkerConfig};
use crate::runtime::{PluginRegistry, PluginRuntime, RuntimeConfig};
use crate::store::{Dialect, Store};

/// Set up logging once, in the configured format.
pub fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("OUTRIDER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        "json" => builder.json().try_init(),
        _ => builder.try_init(),
    };
}

/// Everything a running server holds, built from its configuration.
pub async fn build_state(config: ServeConfig) -> anyhow::Result<AppState> {
    let store = Store::open_with(
        config.database_url.as_deref(),
        &config.data_dir,
        config.sqlite_sync()?,
    )
    .await
    .context("opening the database")?;
    store.migrate().await.context("migrating the database")?;

    let auth = AuthConfig::from_settings(
        config.api_key.as_deref(),
        config.jwt_secret.as_deref(),
        config.insecure_dev,
    )?;
    let api_token_keys = auth.api_token_keys.clone();
    let auth = auth.with_api_tokens(api::api_tokens::StoreApiTokens::new(
        store.clone(),
        api_token_keys,
    ));
    let keyring = match (&config.encryption_key, config.insecure_dev) {
        (Some(key), _) => Keyring::from_env_value(key).context("OUTRIDER_ENCRYPTION_KEY")?,
        (None, true) => Keyring::ephemeral(),
        (None, false) => match &config.api_key {
            // Without a dedicated key, secrets are keyed from the admin key so that a
            // server configured with only OUTRIDER_API_KEY still encrypts at rest.
            Some(api_key) => Keyring::from_env_value(&format!("admin:{api_key}"))
                .context("deriving the encryption key from OUTRIDER_API_KEY")?,
            None => anyhow::bail!("OUTRIDER_ENCRYPTION_KEY is required"),
        },
    };

    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(
            config
                .cache_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("cache")),
        ),
        memory_limit: (config.plugin_memory_mb as usize) * 1024 * 1024,
        call_timeout: config.plugin_timeout(),
        allow_networks: config.allowed_networks()?,
        instance_reuse: config.plugin_instance_reuse,
        ..RuntimeConfig::default()
    })?;
    let registry = PluginRegistry::default();
    if let Some(dir) = &config.plugins_dir {
        let n = catalog::load_dir(&runtime, &registry, dir).await?;
        tracing::info!(count = n, dir = %dir.display(), "built-in plugins loaded");
    }
    let n = catalog::load_stored(&runtime, &registry, &store).await?;
    tracing::info!(count = n, "uploaded plugins loaded");

    let registry = Arc::new(registry);
    let keyring = Arc::new(keyring);
    if store.dialect() == Dialect::Sqlite {
        // This process is the database's only user: deliveries left claimed by a previous
        // run (killed mid-delivery) are due again now rather than when their lease ends.
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::info!(
                count = released,
                "requeued deliveries interrupted by the last shutdown"
            );
        }
    }
    let concurrency = config.delivery_concurrency.max(1);
    let delivery = DeliveryEngine::start(
        DispatchContext {
            store: store.clone(),
            registry: registry.clone(),
            keyring: keyring.clone(),
            retry: RetryPolicy::from_config(&config.retry_schedule, config.retry_max_attempts)
                .context("OUTRIDER_RETRY_SCHEDULE")?,
            alerts: AlertPolicy::new(
                config.alert_consecutive_failures,
                config.alert_auto_disable,
                config.alert_callback_url.clone(),
            ),
            targets: Default::default(),
            calls: PluginCalls::new(registry.clone()),
        },
        WorkerConfig {
            concurrency,
            // A node that dies leaves its claims to expire this long after.
            lease: crate::delivery::worker::lease_for(config.plugin_timeout(), concurrency),
            ..WorkerConfig::default()
        },
    );
    Ok(AppState::new(AppParts {
        store,
        runtime: Arc::new(runtime),
        registry,
        auth: Arc::new(auth),
        keyring,
        config: Arc::new(config),
        delivery,
    }))
}

/// Run the server until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    init_tracing(&config.log_format);
    if config.api_key.is_none() && !config.insecure_dev {
        anyhow::bail!(
            "no admin key: set OUTRIDER_API_KEY (or api_key in outrider.toml), \
             or pass --insecure-dev to run without authentication"
        );
    }
    if config.insecure_dev {
        tracing::warn!("--insecure-dev: authentication is off and secrets use a throwaway key");
    }
    let listen = config.listen;
    let state = build_state(config).await?;
    crate::scheduler::Scheduler::start(state.store.clone(), state.delivery.publisher.clone());
    crate::retention::start(state.store.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("outrider listening on http://{addr}");
    tracing::info!(%addr, "listening");
    // Connection info gives the audit trail each caller's address.
    let app = api::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// `outrider migrate`: create or upgrade the schema and exit.
pub async fn migrate(config: ServeConfig) -> anyhow::Result<()> {
    init_tracing(&config.log_format);
    let store = Store::open(config.database_url.as_deref(), &config.data_dir).await?;
    store.migrate().await?;
    println!("database is up to date");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
