//! Kafka's wire primitives: big-endian integers, length-prefixed strings and bytes,
//! zig-zag varints, CRC-32C, the v2 record batch (magic 2) a produce request carries, and
//! the murmur2 hash Java clients use to pick a key's partition.

/// Builds a request body.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// `INT8`.
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.push(v as u8);
        self
    }

    /// `INT16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `INT32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `INT64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `STRING`: `INT16` length, then UTF-8 (over-long strings are cut; callers
    /// validate lengths first).
    pub fn string(&mut self, s: &str) -> &mut Self {
        let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
        self.i16(bytes.len() as i16);
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `NULLABLE_STRING`: `-1` for none.
    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }

    /// `BYTES`: `INT32` length, then the bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.buf.extend_from_slice(b);
        self
    }

    /// Zig-zag `VARINT`.
    pub fn varint(&mut self, v: i32) -> &mut Self {
        self.unsigned_varint(((v << 1) ^ (v >> 31)) as u32 as u64)
    }

    /// Zig-zag `VARLONG`.
    pub fn varlong(&mut self, v: i64) -> &mut Self {
        self.unsigned_varint(((v << 1) ^ (v >> 63)) as u64)
    }

    fn unsigned_varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }

    /// Varint-length-prefixed bytes of a record field (`-1` for none).
    pub fn varint_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => {
                self.varint(b.len() as i32);
                self.raw(b)
            }
            None => self.varint(-1),
        }
    }

    /// Bytes as they are.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Reads a response body; every read fails cleanly on truncated input.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

/// A malformed response.
pub type ParseError = String;

impl<'a> Reader<'a> {
    /// Reads `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.bytes.len() < n {
            return Err("truncated Kafka response".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// `INT8` as a bool.
    pub fn bool(&mut self) -> Result<bool, ParseError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// `INT16`.
    pub fn i16(&mut self) -> Result<i16, ParseError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }

    /// `INT32`.
    pub fn i32(&mut self) -> Result<i32, ParseError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    /// `INT64`.
    pub fn i64(&mut self) -> Result<i64, ParseError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    /// `NULLABLE_STRING` (`STRING` reads the same, never null).
    pub fn nullable_string(&mut self) -> Result<Option<String>, ParseError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// `STRING`.
    pub fn string(&mut self) -> Result<String, ParseError> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }

    /// `NULLABLE_BYTES` / `BYTES`.
    pub fn bytes(&mut self) -> Result<Vec<u8>, ParseError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(len as usize)?.to_vec())
    }

    /// An `ARRAY` length (`-1`, null, reads as 0), bounded by the bytes left so that a
    /// corrupt count cannot make a caller allocate wildly.
    pub fn array_len(&mut self) -> Result<usize, ParseError> {
        let n = self.i32()?;
        let n = usize::try_from(n).unwrap_or(0);
        if n > self.bytes.len() {
            return Err("Kafka response array longer than the response".into());
        }
        Ok(n)
    }

    /// Skips an array of `INT32`s (replica lists).
    pub fn skip_i32_array(&mut self) -> Result<(), ParseError> {
        let n = self.array_len()?;
        self.take(n * 4).map(|_| ())
    }
}

/// CRC-32C (Castagnoli), the checksum of a v2 record batch.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const POLY: u32 = 0x82F6_3B78; // reflected 0x1EDC6F41
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Create time, Unix milliseconds.
    pub timestamp_ms: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub value: &'a [u8],
    /// Headers, in order.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// A v2 record batch holding `record` alone: no compression, create-time timestamps, no
/// idempotent producer (producer id, epoch and sequence -1).
pub fn record_batch(record: &Record<'_>) -> Vec<u8> {
    let mut body = Writer::new();
    body.i8(0) // record attributes
        .varlong(0) // timestamp delta
        .varint(0) // offset delta
        .varint_bytes(record.key)
        .varint_bytes(Some(record.value))
        .varint(record.headers.len() as i32);
    for (k, v) in &record.headers {
        body.varint_bytes(Some(k.as_bytes())).varint_bytes(Some(v));
    }
    let mut after_crc = Writer::new();
    after_crc
        .i16(0) // attributes: no compression, create time, not transactional
        .i32(0) // last offset delta
        .i64(record.timestamp_ms) // base timestamp
        .i64(record.timestamp_ms) // max timestamp
        .i64(-1) // producer id
        .i16(-1) // producer epoch
        .i32(-1) // base sequence
        .i32(1) // records
        .varint(body.len() as i32)
        .raw(&body.into_bytes());
    let after_crc = after_crc.into_bytes();
    let mut batch = Writer::new();
    batch
        .i64(0) // base offset (the broker assigns offsets)
        // length: leader epoch (4) + magic (1) + crc (4) + the rest
        .i32((4 + 1 + 4 + after_crc.len()) as i32)
        .i32(-1) // partition leader epoch
        .i8(2) // magic
        .raw(&crc32c(&after_crc).to_be_bytes())
        .raw(&after_crc);
    batch.into_bytes()
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed `0x9747b28c`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner gives a keyed record:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> i32 {
    if partitions == 0 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The standard check value and RFC 3720 (iSCSI) appendix B.4 vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
        assert_eq!(crc32c(b""), 0);
    }

    fn varint(v: i32) -> Vec<u8> {
        let mut w = Writer::new();
        w.varint(v);
        w.into_bytes()
    }

    #[test]
    fn zigzag_varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(-1), [0x01]);
        assert_eq!(varint(1), [0x02]);
        assert_eq!(varint(-2), [0x03]);
        assert_eq!(varint(63), [0x7e]);
        assert_eq!(varint(-64), [0x7f]);
        assert_eq!(varint(64), [0x80, 0x01]);
        assert_eq!(varint(300), [0xd8, 0x04]);
        assert_eq!(varint(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(varint(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut w = Writer::new();
        w.varlong(i64::MIN);
        assert_eq!(
            w.into_bytes(),
            [0xff; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
        assert!((0..3).contains(&partition_for_key(b"evt_1", 3)));
        assert_eq!(partition_for_key(b"x", 0), 0);
    }

    #[test]
    fn record_batch_matches_kafka_python_bytes() {
        // DefaultRecordBatchBuilder(magic=2, no compression, producer id/epoch/sequence
        // -1) from kafka-python 3.0.12 with the same record, appended at offset 0, except
        // the partition leader epoch (bytes 12..16): kafka-python writes 0, the Java
        // client -1 as here. The broker sets it, and the CRC does not cover it.
        let expected = "000000000000000000000064ffffffff02c76973980000000000000000018bcfe5687b\
                        0000018bcfe5687bffffffffffffffffffffffffffff00000001640000000a6576745f\
                        310e7b226e223a317d04106576656e742d69640a6576745f310a746f706963146f7264\
                        65722e70616964";
        let record = Record {
            timestamp_ms: 1_700_000_000_123,
            key: Some(b"evt_1"),
            value: br#"{"n":1}"#,
            headers: vec![("event-id", b"evt_1"), ("topic", b"order.paid")],
        };
        let hex: String = record_batch(&record)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn reader_rejects_truncated_and_oversized_input() {
        assert!(Reader::new(&[0, 1]).i32().is_err());
        assert!(Reader::new(&[0, 5, b'a']).string().is_err());
        assert!(Reader::new(&[0x7f, 0xff, 0xff, 0xff]).array_len().is_err());
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).array_len(), Ok(0));
        assert_eq!(Reader::new(&[0xff, 0xff]).nullable_string(), Ok(None));
    }
}
