//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes from tens of milliseconds to seconds, so
//! the compiled artifact is kept under the cache directory (`<data-dir>/cache/`). The key
//! is SHA-256 over the component's own SHA-256 and the engine's
//! `precompile_compatibility_hash` (wasmtime version, target, compiler settings and
//! enabled features), so an upgraded host or a changed configuration never picks up a
//! stale artifact; the file is named by that key (`<hex>.cwasm`).
//!
//! Files are written to a temporary name in the same directory and renamed into place,
//! so a reader never sees a partial file. Only files this host wrote are deserialized:
//! names come from our key, the directory is created private (0700), and before loading
//! a file we check that it is a regular file owned by our user and not writable by
//! group or others. Uploaded bytes are never deserialized: they go through
//! `Component::new`, which compiles (and rejects precompiled images).
//!
//! Servers may share one cache directory (the test suites do; so may nodes on one
//! machine). A process about to compile a component takes an exclusive lock on
//! `<hex>.lock` first ([`ComponentCache::compile_lock`]) and looks again once it holds it,
//! so a component is compiled once while the others wait and load the stored artifact:
//! the large JavaScript and Python components take tens of seconds of CPU each.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The compiled-component cache.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_hash: [u8; 32],
}

/// Feeds `Hash` output into SHA-256, giving a stable digest of the engine's settings.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is taken from the inner state.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// SHA-256 of the engine's compatibility hash.
pub fn engine_hash(engine: &Engine) -> [u8; 32] {
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.finalize().into()
}

impl ComponentCache {
    /// A cache in `dir` (created, private) for components compiled by `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            engine_hash: engine_hash(engine),
        })
    }

    /// The file holding the artifact of the component with SHA-256 `component_sha`.
    pub fn path_for(&self, component_sha: &[u8; 32]) -> PathBuf {
        let mut key = Sha256::new();
        key.update(b"outrider-component-cache-v1\0");
        key.update(component_sha);
        key.update(self.engine_hash);
        self.dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())))
    }

    /// Load the artifact for `component_sha`, if this host cached one. A file that is
    /// unusable (foreign, corrupt, incompatible) is removed and `None` returned.
    pub fn load(&self, engine: &Engine, component_sha: &[u8; 32]) -> Option<Component> {
        let path = self.path_for(component_sha);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !written_by_us(&meta) {
            tracing::warn!(path = %path.display(), "ignoring a compiled-component cache file this host did not write");
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact produced by
        // `Component::serialize` of a compatible engine; loading arbitrary bytes could
        // run arbitrary code. The file name is derived from our own key, the file is
        // a regular file owned by this user in a directory only this user can write,
        // and it was written by `store` below (temp file + rename). Wasmtime still
        // checks the header and engine compatibility and fails cleanly on mismatch.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "discarding unusable compiled-component cache file");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Waits until no other process or task holds the compile lock of `component_sha` in
    /// this cache, then holds it until the returned file is dropped. The caller looks in
    /// the cache again before compiling: whoever held the lock may have stored the
    /// artifact. `None` (logged) when the lock cannot be taken; the caller compiles anyway.
    pub fn compile_lock(&self, component_sha: &[u8; 32]) -> Option<std::fs::File> {
        let path = self.path_for(component_sha).with_extension("lock");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let locked = options
            .open(&path)
            .and_then(|file| file.lock().map(|()| file));
        match locked {
            Ok(file) => Some(file),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not take the compile lock; compiling without it");
                None
            }
        }
    }

    /// Store the artifact of `component` (SHA-256 `component_sha`). Failures are logged
    /// and otherwise ignored: the cache is an optimisation.
    pub fn store(&self, component: &Component, component_sha: &[u8; 32]) {
        if let Err(err) = self.try_store(component, component_sha) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not write the compiled-component cache");
        }
    }

    fn try_store(&self, component: &Component, component_sha: &[u8; 32]) -> anyhow::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| anyhow::anyhow!("serializing: {e}"))?;
        let path = self.path_for(component_sha);
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("component"),
            std::process::id()
        ));
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}

#[cfg(unix)]
fn written_by_us(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let uid = unsafe { libc_geteuid() };
    meta.file_type().is_file() && meta.uid() == uid && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn written_by_us(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_file()
}

#[cfg(unix)]
unsafe fn libc_geteuid() -> u32 {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: see caller.
    unsafe { geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_engine(epochs: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.gc_support(false).epoch_interruption(epochs);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn key_depends_on_component_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_engine(false);
        let cache = ComponentCache::open(dir.path(), &engine).unwrap();
        let a = cache.path_for(&[1; 32]);
        let b = cache.path_for(&[2; 32]);
        assert_ne!(a, b);
        assert_eq!(a, cache.path_for(&[1; 32]));
        let other = test_engine(true);
        let other_cache = ComponentCache::open(dir.path(), &other).unwrap();
        assert_ne!(a, other_cache.path_for(&[1; 32]));
    }

    #[test]
    fn compile_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_engine(false);
        let cache = ComponentCache::open(dir.path(), &engine).unwrap();
        let held = cache.compile_lock(&[3; 32]).expect("lock");
        let lock_path = cache.path_for(&[3; 32]).with_extension("lock");
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(&lock_path)
            .unwrap();
        assert!(
            other.try_lock().is_err(),
            "a second holder must wait while the first compiles"
        );
        // Another component's lock is independent.
        assert!(cache.compile_lock(&[4; 32]).is_some());
        drop(held);
        other
            .try_lock()
            .expect("free once the first holder is done");
        // The lock file is never mistaken for an artifact.
        assert!(cache.load(&engine, &[3; 32]).is_none());
    }

    #[test]
    fn round_trip_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let engine = test_engine(false);
        let cache = ComponentCache::open(dir.path(), &engine).unwrap();
        // The binary form of an empty component.
        let component =
            Component::new(&engine, [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]).unwrap();
        let sha = [7; 32];
        assert!(cache.load(&engine, &sha).is_none());
        cache.store(&component, &sha);
        assert!(cache.load(&engine, &sha).is_some());

        // A file with the right name but garbage inside is discarded, not trusted.
        std::fs::write(cache.path_for(&sha), b"not an artifact").unwrap();
        assert!(cache.load(&engine, &sha).is_none());
        assert!(!cache.path_for(&sha).exists());

        // A group-writable file is not ours.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            cache.store(&component, &sha);
            let path = cache.path_for(&sha);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            assert!(cache.load(&engine, &sha).is_none());
        }
    }
}
