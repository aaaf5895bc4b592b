//! UTC calendar fields from Unix time, and the formats AWS and the key templates use
//! (`20150830T123600Z`, RFC 3339).

/// A UTC date and time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year, e.g. 2024.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
    /// Millisecond, 0..=999.
    pub millis: u32,
    /// The same instant in Unix milliseconds.
    pub unix_ms: u64,
}

impl DateTime {
    /// The UTC calendar fields of `unix_ms` (Unix milliseconds).
    pub fn from_unix_millis(unix_ms: u64) -> Self {
        let secs = unix_ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            millis: (unix_ms % 1000) as u32,
            unix_ms,
        }
    }

    /// The UTC calendar fields of `unix_seconds`.
    pub fn from_unix_seconds(unix_seconds: u64) -> Self {
        Self::from_unix_millis(unix_seconds.saturating_mul(1000))
    }

    /// Unix seconds.
    pub fn unix_seconds(&self) -> u64 {
        self.unix_ms / 1000
    }

    /// SigV4's `X-Amz-Date`: `20150830T123600Z`.
    pub fn amz_date(&self) -> String {
        format!(
            "{}T{:02}{:02}{:02}Z",
            self.amz_day(),
            self.hour,
            self.minute,
            self.second
        )
    }

    /// SigV4's credential scope date: `20150830`.
    pub fn amz_day(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `2015-08-30`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `2015-08-30T12:36:00` (no zone).
    pub fn datetime(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}",
            self.date(),
            self.hour,
            self.minute,
            self.second
        )
    }

    /// RFC 3339 in whole seconds: `2015-08-30T12:36:00Z`.
    pub fn rfc3339(&self) -> String {
        format!("{}Z", self.datetime())
    }

    /// RFC 3339 with the fraction trimmed of trailing zeros, as Go's `RFC3339Nano`
    /// formats it: `2015-08-30T12:36:00.5Z`, or `...:00Z` on a whole second.
    pub fn rfc3339_nano(&self) -> String {
        if self.millis == 0 {
            return self.rfc3339();
        }
        let fraction = format!("{:03}", self.millis);
        format!("{}.{}Z", self.datetime(), fraction.trim_end_matches('0'))
    }

    /// RFC 3339 with milliseconds: `2015-08-30T12:36:00.000Z`.
    pub fn rfc3339_millis(&self) -> String {
        format!("{}.{:03}Z", self.datetime(), self.millis)
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        // 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
        let t = DateTime::from_unix_seconds(1_440_938_160);
        assert_eq!(t.amz_date(), "20150830T123600Z");
        assert_eq!(t.amz_day(), "20150830");
        assert_eq!(t.rfc3339(), "2015-08-30T12:36:00Z");
        assert_eq!(t.rfc3339_nano(), "2015-08-30T12:36:00Z");
        let t = DateTime::from_unix_millis(1_440_938_160_120);
        assert_eq!(t.rfc3339_nano(), "2015-08-30T12:36:00.12Z");
        assert_eq!(t.rfc3339_millis(), "2015-08-30T12:36:00.120Z");
        assert_eq!(t.datetime(), "2015-08-30T12:36:00");
        assert_eq!(t.unix_seconds(), 1_440_938_160);
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(
            DateTime::from_unix_seconds(0).rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        // Leap day and the day after.
        assert_eq!(
            DateTime::from_unix_seconds(1_709_164_800).rfc3339(),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            DateTime::from_unix_seconds(1_709_251_199).rfc3339(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            DateTime::from_unix_seconds(4_107_542_400).rfc3339(),
            "2100-03-01T00:00:00Z"
        );
        assert_eq!(
            DateTime::from_unix_seconds(951_782_400).rfc3339(),
            "2000-02-29T00:00:00Z"
        );
    }
}
