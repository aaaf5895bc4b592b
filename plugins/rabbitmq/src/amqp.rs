//! The slice of AMQP 0-9-1 a publisher with confirms needs: frames, field tables, the
//! connection and channel handshake methods, `basic.publish` with its content header and
//! body, and the broker's answers (`basic.ack`/`nack`, `channel.close`,
//! `connection.close`).

use std::collections::BTreeMap;

/// Sent before anything else.
pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";
const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
/// Heartbeat frames (ignored: we ask for none).
pub const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// Bytes of a frame around its payload.
pub const FRAME_OVERHEAD: usize = 8;

/// (class, method) ids.
pub mod ids {
    /// connection.start
    pub const CONNECTION_START: (u16, u16) = (10, 10);
    /// connection.start-ok
    pub const CONNECTION_START_OK: (u16, u16) = (10, 11);
    /// connection.tune
    pub const CONNECTION_TUNE: (u16, u16) = (10, 30);
    /// connection.tune-ok
    pub const CONNECTION_TUNE_OK: (u16, u16) = (10, 31);
    /// connection.open
    pub const CONNECTION_OPEN: (u16, u16) = (10, 40);
    /// connection.open-ok
    pub const CONNECTION_OPEN_OK: (u16, u16) = (10, 41);
    /// connection.close
    pub const CONNECTION_CLOSE: (u16, u16) = (10, 50);
    /// channel.open
    pub const CHANNEL_OPEN: (u16, u16) = (20, 10);
    /// channel.open-ok
    pub const CHANNEL_OPEN_OK: (u16, u16) = (20, 11);
    /// channel.close
    pub const CHANNEL_CLOSE: (u16, u16) = (20, 40);
    /// basic.publish
    pub const BASIC_PUBLISH: (u16, u16) = (60, 40);
    /// basic.return
    pub const BASIC_RETURN: (u16, u16) = (60, 50);
    /// basic.ack
    pub const BASIC_ACK: (u16, u16) = (60, 80);
    /// basic.nack
    pub const BASIC_NACK: (u16, u16) = (60, 120);
    /// confirm.select
    pub const CONFIRM_SELECT: (u16, u16) = (85, 10);
    /// confirm.select-ok
    pub const CONFIRM_SELECT_OK: (u16, u16) = (85, 11);
}

/// A frame as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Channel.
    pub channel: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The (class, method) of a method frame.
    pub fn method(&self) -> Option<(u16, u16)> {
        if self.kind != FRAME_METHOD || self.payload.len() < 4 {
            return None;
        }
        let p = &self.payload;
        Some((
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ))
    }

    /// Arguments of a method frame.
    pub fn args(&self) -> Reader<'_> {
        Reader {
            bytes: self.payload.get(4..).unwrap_or_default(),
        }
    }
}

/// Parse the 7-byte frame header: (type, channel, payload size).
pub fn frame_header(bytes: &[u8]) -> (u8, u16, usize) {
    (
        bytes[0],
        u16::from_be_bytes([bytes[1], bytes[2]]),
        u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]) as usize,
    )
}

/// Whether the byte after a payload is the frame end marker.
pub fn is_frame_end(byte: u8) -> bool {
    byte == FRAME_END
}

/// Reads method arguments.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    /// `short` (u16).
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// `long` (u32).
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `longlong` (u64).
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_be_bytes(a)
        })
    }

    /// `octet`.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// `shortstr`.
    pub fn short_str(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        self.take(n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Builds method arguments and frames.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// Method payload starting with (class, method).
    pub fn method((class, method): (u16, u16)) -> Self {
        let mut w = Writer::default();
        w.u16(class).u16(method);
        w
    }

    /// `octet`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    /// `short`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `long`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `longlong`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `shortstr` (cut at 255 bytes on a character boundary).
    pub fn short_str(&mut self, s: &str) -> &mut Self {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u8(end as u8);
        self.bytes.extend_from_slice(&s.as_bytes()[..end]);
        self
    }

    /// `longstr`.
    pub fn long_str(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.bytes.extend_from_slice(s);
        self
    }

    /// A field table.
    pub fn table(&mut self, table: &Table) -> &mut Self {
        let mut inner = Writer::default();
        for (key, value) in &table.0 {
            inner.short_str(key);
            match value {
                Value::Str(s) => {
                    inner.u8(b'S').long_str(s.as_bytes());
                }
                Value::Bool(b) => {
                    inner.u8(b't').u8(u8::from(*b));
                }
                Value::Table(t) => {
                    inner.u8(b'F').table(t);
                }
            }
        }
        self.long_str(&inner.bytes)
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A field table value (the kinds a publisher sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `S` long string.
    Str(String),
    /// `t` boolean.
    Bool(bool),
    /// `F` nested table.
    Table(Table),
}

/// A field table, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table(pub BTreeMap<String, Value>);

/// One frame on `channel`.
pub fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + FRAME_OVERHEAD);
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
    out
}

/// A method frame.
pub fn method_frame(channel: u16, method: Writer) -> Vec<u8> {
    frame(FRAME_METHOD, channel, &method.into_bytes())
}

/// `connection.start-ok` with PLAIN credentials. Asks the broker to answer a failed
/// login with `connection.close` (403) instead of just dropping the socket.
pub fn start_ok(user: &str, password: &str) -> Vec<u8> {
    let mut capabilities = Table::default();
    for cap in [
        "authentication_failure_close",
        "publisher_confirms",
        "connection.blocked",
    ] {
        capabilities.0.insert(cap.into(), Value::Bool(true));
    }
    let mut props = Table::default();
    props
        .0
        .insert("product".into(), Value::Str("outrider".into()));
    props
        .0
        .insert("capabilities".into(), Value::Table(capabilities));
    let mut response = Vec::with_capacity(user.len() + password.len() + 2);
    response.push(0);
    response.extend_from_slice(user.as_bytes());
    response.push(0);
    response.extend_from_slice(password.as_bytes());
    let mut w = Writer::method(ids::CONNECTION_START_OK);
    w.table(&props)
        .short_str("PLAIN")
        .long_str(&response)
        .short_str("en_US");
    method_frame(0, w)
}

/// Settings agreed in `connection.tune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tune {
    /// Highest channel number.
    pub channel_max: u16,
    /// Largest frame, overhead included.
    pub frame_max: u32,
}

/// Our answer to the broker's `connection.tune` arguments: its channel limit, its frame
/// limit capped at 128 KiB, and no heartbeats (pooled connections are checked for life
/// by the host before reuse instead).
pub fn negotiate(args: &mut Reader<'_>) -> Option<Tune> {
    let channel_max = args.u16()?;
    let frame_max = args.u32()?;
    let wanted = 128 * 1024;
    Some(Tune {
        channel_max,
        frame_max: if frame_max == 0 {
            wanted
        } else {
            frame_max.min(wanted)
        },
    })
}

/// `connection.tune-ok`.
pub fn tune_ok(tune: Tune) -> Vec<u8> {
    let mut w = Writer::method(ids::CONNECTION_TUNE_OK);
    w.u16(tune.channel_max).u32(tune.frame_max).u16(0);
    method_frame(0, w)
}

/// `connection.open` of `vhost`.
pub fn open(vhost: &str) -> Vec<u8> {
    let mut w = Writer::method(ids::CONNECTION_OPEN);
    w.short_str(vhost).short_str("").u8(0);
    method_frame(0, w)
}

/// `channel.open`.
pub fn channel_open(channel: u16) -> Vec<u8> {
    let mut w = Writer::method(ids::CHANNEL_OPEN);
    w.short_str("");
    method_frame(channel, w)
}

/// `confirm.select` (wait for `select-ok`).
pub fn confirm_select(channel: u16) -> Vec<u8> {
    let mut w = Writer::method(ids::CONFIRM_SELECT);
    w.u8(0);
    method_frame(channel, w)
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Exchange (`""` is the default exchange).
    pub exchange: &'a str,
    /// Routing key.
    pub routing_key: &'a str,
    /// Headers.
    pub headers: Table,
    /// `message-id` property.
    pub message_id: &'a str,
    /// `timestamp` property, Unix seconds.
    pub timestamp: u64,
    /// Body.
    pub body: &'a [u8],
}

/// `basic.publish`, its content header and body frames (split to fit `frame_max`), as one
/// buffer. Messages are persistent (`delivery-mode` 2) JSON.
pub fn publish(channel: u16, frame_max: u32, message: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.body.len() + 512);
    let mut w = Writer::method(ids::BASIC_PUBLISH);
    w.u16(0)
        .short_str(message.exchange)
        .short_str(message.routing_key)
        .u8(0);
    out.extend(method_frame(channel, w));

    // content-type (bit 15), headers (13), delivery-mode (12), message-id (7),
    // timestamp (6), in that order.
    let flags: u16 = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 7) | (1 << 6);
    let mut h = Writer::default();
    h.u16(60).u16(0).u64(message.body.len() as u64).u16(flags);
    h.short_str("application/json")
        .table(&message.headers)
        .u8(2)
        .short_str(message.message_id)
        .u64(message.timestamp);
    out.extend(frame(FRAME_HEADER, channel, &h.into_bytes()));

    let chunk = (frame_max as usize)
        .saturating_sub(FRAME_OVERHEAD)
        .max(1024);
    for part in message.body.chunks(chunk) {
        out.extend(frame(FRAME_BODY, channel, part));
    }
    out
}

/// A `connection.close` or `channel.close` reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// AMQP reply code (320 connection forced, 403 access refused, 404 not found, ...).
    pub code: u16,
    /// Reply text.
    pub text: String,
}

/// The reason in a `*.close` method's arguments.
pub fn close_reason(frame: &Frame) -> Close {
    let mut args = frame.args();
    Close {
        code: args.u16().unwrap_or(0),
        text: args.short_str().unwrap_or_default(),
    }
}

/// Delivery tag and `multiple` flag of a `basic.ack`/`basic.nack`.
pub fn ack_args(frame: &Frame) -> Option<(u64, bool)> {
    let mut args = frame.args();
    let tag = args.u64()?;
    let bits = args.u8()?;
    Some((tag, bits & 1 == 1))
}

/// What the channel state stored with a pooled connection says: frame size, and the
/// delivery tag the next publish on channel 1 gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelState {
    /// Largest frame the broker accepts.
    pub frame_max: u32,
    /// Delivery tag of the next publish (confirms count from 1).
    pub next_tag: u64,
}

impl ChannelState {
    /// As stored in the session blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&self.frame_max.to_be_bytes());
        out.extend_from_slice(&self.next_tag.to_be_bytes());
        out
    }

    /// From the session blob; `None` if it is not ours.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader { bytes };
        let state = ChannelState {
            frame_max: r.u32()?,
            next_tag: r.u64()?,
        };
        r.bytes.is_empty().then_some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (kind, channel, size) = frame_header(rest);
            assert!(is_frame_end(rest[7 + size]));
            frames.push(Frame {
                kind,
                channel,
                payload: rest[7..7 + size].to_vec(),
            });
            rest = &rest[8 + size..];
        }
        frames
    }

    #[test]
    fn start_ok_carries_plain_credentials_and_capabilities() {
        let frames = parse(&start_ok("guest", "pw"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].method(), Some(ids::CONNECTION_START_OK));
        let p = &frames[0].payload;
        let needle = b"\0guest\0pw";
        assert!(p.windows(needle.len()).any(|w| w == needle));
        assert!(p.windows(5).any(|w| w == b"PLAIN"));
        let cap = b"authentication_failure_close";
        assert!(p.windows(cap.len()).any(|w| w == cap));
    }

    #[test]
    fn publish_splits_body_into_frames() {
        let body = vec![b'x'; 5000];
        let mut headers = Table::default();
        headers
            .0
            .insert("topic".into(), Value::Str("order.paid".into()));
        let msg = Message {
            exchange: "events",
            routing_key: "order.paid",
            headers,
            message_id: "evt_1",
            timestamp: 1_700_000_000,
            body: &body,
        };
        let frames = parse(&publish(1, 4096, &msg));
        assert_eq!(frames[0].method(), Some(ids::BASIC_PUBLISH));
        let mut args = frames[0].args();
        assert_eq!(args.u16(), Some(0));
        assert_eq!(args.short_str().as_deref(), Some("events"));
        assert_eq!(args.short_str().as_deref(), Some("order.paid"));
        assert_eq!(frames[1].kind, FRAME_HEADER);
        let mut header = Reader {
            bytes: &frames[1].payload,
        };
        assert_eq!(header.u16(), Some(60));
        assert_eq!(header.u16(), Some(0));
        assert_eq!(header.u64(), Some(5000));
        let bodies: Vec<_> = frames[2..].iter().collect();
        assert_eq!(bodies.len(), 2);
        assert!(bodies
            .iter()
            .all(|f| f.kind == FRAME_BODY && f.channel == 1));
        assert_eq!(bodies.iter().map(|f| f.payload.len()).sum::<usize>(), 5000);
        assert_eq!(bodies[0].payload.len(), 4096 - FRAME_OVERHEAD);
    }

    #[test]
    fn tune_caps_frame_size_and_session_state_round_trips() {
        let mut w = Writer::default();
        w.u16(2047).u32(0).u16(60);
        let bytes = w.into_bytes();
        let tune = negotiate(&mut Reader { bytes: &bytes }).unwrap();
        assert_eq!(tune.frame_max, 128 * 1024);
        let state = ChannelState {
            frame_max: 4096,
            next_tag: 42,
        };
        assert_eq!(ChannelState::decode(&state.encode()), Some(state));
        assert_eq!(ChannelState::decode(b"junk"), None);
    }

    #[test]
    fn close_and_ack_arguments() {
        let mut w = Writer::method(ids::CHANNEL_CLOSE);
        w.u16(404)
            .short_str("NOT_FOUND - no exchange 'x'")
            .u16(60)
            .u16(40);
        let f = Frame {
            kind: FRAME_METHOD,
            channel: 1,
            payload: w.into_bytes(),
        };
        assert_eq!(close_reason(&f).code, 404);
        let mut w = Writer::method(ids::BASIC_ACK);
        w.u64(7).u8(1);
        let f = Frame {
            kind: FRAME_METHOD,
            channel: 1,
            payload: w.into_bytes(),
        };
        assert_eq!(ack_args(&f), Some((7, true)));
    }
}
