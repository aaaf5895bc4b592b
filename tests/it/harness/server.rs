//! `TestServer`: the real `outrider` binary on `127.0.0.1:0`, with its own data directory,
//! started by a builder and restartable or killable like a real deployment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The admin key every test server uses.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// The secrets-at-rest key every test server starts with.
pub const ENCRYPTION_KEY: &str = "k1:test-encryption-key-0123456789";

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/debug/test-plugin-cache`, beside the binary under test.
fn shared_cache_dir() -> PathBuf {
    binary_path()
        .parent()
        .expect("binary directory")
        .join("test-plugin-cache")
}

/// The `outrider` binary under test (`OUTRIDER_BIN`, else `target/debug/outrider`).
pub fn binary_path() -> PathBuf {
    if let Ok(path) = std::env::var("OUTRIDER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/it-<hash> -> target/debug/outrider
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("outrider");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p outrider` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// Builder for [`TestServer`].
pub struct TestServerBuilder {
    env: Vec<(String, String)>,
    plugins_dir: Option<PathBuf>,
    data_dir: Option<tempfile::TempDir>,
    args: Vec<String>,
}

impl TestServerBuilder {
    /// Let plugins reach loopback sinks (`OUTRIDER_ALLOW_NETWORKS=127.0.0.0/8,::1/128`).
    pub fn allow_loopback(self) -> Self {
        self.env("OUTRIDER_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")
    }

    /// Set an environment variable for the server process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Use this database instead of a fresh one (several nodes on one PostgreSQL).
    pub fn database_url(self, url: &str) -> Self {
        self.env("OUTRIDER_DATABASE_URL", url)
    }

    /// Start without built-in plugins.
    pub fn no_builtin_plugins(mut self) -> Self {
        let empty = tempfile::tempdir().expect("tempdir");
        self.plugins_dir = Some(empty.path().to_path_buf());
        std::mem::forget(empty);
        self
    }

    /// Start on a fresh database of the PostgreSQL server at `base`, whatever the suite's
    /// backend.
    pub async fn start_on_postgres(self, base: &str) -> TestServer {
        let database = create_postgres_database(base);
        self.start_with(Some(database)).await
    }

    /// Start the server and wait until it listens.
    pub async fn start(self) -> TestServer {
        let shared = self.env.iter().any(|(k, _)| k == "OUTRIDER_DATABASE_URL");
        let database = if shared { None } else { postgres_database() };
        self.start_with(database).await
    }

    async fn start_with(self, database: Option<(String, String)>) -> TestServer {
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let plugins_dir = self
            .plugins_dir
            .unwrap_or_else(|| workspace_root().join("target/plugins"));
        let mut env = self.env;
        if let Some((url, _)) = &database {
            env.push(("OUTRIDER_DATABASE_URL".into(), url.clone()));
        }
        let mut server = TestServer {
            database,
            base_url: String::new(),
            child: None,
            data_dir,
            plugins_dir,
            env,
            args: self.args,
            http: reqwest::Client::new(),
        };
        server.spawn().await;
        server
    }
}

/// A running `outrider serve`.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// (URL, name) of this server's own PostgreSQL database, when running on PostgreSQL.
    database: Option<(String, String)>,
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    plugins_dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    http: reqwest::Client,
}

impl TestServer {
    /// A builder with the admin key set and built-in plugins from `target/plugins`.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            env: Vec::new(),
            plugins_dir: None,
            data_dir: None,
            args: Vec::new(),
        }
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(binary_path());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--plugins-dir")
            .arg(&self.plugins_dir)
            .args(&self.args)
            .env_remove("OUTRIDER_ALLOW_NETWORKS")
            .env("OUTRIDER_API_KEY", ADMIN_KEY)
            .env(
                "OUTRIDER_ENCRYPTION_KEY",
                "k1:test-encryption-key-0123456789",
            )
            .env("OUTRIDER_LOG", "info,outrider=debug")
            // One compiled-plugin cache for every test server: each fresh data dir would
            // otherwise compile all built-in plugins again (seconds each, more for big ones).
            .env("OUTRIDER_CACHE_DIR", shared_cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log_path())
                    .expect("server log file"),
            ))
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn outrider");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("outrider listening on ") {
                    return Some(url.to_string());
                }
            }
            None
        })
        .await
        .expect("server did not start within 120 s")
        .unwrap_or_else(|| panic!("server exited before listening:\n{}", self.logs()));
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.base_url = line;
        self.child = Some(child);
    }

    /// Stop gracefully (SIGTERM) and start again on the same data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// SIGTERM and wait.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
            let _ = child.kill().await;
        }
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// URL of this server's own PostgreSQL database, if it has one.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|(url, _)| url.as_str())
    }

    /// The data directory (SQLite database, cache, `server.log`).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }

    /// Everything the server wrote to stderr (its logs) so far, across restarts.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Run another `outrider` subcommand (e.g. `keys rotate`) on this server's data
    /// directory and database; returns (success, stdout + stderr).
    pub fn run_cli(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = std::process::Command::new(binary_path());
        cmd.args(args).arg("--data-dir").arg(self.data_dir.path());
        cmd.env("OUTRIDER_API_KEY", ADMIN_KEY)
            .env("OUTRIDER_ENCRYPTION_KEY", ENCRYPTION_KEY);
        if let Some((url, _)) = &self.database {
            cmd.env("OUTRIDER_DATABASE_URL", url);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run outrider");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Replace an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Absolute URL for an API path like `/api/v1/plugins`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request with the admin key.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_KEY)
    }

    /// GET with the admin key, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self
            .admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET");
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }
}

/// With `OUTRIDER_TEST_POSTGRES=postgres://user@host:port` set, every test server gets a
/// fresh database there, so the same suite runs on PostgreSQL as on SQLite.
fn postgres_database() -> Option<(String, String)> {
    let base = std::env::var("OUTRIDER_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(create_postgres_database(&base))
}

/// A fresh, empty database on the PostgreSQL server at `base`: (URL, name).
fn create_postgres_database(base: &str) -> (String, String) {
    let name = format!(
        "outrider_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    psql(base, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(base, &format!("CREATE DATABASE {name}"));
    (format!("{}/{name}", base.trim_end_matches('/')), name)
}

static NEXT_DB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn psql(base: &str, sql: &str) {
    let url = format!("{}/postgres", base.trim_end_matches('/'));
    let out = std::process::Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql must be installed to run the suite on PostgreSQL");
    assert!(
        out.status.success(),
        "psql `{sql}` failed (is PostgreSQL running at {base}?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
        if let (Some((_, name)), Ok(base)) =
            (&self.database, std::env::var("OUTRIDER_TEST_POSTGRES"))
        {
            std::thread::sleep(Duration::from_millis(200));
            psql(
                &base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}
