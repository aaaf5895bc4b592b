//! `outrider plugin inspect FILE`: validate a component and print what it provides.

use std::path::PathBuf;

use anyhow::Context;

use crate::runtime::manifest::PrototypeKind;
use crate::runtime::{PluginRuntime, RuntimeConfig};

/// Validate `file` and print its manifest (text or JSON); an invalid component is an error.
pub async fn inspect(file: PathBuf, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })?;
    let plugin = runtime
        .load(&bytes)
        .await
        .with_context(|| format!("{} is not a valid Outrider plugin", file.display()))?;
    if json {
        let out = serde_json::json!({
            "id": plugin.id,
            "size": plugin.size,
            "wit_version": plugin.wit_version,
            "imports": plugin.imports,
            "exports": plugin.exports,
            "manifest": plugin.manifest,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let m = &plugin.manifest;
    println!("{} {}  ({})", m.name, m.version, plugin.id);
    if !m.description.is_empty() {
        println!("  {}", m.description);
    }
    println!(
        "  WIT: outrider:plugin@{}   size: {} bytes",
        plugin.wit_version, plugin.size
    );
    println!("  imports: {}", plugin.imports.join(", "));
    println!("  exports: {}", plugin.exports.join(", "));
    for p in &m.prototypes {
        let kind = match p.kind {
            PrototypeKind::Destination => "destination",
            PrototypeKind::Transformer => "transformer",
        };
        println!("  - {kind} `{}`: {}", p.id, p.label);
        for (section, fields) in [
            ("config", &p.config_fields),
            ("credentials", &p.credential_fields),
        ] {
            for f in fields {
                let flags = [(f.required, "required"), (f.sensitive, "sensitive")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, s)| *s)
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "      {section}.{} ({:?}{}{})",
                    f.key,
                    f.r#type,
                    if flags.is_empty() { "" } else { ", " },
                    flags
                );
            }
        }
        let net = &p.network;
        if !net.hosts.is_empty() || !net.url_fields.is_empty() || net.tcp {
            println!(
                "      network: hosts [{}], url fields [{}]{}",
                net.hosts.join(", "),
                net.url_fields.join(", "),
                if net.tcp { ", tcp" } else { "" }
            );
        }
    }
    Ok(())
}
