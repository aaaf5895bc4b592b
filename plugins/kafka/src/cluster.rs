//! Where the topic's partitions live: Metadata fetched from the first bootstrap broker
//! that answers, cached in the host's per-destination state for a few minutes (and
//! dropped as soon as a produce says it is out of date), and the route of one record:
//! its partition and that partition's leader.

use crate::codec::{partition_for_key, Reader, Writer};
use crate::errors::{self, Class};
use crate::protocol::{self, api, version, Broker, Metadata, PartitionInfo};
use crate::session::{self, Auth};
use broker_common::Endpoint;
use outrider_sdk::{state, DeliveryError};
use std::time::Duration;

const STATE_KEY: &str = "kafka.metadata";

/// How long cached metadata is trusted (the Java client's `metadata.max.age.ms`).
const METADATA_TTL: Duration = Duration::from_secs(300);

/// The cached metadata, if it was stored for the same settings (`print`).
pub fn cached(print: &[u8]) -> Option<Metadata> {
    let blob = state::get(STATE_KEY)?;
    decode(blob.strip_prefix(print)?)
}

/// Cache `metadata` for the settings `print`. The cache is an optimisation: a state
/// store that refuses it only costs a Metadata request per delivery.
pub fn remember(print: &[u8], metadata: &Metadata) {
    let mut blob = print.to_vec();
    blob.extend(encode(metadata));
    let _ = state::set(STATE_KEY, &blob, Some(METADATA_TTL));
}

/// Drop the cached metadata.
pub fn forget() {
    state::delete(STATE_KEY);
}

fn encode(m: &Metadata) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(m.topic_error).i32(m.brokers.len() as i32);
    for b in &m.brokers {
        w.i32(b.node_id).string(&b.host).i32(i32::from(b.port));
    }
    w.i32(m.partitions.len() as i32);
    for p in &m.partitions {
        w.i32(p.index).i16(p.error).i32(p.leader);
    }
    w.into_bytes()
}

fn decode(bytes: &[u8]) -> Option<Metadata> {
    let mut r = Reader::new(bytes);
    let topic_error = r.i16().ok()?;
    let mut brokers = Vec::new();
    for _ in 0..r.array_len().ok()? {
        brokers.push(Broker {
            node_id: r.i32().ok()?,
            host: r.string().ok()?,
            port: u16::try_from(r.i32().ok()?).ok()?,
        });
    }
    let mut partitions = Vec::new();
    for _ in 0..r.array_len().ok()? {
        partitions.push(PartitionInfo {
            index: r.i32().ok()?,
            error: r.i16().ok()?,
            leader: r.i32().ok()?,
        });
    }
    Some(Metadata {
        brokers,
        topic_error,
        partitions,
    })
}

/// Ask the bootstrap brokers in order for the topic's metadata; the first answer wins.
pub fn fetch(
    bootstrap: &[Endpoint],
    print: &[u8],
    auth: &Auth,
    topic: &str,
) -> Result<Metadata, DeliveryError> {
    let mut last = None;
    for endpoint in bootstrap {
        let result = session::run(endpoint, print, auth, |link, session| {
            let request = protocol::metadata_request(topic);
            let body = session.call(link, api::METADATA, version::METADATA, &request)?;
            Ok(protocol::parse_metadata(&body, topic)?)
        });
        match result {
            Ok(metadata) => return Ok(metadata),
            Err(e @ DeliveryError::Retry { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| DeliveryError::misconfigured("config.brokers lists no broker")))
}

/// Where one record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Partition index.
    pub partition: i32,
    /// The partition leader.
    pub leader: Endpoint,
}

/// The record's partition (`fixed`, else the murmur2 hash of `key` as the Java client
/// computes it) and its leader, reached with `tls` like the bootstrap brokers.
pub fn route(
    m: &Metadata,
    topic: &str,
    fixed: Option<i32>,
    key: &[u8],
    tls: bool,
) -> Result<Route, DeliveryError> {
    match m.topic_error {
        0 => {}
        3 => {
            return Err(DeliveryError::misconfigured(format!(
                "topic `{topic}` does not exist and the cluster did not create it \
                 (auto.create.topics.enable is off?)"
            )))
        }
        code => return Err(metadata_error(code, &format!("topic `{topic}`"))),
    }
    let count = m.partitions.len() as u32;
    if count == 0 {
        return Err(DeliveryError::retry(format!(
            "topic `{topic}` has no partitions yet"
        )));
    }
    let partition = match fixed {
        Some(p) if (p as u32) < count => p,
        Some(p) => {
            return Err(DeliveryError::misconfigured(format!(
                "config.partition is {p} but topic `{topic}` has {count} partitions"
            )))
        }
        None => partition_for_key(key, count),
    };
    let info = m
        .partitions
        .iter()
        .find(|p| p.index == partition)
        .ok_or_else(|| {
            DeliveryError::retry(format!("{topic}/{partition} is not in the metadata"))
        })?;
    if info.error != 0 && info.leader < 0 {
        return Err(metadata_error(info.error, &format!("{topic}/{partition}")));
    }
    let leader = m
        .brokers
        .iter()
        .find(|b| b.node_id == info.leader)
        .ok_or_else(|| {
            DeliveryError::retry(format!(
                "{topic}/{partition} has no leader (node {}) at the moment",
                info.leader
            ))
        })?;
    Ok(Route {
        partition,
        leader: Endpoint {
            host: leader.host.clone(),
            port: leader.port,
            tls,
            path: None,
        },
    })
}

fn metadata_error(code: i16, what: &str) -> DeliveryError {
    let message = format!("metadata for {what}: {}", errors::name(code));
    match errors::class(code) {
        Class::Retry | Class::StaleMetadata => DeliveryError::retry(message),
        Class::Fail => DeliveryError::fail(message),
        Class::Misconfigured => DeliveryError::misconfigured(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        Metadata {
            brokers: vec![
                Broker {
                    node_id: 1,
                    host: "a.example".into(),
                    port: 9092,
                },
                Broker {
                    node_id: 2,
                    host: "b.example".into(),
                    port: 9093,
                },
            ],
            topic_error: 0,
            partitions: (0..3)
                .map(|index| PartitionInfo {
                    index,
                    error: 0,
                    leader: 1 + index % 2,
                })
                .collect(),
        }
    }

    #[test]
    fn cache_round_trips_and_ignores_other_settings() {
        let m = metadata();
        assert_eq!(decode(&encode(&m)), Some(m.clone()));
        remember(b"print-a", &m);
        assert_eq!(cached(b"print-a"), Some(m));
        assert_eq!(cached(b"print-b"), None);
        forget();
        assert_eq!(cached(b"print-a"), None);
    }

    #[test]
    fn routes_by_key_hash_or_fixed_partition() {
        let m = metadata();
        let r = route(&m, "t", Some(1), b"k", false).unwrap();
        assert_eq!(
            (r.partition, r.leader.host.as_str(), r.leader.port),
            (1, "b.example", 9093)
        );
        let by_key = route(&m, "t", None, b"foobar", true).unwrap();
        assert_eq!(by_key.partition, partition_for_key(b"foobar", 3));
        assert!(by_key.leader.tls);
        let err = route(&m, "t", Some(3), b"k", false).unwrap_err();
        assert!(matches!(err, DeliveryError::Misconfigured(_)), "{err}");
    }

    #[test]
    fn unknown_topics_and_missing_leaders_are_classified() {
        let mut m = metadata();
        m.topic_error = 3;
        assert!(matches!(
            route(&m, "t", None, b"k", false),
            Err(DeliveryError::Misconfigured(_))
        ));
        let mut m = metadata();
        m.partitions[0] = PartitionInfo {
            index: 0,
            error: 5,
            leader: -1,
        };
        assert!(matches!(
            route(&m, "t", Some(0), b"k", false),
            Err(DeliveryError::Retry { .. })
        ));
    }
}
