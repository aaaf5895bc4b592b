//! proof/isolation: a tenant's JWT reaches nothing of another tenant.
//!
//! Two tenants, A and B, each with a webhook destination (on its own sink), two
//! delivered events, their attempts, a schedule and tasks. Every operation of the API
//! (from `GET /api/v1/openapi.json`, so a new route is covered without touching this
//! file) is called with B's JWT against A's resources: A's ids in the path, B's tenant
//! with A's other ids, `?tenant_id=` and friends pointing at A, bodies naming A's tenant,
//! destination and event. A call succeeds, which breaks the promise, when it answers 2xx
//! for something of A's (A's id in the path or A's tenant in the body), or when any
//! answer carries something of A's that B did not send (an id, or the content of A's
//! events and destination). Afterwards A's resources must be as they were and A's sink
//! must have received nothing more. So that the check cannot pass by everything failing,
//! every tenant-scoped read is also made with B's JWT on B's own resources and must
//! succeed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::load::Api;
use super::sink::Sink;
use super::{figure, on_server, Ctx};
use crate::bench::http::Conn;
use crate::server::Server;

/// One operation of the API.
#[derive(Clone, Debug)]
struct Operation {
    method: Method,
    /// Path under the server root, e.g. `/api/v1/tenants/{tenant_id}/events`.
    path: String,
    /// Whether a tenant JWT may use it on its own tenant.
    tenant_scoped: bool,
}

/// What one tenant owns, and what only it could know.
#[derive(Clone, Debug)]
struct Tenant {
    id: String,
    token: String,
    destination: String,
    events: Vec<String>,
    attempt: String,
    schedule: String,
    task: String,
    /// Text inside its events' data and its destination URL, never sent by the other.
    marker: String,
}

impl Tenant {
    /// Identifiers of this tenant's resources (what must not show up for the other).
    fn ids(&self) -> Vec<&str> {
        let mut ids = vec![
            self.id.as_str(),
            &self.destination,
            &self.attempt,
            &self.schedule,
            &self.task,
        ];
        ids.extend(self.events.iter().map(String::as_str));
        ids
    }
}

pub fn run(ctx: &Ctx) -> Result<()> {
    on_server("isolation", &ctx.server(), scenario)
}

async fn scenario(server: &Server) -> Result<()> {
    let api = Api::new(server.addr());
    let (a_sink, b_sink) = (Sink::start().await?, Sink::start().await?);
    let nonce = std::process::id();
    let a = setup(&api, &a_sink, &format!("iso-a-{nonce}"), "alpha-7f3c").await?;
    let b = setup(&api, &b_sink, &format!("iso-b-{nonce}"), "bravo-91d2").await?;
    let a_before = snapshot(&api, &a).await?;
    let a_requests_before = a_sink.received().len();

    let operations = operations(server).await?;
    let mut calls = 0usize;
    let mut breaches = Vec::new();
    // Reads first, then writes, deletes last, so that a broken write cannot hide a
    // broken read.
    let mut ordered = operations.clone();
    ordered.sort_by_key(|op| match op.method {
        Method::GET => 0,
        Method::DELETE => 2,
        _ => 1,
    });
    for op in &ordered {
        for call in attacks(op, &a, &b) {
            calls += 1;
            let (status, body) = send(server, &b.token, &call).await?;
            if let Some(why) = breach(&call, status, &body, &a) {
                breaches.push(format!("{} {} -> {status}: {why}", call.method, call.path));
            }
        }
    }
    // Give anything a write may have queued time to reach A's sink.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_after = snapshot(&api, &a).await?;
    if a_after != a_before {
        breaches.push(format!(
            "A's resources changed:\n    before {a_before}\n    after  {a_after}"
        ));
    }
    let a_requests_after = a_sink.received().len();
    if a_requests_after != a_requests_before {
        breaches.push(format!(
            "A's sink received {} more requests during B's calls",
            a_requests_after.saturating_sub(a_requests_before)
        ));
    }

    // B on its own resources: every tenant-scoped read works.
    let mut own_calls = 0usize;
    let mut own_failures = Vec::new();
    for op in operations
        .iter()
        .filter(|op| op.tenant_scoped && op.method == Method::GET)
    {
        let path = fill(&op.path, &b, &b, Fill::Own);
        own_calls += 1;
        let call = Call {
            method: Method::GET,
            path,
            body: None,
            targets_a: false,
        };
        let (status, body) = send(server, &b.token, &call).await?;
        if !status.is_success() {
            own_failures.push(format!("GET {} -> {status}: {}", call.path, text(&body)));
        } else if let Some(why) = leak(&call, &body, &a) {
            breaches.push(format!("GET {} (B's own) -> {status}: {why}", call.path));
        }
    }

    figure(
        "isolation/operations in GET /api/v1/openapi.json",
        operations.len(),
    );
    figure("isolation/calls with B's JWT against A", calls);
    figure("isolation/successes", breaches.len());
    figure(
        "isolation/B's own tenant-scoped reads that succeeded",
        format!("{} of {own_calls}", own_calls - own_failures.len()),
    );
    if !breaches.is_empty() {
        bail!(
            "tenant B reached tenant A's data:\n  {}",
            breaches.join("\n  ")
        );
    }
    if own_calls == 0 || !own_failures.is_empty() {
        bail!(
            "tenant B's own reads failed (the check would pass by everything failing):\n  {}",
            own_failures.join("\n  ")
        );
    }
    Ok(())
}

/// A tenant with a destination on its own `sink`, two delivered events, a schedule, and
/// its ids.
async fn setup(api: &Api, sink: &Sink, id: &str, marker: &str) -> Result<Tenant> {
    let destination = api
        .webhook(id, &sink.url(&format!("/{marker}/hook")), json!({}))
        .await?;
    let mut events = Vec::new();
    for n in 1..=2 {
        let event = format!("{id}-evt-{n}");
        api.ok(
            Method::POST,
            "/api/v1/publish",
            Some(&json!({
                "id": event,
                "tenant_id": id,
                "topic": "iso.tick",
                "data": {"marker": marker, "n": n},
            })),
        )
        .await?;
        events.push(event);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events.iter().all(|e| {
        sink.received()
            .iter()
            .any(|r| &r.event_id == e && r.delivered())
    }) {
        if Instant::now() > deadline {
            bail!("{id}: its events were not delivered within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Attempts are written in batches after the delivery: wait for one.
    let attempts_path = format!("/api/v1/tenants/{id}/destinations/{destination}/attempts");
    let attempt = loop {
        let attempts = api.ok(Method::GET, &attempts_path, None).await?;
        match first_id(&attempts, "attempt") {
            Ok(attempt) => break attempt,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let schedule = api
        .ok(
            Method::POST,
            "/api/v1/schedules",
            Some(&json!({
                "tenant_id": id,
                "name": format!("{marker} schedule"),
                "run_at": "2099-01-01T00:00:00Z",
                "topic": "iso.scheduled",
                "data": {"marker": marker},
            })),
        )
        .await?["id"]
        .as_str()
        .context("schedule id")?
        .to_string();
    let tasks = api
        .ok(Method::GET, &format!("/api/v1/tasks?tenant_id={id}"), None)
        .await?;
    let task = first_id(&tasks, "task")?;
    let token = api
        .ok(Method::GET, &format!("/api/v1/tenants/{id}/token"), None)
        .await?["token"]
        .as_str()
        .context("tenant token")?
        .to_string();
    Ok(Tenant {
        id: id.to_string(),
        token,
        destination,
        events,
        attempt,
        schedule,
        task,
        marker: marker.to_string(),
    })
}

/// The `id` of the first model of a list answer (`models`, `data` or a bare array).
fn first_id(list: &Value, what: &str) -> Result<String> {
    let models = list
        .get("models")
        .or_else(|| list.get("data"))
        .unwrap_or(list);
    models
        .as_array()
        .and_then(|m| m.first())
        .and_then(|m| m["id"].as_str())
        .map(str::to_string)
        .with_context(|| format!("no {what} in {list}"))
}

/// What an admin sees of A: tenant, destination, events, schedule (compared before and
/// after B's calls).
async fn snapshot(api: &Api, a: &Tenant) -> Result<Value> {
    let tenant = api
        .ok(Method::GET, &format!("/api/v1/tenants/{}", a.id), None)
        .await?;
    let mut destination = api
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/destinations/{}", a.id, a.destination),
            None,
        )
        .await?;
    // Fields that change without anyone touching the destination.
    for volatile in ["updated_at", "last_delivery_at"] {
        if let Some(d) = destination.as_object_mut() {
            d.remove(volatile);
        }
    }
    let events = api
        .all(&format!("/api/v1/tenants/{}/events", a.id))
        .await?
        .iter()
        .map(|e| e["id"].clone())
        .collect::<Vec<_>>();
    let schedule = api
        .ok(
            Method::GET,
            &format!("/api/v1/schedules/{}", a.schedule),
            None,
        )
        .await?;
    Ok(json!({
        "tenant": tenant["id"],
        "destination": destination,
        "events": events,
        "schedule": {"enabled": schedule["enabled"], "topic": schedule["topic"], "data": schedule["data"]},
    }))
}

/// The operations to call: every one in the OpenAPI document.
async fn operations(server: &Server) -> Result<Vec<Operation>> {
    let call = Call {
        method: Method::GET,
        path: "/api/v1/openapi.json".into(),
        body: None,
        targets_a: false,
    };
    let (status, body) = send(server, "", &call).await?;
    if status != StatusCode::OK {
        bail!(
            "GET /api/v1/openapi.json answered {status}: {}",
            text(&body)
        );
    }
    let document: Value = serde_json::from_slice(&body).context("parsing openapi.json")?;
    let ops = from_openapi(&document);
    if ops.is_empty() {
        bail!("openapi.json lists no operations");
    }
    Ok(ops)
}

/// Every operation of an OpenAPI document; tenant-scoped when its security (or the
/// document's) names a scheme whose name mentions `tenant`.
fn from_openapi(document: &Value) -> Vec<Operation> {
    let names_tenant = |security: &Value| {
        security.as_array().is_some_and(|reqs| {
            reqs.iter().any(|r| {
                r.as_object()
                    .is_some_and(|o| o.keys().any(|k| k.contains("tenant")))
            })
        })
    };
    let default_tenant = names_tenant(&document["security"]);
    let mut ops = Vec::new();
    let Some(paths) = document["paths"].as_object() else {
        return ops;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                method,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let tenant_scoped = match operation.get("security") {
                Some(security) => names_tenant(security),
                None => default_tenant,
            };
            ops.push(Operation {
                method,
                path: path.clone(),
                tenant_scoped,
            });
        }
    }
    ops
}

/// How to fill a path's parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Everything the victim's.
    Victim,
    /// The caller's tenant, the victim's other ids.
    OwnTenant,
    /// The caller's tenant and destination, the victim's other ids.
    OwnTenantAndDestination,
    /// Everything the caller's own.
    Own,
}

/// `path` with `{param}`s filled from `victim` and `caller` as `how` says.
fn fill(path: &str, victim: &Tenant, caller: &Tenant, how: Fill) -> String {
    let pick = |own: bool| if own { caller } else { victim };
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + end];
        let value = match name {
            "tenant_id" => pick(how != Fill::Victim).id.clone(),
            "destination_id" => pick(matches!(how, Fill::OwnTenantAndDestination | Fill::Own))
                .destination
                .clone(),
            "event_id" => pick(how == Fill::Own).events[0].clone(),
            "attempt_id" => pick(how == Fill::Own).attempt.clone(),
            "schedule_id" => pick(how == Fill::Own).schedule.clone(),
            "task_id" => pick(how == Fill::Own).task.clone(),
            "type" | "kind" => "destination".to_string(),
            "id" if path.contains("/destination-types/") || path.contains("/prototypes/") => {
                "webhook".to_string()
            }
            _ => "isolation-probe".to_string(),
        };
        out.push_str(&value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    // The destination-types path names a type, not a kind.
    out.replace(
        "/destination-types/destination",
        "/destination-types/webhook",
    )
}

/// One request of B's.
#[derive(Clone, Debug)]
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Whether the request names something of A's in its path or as `tenant_id` in its
    /// body: a 2xx answer is then a breach by itself.
    targets_a: bool,
}

/// The requests B makes against `op`.
fn attacks(op: &Operation, a: &Tenant, b: &Tenant) -> Vec<Call> {
    let names_a = |path: &str| a.ids().iter().any(|id| path.contains(id));
    let mut paths = vec![fill(&op.path, a, b, Fill::Victim)];
    let params = op.path.matches('{').count();
    if op.path.contains("{tenant_id}") && params > 1 {
        paths.push(fill(&op.path, a, b, Fill::OwnTenant));
        if op.path.contains("{destination_id}") && params > 2 {
            paths.push(fill(&op.path, a, b, Fill::OwnTenantAndDestination));
        }
    }
    // Whether the path itself names something of A's (not a prototype or plugin id).
    let mut paths: Vec<(String, bool)> = paths
        .into_iter()
        .map(|p| {
            let mine = names_a(&p);
            (p, mine)
        })
        .collect();
    // Filters pointing at A on paths that do not name a tenant.
    if op.method == Method::GET && !op.path.contains("{tenant_id}") {
        let base = paths[0].0.clone();
        let join = if base.contains('?') { '&' } else { '?' };
        for query in [
            format!("tenant_id={}", a.id),
            format!("destination_id={}", a.destination),
            format!("event_id={}", a.events[0]),
        ] {
            paths.push((format!("{base}{join}{query}"), false));
        }
    }
    let bodies: Vec<Option<Value>> = match op.method {
        Method::GET | Method::DELETE => vec![None],
        _ => bodies(a, b),
    };
    let mut calls = Vec::new();
    for (path, in_path) in &paths {
        for body in &bodies {
            let in_body = body
                .as_ref()
                .is_some_and(|v| v["tenant_id"] == a.id.as_str());
            calls.push(Call {
                method: op.method.clone(),
                path: path.clone(),
                body: body.clone(),
                targets_a: *in_path || in_body,
            });
        }
    }
    calls
}

/// Request bodies naming A's resources: as A's tenant, and as B's own tenant with A's
/// destination and event (publish to A's destination, retry A's event, reuse A's event id).
fn bodies(a: &Tenant, b: &Tenant) -> Vec<Option<Value>> {
    let common = |tenant: &str| {
        json!({
            "tenant_id": tenant,
            "destination_id": a.destination,
            "event_id": a.events[0],
            "id": a.events[1],
            "ids": [a.task, a.schedule, a.attempt],
            "filter": {"tenant_id": a.id, "destination_id": a.destination},
            "topic": "iso.intrusion",
            "topics": "*",
            "type": "webhook",
            "config": {"url": format!("http://127.0.0.1:9/{}", b.marker)},
            "data": {"from": b.marker},
            "name": "isolation-probe",
            "run_at": "2099-01-01T00:00:00Z",
            "enabled": false,
        })
    };
    vec![Some(common(&a.id)), Some(common(&b.id))]
}

/// Why B's call counts as a success against A, if it does.
fn breach(call: &Call, status: StatusCode, body: &[u8], a: &Tenant) -> Option<String> {
    if call.targets_a && status.is_success() {
        return Some(format!("answered for A: {}", text(body)));
    }
    // A publish of B's with A's event id must not be taken as a duplicate of A's event.
    if status.is_success() && call.path.ends_with("/publish") {
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if answer["duplicate"] == true {
            return Some("B's event with A's event id was taken as a duplicate".into());
        }
    }
    leak(call, body, a)
}

/// Something of A's in `body` that B's request did not contain.
fn leak(call: &Call, body: &[u8], a: &Tenant) -> Option<String> {
    let answer = String::from_utf8_lossy(body);
    if answer.contains(&a.marker) {
        return Some(format!("the answer contains A's data: {}", text(body)));
    }
    let sent = format!(
        "{} {}",
        call.path,
        call.body.as_ref().map(Value::to_string).unwrap_or_default()
    );
    a.ids()
        .into_iter()
        .find(|id| answer.contains(id) && !sent.contains(id))
        .map(|id| format!("the answer contains A's id {id}: {}", text(body)))
}

fn text(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(body);
    if t.len() > 300 {
        format!("{}...", &t[..t.floor_char_boundary(300)])
    } else {
        t.into_owned()
    }
}

/// One request with `token` as bearer (none when empty).
async fn send(server: &Server, token: &str, call: &Call) -> Result<(StatusCode, Bytes)> {
    let auth = (!token.is_empty()).then(|| format!("Bearer {token}"));
    let mut conn = Conn::open(server.addr(), auth.as_deref()).await?;
    let body = call
        .body
        .as_ref()
        .map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    tokio::time::timeout(
        Duration::from_secs(30),
        conn.send(call.method.clone(), &call.path, body),
    )
    .await
    .with_context(|| format!("{} {}: no answer within 30 s", call.method, call.path))?
}
