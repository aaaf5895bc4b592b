//! Running commands with their output streamed and a readable error on failure.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Run `cmd`, inheriting stdout/stderr; fail naming the command when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    println!("$ {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
