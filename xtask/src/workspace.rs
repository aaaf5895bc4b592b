//! Where the workspace is and what it contains, shared by every subcommand.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Cargo workspace as `cargo metadata --no-deps` describes it.
#[derive(Debug, Deserialize)]
pub struct Workspace {
    /// Root folder (where the root `Cargo.toml` is).
    pub workspace_root: PathBuf,
    /// The shared `target/` folder (honours `CARGO_TARGET_DIR`).
    pub target_directory: PathBuf,
    /// Every workspace member.
    pub packages: Vec<Package>,
}

/// One workspace member.
#[derive(Debug, Deserialize)]
pub struct Package {
    pub name: String,
    pub manifest_path: PathBuf,
    pub targets: Vec<Target>,
}

/// One build target (lib, bin, test, ...) of a package.
#[derive(Debug, Deserialize)]
pub struct Target {
    pub kind: Vec<String>,
}

impl Package {
    /// The folder holding the package's `Cargo.toml`.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// Whether the package builds a `cdylib` (the shape of a plugin crate).
    pub fn is_cdylib(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k == "cdylib"))
    }
}

impl Workspace {
    /// Reads the workspace with the `cargo` that runs this xtask.
    pub fn load() -> Result<Workspace> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent folder")?;
        let output = Command::new(cargo())
            .current_dir(root)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .output()
            .context("running `cargo metadata`")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")
    }
}

/// The `cargo` that started this xtask (`CARGO`), or `cargo` on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// `path` relative to `base` when it is inside it, for shorter messages.
pub fn relative<'a>(path: &'a Path, base: &Path) -> &'a Path {
    path.strip_prefix(base).unwrap_or(path)
}
