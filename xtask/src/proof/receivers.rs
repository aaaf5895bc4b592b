//! proof/receivers: not written yet.

use anyhow::{bail, Result};

use super::Ctx;

pub fn run(_ctx: &Ctx) -> Result<()> {
    bail!("not written yet")
}
