//! proof/secrets: credentials with known values (a webhook secret and its predecessor, AWS
//! access key, secret key and session token, an encrypted environment variable), created
//! and used on SQLite and on PostgreSQL by servers logging at `debug`. Neither the SQLite
//! files (database, `-wal`, `-shm`), a `pg_dump` of the database nor any log may contain
//! them: not as they are, not hex-encoded, not base64-encoded.
//!
//! Then `outrider keys rotate` under a new key: it must re-encrypt every secret, the
//! destinations must work with only the new key, nothing may be left under the old key
//! (`pg_dump`), and a server with only the old key must decrypt nothing.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use hyper::{Method, StatusCode};
use serde_json::json;

use super::load::{runtime, wait_until, Api};
use super::sink::Sink;
use super::{figure, Ctx};
use crate::server::{PostgresDatabase, ScratchDir, Server, ServerConfig, ENCRYPTION_KEY};

const WEBHOOK_SECRET: &str = "proof-webhook-secret-8c1f2e94d7";
const PREVIOUS_SECRET: &str = "proof-previous-secret-55ab09e1";
const AWS_KEY: &str = "AKIAPROOF7Q2W4E6R8T0";
const AWS_SECRET: &str = "proof/aws+secret/Zx81kq0LmN3pQ7";
const AWS_SESSION: &str = "proof-aws-session-token-3jd83ksA9";
const VARIABLE_SECRET: &str = "proof-env-secret-value-77c1b2";

/// Every known credential.
const SECRETS: [&str; 6] = [
    WEBHOOK_SECRET,
    PREVIOUS_SECRET,
    AWS_KEY,
    AWS_SECRET,
    AWS_SESSION,
    VARIABLE_SECRET,
];

/// The key rotated to (`k1` is the harness's [`ENCRYPTION_KEY`]).
const NEW_KEY: &str = "k2:proof-rotated-encryption-key-4471aa";

/// What one backend showed.
struct Findings {
    /// (where, which secret) for every plain-text find.
    hits: Vec<(String, &'static str)>,
    /// Bytes searched.
    searched: usize,
    /// Places searched (files, dump, logs).
    places: Vec<String>,
    /// `keys rotate` said it re-encrypted this many.
    reencrypted: u64,
    /// Ciphertexts still under the old key id after rotation (`pg_dump` only).
    left_under_old_key: Option<usize>,
    /// Destinations a server with only the old key could read.
    readable_with_old_key: usize,
    destinations: usize,
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let rt = runtime()?;
    let sqlite = {
        let dir = ScratchDir::new("outrider-proof-secrets")?;
        let config = logging(ctx.server().data_dir(dir.path()));
        backend(&rt, &config, dir.path(), None).context("on SQLite")?
    };
    let postgres = {
        let db = PostgresDatabase::create(&ctx.postgres)?;
        let dir = ScratchDir::new("outrider-proof-secrets-pg")?;
        let config = logging(ctx.server().data_dir(dir.path()).database(db.url()));
        backend(&rt, &config, dir.path(), Some(&db)).context("on PostgreSQL")?
    };

    let hits = sqlite.hits.len() + postgres.hits.len();
    figure(
        "secrets/plaintext hits",
        format!(
            "{hits} ({} known credentials searched as text, hex and base64 in {} MiB: SQLite {}; PostgreSQL {})",
            SECRETS.len(),
            (sqlite.searched + postgres.searched) / (1024 * 1024),
            sqlite.places.join(", "),
            postgres.places.join(", "),
        ),
    );
    figure(
        "secrets/rows re-encrypted by keys rotate",
        format!(
            "SQLite {}, PostgreSQL {}",
            sqlite.reencrypted, postgres.reencrypted
        ),
    );
    figure(
        "secrets/ciphertexts left under the old key (pg_dump)",
        postgres.left_under_old_key.unwrap_or_default(),
    );
    figure(
        "secrets/destinations readable with only the old key",
        format!(
            "SQLite {} of {}, PostgreSQL {} of {}",
            sqlite.readable_with_old_key,
            sqlite.destinations,
            postgres.readable_with_old_key,
            postgres.destinations
        ),
    );
    let mut broken = Vec::new();
    for (backend, found) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        if !found.hits.is_empty() {
            broken.push(format!(
                "{backend}: plain-text credentials found: {:?}",
                found.hits
            ));
        }
        // Two destinations' credentials and the encrypted variable.
        if found.reencrypted < 3 {
            broken.push(format!(
                "{backend}: keys rotate re-encrypted {} secrets, expected at least 3",
                found.reencrypted
            ));
        }
        if found.readable_with_old_key > 0 {
            broken.push(format!(
                "{backend}: {} destinations still readable with only the old key",
                found.readable_with_old_key
            ));
        }
    }
    if postgres.left_under_old_key.unwrap_or_default() > 0 {
        broken.push("PostgreSQL: ciphertexts left under the old key after rotation".into());
    }
    if !broken.is_empty() {
        bail!("{}", broken.join("; "));
    }
    Ok(())
}

/// Debug logging of everything (SQL statements, HTTP, plugins).
fn logging(config: ServerConfig) -> ServerConfig {
    config.env("OUTRIDER_LOG", "debug")
}

/// The whole story on one backend: create, use, search, rotate, try the keys.
fn backend(
    rt: &tokio::runtime::Runtime,
    config: &ServerConfig,
    data_dir: &Path,
    db: Option<&PostgresDatabase>,
) -> Result<Findings> {
    // A sink of its own: what it receives is this backend's.
    let sink = &rt.block_on(Sink::start())?;
    let server = Server::start(config)?;
    let api = Api::new(server.addr());
    let destinations = rt.block_on(create_and_use(&api, sink))?;
    let mut findings = Findings {
        hits: Vec::new(),
        searched: 0,
        places: Vec::new(),
        reencrypted: 0,
        left_under_old_key: None,
        readable_with_old_key: 0,
        destinations: destinations.len(),
    };
    // While it runs (the WAL holds the latest pages), then after a clean stop.
    search_store(&mut findings, server.data_dir(), db, "running")?;
    server.stop();
    search_store(&mut findings, data_dir, db, "stopped")?;

    let rotating = config.clone().env(
        "OUTRIDER_ENCRYPTION_KEY",
        format!("{NEW_KEY},{ENCRYPTION_KEY}"),
    );
    let (ok, out) = rotating.cli(data_dir, &["keys", "rotate"])?;
    if !ok {
        bail!("outrider keys rotate failed:\n{out}");
    }
    findings.reencrypted = out
        .split("re-encrypted ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no count in the output of keys rotate:\n{out}"))?;
    search(&mut findings, "keys rotate output", out.as_bytes());

    // Only the new key: everything decrypts, deliveries are signed as before.
    let server = Server::start(&config.clone().env("OUTRIDER_ENCRYPTION_KEY", NEW_KEY))?;
    let api = Api::new(server.addr());
    let webhook = rt.block_on(api.ok(
        Method::GET,
        &format!("/api/v1/tenants/secrets/destinations/{}", destinations[0]),
        None,
    ))?;
    if webhook["credentials"]["secret"] != WEBHOOK_SECRET {
        bail!(
            "with only the new key the webhook secret reads back as {}",
            webhook["credentials"]
        );
    }
    rt.block_on(publish(&api, "after-rotation"))?;
    wait_for(sink, "after-rotation")?;
    server.stop();
    if let Some(db) = db {
        let dump = db.dump()?;
        findings.left_under_old_key = Some(occurrences(&dump, b"enc:v1:k1:"));
    }

    // Only the old key: nothing decrypts any more.
    let server = Server::start(config)?;
    let api = Api::new(server.addr());
    for id in &destinations {
        let (status, _) = rt.block_on(api.call(
            Method::GET,
            &format!("/api/v1/tenants/secrets/destinations/{id}"),
            None,
        ))?;
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            findings.readable_with_old_key += 1;
        }
    }
    server.stop();
    // Every log line of every run, the rotation and the failed reads included.
    let log = std::fs::read(data_dir.join("server.log")).unwrap_or_default();
    search(&mut findings, "server log (debug)", &log);
    findings.places.sort();
    findings.places.dedup();
    Ok(findings)
}

/// A tenant with a webhook and an `aws_sqs` destination (both to the sink) and an
/// encrypted environment variable; an event published and delivered. Returns the
/// destination ids, webhook first.
async fn create_and_use(api: &Api, sink: &Sink) -> Result<Vec<String>> {
    let webhook = api
        .webhook(
            "secrets",
            &sink.url("/hook"),
            json!({ "credentials": { "secret": WEBHOOK_SECRET, "previous_secret": PREVIOUS_SECRET } }),
        )
        .await?;
    let sqs = api
        .ok(
            Method::POST,
            "/api/v1/tenants/secrets/destinations",
            Some(&json!({
                "type": "aws_sqs",
                "topics": "*",
                "config": {
                    "queue_url": sink.url("/000000000000/proof"),
                    "endpoint": sink.url(""),
                    "region": "us-east-1",
                },
                "credentials": { "key": AWS_KEY, "secret": AWS_SECRET, "session": AWS_SESSION },
            })),
        )
        .await?["id"]
        .as_str()
        .context("aws_sqs destination without id")?
        .to_string();
    api.ok(
        Method::POST,
        "/api/v1/environment-variables",
        Some(&json!({ "name": "PROOF_SECRET", "value": VARIABLE_SECRET, "encrypted": true })),
    )
    .await?;
    // Reads too, so that every code path that touches the secrets has logged.
    api.ok(Method::GET, "/api/v1/tenants/secrets/destinations", None)
        .await?;
    api.ok(Method::GET, "/api/v1/environment-variables", None)
        .await?;
    publish(api, "before-rotation").await?;
    wait_for(sink, "before-rotation")?;
    // The aws_sqs delivery (to the endpoint, `/`) signs its request with the secret key:
    // it has run too.
    let signed = || sink.received().iter().filter(|r| r.path != "/hook").count();
    wait_until(
        "the aws_sqs delivery",
        Duration::from_secs(30),
        signed,
        || signed() > 0,
    )?;
    Ok(vec![webhook, sqs])
}

async fn publish(api: &Api, id: &str) -> Result<()> {
    api.ok(
        Method::POST,
        "/api/v1/publish",
        Some(&json!({ "id": id, "tenant_id": "secrets", "topic": "proof.secret", "data": { "x": 1 } })),
    )
    .await
    .map(drop)
}

/// Waits until the sink has had event `id` (the webhook delivery).
fn wait_for(sink: &Sink, id: &str) -> Result<()> {
    let seen = || {
        sink.received()
            .iter()
            .filter(|r| r.event_id == id && r.delivered())
            .count()
    };
    wait_until(
        &format!("{id} delivered"),
        Duration::from_secs(30),
        seen,
        || seen() > 0,
    )
}

/// The store's bytes: the SQLite files of the data directory, or a `pg_dump`.
fn search_store(
    findings: &mut Findings,
    data_dir: &Path,
    db: Option<&PostgresDatabase>,
    when: &str,
) -> Result<()> {
    if let Some(db) = db {
        let dump = db.dump()?;
        search(findings, &format!("pg_dump ({when})"), &dump);
        return Ok(());
    }
    let mut found_db = false;
    for entry in std::fs::read_dir(data_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if path.is_file() && name != "server.log" {
            found_db |= name.ends_with(".db");
            let bytes = std::fs::read(&path)?;
            search(findings, &format!("{name} ({when})"), &bytes);
        }
    }
    if !found_db {
        bail!("no SQLite database in {}", data_dir.display());
    }
    Ok(())
}

/// Looks for every secret in `bytes`, as text, hex and base64.
fn search(findings: &mut Findings, place: &str, bytes: &[u8]) {
    findings.searched += bytes.len();
    findings
        .places
        .push(place.split(" (").next().unwrap_or(place).to_string());
    for secret in SECRETS {
        if encodings(secret)
            .iter()
            .any(|needle| occurrences(bytes, needle.as_bytes()) > 0)
        {
            findings.hits.push((place.to_string(), secret));
        }
    }
}

/// `secret` as text, lower- and upper-case hex, and base64 at each of the three byte
/// alignments it could have inside a longer encoded value (the full 3-byte groups only).
fn encodings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut out = vec![
        secret.to_string(),
        hex::encode(bytes),
        hex::encode_upper(bytes),
    ];
    for shift in 0..3 {
        let rest = &bytes[shift..];
        let whole = &rest[..rest.len() / 3 * 3];
        out.push(base64::engine::general_purpose::STANDARD.encode(whole));
        out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(whole));
    }
    out
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_a_secret_is_found_at_any_offset() {
        let secret = "proof-secret-value-123";
        for prefix in ["", "a", "ab", "abc", "{\"key\":\""] {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{secret}\"}}"));
            assert!(
                encodings(secret)
                    .iter()
                    .any(|n| occurrences(encoded.as_bytes(), n.as_bytes()) > 0),
                "prefix {prefix:?}: {encoded}"
            );
        }
    }
}
