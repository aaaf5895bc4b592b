//! Choosing the compiler that builds plugins for WebAssembly.
//!
//! Preferred: a rustup toolchain with the `wasm32-unknown-unknown` (or `wasm32-wasip2`)
//! target installed. Where rustup cannot add targets, Debian's `rustc-web` toolchain
//! builds the standard library for wasm from `rust-web-src` (`-Zbuild-std`), linking with
//! the `rust-lld` that ships with the rustup toolchain. Missing Debian packages are
//! installed with `apt-get` (unattended).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Core wasm target: the xtask wraps its modules into components.
pub const CORE_TARGET: &str = "wasm32-unknown-unknown";
/// Component target: rustc's linker already emits components.
pub const P2_TARGET: &str = "wasm32-wasip2";

const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
const DEBIAN_PACKAGES: [&str; 3] = ["rustc-web", "cargo-web", "rust-web-src"];

/// Which toolchain to use, from `--toolchain` / `OUTRIDER_WASM_TOOLCHAIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// rustup if it has a wasm target, Debian's toolchain otherwise.
    Auto,
    /// rustup's toolchain; fails if no wasm target is installed.
    Rustup,
    /// Debian's `rustc-web` toolchain with `-Zbuild-std`.
    Debian,
}

/// A toolchain able to build the plugin crates.
#[derive(Debug, Clone)]
pub enum Toolchain {
    /// The rustup toolchain (the one that runs us), with `target` installed.
    Rustup {
        /// The `cargo` to run.
        cargo: PathBuf,
        /// The installed wasm target.
        target: &'static str,
    },
    /// Debian's compiler, standard library rebuilt for wasm, linked by `linker`.
    Debian {
        /// `rust-lld` or `wasm-ld`.
        linker: PathBuf,
    },
}

impl Toolchain {
    /// Finds (and with the Debian toolchain, installs if needed) a toolchain.
    pub fn detect(choice: Choice) -> Result<Toolchain> {
        if choice != Choice::Debian {
            let installed = rustup_targets();
            for target in [CORE_TARGET, P2_TARGET] {
                if installed.iter().any(|t| t == target) {
                    return Ok(Toolchain::Rustup {
                        cargo: cargo(),
                        target,
                    });
                }
            }
            if choice == Choice::Rustup {
                bail!("rustup has neither `{CORE_TARGET}` nor `{P2_TARGET}` installed");
            }
            println!(
                "toolchain: rustup has no wasm target; using Debian's rustc-web with -Zbuild-std"
            );
        }
        ensure_debian_packages()?;
        Ok(Toolchain::Debian {
            linker: find_wasm_linker()?,
        })
    }

    /// The target triple plugins are built for.
    pub fn target(&self) -> &'static str {
        match self {
            Toolchain::Rustup { target, .. } => target,
            Toolchain::Debian { .. } => CORE_TARGET,
        }
    }

    /// A `cargo build` command for the target, environment set, without packages.
    pub fn cargo_build(&self) -> Command {
        match self {
            Toolchain::Rustup { cargo, target } => {
                let mut cmd = Command::new(cargo);
                cmd.args(["build", "--target", target]);
                cmd
            }
            Toolchain::Debian { linker } => {
                let mut cmd = Command::new(DEBIAN_CARGO);
                cmd.env("RUSTC", DEBIAN_RUSTC)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
                    // The rustup proxy's settings mean nothing to Debian's cargo.
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTC_WRAPPER")
                    .args(["build", "--target", CORE_TARGET])
                    .arg("-Zbuild-std=std,panic_abort");
                cmd
            }
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            Toolchain::Rustup { cargo, target } => {
                format!("rustup ({}), target {target}", cargo.display())
            }
            Toolchain::Debian { linker } => format!(
                "Debian {} ({}), target {CORE_TARGET}, -Zbuild-std, linker {}",
                version(DEBIAN_RUSTC).unwrap_or_else(|| "rustc".into()),
                DEBIAN_CARGO,
                linker.display()
            ),
        }
    }
}

/// The `cargo` that runs us (`CARGO`, set by cargo for build scripts, `cargo run` and
/// xtasks), or `cargo` on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Targets rustup has installed for the active toolchain; empty without rustup.
fn rustup_targets() -> Vec<String> {
    let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn ensure_debian_packages() -> Result<()> {
    let missing: Vec<&str> = [DEBIAN_RUSTC, DEBIAN_CARGO, DEBIAN_RUST_SRC]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "toolchain: {} missing; installing Debian packages {}",
        missing.join(", "),
        DEBIAN_PACKAGES.join(" ")
    );
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y"];
    install.extend(DEBIAN_PACKAGES);
    apt_get(&install)?;
    if let Some(path) = [DEBIAN_RUSTC, DEBIAN_CARGO, DEBIAN_RUST_SRC]
        .into_iter()
        .find(|p| !Path::new(p).exists())
    {
        bail!(
            "{path} is still missing after installing {}",
            DEBIAN_PACKAGES.join(" ")
        );
    }
    Ok(())
}

/// Runs `apt-get ARGS` unattended, through `sudo -n` when not root.
fn apt_get(args: &[&str]) -> Result<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        sudo
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args([
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ])
        .args(args);
    println!("toolchain: running {}", render(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("running {}", render(&cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", render(&cmd));
    }
    Ok(())
}

/// `rust-lld` from the rustup toolchain's sysroot, else a wasm linker on `PATH`.
fn find_wasm_linker() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let (Some(sysroot), Some(host)) = (rustc_print("sysroot"), rustc_host()) {
        candidates.push(
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(host)
                .join("bin/rust-lld"),
        );
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        candidates.push(dir.join("rust-lld"));
        candidates.push(dir.join("wasm-ld"));
    }
    candidates.into_iter().find(|p| p.is_file()).context(
        "no wasm linker found: expected rust-lld in the rustup toolchain \
             (`rustc --print sysroot`/lib/rustlib/HOST/bin/rust-lld) or `wasm-ld` on PATH \
             (Debian package `lld`)",
    )
}

fn rustc_print(what: &str) -> Option<String> {
    let output = Command::new("rustc")
        .args(["--print", what])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn rustc_host() -> Option<String> {
    let output = Command::new("rustc").arg("-vV").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
}

fn version(binary: &str) -> Option<String> {
    let output = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

/// A command line as the user would type it (environment changes first).
pub fn render(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}
