//! The connection and transactions of the hot write paths (publish batches, outcome
//! batches).
//!
//! On PostgreSQL it is a pooled sqlx connection. On SQLite it is a connection of our own,
//! driven directly (rusqlite) on the thread that runs the write loops: through sqlx every
//! statement, and every row it returned, was a handoff to sqlx's worker thread of that
//! connection and back, two thread wake-ups each. Measured under load, a batch of ~45
//! events held the writer 2.45 ms of which the SQL itself was a small part; the writer
//! was the gateway's bottleneck. The statements are the same text on both backends (built
//! once by [`SqlBuilder`]), so the batch logic is written once against [`HotTx`].
//!
//! A direct statement blocks its thread while it waits for SQLite's write lock. So no task
//! on the writer thread may hold a sqlx write transaction open across an `.await` (it
//! could not be polled to its COMMIT while the thread waits); single sqlx statements, as
//! the alerts run there, are fine: sqlx's own thread finishes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::sql::{Bind, SqlBuilder};
use super::{SqliteSync, StoreResult};

/// Most prepared statements kept by the direct connection: a few kinds of statement, each
/// in up to 100 row counts.
const STATEMENT_CACHE: usize = 512;

/// The direct SQLite connection, shared by the write loops one transaction at a time
/// (the lock is fair, like a one-connection pool).
#[derive(Clone, Debug)]
pub(crate) struct DirectWriter {
    conn: Arc<tokio::sync::Mutex<DirectConn>>,
}

/// The direct connection with what it takes to reopen it.
#[derive(Debug)]
pub struct DirectConn {
    conn: rusqlite::Connection,
    path: PathBuf,
    sync: SqliteSync,
    /// Left at `synchronous = NORMAL` by an outcome batch whose restore failed.
    relaxed: bool,
}

impl DirectWriter {
    /// Open the database file at `path` (already created and in WAL mode).
    pub fn open(path: &Path, sync: SqliteSync, autocheckpoint_pages: u32) -> StoreResult<Self> {
        let conn = open_connection(path, sync, autocheckpoint_pages)?;
        Ok(DirectWriter {
            conn: Arc::new(tokio::sync::Mutex::new(DirectConn {
                conn,
                path: path.to_path_buf(),
                sync,
                relaxed: false,
            })),
        })
    }

    /// Wait for the connection.
    pub async fn acquire(&self) -> WriterConnection {
        WriterConnection::Direct(self.conn.clone().lock_owned().await)
    }
}

fn open_connection(
    path: &Path,
    sync: SqliteSync,
    autocheckpoint_pages: u32,
) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Writers outside the hot paths (API writes, audit, schedules) hold the lock for a
    // moment; retry at a fine grain instead of SQLite's default back-off, whose sleeps
    // grow to 100 ms and would make the publish latency tail.
    conn.busy_handler(Some(retry_busy))?;
    // temp_store = MEMORY keeps statement journals in memory. The multi-row statements of
    // a batch each need one (to undo just that statement), and past 64 KiB SQLite spills
    // it to a temporary file: under load that was dozens of files created, written,
    // unlinked and closed per second on the writer's thread, a third of its page writes.
    // A journal holds at most the pages one statement of ≤ 100 rows touches.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = {autocheckpoint_pages}; \
         PRAGMA temp_store = MEMORY;",
        match sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    ))?;
    Ok(conn)
}

/// SQLite's busy handler: 50 µs sleeps for the first 10 ms, then 1 ms ones, up to 10 s
/// in all (the `busy_timeout` of the other connections).
fn retry_busy(attempt: i32) -> bool {
    match attempt {
        0..200 => std::thread::sleep(Duration::from_micros(50)),
        200..10_190 => std::thread::sleep(Duration::from_millis(1)),
        _ => return false,
    }
    true
}

/// The hot write paths' connection, held across a batch.
pub enum WriterConnection {
    /// A pooled sqlx connection (PostgreSQL, or SQLite without a file).
    Pool(sqlx::pool::PoolConnection<sqlx::Any>),
    /// The direct SQLite connection.
    Direct(tokio::sync::OwnedMutexGuard<DirectConn>),
}

impl WriterConnection {
    /// Begin a transaction whose commit is durable as configured.
    pub(crate) async fn begin(&mut self) -> StoreResult<HotTx<'_>> {
        match self {
            WriterConnection::Pool(conn) => {
                Ok(HotTx::Pool(sqlx::Connection::begin(&mut **conn).await?))
            }
            WriterConnection::Direct(direct) => {
                if direct.relaxed {
                    // Back to FULL after unsynced commits (`begin_unsynced`).
                    direct.set_relaxed(false)?;
                }
                DirectTx::begin(&mut direct.conn).map(HotTx::Direct)
            }
        }
    }

    /// Begin a transaction whose commit need not reach the disk before it returns
    /// (outcomes, claims: losing the last of them to a power cut only repeats a
    /// delivery). On SQLite the direct connection switches to `synchronous = NORMAL`
    /// (not allowed inside a transaction, so before it) and stays there until the next
    /// [`begin`](Self::begin), which switches back to `FULL` before anything durable, so
    /// that commit's fsync also covers these. On PostgreSQL the transaction sets
    /// `synchronous_commit = off` (the WAL writer flushes it within 3 ×
    /// `wal_writer_delay`). An in-memory SQLite database has no fsync to skip.
    pub(crate) async fn begin_unsynced(&mut self) -> StoreResult<HotTx<'_>> {
        match self {
            WriterConnection::Pool(conn) => {
                let postgres = conn.backend_name() == "PostgreSQL";
                let mut tx = sqlx::Connection::begin(&mut **conn).await?;
                if postgres {
                    sqlx::query("SET LOCAL synchronous_commit = off")
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(HotTx::Pool(tx))
            }
            WriterConnection::Direct(direct) => {
                if !direct.relaxed {
                    direct.set_relaxed(true)?;
                }
                DirectTx::begin(&mut direct.conn).map(HotTx::Direct)
            }
        }
    }

    /// Run a read outside any transaction (it sees every commit so far).
    pub(crate) async fn read<T: HotRow>(&mut self, b: &SqlBuilder) -> StoreResult<Vec<T>> {
        match self {
            WriterConnection::Pool(conn) => any_fetch(conn, b).await,
            WriterConnection::Direct(direct) => direct_fetch(&direct.conn, b),
        }
    }

    /// The connection's `synchronous` level (2 = FULL), for tests.
    pub async fn synchronous(&mut self) -> StoreResult<i64> {
        const SQL: &str = "PRAGMA synchronous";
        match self {
            WriterConnection::Pool(conn) => {
                Ok(sqlx::query(SQL).fetch_one(&mut **conn).await?.try_get(0)?)
            }
            WriterConnection::Direct(direct) => {
                Ok(direct.conn.query_row(SQL, [], |row| row.get(0))?)
            }
        }
    }
}

impl DirectConn {
    fn set_relaxed(&mut self, relaxed: bool) -> StoreResult<()> {
        if self.sync == SqliteSync::Normal {
            return Ok(()); // always relaxed
        }
        let level = if relaxed { "NORMAL" } else { "FULL" };
        self.relaxed = true;
        if let Err(err) = self.conn.pragma_update(None, "synchronous", level) {
            if !relaxed {
                // Start over on a fresh connection rather than commit publishes unsynced.
                let fresh =
                    open_connection(&self.path, self.sync, super::WRITER_AUTOCHECKPOINT_PAGES)?;
                self.conn = fresh;
                self.relaxed = false;
                return Ok(());
            }
            return Err(err.into());
        }
        self.relaxed = relaxed;
        Ok(())
    }
}

/// A transaction on the hot write path.
pub(crate) enum HotTx<'c> {
    Pool(sqlx::Transaction<'c, sqlx::Any>),
    Direct(DirectTx<'c>),
}

/// A transaction on the direct connection, rolled back if dropped before its commit
/// (a failed statement, or a cancelled batch).
pub(crate) struct DirectTx<'c> {
    conn: &'c mut rusqlite::Connection,
    open: bool,
}

impl<'c> DirectTx<'c> {
    fn begin(conn: &'c mut rusqlite::Connection) -> StoreResult<Self> {
        // IMMEDIATE: take the write lock now, so a busy database waits here (in the busy
        // handler) rather than failing a statement half-way through the batch.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(DirectTx { conn, open: true })
    }
}

impl Drop for DirectTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            if let Err(err) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %err, "rolling back a hot-path transaction failed");
            }
        }
    }
}

impl HotTx<'_> {
    /// Run a statement; returns the rows it changed.
    pub async fn execute(&mut self, b: &SqlBuilder) -> StoreResult<u64> {
        match self {
            HotTx::Pool(tx) => Ok(b.query().execute(&mut **tx).await?.rows_affected()),
            HotTx::Direct(tx) => {
                let mut stmt = tx.conn.prepare_cached(b.sql())?;
                bind_all(&mut stmt, b.binds())?;
                Ok(stmt.raw_execute()? as u64)
            }
        }
    }

    /// Run a query and decode every row.
    pub async fn fetch<T: HotRow>(&mut self, b: &SqlBuilder) -> StoreResult<Vec<T>> {
        match self {
            HotTx::Pool(tx) => any_fetch(tx, b).await,
            HotTx::Direct(tx) => direct_fetch(tx.conn, b),
        }
    }

    /// Commit.
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            HotTx::Pool(tx) => Ok(tx.commit().await?),
            HotTx::Direct(mut tx) => {
                tx.conn.execute_batch("COMMIT")?;
                tx.open = false;
                Ok(())
            }
        }
    }
}

async fn any_fetch<T: HotRow>(
    conn: &mut sqlx::AnyConnection,
    b: &SqlBuilder,
) -> StoreResult<Vec<T>> {
    b.query()
        .fetch_all(conn)
        .await?
        .iter()
        .map(T::from_any)
        .collect()
}

fn direct_fetch<T: HotRow>(conn: &rusqlite::Connection, b: &SqlBuilder) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(b.sql())?;
    bind_all(&mut stmt, b.binds())?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_sqlite(row)?);
    }
    Ok(out)
}

fn bind_all(stmt: &mut rusqlite::CachedStatement<'_>, binds: &[Bind]) -> rusqlite::Result<()> {
    for (i, bind) in binds.iter().enumerate() {
        let index = i + 1;
        match bind {
            Bind::Text(s) => stmt.raw_bind_parameter(index, s.as_str())?,
            Bind::Int(n) => stmt.raw_bind_parameter(index, n)?,
            Bind::OptText(s) => stmt.raw_bind_parameter(index, s.as_deref())?,
            Bind::OptInt(n) => stmt.raw_bind_parameter(index, n)?,
        }
    }
    Ok(())
}

/// A row the hot paths read, decoded the same from either connection.
pub(crate) trait HotRow: Sized {
    fn from_any(row: &AnyRow) -> StoreResult<Self>;
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self>;
}

/// Columns read by name from either connection's rows.
pub(crate) trait Columns {
    fn column<T: ColumnValue>(&self, name: &str) -> StoreResult<T>;
}

/// A column type both drivers decode (text, integers, and their `Option`s).
pub(crate) trait ColumnValue:
    for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

impl<T> ColumnValue for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

impl Columns for AnyRow {
    fn column<T: ColumnValue>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn column<T: ColumnValue>(&self, name: &str) -> StoreResult<T> {
        Ok(self.get(name)?)
    }
}

impl HotRow for String {
    fn from_any(row: &AnyRow) -> StoreResult<Self> {
        Ok(row.try_get(0)?)
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self> {
        Ok(row.get(0)?)
    }
}

impl HotRow for (String, String) {
    fn from_any(row: &AnyRow) -> StoreResult<Self> {
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

impl HotRow for (String, i64) {
    fn from_any(row: &AnyRow) -> StoreResult<Self> {
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

impl HotRow for super::ClaimedDelivery {
    fn from_any(row: &AnyRow) -> StoreResult<Self> {
        claimed(row)
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self> {
        claimed(row)
    }
}

fn claimed(row: &impl Columns) -> StoreResult<super::ClaimedDelivery> {
    Ok(super::ClaimedDelivery {
        id: row.column("id")?,
        tenant_id: row.column("tenant_id")?,
        event_id: row.column("event_id")?,
        destination_id: row.column("destination_id")?,
        attempts: row.column("attempts")?,
        manual: row.column::<i64>("manual_retry")? != 0,
    })
}

impl HotRow for super::DestinationRow {
    fn from_any(row: &AnyRow) -> StoreResult<Self> {
        super::destinations::decode(row)
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> StoreResult<Self> {
        super::destinations::decode(row)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row as _;

    use super::*;
    use crate::store::test_support;

    fn insert_tenant(id: &str) -> SqlBuilder {
        let mut b = SqlBuilder::for_dialect(
            crate::store::Dialect::Sqlite,
            "INSERT INTO tenants (id, created_at, updated_at) VALUES ",
        );
        b.push_binds("(?, 0, 0)", [Bind::Text(id.into())]);
        b
    }

    async fn tenants(store: &crate::store::Store) -> Vec<String> {
        sqlx::query("SELECT id FROM tenants ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_commit_leaves_nothing() {
        let (store, _dir) = test_support::sqlite().await;
        let mut conn = store.writer_connection().await.unwrap();
        assert!(matches!(conn, WriterConnection::Direct(_)));
        {
            let mut tx = conn.begin().await.unwrap();
            tx.execute(&insert_tenant("dropped")).await.unwrap();
        }
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&insert_tenant("kept")).await.unwrap();
        // A failing statement fails only itself; the batch is dropped, not committed.
        assert!(tx.execute(&insert_tenant("kept")).await.is_err());
        drop(tx);
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&insert_tenant("committed")).await.unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        assert_eq!(tenants(&store).await, ["committed"]);
    }

    #[tokio::test]
    async fn the_direct_writer_keeps_statement_journals_in_memory() {
        let (store, _dir) = test_support::sqlite().await;
        let conn = store.writer_connection().await.unwrap();
        let WriterConnection::Direct(direct) = conn else {
            panic!("a file database gets the direct writer");
        };
        // 2 = MEMORY: no temporary file per multi-row statement of a batch.
        let temp_store: i64 = direct
            .conn
            .query_row("PRAGMA temp_store", [], |row| row.get(0))
            .unwrap();
        assert_eq!(temp_store, 2);
    }

    #[test]
    fn sqlite_is_built_without_allocation_statistics_or_shared_page_caches() {
        // `LIBSQLITE3_FLAGS` in `.cargo/config.toml`: both cost a mutex per allocation or
        // page fetch on the writer's thread.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn the_direct_writer_waits_for_another_writer_instead_of_failing() {
        let (store, _dir) = test_support::sqlite().await;
        // Another connection holds the write lock for a moment.
        let mut other = store.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *other)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tenants (id, created_at, updated_at) VALUES ('first', 0, 0)")
            .execute(&mut *other)
            .await
            .unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
        });
        let store2 = store.clone();
        // The direct statements block their thread while they wait (SQLITE_BUSY without
        // the busy handler), as on the writer thread; a blocking task stands in for it.
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(async move {
                let mut conn = store2.writer_connection().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                tx.execute(&insert_tenant("second")).await.unwrap();
                tx.commit().await.unwrap();
            })
        })
        .await
        .unwrap();
        release.await.unwrap();
        assert_eq!(tenants(&store).await, ["first", "second"]);
    }
}
