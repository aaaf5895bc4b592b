//! Rust plugin crates: the cargo profile and flags every plugin is built with, and building
//! one project (`outrider plugin build`) into a component.
//!
//! The workspace's plugins (`cargo xtask plugins`) and projects made by `outrider plugin
//! new` build with the same profile ([`PROFILE`], defined as [`PROFILE_TOML`]) and the same
//! wasm rustflags ([`CORE_TARGET_RUSTFLAGS`]), so cargo's fingerprints of a dependency
//! agree whenever its versions and features do: a project built into a target directory
//! that already holds them (`CARGO_TARGET_DIR`, or the per-user one `outrider plugin build`
//! uses by default) does not compile the standard library or its dependencies again.

use std::path::Path;

use anyhow::{Context, Result};

use crate::project::Project;
use crate::toolchain::{Toolchain, CORE_TARGET};
use crate::{cargo, component};

/// The cargo profile plugins are built with.
pub const PROFILE: &str = "plugin";

/// The profile's definition: the root `Cargo.toml` of the Outrider workspace holds this
/// table and `outrider plugin new` writes it into new projects (a test keeps the two
/// equal). Components are small and abort on panic (the host records the trap).
pub const PROFILE_TOML: &str = r#"[profile.plugin]
inherits = "release"
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false
"#;

/// Flags for `wasm32-unknown-unknown`, as the workspace's `.cargo/config.toml` sets them
/// (a test keeps the two equal): crates reaching `getrandom` 0.3+ take randomness from a
/// `__getrandom_v03_custom` function the plugin defines (fed by `wasi:random`).
pub const CORE_TARGET_RUSTFLAGS: [&str; 2] = ["--cfg", "getrandom_backend=\"custom\""];

/// `--config` value giving a project outside the workspace the [`CORE_TARGET_RUSTFLAGS`].
pub fn core_target_rustflags_config() -> String {
    let flags: Vec<String> = CORE_TARGET_RUSTFLAGS
        .iter()
        .map(|f| format!("'{f}'"))
        .collect();
    format!("target.{CORE_TARGET}.rustflags=[{}]", flags.join(", "))
}

/// Whether the manifest at `manifest` declares `[profile.plugin]` (projects made before
/// it existed, or by hand, are built with `--release`).
pub fn declares_profile(manifest: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let value: toml::Value = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    Ok(value.get("profile").and_then(|p| p.get(PROFILE)).is_some())
}

/// Builds the Rust `project` with `toolchain` into the component `out`. `target_dir` is
/// cargo's target directory (`None`: cargo's own choice, e.g. `CARGO_TARGET_DIR`).
pub fn build(
    project: &Project,
    out: &Path,
    toolchain: &Toolchain,
    target_dir: Option<&Path>,
) -> Result<()> {
    let manifest = project.dir.join("Cargo.toml");
    let mut cmd = toolchain.cargo_build();
    cmd.current_dir(&project.dir)
        .arg("--manifest-path")
        .arg(&manifest);
    if declares_profile(&manifest)? {
        cmd.args(["--profile", PROFILE]);
    } else {
        println!(
            "build: {} has no [profile.{PROFILE}]; building with --release",
            manifest.display()
        );
        cmd.arg("--release");
    }
    if toolchain.target() == CORE_TARGET {
        cmd.arg("--config").arg(core_target_rustflags_config());
    }
    if let Some(dir) = target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    let outputs = cargo::build_cdylibs(cmd, &[&manifest])?;
    let module = outputs.values().next().context("cargo built no .wasm")?;
    println!("componentize: {} -> {}", module.display(), out.display());
    component::componentize_file(module, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_file(path: &str) -> toml::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        let text = std::fs::read_to_string(&path).unwrap();
        toml::from_str(&text).unwrap()
    }

    /// Cargo reuses a compiled dependency only for the same profile settings: the
    /// workspace's plugins and new projects must agree.
    #[test]
    fn profile_is_the_workspace_profile() {
        let ours: toml::Value = toml::from_str(PROFILE_TOML).unwrap();
        let workspace = workspace_file("Cargo.toml");
        assert_eq!(
            workspace["profile"][PROFILE], ours["profile"][PROFILE],
            "[profile.{PROFILE}] of Cargo.toml and PROFILE_TOML differ"
        );
    }

    #[test]
    fn rustflags_are_the_workspace_rustflags() {
        let config = workspace_file(".cargo/config.toml");
        let flags: Vec<&str> = config["target"][CORE_TARGET]["rustflags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(flags, CORE_TARGET_RUSTFLAGS);
        // The --config form parses back to the same list.
        let parsed: toml::Value = toml::from_str(&core_target_rustflags_config()).unwrap();
        assert_eq!(
            parsed["target"][CORE_TARGET]["rustflags"],
            config["target"][CORE_TARGET]["rustflags"]
        );
    }

    #[test]
    fn finds_the_profile_table() {
        let dir = std::env::temp_dir().join(format!("plugin-build-rust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("Cargo.toml");
        std::fs::write(
            &manifest,
            format!("[package]\nname = \"x\"\n\n{PROFILE_TOML}"),
        )
        .unwrap();
        assert!(declares_profile(&manifest).unwrap());
        std::fs::write(
            &manifest,
            "[package]\nname = \"x\"\n[profile.release]\nlto = true\n",
        )
        .unwrap();
        assert!(!declares_profile(&manifest).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
