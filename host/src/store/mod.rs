//! Durable state, on SQLite (embedded default) or PostgreSQL.
//!
//! One sqlx `Any` pool serves both backends: queries use `$n` placeholders, integers for
//! times (ms since the epoch) and flags, and text for JSON, so the same SQL runs on both.
//! Where they differ (row locking for queue claims, migrations) [`Dialect`] says which.

mod api_tokens;
mod attempts;
mod audit;
mod configurations;
mod deliveries;
mod destinations;
mod environment;
mod events;
mod hot;
mod plugins;
mod publish;
mod retention;
mod schedules;
mod sql;
mod stats;
mod tasks;
mod tenants;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use api_tokens::ApiTokenRow;
pub use attempts::{AttemptQuery, AttemptRow};
pub use audit::{AuditEntry, AuditQuery};
pub use configurations::{ConfigurationRow, HistoryRow, Write};
pub use deliveries::{AttemptRecord, ClaimedDelivery, DeliverySummary, NextStep};
pub use destinations::DestinationRow;
pub use environment::EnvironmentVariableRow;
pub use events::{EventQuery, EventRow};
pub use plugins::StoredPlugin;
pub use publish::{Lease, NewEvent, PublishOutcome, PublishedBatch, RoutingSnapshot};
pub use retention::{RetainedKind, RetentionPolicy, GLOBAL_SCOPE, RETENTION_BATCH};
pub use schedules::{ScheduleRow, ScheduleRunRow};
pub use stats::{EventScope, METADATA_KEY_SAMPLE};
pub use tasks::{BulkAction, TaskFilter, TaskGrouping, TaskRow, TaskStatus};
pub use tenants::TenantRow;

/// How SQLite makes a commit durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// fsync on every commit: a committed event survives a power cut.
    #[default]
    Full,
    /// WAL without fsync per commit: a committed event survives a process crash; a power
    /// cut may lose the last commits.
    Normal,
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite in WAL mode.
    Sqlite,
    /// PostgreSQL, for several nodes sharing one database.
    Postgres,
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique constraint or state rule refused the change.
    #[error("{0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The writer's thread stopped (the process is shutting down).
    #[error("the writer has stopped")]
    WriterStopped,
    /// The hot write path's direct SQLite connection failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub use hot::WriterConnection;

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where the hot write paths (publish, claims, outcomes) run. On SQLite one
    /// connection: writers queue in-process instead of spinning on the file lock, whose
    /// busy-wait back-off (up to 100 ms a try) made the latency tail. On PostgreSQL the pool.
    writer: AnyPool,
    dialect: Dialect,
    /// On SQLite with a file, the hot write paths' own connection (see [`hot`]).
    direct: Option<hot::DirectWriter>,
}

impl Store {
    /// Open PostgreSQL when `database_url` is given, else SQLite at
    /// `data_dir/outrider.db` (created if missing).
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> StoreResult<Self> {
        Self::open_with(database_url, data_dir, SqliteSync::Full).await
    }

    /// [`Store::open`] with a chosen SQLite commit durability.
    pub async fn open_with(
        database_url: Option<&str>,
        data_dir: &Path,
        sync: SqliteSync,
    ) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (url, dialect) = match database_url {
            Some(url) if url.starts_with("postgres") => (url.to_string(), Dialect::Postgres),
            Some(url) if url.starts_with("sqlite") => (url.to_string(), Dialect::Sqlite),
            Some(url) => {
                return Err(StoreError::Conflict(format!(
                    "unsupported database URL `{url}`: use postgres://... or sqlite://..."
                )))
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
                let path = data_dir.join("outrider.db");
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Dialect::Sqlite,
                )
            }
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let (pool, writer, direct) = match dialect {
            Dialect::Sqlite => {
                let pool = sqlite_pool_options(8, sync, None)
                    .connect_with(options.clone())
                    .await?;
                let writer = sqlite_pool_options(1, sync, Some(WRITER_AUTOCHECKPOINT_PAGES))
                    .connect_with(options)
                    .await?;
                spawn_checkpointer(pool.clone());
                // The pools created the file and switched it to WAL.
                let direct = match sqlite_file(&url)? {
                    Some(path) => Some(hot::DirectWriter::open(
                        &path,
                        sync,
                        WRITER_AUTOCHECKPOINT_PAGES,
                    )?),
                    None => None,
                };
                (pool, writer, direct)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool, None)
            }
        };
        Ok(Self {
            pool,
            writer,
            dialect,
            direct,
        })
    }

    /// Create or upgrade the schema.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Dialect::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Which backend this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for modules of this crate that own their own queries.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool of the hot write paths (see the field's note).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Hold the hot paths' writer (on SQLite, wait for the one connection).
    pub async fn writer_connection(&self) -> StoreResult<WriterConnection> {
        match &self.direct {
            Some(direct) => Ok(direct.acquire().await),
            None => Ok(WriterConnection::Pool(self.writer.acquire().await?)),
        }
    }
}

/// The database file of a SQLite URL, or `None` for an in-memory database (which only
/// sqlx's own connections can share).
fn sqlite_file(url: &str) -> StoreResult<Option<std::path::PathBuf>> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    let name = path.to_string_lossy();
    if name.starts_with("file:sqlx-in-memory") || name == ":memory:" || name.is_empty() {
        return Ok(None);
    }
    Ok(Some(path.to_path_buf()))
}

/// WAL pages after which the writer checkpoints in its own commit. Only a backstop: the
/// checkpointer task keeps the WAL far below it.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Checkpoint the WAL from a reader connection, off the writer's commit path. SQLite's
/// automatic checkpoint (every 1,000 pages) runs inside whichever commit crosses the
/// threshold, copying pages and fsyncing the database file while the writer and every
/// publish waiting on it stall: that made the publish-to-delivery p99. A PASSIVE
/// checkpoint runs beside the writer without blocking it.
fn spawn_checkpointer(pool: AnyPool) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %err, "WAL checkpoint failed; the writer's backstop will checkpoint");
            }
        }
    });
}

fn sqlite_pool_options(
    max_connections: u32,
    sync: SqliteSync,
    autocheckpoint_pages: Option<u32>,
) -> AnyPoolOptions {
    let synchronous = match sync {
        SqliteSync::Full => "PRAGMA synchronous = FULL",
        SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
    };
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // An embedded database cannot lose its connection; the liveness ping on every
        // acquire is a round trip to sqlx's worker thread per query.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL makes every commit durable
                // (group commit keeps the fsync count low); busy_timeout queues writers
                // outside the hot paths instead of failing them.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute(synchronous).await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                // Lookups of recent events and deliveries stay in memory.
                conn.execute("PRAGMA cache_size = -16384").await?;
                if let Some(pages) = autocheckpoint_pages {
                    conn.execute(format!("PRAGMA wal_autocheckpoint = {pages}").as_str())
                        .await?;
                }
                Ok(())
            })
        })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Stores for unit tests: a fresh SQLite file per test.
    use super::Store;

    /// A migrated SQLite store in a temporary directory (kept alive by the guard).
    pub async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(None, dir.path()).await.expect("open sqlite");
        store.migrate().await.expect("migrate");
        (store, dir)
    }
}
