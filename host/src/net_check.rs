//! `outrider net check`: run URLs through the address guard exactly as a delivery's
//! outbound HTTP does, and say what it would do, without connecting to anything.
//!
//! For each URL: parse it as `http::send` does ([`parse_url`]), build the allowlist a
//! webhook-like destination with that URL in its `url` field gets (plus any declared
//! `--allow-host` patterns), check the hop ([`check_hop`]: allowlist, IP literals,
//! metadata names), then, for host names, take the resolver's steps
//! ([`PolicyResolver::resolve_with`]: name check, lookup, keep allowed addresses). With
//! `--resolve NAME=IP` the lookup answers from the command line instead of DNS, so names
//! resolving to refused addresses can be checked without any DNS traffic; `--offline`
//! makes a name without such an answer an error rather than a DNS query. A redirect
//! (`--redirect FROM TO`) checks `TO` as a further hop of a destination configured with
//! `FROM`, as `send` re-checks every hop it follows.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use crate::runtime::capabilities::http::{check_hop, parse_url};
use crate::runtime::manifest::NetworkAccess;
use crate::runtime::network::{
    classify, normalize_host, BlockedClass, Denied, HostAllowlist, NetworkPolicy, PolicyResolver,
};

/// Flags of `outrider net check`.
#[derive(Args, Debug, Default)]
pub struct CheckArgs {
    /// URLs to check, each as the `url` of a webhook-like destination.
    pub urls: Vec<String>,
    /// CIDRs (or addresses) allowed despite the default policy, as the server's
    /// OUTRIDER_ALLOW_NETWORKS (repeatable or comma-separated).
    #[arg(
        long = "allow",
        value_name = "CIDR",
        env = "OUTRIDER_ALLOW_NETWORKS",
        value_delimiter = ','
    )]
    pub allow: Vec<String>,
    /// Answer the lookup of NAME with these addresses instead of asking DNS
    /// (`NAME=IP[,IP...]`, repeatable).
    #[arg(long = "resolve", value_name = "NAME=IP[,IP...]")]
    pub resolve: Vec<String>,
    /// Never query DNS: a name without a `--resolve` answer is reported unresolved.
    #[arg(long)]
    pub offline: bool,
    /// Host patterns the destination's prototype declares (`network.hosts`, e.g.
    /// `*.example.com`), added to the allowlist (repeatable).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// A redirect to check: the destination is configured with FROM, its receiver
    /// answers with a redirect to TO (repeatable).
    #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
    pub redirect: Vec<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the guard does with one URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// A delivery would connect to these addresses.
    Allowed {
        /// Addresses left after the policy (IP literal, or the allowed lookup answers).
        addresses: Vec<SocketAddr>,
    },
    /// Refused before any connection.
    Refused {
        /// Short class: `invalid-url`, `network-access`, `metadata-name`, or the
        /// address class (`loopback`, `private`, ...; see [`class_slug`]).
        class: String,
        /// The denial as a delivery would record it.
        reason: String,
    },
    /// The name could not be resolved (no `--resolve` answer with `--offline`, or DNS
    /// failed): nothing to connect to, but not a policy decision either.
    Unresolved {
        /// What failed.
        reason: String,
    },
}

/// One checked URL (or redirect hop) and its verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    /// The URL checked.
    pub url: String,
    /// The destination URL a redirect came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_from: Option<String>,
    /// What the guard does.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The stable short name of an address class.
pub fn class_slug(class: BlockedClass) -> &'static str {
    match class {
        BlockedClass::Unspecified => "unspecified",
        BlockedClass::Loopback => "loopback",
        BlockedClass::Private => "private",
        BlockedClass::SharedAddressSpace => "shared-address-space",
        BlockedClass::LinkLocal => "link-local",
        BlockedClass::Metadata => "metadata",
        BlockedClass::UniqueLocal => "unique-local",
        BlockedClass::Multicast => "multicast",
        BlockedClass::Broadcast => "broadcast",
        BlockedClass::Documentation => "documentation",
        BlockedClass::Benchmarking => "benchmarking",
        BlockedClass::Reserved => "reserved",
    }
}

/// The checker: policy, declared hosts and lookup answers.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    policy: NetworkPolicy,
    allow_hosts: Vec<String>,
    answers: BTreeMap<String, Vec<IpAddr>>,
    offline: bool,
}

impl Guard {
    /// A guard with `allow` ranges (as `OUTRIDER_ALLOW_NETWORKS`), declared host
    /// patterns, lookup answers by name, and whether DNS may be asked.
    pub fn new(
        allow: Vec<IpNet>,
        allow_hosts: Vec<String>,
        answers: BTreeMap<String, Vec<IpAddr>>,
        offline: bool,
    ) -> Self {
        Guard {
            policy: NetworkPolicy::new(allow),
            allow_hosts,
            answers: answers
                .into_iter()
                .map(|(name, ips)| (normalize_host(&name), ips))
                .collect(),
            offline,
        }
    }

    /// Check `url` as the first hop of a destination configured with `destination`
    /// (the same URL, or the one a redirect came from).
    pub async fn check(&self, destination: &str, url: &str) -> Verdict {
        let refused = |class: &str, reason: String| Verdict::Refused {
            class: class.to_owned(),
            reason,
        };
        let url = match parse_url(url) {
            Ok(url) => url,
            Err(e) => return refused("invalid-url", e.to_string()),
        };
        let access = NetworkAccess {
            hosts: self.allow_hosts.clone(),
            url_fields: vec!["url".into()],
            tcp: false,
        };
        let allowlist = HostAllowlist::for_target(&access, &json!({ "url": destination }));
        let port = url.port_or_known_default().unwrap_or(0);
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Err(denied) = check_hop(&self.policy, &url, &allowlist) {
            let class = if allowlist.check_url(&url).is_err() {
                "network-access"
            } else {
                match literal.and_then(classify) {
                    Some(class) => class_slug(class),
                    None => "metadata-name",
                }
            };
            return refused(class, denied.reason);
        }
        if let Some(ip) = literal {
            return Verdict::Allowed {
                addresses: vec![SocketAddr::new(ip, port)],
            };
        }
        let host = url.host_str().unwrap_or_default();
        self.resolve(host, port).await
    }

    /// The resolver's steps for `host`, answering from `--resolve` (or DNS).
    async fn resolve(&self, host: &str, port: u16) -> Verdict {
        let answered: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let seen = answered.clone();
        let lookup = |name: String| async move {
            let addrs = match self.answers.get(&normalize_host(&name)) {
                Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
                None if self.offline => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no --resolve answer for {name} and --offline"),
                    ))
                }
                None => tokio::net::lookup_host((name.as_str(), port))
                    .await?
                    .collect(),
            };
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Vec::clone(&addrs);
            Ok(addrs)
        };
        match PolicyResolver::resolve_with(&self.policy, host, lookup).await {
            Ok(addresses) => Verdict::Allowed { addresses },
            Err(err) => match err.downcast_ref::<Denied>() {
                Some(denied) => {
                    let answered = answered.lock().unwrap_or_else(|p| p.into_inner());
                    let class = answered
                        .iter()
                        .find_map(|a| classify(a.ip()))
                        .map_or("metadata-name", class_slug);
                    Verdict::Refused {
                        class: class.to_owned(),
                        reason: denied.reason.clone(),
                    }
                }
                None => Verdict::Unresolved {
                    reason: err.to_string(),
                },
            },
        }
    }
}

/// Parse `NAME=IP[,IP...]`.
fn parse_answer(text: &str) -> anyhow::Result<(String, Vec<IpAddr>)> {
    let (name, ips) = text
        .split_once('=')
        .with_context(|| format!("--resolve `{text}`: expected NAME=IP[,IP...]"))?;
    let ips = ips
        .split(',')
        .map(|ip| {
            ip.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .with_context(|| format!("--resolve `{text}`: `{ip}` is not an IP address"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!name.is_empty(), "--resolve `{text}`: the name is empty");
    Ok((name.to_owned(), ips))
}

/// Run `outrider net check`: one line per URL and redirect.
pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.urls.is_empty() || !args.redirect.is_empty(),
        "give at least one URL (or --redirect FROM TO)"
    );
    let allow = NetworkPolicy::parse_allow_list(&args.allow.join(","))
        .map_err(|e| anyhow::anyhow!("--allow: {e}"))?;
    let mut answers: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for text in &args.resolve {
        let (name, ips) = parse_answer(text)?;
        answers.entry(name).or_default().extend(ips);
    }
    let guard = Guard::new(allow, args.allow_hosts, answers, args.offline);
    let mut checks: Vec<(Option<String>, String)> =
        args.urls.into_iter().map(|url| (None, url)).collect();
    for pair in args.redirect.chunks(2) {
        if let [from, to] = pair {
            checks.push((Some(from.clone()), to.clone()));
        }
    }
    for (from, url) in checks {
        let verdict = match &from {
            // A redirect is only followed once the first hop was allowed.
            Some(from) => match guard.check(from, from).await {
                Verdict::Allowed { .. } => guard.check(from, &url).await,
                refused => refused,
            },
            None => guard.check(&url, &url).await,
        };
        let checked = Checked {
            url,
            redirect_from: from,
            verdict,
        };
        if args.json {
            println!("{}", serde_json::to_string(&checked)?);
        } else {
            println!("{}", render(&checked));
        }
    }
    Ok(())
}

/// The text line of one check.
fn render(checked: &Checked) -> String {
    let label = match &checked.redirect_from {
        Some(from) => format!("{} (redirect from {from})", checked.url),
        None => checked.url.clone(),
    };
    match &checked.verdict {
        Verdict::Allowed { addresses } => {
            let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            format!("allowed {label} -> {}", addresses.join(", "))
        }
        Verdict::Refused { class, reason } => format!("refused {label} {class}: {reason}"),
        Verdict::Unresolved { reason } => format!("unresolved {label}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &str, answers: &[(&str, &str)]) -> Guard {
        let answers = answers
            .iter()
            .map(|(name, ip)| (name.to_string(), vec![ip.parse().unwrap()]))
            .collect();
        Guard::new(
            NetworkPolicy::parse_allow_list(allow).unwrap(),
            vec![],
            answers,
            true,
        )
    }

    fn class(verdict: &Verdict) -> &str {
        match verdict {
            Verdict::Refused { class, .. } => class,
            Verdict::Allowed { .. } => "allowed",
            Verdict::Unresolved { .. } => "unresolved",
        }
    }

    #[tokio::test]
    async fn literals_are_classified_after_normalisation() {
        let g = guard("", &[]);
        for (url, expected) in [
            ("http://127.1/", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://169.254.169.254/latest", "metadata"),
            ("http://100.64.0.1/", "shared-address-space"),
            ("http://[fe80::1]/", "link-local"),
            ("ftp://93.184.216.34/", "invalid-url"),
            ("http://93.184.216.34/", "allowed"),
        ] {
            assert_eq!(class(&g.check(url, url).await), expected, "{url}");
        }
    }

    #[tokio::test]
    async fn names_use_the_given_answers_and_never_dns_offline() {
        let g = guard(
            "",
            &[
                ("intranet.test", "10.1.2.3"),
                ("public.test", "93.184.216.34"),
            ],
        );
        let url = "http://Intranet.Test./x";
        assert_eq!(class(&g.check(url, url).await), "private");
        let url = "https://public.test/";
        assert_eq!(
            g.check(url, url).await,
            Verdict::Allowed {
                addresses: vec!["93.184.216.34:443".parse().unwrap()]
            }
        );
        let url = "http://unknown.test/";
        assert_eq!(class(&g.check(url, url).await), "unresolved");
        let url = "http://metadata.google.internal/";
        assert_eq!(class(&g.check(url, url).await), "metadata-name");
    }

    #[tokio::test]
    async fn allowed_ranges_and_redirect_hops() {
        let g = guard("127.0.0.1/32", &[]);
        let url = "http://127.0.0.1:9/";
        assert_eq!(class(&g.check(url, url).await), "allowed");
        let url = "http://127.0.0.2:9/";
        assert_eq!(class(&g.check(url, url).await), "loopback");
        // A redirect elsewhere leaves the destination's network access first.
        let from = "http://127.0.0.1:9/";
        assert_eq!(
            class(&g.check(from, "http://127.0.0.2:9/").await),
            "network-access"
        );
        // With a declared pattern covering it, the address policy refuses it.
        let g = Guard::new(
            vec![],
            vec!["*.example.test".into()],
            [(
                "inner.example.test".to_string(),
                vec!["10.0.0.5".parse().unwrap()],
            )]
            .into(),
            true,
        );
        assert_eq!(
            class(
                &g.check("http://hooks.example.test/", "http://inner.example.test/")
                    .await
            ),
            "private"
        );
    }

    #[test]
    fn answers_parse() {
        let (name, ips) = parse_answer("a.test=10.0.0.1,[::1]").unwrap();
        assert_eq!(name, "a.test");
        assert_eq!(ips.len(), 2);
        assert!(parse_answer("a.test").is_err());
        assert!(parse_answer("a.test=nope").is_err());
    }
}
