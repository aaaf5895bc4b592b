//! The current time (host wall clock, `wasi:clocks/wall-clock`) and RFC 3339 parsing.
//!
//! Outside the host (native tests) the system clock stands in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time.
pub fn now() -> SystemTime {
    UNIX_EPOCH + since_epoch()
}

/// The current time in Unix milliseconds.
pub fn unix_millis() -> u64 {
    since_epoch().as_millis().min(u128::from(u64::MAX)) as u64
}

/// The current time in Unix seconds.
pub fn unix_seconds() -> u64 {
    since_epoch().as_secs()
}

#[cfg(target_arch = "wasm32")]
fn since_epoch() -> Duration {
    let now = crate::bindings::wall_clock::now();
    Duration::new(now.seconds, now.nanoseconds)
}

#[cfg(not(target_arch = "wasm32"))]
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `...12:00:00.5+02:00`) into Unix
/// milliseconds; `None` if it is not one (or before 1970).
///
/// ```
/// use outrider_sdk::time::parse_rfc3339;
///
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500));
/// assert_eq!(parse_rfc3339("2024-02-29T01:00:00+01:00"), Some(1_709_164_800_000));
/// assert_eq!(parse_rfc3339("yesterday"), None);
/// ```
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(range)?).ok()?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &text.trim()[start..i.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    let ms = seconds.checked_mul(1000)?.checked_add(millis)?;
    u64::try_from(ms).ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2015-10-21T07:28:00Z"),
            Some(1_445_412_480_000)
        );
        assert_eq!(
            parse_rfc3339("2015-10-21T09:28:00+02:00"),
            Some(1_445_412_480_000)
        );
        assert_eq!(
            parse_rfc3339("2015-10-21T05:28:00-02:00"),
            Some(1_445_412_480_000)
        );
        assert_eq!(
            parse_rfc3339("2015-10-21t07:28:00.123456z"),
            Some(1_445_412_480_123)
        );
        assert_eq!(
            parse_rfc3339("2015-10-21 07:28:00.1Z"),
            Some(1_445_412_480_100)
        );
        assert_eq!(
            parse_rfc3339("2100-03-01T00:00:00Z"),
            Some(4_107_542_400_000)
        );
        for bad in [
            "",
            "2015-10-21",
            "2015-10-21T07:28:00",
            "2015-13-21T07:28:00Z",
            "2015-02-29T07:28:00Z",
            "2015-10-21T24:28:00Z",
            "2015-10-21T07:28:00.Z",
            "2015-10-21T07:28:00+0200",
            "1969-12-31T23:59:59Z",
            "2015-10-21T07:28:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn native_clock_is_sane() {
        assert!(unix_seconds() > 1_600_000_000);
        assert!(now() > UNIX_EPOCH);
    }
}
