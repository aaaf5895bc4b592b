//! Transformers end to end: the built-in transformer prototypes run inline, a
//! destination's transformer chain rewrites, splits and drops events before delivery,
//! and the JavaScript transformer's runaway loops and allocation bombs are stopped by the
//! host's limits without harming other deliveries.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, TestReceiver, TestServer};

async fn run(
    server: &TestServer,
    prototype: &str,
    parameters: Value,
    input: Value,
) -> (u16, Value) {
    let res = server
        .admin(Method::POST, "/api/v1/transformers/run")
        .json(&json!({"prototype": prototype, "parameters": parameters, "input": input}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn create_transformer(
    server: &TestServer,
    identifier: &str,
    prototype: &str,
    parameters: Value,
) {
    let res = server
        .admin(Method::POST, "/api/v1/configurations/transformer")
        .json(&json!({
            "identifier": identifier, "name": identifier,
            "object": {"prototype": prototype, "parameters": parameters},
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
}

async fn create_destination(
    server: &TestServer,
    sink: &TestReceiver,
    path: &str,
    transformers: Value,
) -> String {
    let res = server
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({
            "type": "webhook", "topics": "*",
            "config": {"url": sink.url(path)},
            "transformers": transformers,
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn publish(server: &TestServer, data: Value) {
    let res = server
        .admin(Method::POST, "/api/v1/publish")
        .json(&json!({"tenant_id": "acme", "topic": "order.paid", "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

async fn attempts(server: &TestServer, destination: &str) -> Vec<Value> {
    let page = server
        .get_json(&format!(
            "/api/v1/attempts?tenant_id=acme&destination_id={destination}"
        ))
        .await;
    page["models"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn builtin_transformers_run_inline() {
    let server = TestServer::builder().start().await;
    let order = json!({"order": {"id": 42, "total": 150}, "items": [{"sku": "A"}, {"sku": "B"}], "type": "paid"});

    let (status, out) = run(
        &server,
        "json_map",
        json!({"mapping": {"id": "order.id"}}),
        order.clone(),
    )
    .await;
    assert_eq!(
        (status, &out["outputs"]),
        (200, &json!([{"id": 42}])),
        "{out}"
    );
    assert!(out["duration_ms"].as_f64().is_some(), "{out}");

    let (_, out) = run(
        &server,
        "value_template",
        json!({"template": {"text": "Order {{order.id}}", "first": "{{items.0}}"}}),
        order.clone(),
    )
    .await;
    assert_eq!(
        out["outputs"],
        json!([{"text": "Order 42", "first": {"sku": "A"}}]),
        "{out}"
    );

    let keep = json!({"conditions": [{"path": "order.total", "op": "gte", "value": 100}]});
    let (_, out) = run(&server, "filter", keep, order.clone()).await;
    assert_eq!(out["outputs"], json!([order.clone()]), "{out}");
    let drop = json!({"conditions": [{"path": "type", "op": "eq", "value": "refunded"}]});
    let (_, out) = run(&server, "filter", drop, order.clone()).await;
    assert_eq!(
        (&out["ok"], &out["outputs"]),
        (&json!(true), &json!([])),
        "{out}"
    );

    let (_, out) = run(
        &server,
        "jmespath",
        json!({"expression": "items[].sku", "split_arrays": true}),
        order.clone(),
    )
    .await;
    assert_eq!(out["outputs"], json!(["A", "B"]), "{out}");

    let code = "function transform(e) { return {id: e.order.id, doubled: e.order.total * 2, n: e.items.length}; }";
    let (_, out) = run(&server, "javascript", json!({"code": code}), order.clone()).await;
    assert_eq!(
        out["outputs"],
        json!([{"id": 42, "doubled": 300, "n": 2}]),
        "{out}"
    );

    let (_, out) = run(
        &server,
        "javascript",
        json!({"code": "function transform(e) { throw new Error('no order here'); }"}),
        order.clone(),
    )
    .await;
    assert_eq!(out["ok"], false, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("no order here"),
        "{out}"
    );

    // Bad input names the field.
    let (status, out) = run(
        &server,
        "jmespath",
        json!({"expression": "items[?"}),
        order.clone(),
    )
    .await;
    assert_eq!(status, 422, "{out}");
    assert!(
        out["message"].as_str().unwrap().contains("expression"),
        "{out}"
    );
    let (status, out) = run(
        &server,
        "javascript",
        json!({"code": "const x = 1;"}),
        order.clone(),
    )
    .await;
    assert_eq!(status, 422, "{out}");
    assert!(out["message"].as_str().unwrap().contains("code"), "{out}");
    let (status, out) = run(&server, "no_such_thing", json!({}), order).await;
    assert_eq!(status, 422, "{out}");
    assert!(
        out["message"].as_str().unwrap().contains("prototype"),
        "{out}"
    );
}

#[tokio::test]
async fn a_destination_chain_rewrites_splits_and_drops_events() {
    let server = TestServer::builder().allow_loopback().start().await;
    let sink = TestReceiver::start().await;
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    create_transformer(
        &server,
        "only-paid",
        "filter",
        json!({"conditions": [{"path": "type", "op": "eq", "value": "paid"}]}),
    )
    .await;
    create_transformer(
        &server,
        "per-item",
        "javascript",
        json!({
            "code": "function transform(e) { return e.items.map(sku => ({order: e.id, sku})); }",
            "split_arrays": true,
        }),
    )
    .await;

    // Unknown transformers are refused, naming the list entry.
    let res = server
        .admin(Method::POST, "/api/v1/tenants/acme/destinations")
        .json(&json!({"type": "webhook", "topics": "*", "config": {"url": sink.url("/x")}, "transformers": ["only-paid", "nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"][0]["field"], "transformers[1]", "{body}");

    let dest = create_destination(&server, &sink, "/chain", json!(["only-paid", "per-item"])).await;
    let view = server
        .get_json(&format!("/api/v1/tenants/acme/destinations/{dest}"))
        .await;
    assert_eq!(view["transformers"], json!(["only-paid", "per-item"]));

    publish(
        &server,
        json!({"id": 1, "type": "paid", "items": ["A", "B"]}),
    )
    .await;
    publish(
        &server,
        json!({"id": 2, "type": "refunded", "items": ["C"]}),
    )
    .await;
    let received = eventually("two split deliveries", Duration::from_secs(20), || async {
        let r = sink.requests();
        (r.len() >= 2).then_some(r)
    })
    .await;
    let mut bodies: Vec<Value> = received.iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["sku"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        bodies,
        [
            json!({"order": 1, "sku": "A"}),
            json!({"order": 1, "sku": "B"})
        ]
    );

    // The refunded event was dropped by the filter: a skipped delivery, not a failure.
    let skipped = eventually("the skipped attempt", Duration::from_secs(20), || async {
        attempts(&server, &dest)
            .await
            .into_iter()
            .find(|a| a["code"] == "skipped")
    })
    .await;
    assert_eq!(skipped["status"], "success", "{skipped}");
    assert!(
        skipped["response_data"]["error"]
            .as_str()
            .unwrap()
            .contains("only-paid"),
        "{skipped}"
    );
    assert_eq!(
        sink.requests().len(),
        2,
        "nothing was delivered for the dropped event"
    );

    // A used transformer cannot be deleted; the answer names its users.
    let res = server
        .admin(
            Method::DELETE,
            "/api/v1/configurations/transformer/per-item",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["data"][0]["specification"]["id"],
        dest.as_str(),
        "{body}"
    );
    let usages = server
        .get_json("/api/v1/configurations/transformer/per-item/usages")
        .await;
    assert_eq!(
        usages["usages"][0]["propertyPath"], "transformers[1]",
        "{usages}"
    );
    let dependants = server
        .get_json("/api/v1/configurations/transformer/per-item/dependants")
        .await;
    assert_eq!(
        dependants["dependants"][0]["identifier"],
        dest.as_str(),
        "{dependants}"
    );
    let relations = server
        .get_json("/api/v1/configurations/transformer/per-item/relations?direction=up")
        .await;
    let edge = &relations["nodes"][0]["relationships"][0];
    assert_eq!(
        (
            edge["relation"].as_str(),
            edge["node"]["identifier"].as_str()
        ),
        (Some("used-by"), Some(dest.as_str())),
        "{relations}"
    );

    // Once the destination stops using it, it can go.
    let res = server
        .admin(
            Method::PATCH,
            &format!("/api/v1/tenants/acme/destinations/{dest}"),
        )
        .json(&json!({"transformers": ["only-paid"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = server
        .admin(
            Method::DELETE,
            "/api/v1/configurations/transformer/per-item",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

const RUNAWAY: &str = "function transform(e) { while (true) {} }";
const ALLOCATION_BOMB: &str =
    "function transform(e) { let s = 'xxxxxxxxxxxxxxxx'; const keep = []; while (true) { s = s + s; keep.push(s); } }";

#[tokio::test]
// The guard is held across the whole test on purpose (this runtime is current-thread; the
// other holders are plugin builds on their own test threads).
#[allow(clippy::await_holding_lock)]
async fn runaway_javascript_is_stopped_without_harming_other_deliveries() {
    // After the runaway call, the plugin's next calls start on the slow lane (the 30 s
    // rule): the allocation bomb must get CPU there to reach its memory limit before the
    // deadline, which it cannot beside a scaffold build.
    let _cpu = crate::harness::exclusive_cpu();
    let server = TestServer::builder()
        .allow_loopback()
        .env("OUTRIDER_PLUGIN_TIMEOUT_MS", "1500")
        .env("OUTRIDER_PLUGIN_MEMORY_MB", "64")
        .start()
        .await;

    let (status, out) = run(&server, "javascript", json!({"code": RUNAWAY}), json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (&out["ok"], &out["error_kind"]),
        (&json!(false), &json!("timeout")),
        "{out}"
    );
    let (_, out) = run(
        &server,
        "javascript",
        json!({"code": ALLOCATION_BOMB}),
        json!({}),
    )
    .await;
    assert_eq!(
        (&out["ok"], &out["error_kind"]),
        (&json!(false), &json!("memory")),
        "{out}"
    );

    // Delivering through a runaway chain fails those attempts only; a healthy destination
    // of the same tenant keeps receiving every event meanwhile.
    let sink = TestReceiver::start().await;
    server
        .admin(Method::PUT, "/api/v1/tenants/acme")
        .send()
        .await
        .unwrap();
    create_transformer(&server, "runaway", "javascript", json!({"code": RUNAWAY})).await;
    create_transformer(
        &server,
        "bomb",
        "javascript",
        json!({"code": ALLOCATION_BOMB}),
    )
    .await;
    let looping = create_destination(&server, &sink, "/runaway", json!(["runaway"])).await;
    let bombing = create_destination(&server, &sink, "/bomb", json!(["bomb"])).await;
    create_destination(&server, &sink, "/healthy", Value::Null).await;
    for n in 0..5 {
        publish(&server, json!({"n": n})).await;
    }
    eventually(
        "five healthy deliveries",
        Duration::from_secs(30),
        || async {
            let healthy = sink
                .requests()
                .iter()
                .filter(|r| r.uri == "/healthy")
                .count();
            (healthy == 5).then_some(())
        },
    )
    .await;
    for (dest, kind) in [(&looping, "timeout"), (&bombing, "memory")] {
        let failed = eventually("a stopped attempt", Duration::from_secs(30), || async {
            attempts(&server, dest)
                .await
                .into_iter()
                .find(|a| a["code"] == kind)
        })
        .await;
        assert_eq!(failed["status"], "failed", "{failed}");
    }
    assert!(sink.requests().iter().all(|r| r.uri == "/healthy"));

    // The engine is not quarantined for a script's faults: other scripts still run.
    let (_, out) = run(
        &server,
        "javascript",
        json!({"code": "function transform(e) { return e; }"}),
        json!({"ok": 1}),
    )
    .await;
    assert_eq!(out["outputs"], json!([{"ok": 1}]), "{out}");
    assert!(server.get_json("/healthz").await.is_object());
}

#[tokio::test]
async fn prototype_self_tests_report_totals() {
    let server = TestServer::builder().start().await;
    let res = server
        .admin(
            Method::POST,
            "/api/v1/prototypes/test?type=transformer&max-tests=-1&show-succeeded=true",
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalFailed"], 0, "{body}");
    let succeeded = body["succeeded"].as_array().unwrap();
    assert_eq!(body["totalSucceeded"], succeeded.len());
    for prototype in [
        "json_map",
        "value_template",
        "filter",
        "jmespath",
        "javascript",
    ] {
        assert!(
            succeeded.iter().any(|t| t["identifier"] == prototype),
            "{prototype}: {body}"
        );
    }
    let limited = server
        .admin(
            Method::POST,
            "/api/v1/prototypes/test?type=transformer&identifier=json_*&max-tests=1",
        )
        .send()
        .await
        .unwrap();
    let limited: Value = limited.json().await.unwrap();
    assert_eq!(limited["totalSucceeded"], 1, "{limited}");
    assert_eq!(
        limited["succeeded"],
        json!([]),
        "succeeded tests are listed only on request"
    );
}
