//! `outrider:plugin/http`: outbound HTTP performed by the host.
//!
//! One shared `reqwest` client (rustls, connection pooling, no proxy) serves every call.
//! Its DNS resolver is a [`PolicyResolver`], so a host name whose addresses are all
//! refused by the [`NetworkPolicy`] fails before connecting; IP-literal URLs (which skip
//! the resolver) are checked here before sending. Redirects are followed by hand, up to
//! [`HttpConfig::max_redirects`], each hop re-checked against the call's
//! [`HostAllowlist`] and the address policy. Timeouts are capped by the call's remaining
//! deadline; request and response bodies are capped (the response is truncated and
//! flagged, the request refused).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::v0_1_1::http;
use crate::runtime::call::CallContext;
use crate::runtime::network::{url_host, Denied, HostAllowlist, NetworkPolicy, PolicyResolver};

mod host;

/// Limits of outbound HTTP.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Response bodies are truncated after this many bytes.
    pub response_cap: usize,
    /// Requests with a larger body are refused.
    pub request_cap: usize,
    /// Timeout of a request that does not ask for one.
    pub default_timeout: Duration,
    /// Redirect hops followed at most.
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            response_cap: 1024 * 1024,
            request_cap: 10 * 1024 * 1024,
            default_timeout: Duration::from_secs(30),
            max_redirects: 10,
        }
    }
}

/// An outbound request, independent of the WIT version.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    /// HTTP method.
    pub method: String,
    /// Absolute `http`/`https` URL.
    pub url: String,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Requested timeout (capped by the call's deadline).
    pub timeout: Option<Duration>,
    /// Whether to follow redirects.
    pub follow_redirects: bool,
}

/// A received response.
#[derive(Clone, Debug)]
pub struct InboundResponse {
    /// Status code.
    pub status: u16,
    /// Header pairs (values decoded lossily).
    pub headers: Vec<(String, String)>,
    /// Body, at most the response cap.
    pub body: Vec<u8>,
    /// Whether the body was cut at the cap.
    pub truncated: bool,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    /// Refused by the destination's network access or the address policy; no connection
    /// was made to the refused address.
    #[error("denied: {0}")]
    Denied(String),
    /// Malformed method, URL or header.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No complete response in time.
    #[error("timed out")]
    Timeout,
    /// Connection, TLS or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The request body is over the cap.
    #[error("request body too large")]
    BodyTooLarge,
}

/// The shared HTTP client with its policy and caps.
#[derive(Clone, Debug)]
pub struct HttpCapability {
    client: reqwest::Client,
    policy: NetworkPolicy,
    config: Arc<HttpConfig>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Headers never forwarded to another origin on redirect.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

impl HttpCapability {
    /// Build the one client for the runtime.
    pub fn new(policy: NetworkPolicy, config: HttpConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            // Proxies from the environment would bypass the address policy.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver::new(policy.clone())))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("outrider/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpCapability {
            client,
            policy,
            config: Arc::new(config),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Send `request`, following redirects if asked, within `budget` (the call's
    /// remaining time).
    pub async fn send(
        &self,
        request: OutboundRequest,
        allowlist: &HostAllowlist,
        budget: Duration,
    ) -> Result<InboundResponse, HttpFailure> {
        let method_name = request.method.to_ascii_uppercase();
        if !METHODS.contains(&method_name.as_str()) {
            return Err(HttpFailure::InvalidRequest(format!(
                "method `{}` is not one of {}",
                request.method,
                METHODS.join(", ")
            )));
        }
        let mut method = Method::from_bytes(method_name.as_bytes())
            .map_err(|e| HttpFailure::InvalidRequest(e.to_string()))?;
        let mut url = parse_url(&request.url)?;
        if request.body.len() > self.config.request_cap {
            return Err(HttpFailure::BodyTooLarge);
        }
        let mut headers = HeaderMap::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpFailure::InvalidRequest(format!("bad header name `{name}`")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                HttpFailure::InvalidRequest(format!("bad value for header `{name}`"))
            })?;
            headers.append(name, value);
        }

        // Leave the guest a little time to act on the outcome before its own deadline.
        let reserve = (budget / 10).min(Duration::from_millis(250));
        let timeout = request
            .timeout
            .unwrap_or(self.config.default_timeout)
            .min(budget.saturating_sub(reserve));
        if timeout.is_zero() {
            return Err(HttpFailure::Timeout);
        }
        let started = tokio::time::Instant::now();
        let mut body = bytes::Bytes::from(request.body);
        let mut hops = 0usize;
        loop {
            check_hop(&self.policy, &url, allowlist).map_err(|d| HttpFailure::Denied(d.reason))?;
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(HttpFailure::Timeout);
            }
            let response = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .timeout(left)
                .send()
                .await
                .map_err(map_error)?;
            let status = response.status();
            if request.follow_redirects && status.is_redirection() {
                if let Some(next) = redirect_target(&url, &response)? {
                    hops += 1;
                    if hops > self.config.max_redirects {
                        return Err(HttpFailure::Transport(format!(
                            "more than {} redirects",
                            self.config.max_redirects
                        )));
                    }
                    let code = status.as_u16();
                    if code == 303 && method != Method::HEAD
                        || matches!(code, 301 | 302) && method == Method::POST
                    {
                        method = Method::GET;
                        body = bytes::Bytes::new();
                        headers.remove(reqwest::header::CONTENT_TYPE);
                        headers.remove(reqwest::header::CONTENT_LENGTH);
                    }
                    if next.origin() != url.origin() {
                        for name in CREDENTIAL_HEADERS {
                            headers.remove(*name);
                        }
                    }
                    url = next;
                    continue;
                }
            }
            return read_response(response, self.config.response_cap).await;
        }
    }
}

/// Parse a request URL as `send` does: absolute, `http` or `https`.
pub fn parse_url(text: &str) -> Result<url::Url, HttpFailure> {
    let url = url::Url::parse(text)
        .map_err(|e| HttpFailure::InvalidRequest(format!("bad URL `{text}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpFailure::InvalidRequest(format!(
            "URL scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    Ok(url)
}

/// Check one hop's URL (the first or a redirect) before connecting: the call's
/// allowlist, then the address policy for IP literals and metadata names (host names
/// are checked again by the resolver after resolution).
pub fn check_hop(
    policy: &NetworkPolicy,
    url: &url::Url,
    allowlist: &HostAllowlist,
) -> Result<(), Denied> {
    allowlist.check_url(url)?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => policy.check_ip(ip.into()),
        Some(url::Host::Domain(d)) => policy.check_name(d),
        None => Err(Denied {
            reason: format!("{url} has no host"),
        }),
    }
}

/// The `Location` of a redirect response, resolved against `base`.
fn redirect_target(
    base: &url::Url,
    response: &reqwest::Response,
) -> Result<Option<url::Url>, HttpFailure> {
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| HttpFailure::Transport("redirect Location is not text".into()))?;
    let next = base
        .join(location)
        .map_err(|e| HttpFailure::Transport(format!("bad redirect Location `{location}`: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") || url_host(&next).is_none() {
        return Err(HttpFailure::Transport(format!(
            "redirect to unsupported URL `{next}`"
        )));
    }
    Ok(Some(next))
}

async fn read_response(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<InboundResponse, HttpFailure> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(map_error)? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(InboundResponse {
        status,
        headers,
        body,
        truncated,
    })
}

/// Map a reqwest error, finding a policy denial raised by the resolver.
fn map_error(err: reqwest::Error) -> HttpFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<Denied>() {
            return HttpFailure::Denied(denied.reason.clone());
        }
        source = e.source();
    }
    if err.is_timeout() {
        return HttpFailure::Timeout;
    }
    if err.is_builder() {
        return HttpFailure::InvalidRequest(chain(&err));
    }
    HttpFailure::Transport(chain(&err))
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let t = e.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = e.source();
    }
    text
}

/// Add `outrider:plugin/http` to `linker`: `send` performs the request through the
/// runtime's shared client, under the call's allowlist, the address policy and the
/// call's remaining deadline. Denials are logged and recorded on the call.
pub fn add_to_linker(linker: &mut Linker<CallContext>) -> wasmtime::Result<()> {
    http::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}

#[cfg(test)]
mod tests;
