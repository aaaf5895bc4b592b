//! WASI 0.2 (through wasmtime-wasi) with no ambient authority, so components built by
//! componentize-js or componentize-py load: no preopened directories, no environment,
//! no arguments, stdin closed, sockets and name lookup denied. Guest stdout and stderr
//! are forwarded to the host's logs (capped per write).
//!
//! The context is built lazily on the first WASI call of a call (see
//! `CallContext::ctx`), so plugins that never touch WASI pay nothing for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::WasiCtx;

use crate::runtime::call::{CallContext, CallLabels};

/// Longest chunk of guest output forwarded as one log event.
const MAX_OUTPUT_CHUNK: usize = 4096;

/// Add the WASI 0.2 interfaces wasmtime-wasi implements (clocks, random, cli, io,
/// filesystem, sockets) to `linker`. What they may do is decided by [`build_ctx`].
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

/// A WASI context with no ambient authority; stdout/stderr go to the logs.
pub fn build_ctx(labels: &CallLabels) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(LogOutput::new(labels, "stdout"))
        .stderr(LogOutput::new(labels, "stderr"))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder.build()
}

/// Guest output forwarded to `tracing`.
#[derive(Clone)]
struct LogOutput {
    plugin: Arc<str>,
    target: Option<Arc<str>>,
    stream: &'static str,
}

impl LogOutput {
    fn new(labels: &CallLabels, stream: &'static str) -> Self {
        LogOutput {
            plugin: labels.plugin.clone(),
            target: labels.target.as_deref().map(Arc::from),
            stream,
        }
    }
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let shown = &buf[..buf.len().min(MAX_OUTPUT_CHUNK)];
        let text = String::from_utf8_lossy(shown);
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::info!(
                target: "outrider::plugin",
                plugin = %self.plugin,
                target_id = self.target.as_deref().unwrap_or(""),
                stream = self.stream,
                truncated = buf.len() > MAX_OUTPUT_CHUNK,
                "{text}"
            );
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
