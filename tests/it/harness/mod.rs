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
