//! `outrider net check`: the address guard's verdicts without connecting, and that they
//! match what the server does with a delivery to the same URL.

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{binary_path, json_body, TestReceiver, TestServer};

/// `outrider net check --json ARGS` without OUTRIDER_ALLOW_NETWORKS from the environment
/// (unless `allow` gives one); (success, one JSON value per line, stderr).
fn net_check(args: &[&str], allow: Option<&str>) -> (bool, Vec<Value>, String) {
    let mut command = Command::new(binary_path());
    command
        .args(["net", "check", "--json"])
        .args(args)
        .env_remove("OUTRIDER_ALLOW_NETWORKS");
    if let Some(allow) = allow {
        command.env("OUTRIDER_ALLOW_NETWORKS", allow);
    }
    let output = command.output().expect("run outrider net check");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), lines, stderr)
}

fn verdict(line: &Value) -> (&str, &str) {
    (
        line["verdict"].as_str().unwrap_or_default(),
        line["class"].as_str().unwrap_or_default(),
    )
}

#[test]
fn blocked_forms_are_refused_by_class_without_dns() {
    let (ok, lines, stderr) = net_check(
        &[
            "--offline",
            "--resolve",
            "intranet.test=10.1.2.3",
            "--resolve",
            "hooks.test=93.184.216.34,127.0.0.1",
            "--redirect",
            "http://hooks.test/in",
            "http://169.254.169.254/latest/",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://metadata/computeMetadata/v1/",
            "http://intranet.test/",
            "http://unknown.test/",
            "http://93.184.216.34/",
            "https://hooks.test/in",
        ],
        None,
    );
    assert!(ok, "{stderr}");
    let got: Vec<(&str, &str)> = lines.iter().map(verdict).collect();
    assert_eq!(
        got,
        [
            ("refused", "loopback"),
            ("refused", "loopback"),
            ("refused", "metadata"),
            ("refused", "metadata-name"),
            ("refused", "private"),
            ("unresolved", ""),
            ("allowed", ""),
            ("allowed", ""),
            ("refused", "network-access"),
        ],
        "{lines:#?}"
    );
    // A name with a refused and an allowed address keeps only the allowed one.
    assert_eq!(lines[7]["addresses"], json!(["93.184.216.34:443"]));
    assert_eq!(lines[8]["redirect_from"], "http://hooks.test/in");
    assert!(
        lines[4]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("10.1.2.3"),
        "{}",
        lines[4]
    );
}

#[test]
fn the_allowance_comes_from_the_environment_or_the_flag() {
    let urls = ["http://127.0.0.1:9/", "http://127.0.0.2:9/"];
    let (_, from_env, _) = net_check(&urls, Some("127.0.0.1/32"));
    let mut args = vec!["--allow", "127.0.0.1/32"];
    args.extend(urls);
    let (_, from_flag, _) = net_check(&args, None);
    for lines in [from_env, from_flag] {
        let got: Vec<(&str, &str)> = lines.iter().map(verdict).collect();
        assert_eq!(
            got,
            [("allowed", ""), ("refused", "loopback")],
            "{lines:#?}"
        );
    }
}

#[test]
fn bad_arguments_name_the_flag() {
    let (ok, _, stderr) = net_check(&["--resolve", "nonsense", "http://a.test/"], None);
    assert!(!ok);
    assert!(stderr.contains("--resolve"), "{stderr}");
    let (ok, _, stderr) = net_check(&["--allow", "10.0.0.0/33", "http://a.test/"], None);
    assert!(!ok);
    assert!(stderr.contains("--allow"), "{stderr}");
    let (ok, _, stderr) = net_check(&[], None);
    assert!(!ok);
    assert!(stderr.contains("URL"), "{stderr}");
}

/// What net check says for a URL is what the server does with a delivery to it.
#[tokio::test]
async fn verdicts_match_the_servers_deliveries() {
    let sink = TestReceiver::start().await;
    let url = sink.url("/hook");
    let delivery = json!({
        "config": { "url": url },
        "credentials": { "secret": "s3cret-signing-key" },
        "event": { "id": "evt_1", "topic": "net.check", "data": { "n": 1 } }
    });
    for (allow, expected) in [("", "refused"), ("127.0.0.1/32", "allowed")] {
        let (_, lines, stderr) = net_check(&[url.as_str()], Some(allow));
        assert_eq!(lines[0]["verdict"], expected, "{stderr}");
        let server = TestServer::builder()
            .env("OUTRIDER_ALLOW_NETWORKS", allow)
            .start()
            .await;
        let result = json_body(
            server
                .admin(
                    Method::POST,
                    "/api/v1/prototypes/destination/webhook/deliver",
                )
                .json(&delivery),
        )
        .await;
        assert_eq!(result["ok"], expected == "allowed", "{allow}: {result}");
    }
    // Only the allowed delivery reached the sink.
    assert_eq!(sink.connections(), 1);
}
