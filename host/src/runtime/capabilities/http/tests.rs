//! Tests of outbound HTTP against loopback sinks started here. Only loopback addresses
//! are ever contacted; refusals are asserted to happen before any connection (the sink
//! counts accepted connections).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::runtime::manifest::NetworkAccess;

/// A loopback HTTP/1.1 server answering every request with `response` (raw text, with
/// `{port}` replaced by its own port), counting accepted connections.
struct Sink {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Sink {
    async fn start(ip: &str, response: impl Fn(u16) -> String + Send + Sync + 'static) -> Sink {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let response = Arc::new(response);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(end) = find(&seen, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if seen.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let _ = socket.write_all(response(port).as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Sink { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn capability(allow: &str, config: HttpConfig) -> HttpCapability {
    let policy = NetworkPolicy::new(NetworkPolicy::parse_allow_list(allow).unwrap());
    HttpCapability::new(policy, config).unwrap()
}

fn allow_urls(urls: &[&str]) -> HostAllowlist {
    let access = NetworkAccess {
        hosts: vec![],
        url_fields: (0..urls.len()).map(|i| format!("u{i}")).collect(),
        tcp: false,
    };
    let config: serde_json::Map<String, serde_json::Value> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| (format!("u{i}"), json!(u)))
        .collect();
    HostAllowlist::for_target(&access, &serde_json::Value::Object(config))
}

fn get(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: vec![],
        timeout: None,
        follow_redirects: true,
    }
}

const BUDGET: Duration = Duration::from_secs(5);

#[tokio::test]
async fn allowed_loopback_request_succeeds_and_caps_the_body() {
    let sink = Sink::start("127.0.0.1", |_| ok_response("hello, world")).await;
    let url = format!("http://127.0.0.1:{}/hook", sink.port);
    let http = capability(
        "127.0.0.0/8",
        HttpConfig {
            response_cap: 5,
            ..HttpConfig::default()
        },
    );
    let mut request = get(&url);
    request.method = "post".into();
    request.body = b"{}".to_vec();
    request.headers = vec![("content-type".into(), "application/json".into())];
    let response = http
        .send(request, &allow_urls(&[&url]), BUDGET)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert!(response.truncated);
    assert!(response
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/plain"));
    assert_eq!(sink.accepted(), 1);
}

#[tokio::test]
async fn loopback_literal_is_refused_without_an_allowance() {
    let sink = Sink::start("127.0.0.1", |_| ok_response("no")).await;
    let http = capability("", HttpConfig::default());
    for url in [
        format!("http://127.0.0.1:{}/", sink.port),
        // Decimal and octal spellings of 127.0.0.1 are normalised before the check.
        format!("http://2130706433:{}/", sink.port),
        format!("http://0177.0.0.1:{}/", sink.port),
        format!("http://[::ffff:127.0.0.1]:{}/", sink.port),
    ] {
        let err = http
            .send(get(&url), &allow_urls(&[&url]), BUDGET)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HttpFailure::Denied(r) if r.contains("loopback")),
            "{url}: {err}"
        );
    }
    assert_eq!(sink.accepted(), 0);
}

#[tokio::test]
async fn host_names_resolving_to_loopback_are_refused_before_connecting() {
    let sink = Sink::start("127.0.0.1", |_| ok_response("no")).await;
    let http = capability("", HttpConfig::default());
    let url = format!("http://localhost:{}/", sink.port);
    let err = http
        .send(get(&url), &allow_urls(&[&url]), BUDGET)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpFailure::Denied(r) if r.contains("localhost")),
        "{err}"
    );
    assert_eq!(sink.accepted(), 0);

    // With loopback allowed the same name works.
    let http = capability("127.0.0.0/8, ::1/128", HttpConfig::default());
    let _ = http.send(get(&url), &allow_urls(&[&url]), BUDGET).await;
}

#[tokio::test]
async fn hosts_outside_the_allowlist_are_refused() {
    let sink = Sink::start("127.0.0.1", |_| ok_response("no")).await;
    let http = capability("127.0.0.0/8", HttpConfig::default());
    let url = format!("http://127.0.0.1:{}/", sink.port);
    let other = format!("http://127.0.0.1:{}/", sink.port.wrapping_add(1).max(1));
    let err = http
        .send(get(&url), &allow_urls(&[&other]), BUDGET)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpFailure::Denied(r) if r.contains("network access")),
        "{err}"
    );
    let err = http
        .send(get(&url), &HostAllowlist::deny_all(), BUDGET)
        .await
        .unwrap_err();
    assert!(matches!(err, HttpFailure::Denied(_)));
    assert_eq!(sink.accepted(), 0);
}

#[tokio::test]
async fn redirects_are_rechecked_on_every_hop() {
    // 127.0.0.2 is loopback too, but only 127.0.0.1 is allowed: the redirect target is
    // refused by the address policy before anything connects to it.
    let target = Sink::start("127.0.0.2", |_| ok_response("reached")).await;
    let target_port = target.port;
    let start = Sink::start("127.0.0.1", move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.2:{target_port}/next\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
    })
    .await;
    let first = format!("http://127.0.0.1:{}/", start.port);
    let second = format!("http://127.0.0.2:{}/next", target.port);
    let http = capability("127.0.0.1/32", HttpConfig::default());
    let err = http
        .send(get(&first), &allow_urls(&[&first, &second]), BUDGET)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpFailure::Denied(r) if r.contains("127.0.0.2")),
        "{err}"
    );
    assert_eq!(start.accepted(), 1);
    assert_eq!(target.accepted(), 0);

    // Allowed by policy but not by the destination's allowlist: refused too.
    let http = capability("127.0.0.0/8", HttpConfig::default());
    let err = http
        .send(get(&first), &allow_urls(&[&first]), BUDGET)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpFailure::Denied(r) if r.contains("network access")),
        "{err}"
    );
    assert_eq!(target.accepted(), 0);

    // Allowed by both: followed.
    let response = http
        .send(get(&first), &allow_urls(&[&first, &second]), BUDGET)
        .await
        .unwrap();
    assert_eq!(response.body, b"reached");
    assert_eq!(target.accepted(), 1);

    // Not following returns the redirect itself.
    let mut request = get(&first);
    request.follow_redirects = false;
    let response = http
        .send(request, &allow_urls(&[&first]), BUDGET)
        .await
        .unwrap();
    assert_eq!(response.status, 302);
}

#[tokio::test]
async fn malformed_requests_and_caps() {
    let http = capability(
        "127.0.0.0/8",
        HttpConfig {
            request_cap: 4,
            ..HttpConfig::default()
        },
    );
    let list = allow_urls(&["http://127.0.0.1:9/"]);
    let mut request = get("http://127.0.0.1:9/");
    request.method = "BREW".into();
    assert!(matches!(
        http.send(request, &list, BUDGET).await,
        Err(HttpFailure::InvalidRequest(_))
    ));
    assert!(matches!(
        http.send(get("ftp://127.0.0.1:9/"), &list, BUDGET).await,
        Err(HttpFailure::InvalidRequest(_))
    ));
    assert!(matches!(
        http.send(get("not a url"), &list, BUDGET).await,
        Err(HttpFailure::InvalidRequest(_))
    ));
    let mut request = get("http://127.0.0.1:9/");
    request.headers = vec![("bad header".into(), "x".into())];
    assert!(matches!(
        http.send(request, &list, BUDGET).await,
        Err(HttpFailure::InvalidRequest(_))
    ));
    let mut request = get("http://127.0.0.1:9/");
    request.body = vec![0; 5];
    assert_eq!(
        http.send(request, &list, BUDGET).await.unwrap_err(),
        HttpFailure::BodyTooLarge
    );
}

#[tokio::test]
async fn timeouts_are_capped_by_the_call_budget() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    let http = capability("127.0.0.0/8", HttpConfig::default());
    let mut request = get(&url);
    request.timeout = Some(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let err = http
        .send(request, &allow_urls(&[&url]), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err, HttpFailure::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        http.send(get(&url), &allow_urls(&[&url]), Duration::ZERO)
            .await
            .unwrap_err(),
        HttpFailure::Timeout
    );
}
