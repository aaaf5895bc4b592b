//! Structured logging into the host's logs (tagged with plugin, prototype and call).
//!
//! ```
//! use outrider_sdk::log;
//!
//! log::info!("delivered {} bytes", 42);
//! log::log(log::Level::Warn, "slow receiver", &[("ms", "1200")]);
//! ```
//!
//! Outside the host (native tests) messages go to stderr.

use std::fmt;

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

/// Records one message with structured fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    imp::log(level, message, fields)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::log as wit;
    use crate::bindings::types::Entry;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        let fields: Vec<Entry> = fields
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).to_string(),
                value: (*v).to_string(),
            })
            .collect();
        wit::log(level, message, &fields);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        eprintln!("[{level}] {message}{fields}");
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+), &[])
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace { ($($arg:tt)+) => { $crate::__log_at!(Trace, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug { ($($arg:tt)+) => { $crate::__log_at!(Debug, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info { ($($arg:tt)+) => { $crate::__log_at!(Info, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn { ($($arg:tt)+) => { $crate::__log_at!(Warn, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error { ($($arg:tt)+) => { $crate::__log_at!(Error, $($arg)+) }; }

/// Logs a formatted message at trace level: `log::trace!("x = {x}")`.
#[doc(inline)]
pub use crate::__log_trace as trace;

/// Logs a formatted message at debug level.
#[doc(inline)]
pub use crate::__log_debug as debug;

/// Logs a formatted message at info level.
#[doc(inline)]
pub use crate::__log_info as info;

/// Logs a formatted message at warn level.
#[doc(inline)]
pub use crate::__log_warn as warn;

/// Logs a formatted message at error level.
#[doc(inline)]
pub use crate::__log_error as error;
