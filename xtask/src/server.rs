//! A real `outrider serve` process for the bench and proof harnesses: started on
//! `127.0.0.1:0` with its own data directory, its address read from its stdout, killed on
//! drop. Restarting on the same data directory (after a `kill -9`) is how the proof
//! harness checks durability.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Admin key of every harness server.
pub const API_KEY: &str = "bench-admin-key-0123456789abcdef";
/// Encryption key of every harness server (`k1:` is its key id).
pub const ENCRYPTION_KEY: &str = "k1:bench-encryption-key-0123456789abcdef";

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `outrider` binary.
    pub binary: PathBuf,
    /// `--plugins-dir` (`target/plugins`).
    pub plugins_dir: PathBuf,
    /// `None`: SQLite in the data directory; else a PostgreSQL URL (database included).
    pub database_url: Option<String>,
    /// `--data-dir`; `None` makes a fresh one under the temporary directory, removed on
    /// drop. A given directory is kept, so a restart finds its database.
    pub data_dir: Option<PathBuf>,
    /// Extra environment (`OUTRIDER_*` settings).
    pub env: Vec<(String, String)>,
}

impl ServerConfig {
    /// A server of `binary` with the plugins in `plugins_dir`, SQLite, a fresh data dir.
    pub fn new(binary: impl Into<PathBuf>, plugins_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            binary: binary.into(),
            plugins_dir: plugins_dir.into(),
            database_url: None,
            data_dir: None,
            env: Vec::new(),
        }
    }

    /// Adds an environment variable (replacing an earlier value of the same name).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> ServerConfig {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Keeps the database in `dir` (SQLite), so that a restart finds it.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> ServerConfig {
        self.data_dir = Some(dir.into());
        self
    }

    /// Runs on the PostgreSQL database at `url` (database included).
    pub fn database(mut self, url: impl Into<String>) -> ServerConfig {
        self.database_url = Some(url.into());
        self
    }

    /// Runs `outrider ARGS` (not `serve`: `keys rotate`, `migrate`, ...) with this
    /// configuration's keys, database and environment on `data_dir`; returns whether it
    /// succeeded and its stdout and stderr.
    pub fn cli(&self, data_dir: &Path, args: &[&str]) -> Result<(bool, String)> {
        let mut command = Command::new(&self.binary);
        command.args(args).arg("--data-dir").arg(data_dir);
        self.environment(&mut command);
        let output = command
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} {}", self.binary.display(), args.join(" ")))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    }

    /// The keys, the allowed networks, the database and the extra environment.
    fn environment(&self, command: &mut Command) {
        command
            .env("OUTRIDER_API_KEY", API_KEY)
            .env("OUTRIDER_ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("OUTRIDER_ALLOW_NETWORKS", "127.0.0.0/8")
            .env_remove("OUTRIDER_DATABASE_URL")
            .env_remove("OUTRIDER_CONFIG");
        if let Some(url) = &self.database_url {
            command.env("OUTRIDER_DATABASE_URL", url);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
    }
}

/// A directory under the temporary directory, removed on drop (kept when
/// `OUTRIDER_BENCH_KEEP` is set, to look at).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh, empty one.
    pub fn new(prefix: &str) -> Result<ScratchDir> {
        temp_dir(prefix).map(ScratchDir)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os("OUTRIDER_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The running server; killed on drop.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
    owns_data_dir: bool,
    log_path: PathBuf,
}

/// A fresh directory under the temporary directory.
pub fn temp_dir(prefix: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl Server {
    /// Starts the server and waits (up to 120 s) until it listens.
    pub fn start(config: &ServerConfig) -> Result<Server> {
        let (data_dir, owns_data_dir) = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.clone(), false)
            }
            None => (temp_dir("outrider-harness")?, true),
        };
        // Appended, so the log of every run on one data directory is kept.
        let log_path = data_dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut command = Command::new(&config.binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--plugins-dir")
            .arg(&config.plugins_dir)
            .current_dir(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        config.environment(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", config.binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("outrider listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => addr.parse().context("parsing the listen address")?,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("the server did not report its address; its log:\n{log}");
            }
        };
        Ok(Server {
            child,
            addr,
            data_dir,
            owns_data_dir,
            log_path,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything it logged (all runs on this data directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last 20 lines of its log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `kill -9`: no shutdown, nothing flushed.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.owns_data_dir {
            return;
        }
        // OUTRIDER_BENCH_KEEP=1 keeps the data dir (server.log, the database) to look at.
        if std::env::var_os("OUTRIDER_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.data_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Create a fresh database on the PostgreSQL server at `url` with `psql`; returns its URL
/// and the name to drop afterwards.
pub fn create_postgres_database(url: &str) -> Result<(String, String)> {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("outrider_harness_{}_{seq}", std::process::id());
    let base = server_url(url);
    psql(
        &format!("{base}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name}"),
    )?;
    psql(
        &format!("{base}/postgres"),
        &format!("CREATE DATABASE {name}"),
    )?;
    Ok((format!("{base}/{name}"), name))
}

/// Drop the database made by [`create_postgres_database`].
pub fn drop_postgres_database(url: &str, name: &str) -> Result<()> {
    psql(
        &format!("{}/postgres", server_url(url)),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
}

/// A fresh PostgreSQL database, dropped (with every connection to it) on drop.
pub struct PostgresDatabase {
    server: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    /// Creates one on the PostgreSQL server at `server` (a URL without or with a database).
    pub fn create(server: &str) -> Result<PostgresDatabase> {
        let (url, name) = create_postgres_database(server)?;
        Ok(PostgresDatabase {
            server: server.to_string(),
            name,
            url,
        })
    }

    /// Its URL, database included.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `pg_dump` of the whole database (schema and data) as text.
    pub fn dump(&self) -> Result<Vec<u8>> {
        let output = Command::new("pg_dump")
            .arg("--no-owner")
            .arg(&self.url)
            .output()
            .context("running pg_dump (is it installed?)")?;
        if !output.status.success() {
            bail!(
                "pg_dump failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output.stdout)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Err(e) = drop_postgres_database(&self.server, &self.name) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// `postgres://user@host:port` without a database path or query.
fn server_url(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[scheme_end..].find(['/', '?']) {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url.trim_end_matches('/').to_string(),
    }
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("running psql (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn server_url_drops_the_database() {
        assert_eq!(
            server_url("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(
            server_url("postgres://postgres@127.0.0.1:5432/"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(
            server_url("postgres://u@h:5432/test?sslmode=disable"),
            "postgres://u@h:5432"
        );
    }
}
