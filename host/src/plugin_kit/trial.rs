//! `outrider plugin test FILE`: load a component as the server would, run `validate` and
//! then `deliver` (against a loopback capture server) or `transform`, and print what the
//! component sent, the result, and the time and memory each call used.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::capture::{CaptureServer, Captured};
use crate::runtime::{
    DeliveryFailure, Event, LoadedPlugin, PluginRuntime, Prototype, PrototypeKind, RuntimeConfig,
    Target,
};

/// What to try.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The component.
    pub file: PathBuf,
    /// Prototype id; may be left out when the plugin has one prototype.
    pub prototype: Option<String>,
    /// `key=value` config entries; `{capture}` in a value is the capture server's URL.
    pub config: Vec<String>,
    /// `key=value` credential entries.
    pub credentials: Vec<String>,
    /// Event JSON file (`{"id", "topic", "data", "metadata"}`, or just the data).
    pub event: Option<PathBuf>,
    /// Transformer input JSON file (defaults to the event file).
    pub input: Option<PathBuf>,
    /// Status the capture server answers with.
    pub respond: u16,
    /// Linear memory cap per call, MiB.
    pub memory_mb: usize,
}

/// Runs the trial; an error if validation or the call fails.
pub async fn run(trial: Trial) -> Result<()> {
    let bytes =
        std::fs::read(&trial.file).with_context(|| format!("reading {}", trial.file.display()))?;
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: None,
        memory_limit: trial.memory_mb * 1024 * 1024,
        // The capture server is on loopback; everything else stays refused.
        allow_networks: vec!["127.0.0.0/8".parse()?, "::1/128".parse()?],
        max_instances: 4,
        ..RuntimeConfig::default()
    })?;
    let started = Instant::now();
    let plugin = runtime
        .load(&bytes)
        .await
        .with_context(|| format!("{} is not a valid Outrider plugin", trial.file.display()))?;
    println!(
        "loaded {} {} (WIT {}, {} KiB) in {} ms",
        plugin.manifest.name,
        plugin.manifest.version,
        plugin.wit_version,
        plugin.size / 1024,
        started.elapsed().as_millis()
    );
    let prototype = pick_prototype(&plugin, trial.prototype.as_deref())?.clone();
    let kind = prototype.kind;
    let capture = CaptureServer::start(trial.respond).await?;
    let mut config = entries("--config", &trial.config, &capture.url())?;
    for key in &prototype.network.url_fields {
        if !config.contains_key(key) {
            let url = format!("{}/{}", capture.url(), prototype.id);
            println!("config.{key} = {url} (the capture server)");
            config.insert(key.clone(), Value::String(url));
        }
    }
    let mut config = Value::Object(config);
    let mut credentials =
        Value::Object(entries("--credential", &trial.credentials, &capture.url())?);

    let started = Instant::now();
    let errors = plugin
        .validate(kind, &prototype.id, &config, &credentials)
        .await?;
    let validate_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !errors.is_empty() {
        for e in &errors {
            println!("validate: {}: {}", e.field, e.message);
        }
        bail!(
            "validate refused the configuration ({} problems)",
            errors.len()
        );
    }
    println!("validate: ok ({validate_ms:.1} ms)");
    plugin.normalize(kind, &prototype.id, &mut config, &mut credentials)?;
    let target = Target {
        prototype: prototype.id.clone(),
        id: "des_plugin_test".into(),
        tenant_id: "plugin-test".into(),
        config,
        credentials,
        delivery_metadata: BTreeMap::new(),
    };

    let started = Instant::now();
    let outcome = match kind {
        PrototypeKind::Destination => {
            let event = read_event(trial.event.as_ref())?;
            let result = plugin.deliver(&target, &event).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            for (i, request) in capture.requests().iter().enumerate() {
                print_request(i + 1, request);
            }
            match result {
                Ok(d) => {
                    println!("deliver: ok, status {:?} ({ms:.1} ms)", d.status_code);
                    Ok(())
                }
                Err(failure) => {
                    println!("deliver: {} ({ms:.1} ms): {failure}", classify(&failure));
                    Err(anyhow::anyhow!("delivery failed: {failure}"))
                }
            }
        }
        PrototypeKind::Transformer => {
            let input = read_json(trial.input.as_ref().or(trial.event.as_ref()))?
                .unwrap_or_else(|| json!({ "hello": "world" }));
            let result = plugin.transform(&target, &input).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(outputs) => {
                    println!("transform: {} outputs ({ms:.1} ms)", outputs.len());
                    for output in outputs {
                        println!("  {output}");
                    }
                    Ok(())
                }
                Err(failure) => {
                    println!("transform: {failure} ({ms:.1} ms)");
                    Err(anyhow::anyhow!("transform failed: {failure}"))
                }
            }
        }
    };
    println!(
        "memory: peak linear memory {:.1} MiB of {} MiB allowed per call",
        plugin.peak_memory() as f64 / (1024.0 * 1024.0),
        trial.memory_mb
    );
    outcome
}

/// How the server would treat a failed delivery.
fn classify(failure: &DeliveryFailure) -> String {
    match failure {
        DeliveryFailure::Retry {
            retry_after: Some(after),
            ..
        } => format!("retry (not before {} ms)", after.as_millis()),
        DeliveryFailure::Retry { .. } => "retry".into(),
        DeliveryFailure::Fail { .. } => "fail (permanent, not retried)".into(),
        DeliveryFailure::Misconfigured { .. } => "misconfigured (not retried)".into(),
        DeliveryFailure::Denied(_) => "denied by the network policy (not retried)".into(),
        DeliveryFailure::Trap(_) | DeliveryFailure::Timeout | DeliveryFailure::MemoryLimit => {
            "fault (retried; repeated faults quarantine the plugin)".into()
        }
    }
}

fn pick_prototype<'a>(plugin: &'a LoadedPlugin, id: Option<&str>) -> Result<&'a Prototype> {
    let all = &plugin.manifest.prototypes;
    let ids = || {
        all.iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match id {
        Some(id) => all
            .iter()
            .find(|p| p.id == id)
            .with_context(|| format!("--prototype: `{id}` is not one of {}", ids())),
        None if all.len() == 1 => Ok(&all[0]),
        None => bail!("--prototype: the plugin has several ({}); pick one", ids()),
    }
}

/// `key=value` pairs as a JSON object of strings (the host converts them to the field
/// types, as it does for API clients); `{capture}` becomes `capture_url`.
fn entries(flag: &str, pairs: &[String], capture_url: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("{flag} {pair}: expected key=value"))?;
        out.insert(
            key.to_string(),
            Value::String(value.replace("{capture}", capture_url)),
        );
    }
    Ok(out)
}

fn read_json(path: Option<&PathBuf>) -> Result<Option<Value>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    Ok(Some(value))
}

/// The event to deliver: `{"id", "topic", "data", "metadata"}` or any JSON as the data.
fn read_event(path: Option<&PathBuf>) -> Result<Event> {
    let value = read_json(path)?.unwrap_or_else(|| json!({ "data": { "hello": "world" } }));
    let envelope = value.as_object().filter(|o| o.contains_key("data"));
    let text = |key: &str, default: &str| {
        envelope
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let data = envelope.map_or(&value, |o| &o["data"]);
    let metadata = envelope
        .and_then(|o| o.get("metadata"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
                .collect()
        })
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    Ok(Event {
        id: text("id", "evt_plugin_test"),
        tenant_id: "plugin-test".into(),
        topic: text("topic", "test"),
        time_ms: now,
        metadata,
        data: data.to_string(),
        attempt: 1,
    })
}

fn print_request(n: usize, r: &Captured) {
    println!("sent #{n}: {} {}", r.method, r.uri);
    for (k, v) in &r.headers {
        println!("  {k}: {v}");
    }
    let body = String::from_utf8_lossy(&r.body);
    const SHOWN: usize = 2048;
    if body.len() > SHOWN {
        let mut end = SHOWN;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        println!("  body ({} bytes): {}...", r.body.len(), &body[..end]);
    } else {
        println!("  body ({} bytes): {body}", r.body.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fill_the_capture_url_and_name_the_flag() {
        let map = entries(
            "--config",
            &["url={capture}/x".into(), "n=2".into()],
            "http://127.0.0.1:9",
        )
        .unwrap();
        assert_eq!(map["url"], "http://127.0.0.1:9/x");
        assert_eq!(map["n"], "2");
        let err = entries("--credential", &["token".into()], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--credential token"), "{err}");
    }

    #[test]
    fn events_are_envelopes_or_bare_data() {
        let dir = tempfile::tempdir().unwrap();
        let envelope = dir.path().join("e.json");
        std::fs::write(
            &envelope,
            r#"{"id":"evt_7","topic":"t","data":{"a":1},"metadata":{"k":"v","n":3}}"#,
        )
        .unwrap();
        let event = read_event(Some(&envelope)).unwrap();
        assert_eq!((event.id.as_str(), event.topic.as_str()), ("evt_7", "t"));
        assert_eq!(event.data, r#"{"a":1}"#);
        assert_eq!(event.metadata["k"], "v");
        assert_eq!(event.metadata["n"], "3");

        let bare = dir.path().join("b.json");
        std::fs::write(&bare, r#"[1,2]"#).unwrap();
        let event = read_event(Some(&bare)).unwrap();
        assert_eq!(event.data, "[1,2]");
        assert_eq!(event.id, "evt_plugin_test");
    }
}
