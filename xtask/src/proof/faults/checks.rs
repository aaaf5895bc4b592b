//! After the faults: what the store kept of each fault's attempts, and which plugins
//! `GET /api/v1/plugins` lists as quarantined.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use hyper::Method;

use super::super::figure;
use super::super::load::Api;
use super::{FAULTS, MAX_ERROR_BYTES};

/// Every attempt of each fault destination: its error class, and how long the stored
/// errors are.
pub(super) async fn check_attempts(api: &Api, destinations: &BTreeMap<&str, String>) -> Result<()> {
    let mut wrong = Vec::new();
    for fault in FAULTS {
        let id = &destinations[fault.name];
        let attempts = api
            .all(&format!(
                "/api/v1/tenants/faulty/destinations/{id}/attempts"
            ))
            .await?;
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut longest = 0usize;
        for attempt in &attempts {
            let data = &attempt["response_data"];
            let kind = data["error_kind"].as_str().unwrap_or("none").to_string();
            *kinds.entry(kind).or_default() += 1;
            let stored = data["error"].as_str().map_or(0, str::len)
                + attempt["response_body"].as_str().map_or(0, str::len);
            longest = longest.max(stored);
        }
        let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        figure(
            &format!("faults/{}: attempts by error class", fault.name),
            format!(
                "{} (longest error + body stored: {longest} bytes)",
                summary.join(", ")
            ),
        );
        let expected_seen = kinds.get(fault.kind).copied().unwrap_or(0);
        let others: usize = kinds
            .iter()
            .filter(|(k, _)| k.as_str() != fault.kind && k.as_str() != "quarantined")
            .map(|(_, n)| *n)
            .sum();
        if expected_seen == 0 || others > 0 {
            wrong.push(format!(
                "{}: expected `{}` attempts (and `quarantined` ones), got {}",
                fault.name,
                fault.kind,
                summary.join(", ")
            ));
        }
        if longest > MAX_ERROR_BYTES {
            wrong.push(format!(
                "{}: an attempt stores {longest} bytes of error and body (bound {MAX_ERROR_BYTES})",
                fault.name
            ));
        }
    }
    if !wrong.is_empty() {
        bail!("fault attempts:\n  {}", wrong.join("\n  "));
    }
    Ok(())
}

/// `GET /api/v1/plugins`: every crashing fault plugin quarantined, the others not.
pub(super) async fn check_quarantine(api: &Api, plugin_ids: &BTreeMap<&str, String>) -> Result<()> {
    let listing = api.ok(Method::GET, "/api/v1/plugins", None).await?;
    let models = listing["models"].as_array().cloned().unwrap_or_default();
    let quarantined = |id: &str| {
        models
            .iter()
            .find(|m| m["id"] == id)
            .map(|m| m["quarantined"] == true)
    };
    let mut listed = Vec::new();
    let mut wrong = Vec::new();
    for fault in FAULTS {
        match quarantined(&plugin_ids[fault.name]) {
            Some(q) => {
                if q {
                    listed.push(fault.name);
                }
                if q != fault.crashes {
                    wrong.push(format!("{}: quarantined {q}", fault.name));
                }
            }
            None => wrong.push(format!("{}: not in GET /api/v1/plugins", fault.name)),
        }
    }
    let webhook_quarantined = models
        .iter()
        .any(|m| m["name"] == "webhook" && m["quarantined"] == true);
    figure(
        "faults/quarantined in GET /api/v1/plugins",
        format!(
            "{} (crashing fixtures: {}; webhook quarantined: {webhook_quarantined})",
            listed.join(", "),
            FAULTS.iter().filter(|f| f.crashes).count()
        ),
    );
    if webhook_quarantined {
        wrong.push("the healthy webhook plugin is quarantined".into());
    }
    if !wrong.is_empty() {
        bail!("quarantine:\n  {}", wrong.join("\n  "));
    }
    Ok(())
}
