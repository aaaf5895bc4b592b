//! The Kafka requests a producer needs, as request bodies and parsed responses:
//! ApiVersions v2, Metadata v7, Produce v7/v8, SaslHandshake v1 and SaslAuthenticate v1
//! (all non-flexible versions, so every request uses header v1 and every response
//! header v0). These versions are within the baseline Kafka 4 keeps (clients of 2.1 and
//! later), so one codec serves brokers from 2.1 on.

use crate::codec::{ParseError, Reader, Writer};

/// Client id sent with every request.
pub const CLIENT_ID: &str = "outrider";

/// API keys.
pub mod api {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 17;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 36;
}

/// Versions this client speaks.
pub mod version {
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 7;
    /// Produce: 8 when the broker has it (per-partition error messages), else 7.
    pub const PRODUCE_MIN: i16 = 7;
    /// See [`PRODUCE_MIN`].
    pub const PRODUCE_MAX: i16 = 8;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 1;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 1;
}

/// A framed request: `INT32` size, header v1 (api key, version, correlation id, client
/// id), then `body`.
pub fn frame(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut header = Writer::new();
    header
        .i16(api_key)
        .i16(api_version)
        .i32(correlation_id)
        .nullable_string(Some(CLIENT_ID))
        .raw(body);
    let message = header.into_bytes();
    let mut out = Writer::new();
    out.bytes(&message);
    out.into_bytes()
}

/// The version range a broker supports for one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// API key.
    pub api_key: i16,
    /// Oldest version.
    pub min: i16,
    /// Newest version.
    pub max: i16,
}

/// ApiVersions: the top-level error and the broker's ranges.
pub fn parse_api_versions(body: &[u8]) -> Result<(i16, Vec<VersionRange>), ParseError> {
    let mut r = Reader::new(body);
    let error = r.i16()?;
    let n = r.array_len()?;
    let mut ranges = Vec::with_capacity(n);
    for _ in 0..n {
        ranges.push(VersionRange {
            api_key: r.i16()?,
            min: r.i16()?,
            max: r.i16()?,
        });
    }
    Ok((error, ranges))
}

/// Metadata v7 for one topic, letting the broker create it if it is set up to.
pub fn metadata_request(topic: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(1).string(topic).i8(1);
    w.into_bytes()
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

/// One partition of the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub index: i32,
    /// Error code for this partition.
    pub error: i16,
    /// Leader node id, -1 when there is none.
    pub leader: i32,
}

/// What Metadata says about the cluster and the one topic asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Brokers.
    pub brokers: Vec<Broker>,
    /// Error code for the topic (0, or e.g. 3 unknown topic).
    pub topic_error: i16,
    /// The topic's partitions.
    pub partitions: Vec<PartitionInfo>,
}

/// Parse a Metadata v7 response, keeping the entry of `topic`.
pub fn parse_metadata(body: &[u8], topic: &str) -> Result<Metadata, ParseError> {
    let mut r = Reader::new(body);
    r.i32()?; // throttle time
    let mut brokers = Vec::new();
    for _ in 0..r.array_len()? {
        let node_id = r.i32()?;
        let host = r.string()?;
        let port = r.i32()?;
        r.nullable_string()?; // rack
        let port = u16::try_from(port).map_err(|_| format!("broker {node_id} has port {port}"))?;
        brokers.push(Broker {
            node_id,
            host,
            port,
        });
    }
    r.nullable_string()?; // cluster id
    r.i32()?; // controller id
    let mut found = None;
    for _ in 0..r.array_len()? {
        let error = r.i16()?;
        let name = r.string()?;
        r.bool()?; // is internal
        let mut partitions = Vec::new();
        for _ in 0..r.array_len()? {
            let error = r.i16()?;
            let index = r.i32()?;
            let leader = r.i32()?;
            r.i32()?; // leader epoch
            r.skip_i32_array()?; // replicas
            r.skip_i32_array()?; // in-sync replicas
            r.skip_i32_array()?; // offline replicas
            partitions.push(PartitionInfo {
                index,
                error,
                leader,
            });
        }
        if name == topic {
            found = Some((error, partitions));
        }
    }
    let (topic_error, partitions) =
        found.ok_or_else(|| format!("Metadata response does not mention topic {topic}"))?;
    Ok(Metadata {
        brokers,
        topic_error,
        partitions,
    })
}

/// Produce v7/v8 of one record batch to one partition.
pub fn produce_request(
    acks: i16,
    timeout_ms: i32,
    topic: &str,
    partition: i32,
    batch: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.nullable_string(None) // transactional id
        .i16(acks)
        .i32(timeout_ms)
        .i32(1)
        .string(topic)
        .i32(1)
        .i32(partition)
        .bytes(batch);
    w.into_bytes()
}

/// The broker's answer for the partition written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceAck {
    /// Error code (0 on success).
    pub error: i16,
    /// Offset of the record.
    pub base_offset: i64,
    /// The broker's message about the error (v8).
    pub message: Option<String>,
    /// How long the broker asks the client to hold off (quota throttling).
    pub throttle_ms: i32,
}

/// Parse a Produce response of `version` (7 or 8) for `topic`/`partition`.
pub fn parse_produce(
    body: &[u8],
    version: i16,
    topic: &str,
    partition: i32,
) -> Result<ProduceAck, ParseError> {
    let mut r = Reader::new(body);
    let mut found = None;
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        for _ in 0..r.array_len()? {
            let index = r.i32()?;
            let error = r.i16()?;
            let base_offset = r.i64()?;
            r.i64()?; // log append time
            r.i64()?; // log start offset
            let mut message = None;
            if version >= 8 {
                for _ in 0..r.array_len()? {
                    r.i32()?; // batch index
                    if let Some(m) = r.nullable_string()? {
                        message = Some(m);
                    }
                }
                if let Some(m) = r.nullable_string()? {
                    message = Some(m);
                }
            }
            if name == topic && index == partition {
                found = Some((error, base_offset, message));
            }
        }
    }
    let throttle_ms = r.i32()?;
    let (error, base_offset, message) =
        found.ok_or_else(|| format!("Produce response does not mention {topic}/{partition}"))?;
    Ok(ProduceAck {
        error,
        base_offset,
        message,
        throttle_ms,
    })
}

/// SaslHandshake v1.
pub fn sasl_handshake_request(mechanism: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(mechanism);
    w.into_bytes()
}

/// SaslHandshake: the error and the mechanisms the listener offers.
pub fn parse_sasl_handshake(body: &[u8]) -> Result<(i16, Vec<String>), ParseError> {
    let mut r = Reader::new(body);
    let error = r.i16()?;
    let mut mechanisms = Vec::new();
    for _ in 0..r.array_len()? {
        mechanisms.push(r.string()?);
    }
    Ok((error, mechanisms))
}

/// SaslAuthenticate v1 carrying one SASL message.
pub fn sasl_authenticate_request(auth_bytes: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(auth_bytes);
    w.into_bytes()
}

/// SaslAuthenticate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslAnswer {
    /// Error code (58: authentication failed).
    pub error: i16,
    /// The broker's message.
    pub message: Option<String>,
    /// The server's SASL message.
    pub auth_bytes: Vec<u8>,
    /// How long the authenticated session lasts, 0 for as long as the connection.
    pub session_lifetime_ms: i64,
}

/// Parse a SaslAuthenticate v1 response.
pub fn parse_sasl_authenticate(body: &[u8]) -> Result<SaslAnswer, ParseError> {
    let mut r = Reader::new(body);
    Ok(SaslAnswer {
        error: r.i16()?,
        message: r.nullable_string()?,
        auth_bytes: r.bytes()?,
        session_lifetime_ms: r.i64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn api_versions_request_bytes() {
        // size 18 | key 18 | version 2 | correlation 1 | client id "outrider" | no body
        assert_eq!(
            hex(&frame(api::API_VERSIONS, 2, 1, &[])),
            "00000012001200020000000100086f757472696465 72".replace(' ', "")
        );
    }

    #[test]
    fn metadata_and_produce_request_bytes() {
        assert_eq!(
            hex(&metadata_request("ab")),
            "00000001000261 6201".replace(' ', "")
        );
        let body = produce_request(-1, 8000, "t", 2, &[0xaa, 0xbb]);
        assert_eq!(
            hex(&body),
            "ffff ffff 00001f40 00000001 000174 00000001 00000002 00000002aabb".replace(' ', "")
        );
    }

    fn metadata_response() -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(0) // throttle
            .i32(1)
            .i32(1)
            .string("127.0.0.1")
            .i32(9092)
            .nullable_string(None)
            .nullable_string(Some("cluster"))
            .i32(1)
            .i32(2); // topics
        for (name, leader) in [("other", 7), ("events", 1)] {
            w.i16(0).string(name).i8(0).i32(1);
            w.i16(0).i32(0).i32(leader).i32(5);
            w.i32(1).i32(1).i32(1).i32(1).i32(0);
        }
        w.into_bytes()
    }

    #[test]
    fn metadata_response_keeps_the_topic_asked_for() {
        let m = parse_metadata(&metadata_response(), "events").unwrap();
        assert_eq!(
            m.brokers,
            vec![Broker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092
            }]
        );
        assert_eq!(m.topic_error, 0);
        assert_eq!(
            m.partitions,
            vec![PartitionInfo {
                index: 0,
                error: 0,
                leader: 1
            }]
        );
        assert!(parse_metadata(&metadata_response(), "missing").is_err());
        let body = metadata_response();
        assert!(parse_metadata(&body[..body.len() - 3], "events").is_err());
    }

    #[test]
    fn produce_response_v8_carries_the_error_message() {
        let mut w = Writer::new();
        w.i32(1).string("t").i32(1);
        w.i32(0).i16(10).i64(-1).i64(-1).i64(0);
        w.i32(1).i32(0).nullable_string(Some("record too big"));
        w.nullable_string(Some("MESSAGE_TOO_LARGE"));
        w.i32(25); // throttle
        let ack = parse_produce(&w.into_bytes(), 8, "t", 0).unwrap();
        assert_eq!(ack.error, 10);
        assert_eq!(ack.message.as_deref(), Some("MESSAGE_TOO_LARGE"));
        assert_eq!(ack.throttle_ms, 25);

        let mut w = Writer::new();
        w.i32(1).string("t").i32(1);
        w.i32(3).i16(0).i64(42).i64(-1).i64(0);
        w.i32(0);
        let ack = parse_produce(&w.into_bytes(), 7, "t", 3).unwrap();
        assert_eq!((ack.error, ack.base_offset, ack.message), (0, 42, None));
    }

    #[test]
    fn sasl_round_trips() {
        assert_eq!(hex(&sasl_handshake_request("PLAIN")), "0005504c41494e");
        let mut w = Writer::new();
        w.i16(33)
            .i32(2)
            .string("SCRAM-SHA-256")
            .string("SCRAM-SHA-512");
        let (error, mechanisms) = parse_sasl_handshake(&w.into_bytes()).unwrap();
        assert_eq!((error, mechanisms.len()), (33, 2));
        let mut w = Writer::new();
        w.i16(58)
            .nullable_string(Some("bad password"))
            .bytes(b"")
            .i64(0);
        let answer = parse_sasl_authenticate(&w.into_bytes()).unwrap();
        assert_eq!(answer.error, 58);
        assert_eq!(answer.message.as_deref(), Some("bad password"));
    }
}
