//! Python plugins: `componentize-py` (pinned here) installed from PyPI into a virtualenv,
//! then run against the project's WIT. componentize-py embeds a CPython interpreter, so
//! these components are tens of MB.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::project::Project;
use crate::{is_up_to_date, run};

/// The `componentize-py` release plugins are built with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Builds the Python `project` into the component `out`, unless `out` is newer than the
/// project's files and WIT. `tools_dir` holds the virtualenv (e.g. `target/`). Returns
/// whether it was built.
pub fn build(project: &Project, out: &Path, tools_dir: &Path) -> Result<bool> {
    let settings = project
        .settings
        .as_ref()
        .context("a Python project needs its [tool.outrider] settings")?;
    let tool = install_componentize_py(tools_dir)?;
    if is_up_to_date(out, &[&project.dir, &settings.wit]) {
        return Ok(false);
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = crate::component::temp_path(out);
    let mut cmd = Command::new(tool);
    cmd.current_dir(&project.dir)
        .arg("--quiet")
        .arg("--wit-path")
        .arg(&settings.wit)
        .args(["--world", &settings.world, "componentize"])
        .arg(&settings.entry)
        .arg("--python-path")
        .arg(&project.dir)
        .arg("--output")
        .arg(&tmp)
        // A virtualenv of the caller would add its site-packages to the component.
        .env_remove("VIRTUAL_ENV");
    println!("componentize-py: {}", crate::toolchain::render(&cmd));
    run(&mut cmd)?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(true)
}

/// `componentize-py` from a virtualenv under `tools_dir`, created on first use.
fn install_componentize_py(tools_dir: &Path) -> Result<PathBuf> {
    let venv = tools_dir.join("componentize-py");
    let tool = venv.join("bin/componentize-py");
    let stamp = venv.join("outrider-requirement.txt");
    if tool.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(COMPONENTIZE_PY) {
        return Ok(tool);
    }
    println!(
        "python: installing {COMPONENTIZE_PY} into {}",
        venv.display()
    );
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("creating a virtualenv (python3 with the venv module needed)")?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        COMPONENTIZE_PY,
    ]))?;
    std::fs::write(&stamp, COMPONENTIZE_PY)?;
    Ok(tool)
}
