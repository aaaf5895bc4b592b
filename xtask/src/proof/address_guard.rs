//! proof/address_guard: plugins cannot reach loopback, private, link-local, metadata or
//! other special addresses, whatever form the address takes.
//!
//! 1. The policy layer: a table of URLs through `outrider net check`, which runs each
//!    through the code path of a delivery's outbound HTTP (URL parsing and
//!    normalisation, the destination's host allowlist, IP-literal classification,
//!    metadata names, the resolver's filtering) without connecting. Names are answered
//!    by `--resolve` and `--offline` forbids DNS, so nothing leaves the machine; the
//!    public addresses that must be allowed are only classified, never contacted.
//! 2. End to end: a real server allowing only `127.0.0.1/32`, one webhook destination on
//!    a `127.0.0.1` sink (delivered: the control) and destinations on `127.0.0.2` and
//!    `[::1]` in several spellings, each with a listener counting connections. Every
//!    attempt of the latter must fail as `denied` and the listeners must see nothing.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};

use super::load::Api;
use super::sink::Sink;
use super::{figure, on_server, Ctx};
use crate::server::Server;

/// What the guard must answer for a URL.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Refused with this class.
    Refused(&'static str),
    /// Allowed, connecting to exactly these addresses.
    Allowed(&'static [&'static str]),
}

use Expect::{Allowed, Refused};

/// Lookup answers for the names in the tables (`--resolve`); nothing asks DNS.
const ANSWERS: &[&str] = &[
    "localhost=127.0.0.1,::1",
    "127.0.0.1.nip.io=127.0.0.1",
    "internal.example.test=10.0.0.5",
    "inner.example.test=10.0.0.5",
    "rebind.example.test=127.0.0.1",
    "cloud.example.test=169.254.169.254",
    "v6.example.test=::1",
    "mapped.example.test=::ffff:127.0.0.1",
    "ula.example.test=fd00::1",
    "all-blocked.example.test=192.168.1.1,10.0.0.1",
    "hooks.example.test=93.184.216.34",
    "mixed.example.test=127.0.0.1,93.184.216.34",
];

/// Declared host pattern, so that a redirect inside it reaches the address policy.
const DECLARED_HOSTS: &str = "*.example.test";

/// URLs checked as a destination's `url`, with the default policy.
const URLS: &[(&str, Expect)] = &[
    // Loopback, in every spelling the URL parser normalises.
    ("http://127.0.0.1/", Refused("loopback")),
    ("http://127.1/", Refused("loopback")),
    ("http://0x7f.1/", Refused("loopback")),
    ("http://0x7f000001/", Refused("loopback")),
    ("http://2130706433/", Refused("loopback")),
    ("http://017700000001/", Refused("loopback")),
    ("http://0177.0.0.1/", Refused("loopback")),
    ("http://127.255.255.254:8080/", Refused("loopback")),
    ("http://user:pass@127.0.0.1/", Refused("loopback")),
    ("http://[::1]/", Refused("loopback")),
    ("http://[::ffff:127.0.0.1]/", Refused("loopback")),
    ("http://[::ffff:7f00:1]/", Refused("loopback")),
    ("http://[::127.0.0.1]/", Refused("loopback")),
    ("http://[64:ff9b::7f00:1]/", Refused("loopback")),
    ("http://[2002:7f00:1::]/", Refused("loopback")),
    ("http://localhost/", Refused("loopback")),
    ("http://LOCALHOST./", Refused("loopback")),
    // Unspecified.
    ("http://0.0.0.0/", Refused("unspecified")),
    ("http://0/", Refused("unspecified")),
    ("http://[::]/", Refused("unspecified")),
    // Private ranges, literal and in decimal, octal and hex.
    ("http://10.0.0.1/", Refused("private")),
    ("http://10.255.255.254/", Refused("private")),
    ("http://012.0.0.1/", Refused("private")),
    ("http://0xa.0.0.1/", Refused("private")),
    ("http://167772161/", Refused("private")),
    ("http://172.16.0.1/", Refused("private")),
    ("http://172.31.255.254/", Refused("private")),
    ("http://192.168.0.1/", Refused("private")),
    ("http://0xc0.0xa8.0x00.0x01/", Refused("private")),
    ("http://3232235521/", Refused("private")),
    // IPv4-mapped, NAT64 and 6to4 forms of private addresses.
    ("http://[::ffff:10.0.0.1]/", Refused("private")),
    ("http://[::ffff:192.168.1.1]/", Refused("private")),
    ("http://[64:ff9b::a00:1]/", Refused("private")),
    ("http://[2002:c0a8:101::1]/", Refused("private")),
    // Link-local and cloud metadata.
    ("http://169.254.0.1/", Refused("link-local")),
    ("http://[fe80::1]/", Refused("link-local")),
    (
        "http://169.254.169.254/latest/meta-data/",
        Refused("metadata"),
    ),
    ("http://2852039166/", Refused("metadata")),
    ("http://0xa9.0xfe.0xa9.0xfe/", Refused("metadata")),
    ("http://[::ffff:169.254.169.254]/", Refused("metadata")),
    ("http://[fd00:ec2::254]/latest/", Refused("metadata")),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        Refused("metadata-name"),
    ),
    (
        "http://Metadata.Google.Internal./",
        Refused("metadata-name"),
    ),
    ("http://metadata.goog/", Refused("metadata-name")),
    (
        "http://metadata/computeMetadata/v1/",
        Refused("metadata-name"),
    ),
    (
        "http://instance-data/latest/meta-data/",
        Refused("metadata-name"),
    ),
    (
        "http://instance-data.ec2.internal/",
        Refused("metadata-name"),
    ),
    // CGNAT, multicast, unique local, broadcast and other special ranges.
    ("http://100.64.0.1/", Refused("shared-address-space")),
    ("http://100.127.255.254/", Refused("shared-address-space")),
    ("http://224.0.0.1/", Refused("multicast")),
    ("http://239.255.255.250:1900/", Refused("multicast")),
    ("http://[ff02::1]/", Refused("multicast")),
    ("http://[fc00::1]/", Refused("unique-local")),
    ("http://[fd12:3456:789a::1]/", Refused("unique-local")),
    ("http://255.255.255.255/", Refused("broadcast")),
    ("http://240.0.0.1/", Refused("reserved")),
    ("http://192.0.2.1/", Refused("documentation")),
    ("http://198.18.0.1/", Refused("benchmarking")),
    // Names resolving to refused addresses (answers from --resolve).
    ("http://127.0.0.1.nip.io/", Refused("loopback")),
    ("http://internal.example.test/", Refused("private")),
    ("http://rebind.example.test/", Refused("loopback")),
    ("http://cloud.example.test/", Refused("metadata")),
    ("http://v6.example.test/", Refused("loopback")),
    ("http://mapped.example.test/", Refused("loopback")),
    ("http://ula.example.test/", Refused("unique-local")),
    ("http://all-blocked.example.test/", Refused("private")),
    // Not HTTP, or not a URL the parser accepts.
    ("file:///etc/passwd", Refused("invalid-url")),
    ("gopher://127.0.0.1:70/", Refused("invalid-url")),
    ("http://[fe80::1%25eth0]/", Refused("invalid-url")),
    // Public addresses: allowed (classified only, never contacted).
    ("http://93.184.216.34/", Allowed(&["93.184.216.34:80"])),
    (
        "https://[2606:4700:4700::1111]/",
        Allowed(&["[2606:4700:4700::1111]:443"]),
    ),
    ("http://172.32.0.1/", Allowed(&["172.32.0.1:80"])),
    ("http://100.128.0.1/", Allowed(&["100.128.0.1:80"])),
    (
        "http://[64:ff9b::808:808]/",
        Allowed(&["[64:ff9b::808:808]:80"]),
    ),
    (
        "https://hooks.example.test/in",
        Allowed(&["93.184.216.34:443"]),
    ),
    // A name with a refused and an allowed address keeps only the allowed one.
    ("http://mixed.example.test/", Allowed(&["93.184.216.34:80"])),
];

/// Redirects: the destination is configured with the first URL, its receiver redirects
/// to the second.
const REDIRECTS: &[(&str, &str, Expect)] = &[
    (
        "http://hooks.example.test/in",
        "http://127.0.0.1/",
        Refused("network-access"),
    ),
    (
        "http://hooks.example.test/in",
        "http://169.254.169.254/latest/",
        Refused("network-access"),
    ),
    (
        "http://hooks.example.test/in",
        "http://[::ffff:127.0.0.1]/",
        Refused("network-access"),
    ),
    // Inside the declared pattern, so the address policy decides.
    (
        "http://hooks.example.test/in",
        "http://inner.example.test/",
        Refused("private"),
    ),
    (
        "http://hooks.example.test/in",
        "http://rebind.example.test/",
        Refused("loopback"),
    ),
    (
        "http://hooks.example.test/in",
        "http://hooks.example.test/next",
        Allowed(&["93.184.216.34:80"]),
    ),
];

/// With `--allow 127.0.0.1/32`: exactly that address is let through.
const NARROW_ALLOW: &str = "127.0.0.1/32";
const NARROW: &[(&str, Expect)] = &[
    ("http://127.0.0.1:9000/", Allowed(&["127.0.0.1:9000"])),
    (
        "http://[::ffff:127.0.0.1]:9000/",
        Allowed(&["[::ffff:127.0.0.1]:9000"]),
    ),
    ("http://localhost:9000/", Allowed(&["127.0.0.1:9000"])),
    ("http://127.0.0.2:9000/", Refused("loopback")),
    ("http://[::1]:9000/", Refused("loopback")),
    ("http://10.0.0.1/", Refused("private")),
    ("http://169.254.169.254/", Refused("metadata")),
];

pub fn run(ctx: &Ctx) -> Result<()> {
    policy_table(ctx)?;
    end_to_end(ctx)
}

/// One `outrider net check --json --offline` run; its JSON lines in argument order.
fn net_check(
    ctx: &Ctx,
    allow: &[&str],
    urls: &[&str],
    redirects: &[(&str, &str)],
) -> Result<Vec<Value>> {
    let mut command = Command::new(&ctx.binary);
    command
        .args([
            "net",
            "check",
            "--json",
            "--offline",
            "--allow-host",
            DECLARED_HOSTS,
        ])
        .env_remove("OUTRIDER_ALLOW_NETWORKS");
    for cidr in allow {
        command.args(["--allow", cidr]);
    }
    for answer in ANSWERS {
        command.args(["--resolve", answer]);
    }
    for (from, to) in redirects {
        command.args(["--redirect", from, to]);
    }
    command.arg("--").args(urls);
    let output = command
        .output()
        .with_context(|| format!("running {} net check", ctx.binary.display()))?;
    if !output.status.success() {
        bail!(
            "outrider net check failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parsing the output of outrider net check")?;
    if lines.len() != urls.len() + redirects.len() {
        bail!(
            "outrider net check answered {} lines for {} checks",
            lines.len(),
            urls.len() + redirects.len()
        );
    }
    Ok(lines)
}

/// Whether `answer` is what `expect` says; `Err` describes the difference.
fn judge(answer: &Value, expect: Expect) -> std::result::Result<(), String> {
    let verdict = answer["verdict"].as_str().unwrap_or_default();
    match expect {
        Refused(class) if verdict == "refused" && answer["class"] == class => Ok(()),
        Allowed(addresses) if verdict == "allowed" => {
            let got: Vec<&str> = answer["addresses"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if got == addresses {
                Ok(())
            } else {
                Err(format!(
                    "allowed to {got:?}, expected exactly {addresses:?}"
                ))
            }
        }
        _ => Err(format!("expected {expect:?}, got {answer}")),
    }
}

/// Tallies of one table: (refused as expected, refusals expected, allowed as expected,
/// allowances expected), and the mismatches.
#[derive(Default)]
struct Tally {
    refused: (usize, usize),
    allowed: (usize, usize),
    wrong: Vec<String>,
}

impl Tally {
    fn add(&mut self, label: &str, answer: &Value, expect: Expect) {
        let ok = judge(answer, expect);
        let counter = match expect {
            Refused(_) => &mut self.refused,
            Allowed(_) => &mut self.allowed,
        };
        counter.1 += 1;
        match ok {
            Ok(()) => counter.0 += 1,
            Err(why) => self.wrong.push(format!("{label}: {why}")),
        }
    }
}

fn policy_table(ctx: &Ctx) -> Result<()> {
    let urls: Vec<&str> = URLS.iter().map(|(u, _)| *u).collect();
    let redirects: Vec<(&str, &str)> = REDIRECTS.iter().map(|(f, t, _)| (*f, *t)).collect();
    let answers = net_check(ctx, &[], &urls, &redirects)?;
    let mut tally = Tally::default();
    let expected = URLS.iter().map(|(url, e)| (url.to_string(), *e)).chain(
        REDIRECTS
            .iter()
            .map(|(from, to, e)| (format!("{to} (redirect from {from})"), *e)),
    );
    for ((label, expect), answer) in expected.zip(&answers) {
        tally.add(&label, answer, expect);
    }
    let narrow_urls: Vec<&str> = NARROW.iter().map(|(u, _)| *u).collect();
    let narrow_answers = net_check(ctx, &[NARROW_ALLOW], &narrow_urls, &[])?;
    let mut narrow = Tally::default();
    for ((url, expect), answer) in NARROW.iter().zip(&narrow_answers) {
        narrow.add(url, answer, *expect);
    }
    figure(
        "address_guard/policy refused (URLs and redirect hops, with the expected class)",
        format!("{} of {}", tally.refused.0, tally.refused.1),
    );
    figure(
        "address_guard/policy allowed (public addresses only, never contacted)",
        format!("{} of {}", tally.allowed.0, tally.allowed.1),
    );
    figure(
        &format!("address_guard/policy with --allow {NARROW_ALLOW}: allowed / refused as expected"),
        format!(
            "{} of {} / {} of {}",
            narrow.allowed.0, narrow.allowed.1, narrow.refused.0, narrow.refused.1
        ),
    );
    let wrong: Vec<String> = tally.wrong.into_iter().chain(narrow.wrong).collect();
    if !wrong.is_empty() {
        bail!(
            "the address guard answered wrongly:\n  {}",
            wrong.join("\n  ")
        );
    }
    Ok(())
}

/// A listener that accepts and counts connections (and answers nothing).
async fn counting_listener(addr: &str) -> Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    Ok((local, count))
}

fn end_to_end(ctx: &Ctx) -> Result<()> {
    let config = ctx.server().env("OUTRIDER_ALLOW_NETWORKS", NARROW_ALLOW);
    on_server("address_guard", &config, end_to_end_on)
}

async fn end_to_end_on(server: &Server) -> Result<()> {
    let api = Api::new(server.addr());
    let sink = Sink::start().await?;
    let (v4, v4_count) = counting_listener("127.0.0.2:0").await?;
    let (v6, v6_count) = counting_listener("[::1]:0").await?;
    let (p4, p6) = (v4.port(), v6.port());
    let blocked_urls = [
        format!("http://127.0.0.2:{p4}/hook"),
        format!("http://127.2:{p4}/hook"),
        format!("http://2130706434:{p4}/hook"),
        format!("http://0x7f.0.0.2:{p4}/hook"),
        format!("http://[::ffff:127.0.0.2]:{p4}/hook"),
        format!("http://[::1]:{p6}/hook"),
    ];
    let tenant = "guard";
    let control = api.webhook(tenant, &sink.url("/hook"), json!({})).await?;
    let mut blocked = Vec::new();
    for url in &blocked_urls {
        blocked.push((url, api.webhook(tenant, url, json!({})).await?));
    }
    let published = api
        .ok(
            Method::POST,
            "/api/v1/publish",
            Some(&json!({
                "id": "guard-1",
                "tenant_id": tenant,
                "topic": "proof.guard",
                "data": {"probe": true},
            })),
        )
        .await?;
    let routed = published["destination_ids"].as_array().map_or(0, Vec::len);
    if routed != blocked_urls.len() + 1 {
        bail!("the publish was routed to {routed} destinations: {published}");
    }

    // Wait for the control delivery and one attempt per blocked destination.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempts: Vec<Option<Value>> = vec![None; blocked.len()];
    loop {
        for (slot, (_, id)) in attempts.iter_mut().zip(&blocked) {
            if slot.is_none() {
                let path = format!("/api/v1/tenants/{tenant}/destinations/{id}/attempts");
                let page = api.ok(Method::GET, &path, None).await?;
                *slot = page["models"].as_array().and_then(|m| m.first()).cloned();
            }
        }
        if sink.delivered_count() >= 1 && attempts.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "after 60 s: control delivered {}, blocked destinations with an attempt {} of {}",
                sink.delivered_count(),
                attempts.iter().flatten().count(),
                blocked.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give any late connection time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut wrong = Vec::new();
    for ((url, _), attempt) in blocked.iter().zip(attempts.iter().flatten()) {
        let kind = &attempt["response_data"]["error_kind"];
        let error = attempt["response_data"]["error"]
            .as_str()
            .unwrap_or_default();
        if attempt["status"] != "failed" || kind != "denied" || !error.contains("loopback") {
            wrong.push(format!("{url}: {attempt}"));
        }
    }
    let connections = v4_count.load(Ordering::SeqCst) + v6_count.load(Ordering::SeqCst);
    let control_attempts = api
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{tenant}/destinations/{control}/attempts"),
            None,
        )
        .await?;
    figure(
        &format!(
            "address_guard/end to end, server allowing only {NARROW_ALLOW}: refused as `denied`"
        ),
        format!("{} of {}", blocked.len() - wrong.len(), blocked.len()),
    );
    figure(
        "address_guard/end to end: connections seen by the 127.0.0.2 and [::1] listeners",
        connections,
    );
    figure(
        "address_guard/end to end: control delivery to 127.0.0.1 (status of its attempt)",
        format!(
            "{} delivered ({})",
            sink.delivered_count(),
            control_attempts["models"][0]["status"]
        ),
    );
    if !wrong.is_empty() {
        bail!(
            "attempts to blocked addresses were not refused as denied:\n  {}",
            wrong.join("\n  ")
        );
    }
    if connections != 0 {
        bail!("the blocked listeners saw {connections} connections");
    }
    Ok(())
}
