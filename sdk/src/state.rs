//! Small key/value state scoped to the calling destination or transformer (e.g. cached
//! access tokens). Size-capped by the host; entries may be evicted at any time.
//!
//! Outside the host (native tests) a per-thread in-memory map stands in (TTLs ignored).

use std::fmt;
use std::time::Duration;

/// Why a value could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Key or value over the host's size cap.
    TooLarge,
    /// The host does not offer state here.
    Unsupported(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::TooLarge => f.write_str("state value too large"),
            StateError::Unsupported(why) => write!(f, "state unsupported: {why}"),
        }
    }
}

impl std::error::Error for StateError {}

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    imp::get(key)
}

/// Stores `value` under `key`, expiring after `ttl` when given.
pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StateError> {
    imp::set(key, value, ttl)
}

/// Removes `key`.
pub fn delete(key: &str) {
    imp::delete(key)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::state as wit;

    pub fn get(key: &str) -> Option<Vec<u8>> {
        wit::get(key)
    }

    pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StateError> {
        let ttl_ms = ttl.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64);
        wit::set(key, value, ttl_ms).map_err(|e| match e {
            wit::Error::TooLarge => StateError::TooLarge,
            wit::Error::Unsupported(why) => StateError::Unsupported(why),
        })
    }

    pub fn delete(key: &str) {
        wit::delete(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static STATE: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
    }

    pub fn get(key: &str) -> Option<Vec<u8>> {
        STATE.with(|s| s.borrow().get(key).cloned())
    }

    pub fn set(key: &str, value: &[u8], _ttl: Option<Duration>) -> Result<(), StateError> {
        STATE.with(|s| s.borrow_mut().insert(key.to_string(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) {
        STATE.with(|s| s.borrow_mut().remove(key));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn native_state_round_trips() {
        assert_eq!(super::get("k"), None);
        super::set("k", b"v", None).unwrap();
        assert_eq!(super::get("k").as_deref(), Some(&b"v"[..]));
        super::delete("k");
        assert_eq!(super::get("k"), None);
    }
}
