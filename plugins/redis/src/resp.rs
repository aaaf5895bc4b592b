//! RESP2, the Redis wire protocol: commands as arrays of bulk strings, and the replies a
//! publisher sees (simple strings, errors, integers, bulk strings, arrays).

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$n` bytes, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

/// Encode one command.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the reply's bytes come from.
pub trait Source {
    /// Read failures; malformed replies become one too.
    type Error: From<String>;
    /// The next line, without `\r\n`.
    fn line(&mut self) -> Result<Vec<u8>, Self::Error>;
    /// Exactly `n` bytes.
    fn exact(&mut self, n: usize) -> Result<Vec<u8>, Self::Error>;
}

fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed RESP number `{}`", String::from_utf8_lossy(text)))
}

/// Read one reply.
pub fn read<S: Source>(source: &mut S) -> Result<Reply, S::Error> {
    read_depth(source, 0)
}

fn read_depth<S: Source>(source: &mut S, depth: usize) -> Result<Reply, S::Error> {
    if depth > 8 {
        return Err(String::from("RESP reply nested too deeply").into());
    }
    let line = source.line()?;
    let (&kind, rest) = line
        .split_first()
        .ok_or_else(|| String::from("empty RESP line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    Ok(match kind {
        b'+' => Reply::Simple(text()),
        b'-' => Reply::Error(text()),
        b':' => Reply::Integer(number(rest)?),
        b'$' => match number(rest)? {
            n if n < 0 => Reply::Bulk(None),
            n => {
                let mut bytes = source.exact(n as usize + 2)?;
                bytes.truncate(n as usize);
                Reply::Bulk(Some(bytes))
            }
        },
        b'*' => match number(rest)? {
            n if n < 0 => Reply::Array(None),
            n => {
                let mut items = Vec::with_capacity((n as usize).min(64));
                for _ in 0..n {
                    items.push(read_depth(source, depth + 1)?);
                }
                Reply::Array(Some(items))
            }
        },
        other => return Err(format!("unknown RESP reply type `{}`", other as char).into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes(Vec<u8>);

    impl Source for Bytes {
        type Error = String;
        fn line(&mut self) -> Result<Vec<u8>, String> {
            let at = self.0.windows(2).position(|w| w == b"\r\n").ok_or("eof")?;
            let rest = self.0.split_off(at + 2);
            let mut line = std::mem::replace(&mut self.0, rest);
            line.truncate(at);
            Ok(line)
        }
        fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
            if self.0.len() < n {
                return Err("eof".into());
            }
            let rest = self.0.split_off(n);
            Ok(std::mem::replace(&mut self.0, rest))
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&["XADD", "s", "*", "data", "{\"a\":1}"]),
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$4\r\ndata\r\n$7\r\n{\"a\":1}\r\n".to_vec()
        );
    }

    #[test]
    fn replies() {
        let mut src = Bytes(
            b"+OK\r\n-WRONGPASS invalid\r\n:3\r\n$5\r\n1-0\r\n\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n"
                .to_vec(),
        );
        assert_eq!(read(&mut src).unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            read(&mut src).unwrap(),
            Reply::Error("WRONGPASS invalid".into())
        );
        assert_eq!(read(&mut src).unwrap(), Reply::Integer(3));
        assert_eq!(
            read(&mut src).unwrap(),
            Reply::Bulk(Some(b"1-0\r\n".to_vec()))
        );
        assert_eq!(read(&mut src).unwrap(), Reply::Bulk(None));
        assert_eq!(
            read(&mut src).unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Bulk(Some(b"x".to_vec()))
            ]))
        );
        assert!(read(&mut Bytes(b"?x\r\n".to_vec())).is_err());
    }
}
