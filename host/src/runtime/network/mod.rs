//! Where plugins may connect: the operator's address policy and per-destination host
//! allowlists.
//!
//! [`NetworkPolicy`] is parsed once (from `OUTRIDER_ALLOW_NETWORKS`, passed in as a list
//! of CIDRs) and shared as one cloneable checker by the `http` and `tcp` capabilities.
//! It refuses loopback, private, shared (CGNAT), link-local, multicast, unspecified,
//! broadcast, documentation, benchmarking, reserved and cloud metadata addresses,
//! judging IPv6 addresses that embed an IPv4 address (mapped, compatible, NAT64, 6to4)
//! by that IPv4 address, unless an allowed CIDR contains the address. It is applied
//! after DNS resolution ([`PolicyResolver`]) and to IP literals before sending.
//!
//! [`HostAllowlist`] is built per call from the prototype's declared
//! [`NetworkAccess`](super::manifest::NetworkAccess) and the target's configuration.
//!
//! Every refusal is an `Err(`[`Denied`]`)` carrying the reason; callers log it and
//! record it on the attempt. Nothing here answers a bare `false`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

mod allowlist;

pub use allowlist::HostAllowlist;

/// A refused network access, with the reason (for logs, the plugin and the attempt).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denied {
    /// What was refused and why.
    pub reason: String,
}

impl Denied {
    fn new(reason: impl Into<String>) -> Self {
        Denied {
            reason: reason.into(),
        }
    }
}

/// Why an address is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedClass {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT).
    SharedAddressSpace,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata endpoints (`169.254.169.254`, `fd00:ec2::254`).
    Metadata,
    /// `fc00::/7` (and the deprecated site-local `fec0::/10`).
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// Other special-purpose ranges (`192.0.0/24`, `192.88.99/24`, `240/4`, `100::/64`,
    /// Teredo `2001::/32`, local NAT64 `64:ff9b:1::/48`).
    Reserved,
}

impl BlockedClass {
    /// Short name used in denial reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedClass::Unspecified => "unspecified",
            BlockedClass::Loopback => "loopback",
            BlockedClass::Private => "private",
            BlockedClass::SharedAddressSpace => "shared address space (CGNAT)",
            BlockedClass::LinkLocal => "link-local",
            BlockedClass::Metadata => "cloud metadata",
            BlockedClass::UniqueLocal => "unique local",
            BlockedClass::Multicast => "multicast",
            BlockedClass::Broadcast => "broadcast",
            BlockedClass::Documentation => "documentation",
            BlockedClass::Benchmarking => "benchmarking",
            BlockedClass::Reserved => "reserved",
        }
    }
}

/// Host names refused whatever they resolve to (metadata services reachable by name:
/// Google Cloud's, and AWS's `instance-data`; the short forms resolve through the
/// instance's DNS search domain).
const BLOCKED_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Classify an IPv4 address; `None` means globally routable.
fn classify_v4(ip: Ipv4Addr) -> Option<BlockedClass> {
    let o = ip.octets();
    let class = match o {
        [169, 254, 169, 254] => BlockedClass::Metadata,
        [255, 255, 255, 255] => BlockedClass::Broadcast,
        [0, ..] => BlockedClass::Unspecified,
        [127, ..] => BlockedClass::Loopback,
        [10, ..] => BlockedClass::Private,
        [172, b, ..] if (16..32).contains(&b) => BlockedClass::Private,
        [192, 168, ..] => BlockedClass::Private,
        [100, b, ..] if (64..128).contains(&b) => BlockedClass::SharedAddressSpace,
        [169, 254, ..] => BlockedClass::LinkLocal,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => BlockedClass::Documentation,
        [198, 18 | 19, ..] => BlockedClass::Benchmarking,
        [192, 0, 0, _] | [192, 88, 99, _] => BlockedClass::Reserved,
        [a, ..] if (224..240).contains(&a) => BlockedClass::Multicast,
        [a, ..] if a >= 240 => BlockedClass::Reserved,
        _ => return None,
    };
    Some(class)
}

/// The IPv4 address an IPv6 address embeds and is to be judged by, if any:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and
/// 6to4 `2002:aabb:ccdd::/48`.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // IPv4-compatible (deprecated); `::` and `::1` are not IPv4 addresses.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Classify an IPv6 address on its own (without looking at embedded IPv4).
fn classify_v6(ip: Ipv6Addr) -> Option<BlockedClass> {
    let s = ip.segments();
    let class = if ip.is_unspecified() {
        BlockedClass::Unspecified
    } else if ip.is_loopback() {
        BlockedClass::Loopback
    } else if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        BlockedClass::Metadata
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        BlockedClass::UniqueLocal
    } else if s[0] & 0xffc0 == 0xfe80 {
        BlockedClass::LinkLocal
    } else if s[0] & 0xff00 == 0xff00 {
        BlockedClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || s[0] & 0xfff0 == 0x3ff0 {
        BlockedClass::Documentation
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        BlockedClass::Benchmarking
    } else if (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        || (s[0] == 0x2001 && s[1] == 0)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
    {
        BlockedClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

/// Classify an address as the policy does by default (no allowances): `None` means
/// globally routable and allowed.
pub fn classify(ip: IpAddr) -> Option<BlockedClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// The operator's address policy. Cheap to clone; share one per runtime.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow: Arc<[IpNet]>,
}

impl NetworkPolicy {
    /// A policy with explicitly allowed ranges (e.g. `127.0.0.0/8` for tests).
    pub fn new(allow: Vec<IpNet>) -> Self {
        NetworkPolicy {
            allow: allow.into(),
        }
    }

    /// Parse `OUTRIDER_ALLOW_NETWORKS`: a comma separated list of CIDRs (a bare address
    /// means a single host). Empty entries are ignored.
    pub fn parse_allow_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not a CIDR range or IP address"))
            })
            .collect()
    }

    /// The explicitly allowed ranges.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    fn explicitly_allowed(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4)))
    }

    /// Check one address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        match classify(ip) {
            None => Ok(()),
            Some(_) if self.explicitly_allowed(ip) => Ok(()),
            Some(class) => {
                let judged = match ip {
                    IpAddr::V6(v6) => match embedded_ipv4(v6) {
                        Some(v4) => format!("{ip} (embeds {v4})"),
                        None => ip.to_string(),
                    },
                    IpAddr::V4(_) => ip.to_string(),
                };
                Err(Denied::new(format!(
                    "address {judged} is {} and not in OUTRIDER_ALLOW_NETWORKS",
                    class.as_str()
                )))
            }
        }
    }

    /// Check a host name before resolving it (metadata services by name).
    pub fn check_name(&self, host: &str) -> Result<(), Denied> {
        let host = normalize_host(host);
        if BLOCKED_NAMES.contains(&host.as_str()) {
            return Err(Denied::new(format!(
                "host {host} is a cloud metadata service"
            )));
        }
        Ok(())
    }

    /// Keep the resolved addresses the policy allows; refuse when none is left.
    pub fn filter_resolved(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Denied> {
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        let mut seen = 0usize;
        for addr in addrs {
            seen += 1;
            match self.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(denied) => {
                    first_refusal.get_or_insert(denied);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(denied)) => Err(Denied::new(format!(
                "host {host} resolves only to refused addresses: {denied}"
            ))),
            (true, None) => {
                debug_assert_eq!(seen, 0);
                Err(Denied::new(format!("host {host} resolved to no address")))
            }
        }
    }

    /// Resolve `host:port` (or take an IP literal) and keep the allowed addresses.
    /// Used by `tcp`; `http` goes through [`PolicyResolver`].
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_name(host)?;
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ResolveError::Lookup(format!("cannot resolve {host}: {e}")))?;
        Ok(self.filter_resolved(host, addrs)?)
    }
}

/// A failed [`NetworkPolicy::resolve`].
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Refused by the policy.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// DNS failed.
    #[error("{0}")]
    Lookup(String),
}

/// A `reqwest` DNS resolver that filters every answer through the [`NetworkPolicy`], so a
/// host name resolving only to refused addresses fails before any connection is made.
/// The error it returns is a [`Denied`] (find it in the error's source chain).
#[derive(Clone, Debug)]
pub struct PolicyResolver {
    policy: NetworkPolicy,
}

impl PolicyResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: NetworkPolicy) -> Self {
        PolicyResolver { policy }
    }

    /// The resolver's steps with `lookup` in place of the system resolver: refuse
    /// metadata names, look the name up, keep the addresses `policy` allows. A refusal
    /// is the returned error itself (a [`Denied`]). `outrider net check --resolve` runs
    /// these steps with the operator's answers instead of DNS.
    pub async fn resolve_with<Fut>(
        policy: &NetworkPolicy,
        host: &str,
        lookup: impl FnOnce(String) -> Fut,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>>
    where
        Fut: std::future::Future<Output = std::io::Result<Vec<SocketAddr>>>,
    {
        policy.check_name(host)?;
        let addrs = lookup(host.to_owned()).await?;
        Ok(policy.filter_resolved(host, addrs)?)
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = PolicyResolver::resolve_with(&policy, &host, |host| async move {
                Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect())
            })
            .await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Lowercase a host and drop brackets and a trailing dot, so `Example.COM.` and
/// `example.com` compare equal.
pub fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// The normalised host of a URL (IPv6 without brackets).
pub fn url_host(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(normalize_host(d)),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &str) -> NetworkPolicy {
        NetworkPolicy::new(NetworkPolicy::parse_allow_list(allow).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        let cases = [
            ("127.0.0.1", Some(BlockedClass::Loopback)),
            ("127.255.1.2", Some(BlockedClass::Loopback)),
            ("::1", Some(BlockedClass::Loopback)),
            ("0.0.0.0", Some(BlockedClass::Unspecified)),
            ("::", Some(BlockedClass::Unspecified)),
            ("10.1.2.3", Some(BlockedClass::Private)),
            ("172.16.0.1", Some(BlockedClass::Private)),
            ("172.31.255.255", Some(BlockedClass::Private)),
            ("192.168.1.1", Some(BlockedClass::Private)),
            ("100.64.0.1", Some(BlockedClass::SharedAddressSpace)),
            ("169.254.1.1", Some(BlockedClass::LinkLocal)),
            ("fe80::1", Some(BlockedClass::LinkLocal)),
            ("169.254.169.254", Some(BlockedClass::Metadata)),
            ("fd00:ec2::254", Some(BlockedClass::Metadata)),
            ("fc00::1", Some(BlockedClass::UniqueLocal)),
            ("fd12:3456::1", Some(BlockedClass::UniqueLocal)),
            ("224.0.0.1", Some(BlockedClass::Multicast)),
            ("ff02::1", Some(BlockedClass::Multicast)),
            ("255.255.255.255", Some(BlockedClass::Broadcast)),
            ("192.0.2.1", Some(BlockedClass::Documentation)),
            ("198.51.100.7", Some(BlockedClass::Documentation)),
            ("203.0.113.9", Some(BlockedClass::Documentation)),
            ("2001:db8::1", Some(BlockedClass::Documentation)),
            ("198.18.0.1", Some(BlockedClass::Benchmarking)),
            ("198.19.255.1", Some(BlockedClass::Benchmarking)),
            ("240.0.0.1", Some(BlockedClass::Reserved)),
            ("2001::1", Some(BlockedClass::Reserved)),
            // Public addresses are fine (never contacted by these tests).
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2606:4700::1111", None),
        ];
        for (addr, expected) in cases {
            assert_eq!(classify(ip(addr)), expected, "{addr}");
        }
    }

    #[test]
    fn ipv6_embedding_ipv4_is_judged_as_ipv4() {
        for addr in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
        ] {
            assert_eq!(classify(ip(addr)), Some(BlockedClass::Loopback), "{addr}");
        }
        assert_eq!(classify(ip("::ffff:10.0.0.1")), Some(BlockedClass::Private));
        assert_eq!(
            classify(ip("::ffff:169.254.169.254")),
            Some(BlockedClass::Metadata)
        );
        assert_eq!(classify(ip("64:ff9b::808:808")), None);
        assert_eq!(classify(ip("2002:0808:0808::1")), None);
    }

    #[test]
    fn denial_names_the_class_and_address() {
        let err = NetworkPolicy::default()
            .check_ip(ip("::ffff:127.0.0.1"))
            .unwrap_err();
        assert!(err.reason.contains("embeds 127.0.0.1"), "{err}");
        assert!(err.reason.contains("loopback"), "{err}");
    }

    #[test]
    fn allowed_ranges_override_defaults() {
        let p = policy("127.0.0.0/8, ::1/128");
        assert!(p.check_ip(ip("127.0.0.1")).is_ok());
        assert!(p.check_ip(ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check_ip(ip("::1")).is_ok());
        assert!(p.check_ip(ip("10.0.0.1")).is_err());
        assert!(p.check_ip(ip("169.254.169.254")).is_err());
        let single = policy("10.1.2.3");
        assert!(single.check_ip(ip("10.1.2.3")).is_ok());
        assert!(single.check_ip(ip("10.1.2.4")).is_err());
        assert!(NetworkPolicy::parse_allow_list("nonsense").is_err());
        assert!(NetworkPolicy::parse_allow_list(" , ").unwrap().is_empty());
    }

    #[test]
    fn metadata_names_are_refused() {
        let p = policy("0.0.0.0/0");
        assert!(p.check_name("metadata.google.internal").is_err());
        assert!(p.check_name("Metadata.Google.Internal.").is_err());
        assert!(p.check_name("metadata").is_err());
        assert!(p.check_name("instance-data").is_err());
        assert!(p.check_name("instance-data.ec2.internal").is_err());
        assert!(p.check_name("metadata.example.com").is_ok());
        assert!(p.check_name("example.com").is_ok());
    }

    #[test]
    fn url_crate_normalises_numeric_ipv4_forms() {
        // Decimal, octal, hex and short forms all become 127.0.0.1 before any check.
        for text in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
        ] {
            let url = url::Url::parse(text).unwrap();
            assert_eq!(
                url.host(),
                Some(url::Host::Ipv4(Ipv4Addr::LOCALHOST)),
                "{text}"
            );
            let host: IpAddr = url_host(&url).unwrap().parse().unwrap();
            assert!(NetworkPolicy::default().check_ip(host).is_err(), "{text}");
        }
        let url = url::Url::parse("http://[::ffff:7f00:1]:8080/").unwrap();
        let host: IpAddr = url_host(&url).unwrap().parse().unwrap();
        assert!(NetworkPolicy::default().check_ip(host).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let err = NetworkPolicy::default()
            .resolve("localhost", 80)
            .await
            .unwrap_err();
        match err {
            ResolveError::Denied(d) => assert!(d.reason.contains("localhost"), "{d}"),
            other => panic!("expected a denial, got {other}"),
        }
        let ok = policy("127.0.0.0/8, ::1/128")
            .resolve("localhost", 80)
            .await
            .unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
        assert!(NetworkPolicy::default()
            .resolve("127.0.0.1", 80)
            .await
            .is_err());
        assert!(NetworkPolicy::default().resolve("[::1]", 80).await.is_err());
    }

    #[test]
    fn filter_keeps_only_allowed_addresses() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:80".parse().unwrap(),
            "8.8.8.8:80".parse().unwrap(),
        ];
        let kept = NetworkPolicy::default()
            .filter_resolved("mixed", addrs)
            .unwrap();
        assert_eq!(kept, vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]);
        assert!(NetworkPolicy::default()
            .filter_resolved("none", Vec::new())
            .is_err());
    }
}
