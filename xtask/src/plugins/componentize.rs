//! Wrapping core modules into components, and writing the rejection fixtures (a plain
//! core module and bytes that are not wasm at all) that tests upload to see them refused.

use anyhow::{Context, Result};
pub use outrider_plugin_build::component::encode;
use outrider_plugin_build::component::write;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

/// Writes the component for `module` (a core module with `component-type` custom
/// sections, or already a component) to `out`, unless `out` is newer than both the
/// module and this xtask. Returns whether it was written.
pub fn componentize(module: &Path, out: &Path) -> Result<bool> {
    if is_up_to_date(out, module) {
        return Ok(false);
    }
    let bytes = fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let component =
        encode(&bytes).with_context(|| format!("componentizing {}", module.display()))?;
    write(out, &component)?;
    Ok(true)
}

/// Copies `module` to `out` unchanged if it is a core module, else writes
/// [`MINIMAL_CORE_MODULE`]. Returns whether it was written.
pub fn write_core_module(module: Option<&Path>, out: &Path) -> Result<bool> {
    let bytes = match module {
        Some(m) => {
            let bytes = fs::read(m).with_context(|| format!("reading {}", m.display()))?;
            if wasmparser::Parser::is_core_wasm(&bytes) {
                if is_up_to_date(out, m) {
                    return Ok(false);
                }
                bytes
            } else {
                MINIMAL_CORE_MODULE.to_vec()
            }
        }
        None => MINIMAL_CORE_MODULE.to_vec(),
    };
    write_if_changed(out, &bytes)
}

/// Writes [`random_bytes`] to `out` if it differs. Returns whether it was written.
pub fn write_random_bytes(out: &Path) -> Result<bool> {
    write_if_changed(out, &random_bytes(4096))
}

/// `(module (func (export "run")))`: a valid core module that is not a component.
pub const MINIMAL_CORE_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00, // export "run" = func 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
];

/// `len` deterministic pseudo-random bytes (xorshift64*, fixed seed): never valid wasm.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x6f75_7472_6964_6572; // "outrider"
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_if_changed(out: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::read(out).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write(out, bytes)?;
    Ok(true)
}

fn is_up_to_date(out: &Path, input: &Path) -> bool {
    let (Some(out), Some(input)) = (modified(out), modified(input)) else {
        return false;
    };
    let xtask = std::env::current_exe().ok().and_then(|p| modified(&p));
    out >= input && xtask.is_none_or(|x| out >= x)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_core_module_is_valid_and_not_a_component() {
        wasmparser::Validator::new()
            .validate_all(MINIMAL_CORE_MODULE)
            .unwrap();
        assert!(wasmparser::Parser::is_core_wasm(MINIMAL_CORE_MODULE));
    }

    #[test]
    fn random_bytes_are_deterministic_garbage() {
        let a = random_bytes(4096);
        assert_eq!(a, random_bytes(4096));
        assert_eq!(a.len(), 4096);
        assert!(!a.starts_with(b"\0asm"));
        assert!(wasmparser::Validator::new().validate_all(&a).is_err());
    }
}
