//! Human durations in requests: `30s`, `15m`, `1h`, `7d`, `2w`, and the spelled-out forms
//! `1 hour`, `30 days` of the integration-platform reference.

use super::ApiError;

/// Parse `text` into milliseconds; the error names `field`.
pub fn parse_duration_ms(field: &str, text: &str) -> Result<i64, ApiError> {
    let err = || {
        ApiError::bad_request(format!(
            "{field}: `{text}` is not a duration like 30s, 15m, 1h, 7d or `1 hour`"
        ))
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let n: i64 = text[..split].parse().map_err(|_| err())?;
    let unit_ms = match text[split..].trim().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(unit_ms).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_spelled_out_forms() {
        assert_eq!(parse_duration_ms("age", "1 hour").unwrap(), 3_600_000);
        assert_eq!(parse_duration_ms("age", "30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_duration_ms("age", "0s").unwrap(), 0);
        let err = parse_duration_ms("maxAge", "soon").unwrap_err();
        assert!(err.message().starts_with("maxAge:"), "{}", err.message());
        assert!(parse_duration_ms("maxAge", "5 fortnights").is_err());
    }
}
