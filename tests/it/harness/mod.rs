//! Test harness: the server under test, a recording loopback sink, helpers for API calls
//! and `eventually`.

mod receiver;
mod requests;
mod server;

pub use receiver::{Received, TestReceiver};
pub use requests::{call, json_body, status_and_body};
pub use server::{binary_path, workspace_root, TestServer, ADMIN_KEY, ENCRYPTION_KEY};

use std::future::Future;
use std::time::{Duration, Instant};

/// Held by the tests that load both cores for minutes (the plugin kit's scaffold builds)
/// and by tests that need a plugin call on the slow lane to get CPU. The slow lane runs at
/// `SCHED_IDLE`, by design: beside a build at normal priority it gets no CPU at all, and
/// such a call would time out whatever it was doing.
pub fn exclusive_cpu() -> std::sync::MutexGuard<'static, ()> {
    static CPU: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CPU.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Poll `check` until it returns `Some`, or fail after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Path of a built plugin component, failing loudly when it has not been built.
pub fn plugin_path(name: &str) -> std::path::PathBuf {
    let path = workspace_root()
        .join("target/plugins")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}
