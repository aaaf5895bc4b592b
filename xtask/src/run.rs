//! `cargo xtask run`: build the plugins and the server, then serve with the built-in
//! plugins on the embedded SQLite store under `./data`.

use crate::process::run;
use crate::workspace::{cargo, Workspace};
use anyhow::Result;
use std::process::Command;

/// Options of `cargo xtask run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Extra arguments for `outrider serve`.
    #[arg(last = true)]
    serve_args: Vec<String>,
}

/// Runs `cargo xtask run`.
pub fn serve(args: &Args) -> Result<()> {
    let ws = Workspace::load()?;
    let root = &ws.workspace_root;
    crate::plugins::run(&crate::plugins::Args::default())?;
    run(Command::new(cargo())
        .current_dir(root)
        .args(["build", "-p", "outrider", "--bin", "outrider"]))?;
    let mut serve = Command::new(ws.target_directory.join("debug/outrider"));
    serve
        .current_dir(root)
        .arg("serve")
        .arg("--plugins-dir")
        .arg(ws.target_directory.join("plugins"));
    if std::env::var_os("OUTRIDER_API_KEY").is_none() {
        let key = format!("dev-{:032x}", random_u128());
        println!("OUTRIDER_API_KEY was not set; this run uses:\n  export OUTRIDER_API_KEY={key}");
        serve.env("OUTRIDER_API_KEY", key);
    }
    serve.args(&args.serve_args);
    run(&mut serve)
}

/// Randomness without a crate: the std hasher is seeded randomly per process.
fn random_u128() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(std::time::SystemTime::now());
    let b = RandomState::new().hash_one(std::process::id());
    (u128::from(a) << 64) | u128::from(b)
}
