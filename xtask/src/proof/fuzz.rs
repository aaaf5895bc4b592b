//! proof/fuzz: schemathesis (`tests/python/api_fuzz.py`) against the server's own
//! `/api/v1/openapi.json`, valid and invalid requests to every operation with the admin
//! key. The promise: no server error (5xx) and no response outside the document (status
//! code, content type, body schema).

use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{figure, Ctx};
use crate::server::{Server, API_KEY};

/// Cases per operation and generation mode (positive, negative): CI's and `--full`'s.
const MAX_EXAMPLES: (u32, u32) = (10, 100);

pub fn run(ctx: &Ctx) -> Result<()> {
    let venv = crate::test::python_venv(&ctx.root, &ctx.target)?;
    let server = Server::start(&ctx.server())?;
    let max_examples = ctx.size(MAX_EXAMPLES.0, MAX_EXAMPLES.1);
    let output = Command::new(venv.join("bin/python"))
        .arg(ctx.root.join("tests/python/api_fuzz.py"))
        .arg("--base-url")
        .arg(format!("http://{}", server.addr()))
        .arg("--api-key")
        .arg(API_KEY)
        .arg("--max-examples")
        .arg(max_examples.to_string())
        .output()
        .context("running tests/python/api_fuzz.py")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("api_fuzz: "))
        .map(str::to_string);
    let Some(summary) = summary else {
        bail!(
            "api_fuzz.py printed no summary (exit {:?}):\n{stdout}\n{stderr}",
            output.status.code()
        );
    };
    for line in stdout.lines().filter(|l| l.starts_with("  ")) {
        println!("{line}");
    }
    figure("api_fuzz", &summary);
    if !output.status.success() {
        bail!(
            "the API broke its document: {summary}\nserver log (last lines):\n{}",
            server.log_tail()
        );
    }
    Ok(())
}
