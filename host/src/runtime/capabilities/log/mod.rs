//! `outrider:plugin/log`: plugin messages become `tracing` events tagged with the plugin,
//! prototype and target, under the `outrider::plugin` target. Messages and field lists
//! are capped, and a call may only log so many times (the rest is counted and dropped,
//! with one warning).

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::v0_1_1::log;
use crate::runtime::call::CallContext;

mod host;

/// Caps on plugin logging.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Longest message kept, in bytes (longer ones are cut at a char boundary).
    pub max_message: usize,
    /// Most fields kept per message.
    pub max_fields: usize,
    /// Most messages per call.
    pub max_per_call: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_message: 4096,
            max_fields: 32,
            max_per_call: 256,
        }
    }
}

/// Add `outrider:plugin/log` to `linker`: each `log` call becomes one `tracing` event
/// with `plugin`, `prototype`, `target_id` and the plugin's own fields.
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    log::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}

/// Cut `text` to at most `max` bytes on a char boundary.
pub(crate) fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "héllo".to_string();
        assert!(truncate(&mut s, 2));
        assert_eq!(s, "h");
        let mut s = "short".to_string();
        assert!(!truncate(&mut s, 10));
    }
}
