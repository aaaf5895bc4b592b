//! MQTT 3.1.1 packets a publisher needs: CONNECT/CONNACK, PUBLISH (QoS 0 and 1),
//! PUBACK, PINGREQ/PINGRESP, DISCONNECT.

/// CONNACK.
pub const CONNACK: u8 = 0x20;
/// PUBACK.
pub const PUBACK: u8 = 0x40;
/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// PINGRESP.
pub const PINGRESP: u8 = 0xD0;

/// The variable-length "remaining length".
pub fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// CONNECT with a clean session.
pub fn connect(
    client_id: &str,
    keep_alive_s: u16,
    user: Option<&str>,
    password: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session
    if user.is_some() {
        flags |= 0x80;
    }
    if password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive_s.to_be_bytes());
    string(client_id.as_bytes(), &mut body);
    if let Some(user) = user {
        string(user.as_bytes(), &mut body);
    }
    if let Some(password) = password {
        string(password.as_bytes(), &mut body);
    }
    packet(0x10, &body)
}

/// PUBLISH; `packet_id` is required for QoS 1.
pub fn publish(topic: &str, payload: &[u8], qos: u8, retain: bool, packet_id: u16) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + topic.len() + 4);
    string(topic.as_bytes(), &mut body);
    if qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// Why a CONNACK refused the connection, and whether that is the configuration's fault.
pub fn connack_refusal(code: u8) -> Option<(&'static str, bool)> {
    Some(match code {
        0 => return None,
        1 => ("unacceptable protocol version", true),
        2 => ("client identifier rejected", true),
        3 => ("server unavailable", false),
        4 => ("bad user name or password", true),
        5 => ("not authorized", true),
        _ => ("unknown refusal", false),
    })
}

/// Whether `topic` can be published to: non-empty, at most 65535 bytes, no wildcards,
/// no NUL.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 65_535 && !topic.contains(['+', '#', '\0'])
}

/// Packet ids run 1..=65535.
pub fn next_packet_id(id: u16) -> u16 {
    if id == u16::MAX {
        1
    } else {
        id + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_encoding() {
        for (n, bytes) in [
            (0usize, vec![0x00]),
            (127, vec![0x7F]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xFF, 0x7F]),
            (16_384, vec![0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            remaining_length(n, &mut out);
            assert_eq!(out, bytes, "{n}");
        }
    }

    #[test]
    fn connect_packet() {
        let p = connect("cid", 60, Some("u"), Some("pw"));
        assert_eq!(p[0], 0x10);
        assert_eq!(p[1] as usize, p.len() - 2);
        assert_eq!(&p[2..8], b"\x00\x04MQTT");
        assert_eq!(p[8], 4);
        assert_eq!(p[9], 0xC2);
        assert_eq!(&p[10..12], &[0, 60]);
        assert!(p.ends_with(b"\x00\x03cid\x00\x01u\x00\x02pw"));
    }

    #[test]
    fn publish_packets() {
        let p = publish("a/b", b"{}", 1, false, 7);
        assert_eq!(p, b"\x32\x09\x00\x03a/b\x00\x07{}".to_vec());
        let p = publish("a/b", b"{}", 0, true, 0);
        assert_eq!(p, b"\x31\x07\x00\x03a/b{}".to_vec());
        assert_eq!(next_packet_id(u16::MAX), 1);
        assert!(!valid_topic("a/+/b") && !valid_topic("") && valid_topic("orders.paid"));
        assert_eq!(
            connack_refusal(4),
            Some(("bad user name or password", true))
        );
        assert_eq!(connack_refusal(0), None);
    }
}
