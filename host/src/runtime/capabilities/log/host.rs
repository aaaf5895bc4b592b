//! `outrider:plugin/log` host implementation.

use crate::runtime::bindings::v0_1_1::log::{Host, Level};
use crate::runtime::bindings::v0_1_1::types::Entry;
use crate::runtime::call::CallContext;

use super::truncate;

macro_rules! emit {
    ($level:expr, $ctx:expr, $fields:expr, $truncated:expr, $message:expr) => {
        tracing::event!(
            target: "outrider::plugin",
            $level,
            plugin = %$ctx.labels.plugin,
            prototype = $ctx.labels.prototype.as_deref().unwrap_or(""),
            target_id = $ctx.labels.target.as_deref().unwrap_or(""),
            fields = %$fields,
            truncated = $truncated,
            "{}",
            $message
        )
    };
}

impl Host for CallContext {
    fn log(
        &mut self,
        level: Level,
        mut message: String,
        fields: Vec<Entry>,
    ) -> wasmtime::Result<()> {
        let caps = &self.caps.log;
        self.log_count += 1;
        if self.log_count > caps.max_per_call {
            if self.log_count == caps.max_per_call + 1 {
                tracing::warn!(
                    target: "outrider::plugin",
                    plugin = %self.labels.plugin,
                    target_id = self.labels.target.as_deref().unwrap_or(""),
                    "plugin log limit of {} messages per call reached; dropping the rest",
                    caps.max_per_call
                );
            }
            return Ok(());
        }
        let mut truncated = truncate(&mut message, caps.max_message);
        let mut rendered = String::new();
        for (i, entry) in fields.iter().enumerate() {
            if i == caps.max_fields {
                truncated = true;
                break;
            }
            if !rendered.is_empty() {
                rendered.push(' ');
            }
            rendered.push_str(&entry.key);
            rendered.push('=');
            rendered.push_str(&entry.value);
        }
        truncated |= truncate(&mut rendered, caps.max_message);
        match level {
            Level::Trace => emit!(tracing::Level::TRACE, self, rendered, truncated, message),
            Level::Debug => emit!(tracing::Level::DEBUG, self, rendered, truncated, message),
            Level::Info => emit!(tracing::Level::INFO, self, rendered, truncated, message),
            Level::Warn => emit!(tracing::Level::WARN, self, rendered, truncated, message),
            Level::Error => emit!(tracing::Level::ERROR, self, rendered, truncated, message),
        }
        Ok(())
    }
}
