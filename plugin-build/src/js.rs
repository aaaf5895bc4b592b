//! JavaScript plugins: `npm install --no-save` (the project's `package-lock.json` pins
//! `@bytecodealliance/componentize-js`), then `componentize-js` against the project's WIT.
//!
//! Features the host has no use for are left out of the component: `http` and
//! `fetch-event` (a plugin reaches the network only through `outrider:plugin/http`).
//! Stdio, clocks and random stay; the host provides them with no ambient authority and
//! sends stdout/stderr (`console.log`) to its logs.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::project::Project;
use crate::{is_up_to_date, run};

/// WASI features `componentize-js` leaves out.
pub const DISABLED_FEATURES: [&str; 2] = ["http", "fetch-event"];

/// Builds the JavaScript `project` into the component `out`, unless `out` is newer than
/// the project's files and WIT. Returns whether it was built.
pub fn build(project: &Project, out: &Path) -> Result<bool> {
    let settings = project
        .settings
        .as_ref()
        .context("a JavaScript project needs its `outrider` settings")?;
    install_dependencies(&project.dir)?;
    if is_up_to_date(out, &[&project.dir, &settings.wit]) {
        return Ok(false);
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = crate::component::temp_path(out);
    let mut cmd = Command::new(project.dir.join("node_modules/.bin/componentize-js"));
    cmd.current_dir(&project.dir)
        .arg(&settings.entry)
        .arg("--wit")
        .arg(&settings.wit)
        .args(["--world-name", &settings.world])
        .arg("--disable")
        .args(DISABLED_FEATURES)
        .arg("--out")
        .arg(&tmp);
    println!("componentize-js: {}", crate::toolchain::render(&cmd));
    run(&mut cmd)?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(true)
}

/// Install from `package-lock.json` when `node_modules` is older than it (`npm install`
/// without a lock file, which writes one). Not `npm ci`: npm 11 refuses a lock whose
/// optional per-platform packages of other systems it resolved as empty ("Missing: ...
/// from lock file"), even one it has just written; `npm install --no-save` installs the
/// locked versions and leaves the lock as it is.
fn install_dependencies(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let has_lock = lock.is_file();
    if has_lock && is_up_to_date(&installed, &[&lock]) {
        return Ok(());
    }
    let mut cmd = Command::new("npm");
    cmd.current_dir(dir)
        .arg("install")
        .args(has_lock.then_some("--no-save"))
        .args(["--no-audit", "--no-fund", "--loglevel=error"]);
    println!(
        "npm: {} in {}",
        crate::toolchain::render(&cmd),
        dir.display()
    );
    run(&mut cmd).context("installing the JavaScript build tools (node 18+ and npm needed)")
}
