//! Random bytes from the host (`wasi:random/random`, cryptographically secure).
//!
//! Outside the host (native tests) a non-cryptographic generator seeded from std's
//! hasher randomness stands in.

/// `len` random bytes.
pub fn bytes(len: usize) -> Vec<u8> {
    imp::bytes(len)
}

/// A random `u64`.
pub fn u64() -> u64 {
    imp::u64()
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::random as wit;

    pub fn bytes(len: usize) -> Vec<u8> {
        wit::get_random_bytes(len as u64)
    }

    pub fn u64() -> u64 {
        wit::get_random_u64()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};

    pub fn u64() -> u64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x6f75_7472);
        hasher.finish()
    }

    pub fn bytes(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn native_random_has_the_length_asked() {
        assert_eq!(super::bytes(13).len(), 13);
        assert_ne!(super::bytes(32), super::bytes(32));
    }
}
