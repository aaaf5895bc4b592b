//! Filling a compiled-plugin cache before the test suites start servers on it.
//!
//! The end-to-end suites start every server on `target/plugins` with one shared
//! `OUTRIDER_CACHE_DIR`. On a fresh cache the first servers compile every component,
//! the JavaScript and Python examples taking tens of seconds of CPU each (servers sharing
//! the cache wait for one another rather than compile twice); starting one server first,
//! on its own, does that work once, outside any test's start-up deadline.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Starts `binary serve` on `plugins_dir` with `cache_dir` as its compiled-plugin cache,
/// waits until it listens (every plugin compiled or loaded from the cache), and stops it.
pub fn warm_cache(binary: &Path, plugins_dir: &Path, cache_dir: &Path) -> Result<()> {
    let started = Instant::now();
    let data_dir = std::env::temp_dir().join(format!("outrider-warm-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .arg("--plugins-dir")
        .arg(plugins_dir)
        .env("OUTRIDER_CACHE_DIR", cache_dir)
        .env("OUTRIDER_API_KEY", "warm-cache-admin-key-0123456789")
        .env(
            "OUTRIDER_ENCRYPTION_KEY",
            "k1:warm-cache-encryption-key-0123",
        )
        .env("OUTRIDER_LOG", "warn")
        .env_remove("OUTRIDER_DATABASE_URL")
        .env_remove("OUTRIDER_CONFIG")
        .current_dir(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("outrider listening on "));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
    if !listening {
        bail!(
            "{} serve --plugins-dir {} exited before listening (its log is above)",
            binary.display(),
            plugins_dir.display()
        );
    }
    println!(
        "plugin cache: {} ready for {} in {:.1}s",
        cache_dir.display(),
        plugins_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
