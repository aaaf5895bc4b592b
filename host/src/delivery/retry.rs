//! When to try a delivery again: the retry schedule (`OUTRIDER_RETRY_SCHEDULE` or
//! exponential backoff), jitter, `Retry-After`, and the policy deciding between retrying
//! and giving up for each kind of attempt outcome.
//!
//! Attempts are numbered from 1. After attempt `n` fails, the delay before attempt `n + 1`
//! is the schedule's `n`-th delay, scaled by a random factor between `0.8` and `1.2`
//! (±20 % jitter, [`JITTER`]) so that destinations recovering from an outage are not hit
//! by every retry at once, and never shorter than the destination's `Retry-After`. No
//! delay is ever longer than [`MAX_DELAY`] (24 h), whatever `Retry-After` asks for.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

/// Relative jitter applied to every scheduled delay: ±20 %.
pub const JITTER: f64 = 0.2;

/// Upper bound of any delay, `Retry-After` included.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The delays between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrySchedule {
    /// Delays from a list such as `30s,1m,5m,1h`: the `n`-th delay follows the `n`-th
    /// failed attempt, so the list allows `len + 1` attempts in all. Past its end (when a
    /// policy allows more attempts) the last delay repeats.
    Fixed(Vec<Duration>),
    /// Exponential backoff.
    Exponential(ExponentialBackoff),
}

/// Exponential backoff: `base * factor^(n - 1)` after the `n`-th failed attempt, at most
/// `cap`, for up to `max_attempts` attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    /// Delay after the first failed attempt (default 5 s).
    pub base: Duration,
    /// Growth per attempt (default 2).
    pub factor: u32,
    /// Longest delay, jitter included (default 1 h).
    pub cap: Duration,
    /// Attempts in all, the first one included (default 10).
    pub max_attempts: u32,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        ExponentialBackoff {
            base: Duration::from_secs(5),
            factor: 2,
            cap: Duration::from_secs(60 * 60),
            max_attempts: 10,
        }
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::Exponential(ExponentialBackoff::default())
    }
}

/// A retry schedule string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryScheduleError {
    /// Nothing but whitespace.
    #[error("retry schedule is empty")]
    Empty,
    /// One comma-separated item is wrong.
    #[error("retry schedule item {position} (`{item}`): {reason}")]
    Item {
        /// Position of the item, from 1.
        position: usize,
        /// The item as written.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RetrySchedule {
    /// Parses a comma-separated list of delays such as `30s,1m,5m,1h`. Each delay is one or
    /// more `<integer><unit>` groups (`500ms`, `2h30m`), with units `ms`, `s`, `m`, `h`
    /// and `d`; each must be above zero and at most 24 h.
    pub fn parse(text: &str) -> Result<RetrySchedule, RetryScheduleError> {
        if text.trim().is_empty() {
            return Err(RetryScheduleError::Empty);
        }
        text.split(',')
            .enumerate()
            .map(|(i, item)| {
                let item = item.trim();
                parse_delay(item).map_err(|reason| RetryScheduleError::Item {
                    position: i + 1,
                    item: item.to_owned(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule::Fixed)
    }

    /// Attempts this schedule allows in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        match self {
            RetrySchedule::Fixed(delays) => u32::try_from(delays.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1),
            RetrySchedule::Exponential(backoff) => backoff.max_attempts,
        }
    }

    /// The delay after failed attempt `attempt` before jitter and `Retry-After`. Attempt 0
    /// counts as 1; past the end of a fixed list its last delay repeats.
    pub fn scheduled_delay(&self, attempt: u32) -> Duration {
        let n = attempt.max(1);
        match self {
            RetrySchedule::Fixed(delays) => {
                let index = usize::try_from(n - 1)
                    .unwrap_or(usize::MAX)
                    .min(delays.len().saturating_sub(1));
                delays.get(index).copied().unwrap_or_default()
            }
            RetrySchedule::Exponential(backoff) => backoff
                .factor
                .checked_pow(n - 1)
                .and_then(|growth| backoff.base.checked_mul(growth))
                .map_or(backoff.cap, |delay| delay.min(backoff.cap)),
        }
    }

    /// The delay before the attempt after `attempt`, with jitter and `retry_after` applied
    /// (see the module documentation), regardless of how many attempts were made.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        let scheduled = self.scheduled_delay(attempt).min(MAX_DELAY);
        let mut delay = scheduled.mul_f64(rng.gen_range(1.0 - JITTER..=1.0 + JITTER));
        if let RetrySchedule::Exponential(backoff) = self {
            delay = delay.min(backoff.cap);
        }
        if let Some(minimum) = retry_after {
            delay = delay.max(minimum);
        }
        delay.min(MAX_DELAY)
    }

    /// The delay before the attempt after `attempt`, or `None` once the schedule's
    /// [`max_attempts`](Self::max_attempts) have been made.
    pub fn next_delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Option<Duration> {
        (attempt < self.max_attempts()).then(|| self.delay(attempt, retry_after, rng))
    }
}

impl FromStr for RetrySchedule {
    type Err = RetryScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RetrySchedule::parse(text)
    }
}

impl fmt::Display for RetrySchedule {
    /// A fixed schedule in the form [`RetrySchedule::parse`] reads; exponential backoff
    /// with its parameters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetrySchedule::Fixed(delays) => {
                let items: Vec<String> = delays.iter().map(|d| format_duration(*d)).collect();
                f.write_str(&items.join(","))
            }
            RetrySchedule::Exponential(b) => write!(
                f,
                "exponential (base {}, factor {}, cap {}, {} attempts)",
                format_duration(b.base),
                b.factor,
                format_duration(b.cap),
                b.max_attempts
            ),
        }
    }
}

const UNITS: [(&str, u64); 5] = [
    ("d", 24 * 60 * 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses one delay: `<integer><unit>` groups.
fn parse_delay(item: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a number and a unit, e.g. 30s, 500ms or 2h30m";
    if item.is_empty() {
        return Err("empty item".into());
    }
    let mut rest = item;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(EXPECTED.into());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!(
                "missing unit after {number} (use ms, s, m, h or d)"
            ));
        }
        let (_, factor) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| format!("unknown unit `{unit}` (use ms, s, m, h or d)"))?;
        total_ms = number
            .checked_mul(*factor)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "number too large".to_string())?;
        rest = &rest[unit_len..];
    }
    let delay = Duration::from_millis(total_ms);
    if delay.is_zero() {
        return Err("must be greater than zero".into());
    }
    if delay > MAX_DELAY {
        return Err("must be at most 24h".into());
    }
    Ok(delay)
}

/// Formats a duration as [`RetrySchedule::parse`] reads it (`1h30m`, `500ms`, `0s`),
/// dropping anything below a millisecond.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, factor) in UNITS {
        if ms >= factor {
            let _ = write!(out, "{}{unit}", ms / factor);
            ms %= factor;
        }
    }
    out
}

/// Reads an HTTP `Retry-After` value: delay seconds, or an HTTP date (a date already past
/// means no delay). `None` if it is neither.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(MAX_DELAY, Duration::from_secs));
    }
    let at = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// How a failed attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A transient failure; the destination may have said when to come back.
    Retry {
        /// The destination's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A permanent failure: retrying cannot help.
    Fail,
    /// The destination's configuration or credentials are wrong (or its network access
    /// is denied): retrying cannot help until someone changes them.
    Misconfigured,
    /// The plugin call itself failed: it timed out, trapped or hit a limit. Retried, as
    /// the next call may well succeed.
    Crash,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryIn(Duration),
    /// Stop trying; the delivery has failed.
    GiveUp(GiveUpReason),
}

/// Why a delivery is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The attempt failed permanently ([`Outcome::Fail`]).
    Permanent,
    /// The destination is misconfigured ([`Outcome::Misconfigured`]).
    Misconfigured,
    /// The event was published with `eligible_for_retry: false`.
    NotEligible,
    /// Every allowed attempt has been made.
    Exhausted,
}

/// Retry behaviour of deliveries: the schedule (global or a destination's override), an
/// optional attempt count overriding the schedule's, and the event's `eligible_for_retry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays between attempts.
    pub schedule: RetrySchedule,
    /// Attempts in all, overriding the schedule's own count when set.
    pub max_attempts: Option<u32>,
    /// False when the event was published with `eligible_for_retry: false`: only one
    /// automatic attempt is made.
    pub eligible_for_retry: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(RetrySchedule::default())
    }
}

impl RetryPolicy {
    /// A policy following `schedule`, with its own attempt count, for an event eligible
    /// for retries.
    pub fn new(schedule: RetrySchedule) -> Self {
        RetryPolicy {
            schedule,
            max_attempts: None,
            eligible_for_retry: true,
        }
    }

    /// The policy configured by `OUTRIDER_RETRY_SCHEDULE` and the attempt count: an empty
    /// schedule means exponential backoff with `max_attempts` attempts; a list of delays
    /// stops at its end or after `max_attempts` attempts, whichever comes first.
    pub fn from_config(schedule: &str, max_attempts: u32) -> Result<Self, RetryScheduleError> {
        if schedule.trim().is_empty() {
            return Ok(RetryPolicy::new(RetrySchedule::Exponential(
                ExponentialBackoff {
                    max_attempts,
                    ..ExponentialBackoff::default()
                },
            )));
        }
        let schedule = RetrySchedule::parse(schedule)?;
        let max_attempts = schedule.max_attempts().min(max_attempts);
        Ok(RetryPolicy {
            max_attempts: Some(max_attempts),
            ..RetryPolicy::new(schedule)
        })
    }

    /// This policy for an event published with `eligible_for_retry`.
    pub fn for_event(&self, eligible_for_retry: bool) -> Self {
        RetryPolicy {
            eligible_for_retry,
            ..self.clone()
        }
    }

    /// Attempts allowed in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
            .unwrap_or_else(|| self.schedule.max_attempts())
    }

    /// Decides what follows attempt number `attempt` (from 1) that failed with `outcome`.
    /// Transient failures and crashes are retried while attempts remain; permanent
    /// failures and misconfigurations never are.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        outcome: &Outcome,
        rng: &mut R,
    ) -> RetryDecision {
        let retry_after = match *outcome {
            Outcome::Fail => return RetryDecision::GiveUp(GiveUpReason::Permanent),
            Outcome::Misconfigured => return RetryDecision::GiveUp(GiveUpReason::Misconfigured),
            Outcome::Retry { retry_after } => retry_after,
            Outcome::Crash => None,
        };
        if !self.eligible_for_retry {
            RetryDecision::GiveUp(GiveUpReason::NotEligible)
        } else if attempt >= self.max_attempts() {
            RetryDecision::GiveUp(GiveUpReason::Exhausted)
        } else {
            RetryDecision::RetryIn(self.schedule.delay(attempt, retry_after, rng))
        }
    }

    /// The delay before the next attempt after attempt `attempt` failed with `outcome`, or
    /// `None` to give up (see [`decide`](Self::decide)).
    pub fn next_delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        outcome: &Outcome,
        rng: &mut R,
    ) -> Option<Duration> {
        match self.decide(attempt, outcome, rng) {
            RetryDecision::RetryIn(delay) => Some(delay),
            RetryDecision::GiveUp(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn within_jitter(delay: Duration, scheduled: Duration) -> bool {
        delay >= scheduled.mul_f64(1.0 - JITTER) && delay <= scheduled.mul_f64(1.0 + JITTER)
    }

    #[test]
    fn parses_lists_of_delays() {
        assert_eq!(
            RetrySchedule::parse("30s,1m,5m,1h").unwrap(),
            RetrySchedule::Fixed(vec![secs(30), secs(60), secs(300), secs(3600)])
        );
        assert_eq!(
            RetrySchedule::parse(" 500ms , 2h30m,1m30s ,1d").unwrap(),
            RetrySchedule::Fixed(vec![
                Duration::from_millis(500),
                secs(9000),
                secs(90),
                secs(86400)
            ])
        );
        assert_eq!(
            "1s".parse::<RetrySchedule>().unwrap(),
            RetrySchedule::Fixed(vec![secs(1)])
        );
    }

    #[test]
    fn errors_name_the_bad_item() {
        let err = |text: &str| RetrySchedule::parse(text).unwrap_err().to_string();
        assert_eq!(err(""), "retry schedule is empty");
        assert_eq!(err("  "), "retry schedule is empty");
        assert_eq!(err("30s,,1m"), "retry schedule item 2 (``): empty item");
        assert_eq!(
            err("30s,5x"),
            "retry schedule item 2 (`5x`): unknown unit `x` (use ms, s, m, h or d)"
        );
        assert_eq!(
            err("30"),
            "retry schedule item 1 (`30`): missing unit after 30 (use ms, s, m, h or d)"
        );
        assert_eq!(
            err("1m,s"),
            "retry schedule item 2 (`s`): expected a number and a unit, e.g. 30s, 500ms or 2h30m"
        );
        assert_eq!(
            err("1.5s"),
            "retry schedule item 1 (`1.5s`): unknown unit `.` (use ms, s, m, h or d)"
        );
        assert_eq!(
            err("-5s"),
            "retry schedule item 1 (`-5s`): expected a number and a unit, e.g. 30s, 500ms or 2h30m"
        );
        assert_eq!(
            err("1m,0s"),
            "retry schedule item 2 (`0s`): must be greater than zero"
        );
        assert_eq!(
            err("25h"),
            "retry schedule item 1 (`25h`): must be at most 24h"
        );
        assert_eq!(
            err("99999999999999999999s"),
            "retry schedule item 1 (`99999999999999999999s`): number too large"
        );
        assert_eq!(
            err("18446744073709551615d"),
            "retry schedule item 1 (`18446744073709551615d`): number too large"
        );
        assert_eq!(
            err("1 m"),
            "retry schedule item 1 (`1 m`): unknown unit ` m` (use ms, s, m, h or d)"
        );
    }

    #[test]
    fn display_round_trips() {
        let schedule = RetrySchedule::parse("500ms,30s,1m30s,2h30m,1d").unwrap();
        assert_eq!(schedule.to_string(), "500ms,30s,1m30s,2h30m,1d");
        assert_eq!(
            RetrySchedule::parse(&schedule.to_string()).unwrap(),
            schedule
        );
        assert_eq!(
            RetrySchedule::default().to_string(),
            "exponential (base 5s, factor 2, cap 1h, 10 attempts)"
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(format_duration(secs(3661)), "1h1m1s");
    }

    #[test]
    fn fixed_schedule_delays_and_attempts() {
        let schedule = RetrySchedule::parse("30s,1m,5m,1h").unwrap();
        assert_eq!(schedule.max_attempts(), 5);
        let expected = [secs(30), secs(60), secs(300), secs(3600)];
        for (i, scheduled) in expected.iter().enumerate() {
            let attempt = i as u32 + 1;
            assert_eq!(schedule.scheduled_delay(attempt), *scheduled);
            let delay = schedule.next_delay(attempt, None, &mut rng()).unwrap();
            assert!(
                within_jitter(delay, *scheduled),
                "attempt {attempt}: {delay:?}"
            );
        }
        assert_eq!(schedule.next_delay(5, None, &mut rng()), None);
        assert_eq!(schedule.next_delay(6, None, &mut rng()), None);
        // Past the list (a policy allowing more attempts), the last delay repeats.
        assert_eq!(schedule.scheduled_delay(9), secs(3600));
        assert_eq!(schedule.scheduled_delay(0), secs(30));
    }

    #[test]
    fn exponential_defaults() {
        let schedule = RetrySchedule::default();
        let RetrySchedule::Exponential(backoff) = schedule.clone() else {
            panic!()
        };
        assert_eq!(
            backoff,
            ExponentialBackoff {
                base: secs(5),
                factor: 2,
                cap: secs(3600),
                max_attempts: 10
            }
        );
        let scheduled: Vec<u64> = (1..=9)
            .map(|n| schedule.scheduled_delay(n).as_secs())
            .collect();
        assert_eq!(scheduled, [5, 10, 20, 40, 80, 160, 320, 640, 1280]);
        assert_eq!(schedule.max_attempts(), 10);
        assert!(schedule.next_delay(9, None, &mut rng()).is_some());
        assert_eq!(schedule.next_delay(10, None, &mut rng()), None);
    }

    #[test]
    fn exponential_is_capped_jitter_included() {
        let schedule = RetrySchedule::Exponential(ExponentialBackoff {
            max_attempts: 100,
            ..Default::default()
        });
        assert_eq!(schedule.scheduled_delay(11), secs(3600));
        assert_eq!(
            schedule.scheduled_delay(64),
            secs(3600),
            "overflowing growth stays at the cap"
        );
        assert_eq!(schedule.scheduled_delay(u32::MAX), secs(3600));
        let mut rng = rng();
        for attempt in 11..60 {
            let delay = schedule.next_delay(attempt, None, &mut rng).unwrap();
            assert!(delay <= secs(3600) && delay >= secs(2880), "{delay:?}");
        }
    }

    #[test]
    fn jitter_is_within_twenty_percent_and_deterministic_per_seed() {
        let schedule = RetrySchedule::parse("100s").unwrap();
        let mut rng = rng();
        let delays: Vec<Duration> = (0..1000)
            .map(|_| schedule.delay(1, None, &mut rng))
            .collect();
        assert!(delays.iter().all(|d| within_jitter(*d, secs(100))));
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(
            *min < secs(85) && *max > secs(115),
            "jitter spreads: {min:?}..{max:?}"
        );
        let again: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(7);
            (0..1000)
                .map(|_| schedule.delay(1, None, &mut rng))
                .collect()
        };
        assert_eq!(delays, again);
    }

    #[test]
    fn retry_after_is_a_minimum_and_capped() {
        let schedule = RetrySchedule::parse("10s").unwrap();
        assert_eq!(schedule.delay(1, Some(secs(600)), &mut rng()), secs(600));
        let short = schedule.delay(1, Some(secs(1)), &mut rng());
        assert!(within_jitter(short, secs(10)), "{short:?}");
        assert_eq!(
            schedule.delay(1, Some(secs(7 * 86400)), &mut rng()),
            MAX_DELAY
        );
        // Retry-After goes past the exponential cap, though not past MAX_DELAY.
        assert_eq!(
            RetrySchedule::default().delay(1, Some(secs(7200)), &mut rng()),
            secs(7200)
        );
    }

    #[test]
    fn retry_after_header_values() {
        let now = time::macros::datetime!(2024-06-01 12:00:00 UTC);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_DELAY)
        );
        assert_eq!(
            parse_retry_after("Sat, 01 Jun 2024 12:01:30 GMT", now),
            Some(secs(90))
        );
        assert_eq!(
            parse_retry_after("Sat, 01 Jun 2024 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn policy_retries_transient_outcomes_and_crashes_only() {
        let policy = RetryPolicy::new(RetrySchedule::parse("1m,2m").unwrap());
        let mut rng = rng();
        let give_up = |reason| RetryDecision::GiveUp(reason);
        assert_eq!(
            policy.decide(1, &Outcome::Fail, &mut rng),
            give_up(GiveUpReason::Permanent)
        );
        assert_eq!(
            policy.decide(1, &Outcome::Misconfigured, &mut rng),
            give_up(GiveUpReason::Misconfigured)
        );
        assert_eq!(policy.next_delay(1, &Outcome::Fail, &mut rng), None);
        for outcome in [Outcome::Retry { retry_after: None }, Outcome::Crash] {
            let delay = policy.next_delay(1, &outcome, &mut rng).unwrap();
            assert!(within_jitter(delay, secs(60)), "{outcome:?}: {delay:?}");
            let delay = policy.next_delay(2, &outcome, &mut rng).unwrap();
            assert!(within_jitter(delay, secs(120)), "{outcome:?}: {delay:?}");
            assert_eq!(
                policy.decide(3, &outcome, &mut rng),
                give_up(GiveUpReason::Exhausted)
            );
        }
        let polite = Outcome::Retry {
            retry_after: Some(secs(900)),
        };
        assert_eq!(
            policy.decide(1, &polite, &mut rng),
            RetryDecision::RetryIn(secs(900))
        );
    }

    #[test]
    fn policy_respects_eligibility_and_attempt_override() {
        let mut rng = rng();
        let not_eligible = RetryPolicy::default().for_event(false);
        assert_eq!(
            not_eligible.decide(1, &Outcome::Crash, &mut rng),
            RetryDecision::GiveUp(GiveUpReason::NotEligible)
        );
        assert!(RetryPolicy::default().for_event(true).eligible_for_retry);

        let fewer = RetryPolicy {
            max_attempts: Some(2),
            ..RetryPolicy::default()
        };
        assert_eq!(fewer.max_attempts(), 2);
        assert!(fewer.next_delay(1, &Outcome::Crash, &mut rng).is_some());
        assert_eq!(fewer.next_delay(2, &Outcome::Crash, &mut rng), None);

        // More attempts than a fixed list has delays: its last delay repeats.
        let more = RetryPolicy {
            max_attempts: Some(5),
            ..RetryPolicy::new(RetrySchedule::parse("1s,1m").unwrap())
        };
        let delay = more.next_delay(4, &Outcome::Crash, &mut rng).unwrap();
        assert!(within_jitter(delay, secs(60)));
        assert_eq!(more.next_delay(5, &Outcome::Crash, &mut rng), None);

        assert_eq!(RetryPolicy::default().max_attempts(), 10);
    }

    #[test]
    fn policy_from_configuration() {
        let exponential = RetryPolicy::from_config("", 4).unwrap();
        assert_eq!(exponential.max_attempts(), 4);
        let RetrySchedule::Exponential(backoff) = exponential.schedule else {
            panic!("an empty schedule means exponential backoff");
        };
        assert_eq!((backoff.base, backoff.max_attempts), (secs(5), 4));

        let listed = RetryPolicy::from_config("30s,1m,5m,1h", 10).unwrap();
        assert_eq!(listed.max_attempts(), 5, "a list stops at its end");
        assert_eq!(listed.schedule.scheduled_delay(4), secs(3600));
        let capped = RetryPolicy::from_config("30s,1m,5m,1h", 3).unwrap();
        assert_eq!(capped.max_attempts(), 3, "or at the configured attempts");

        let err = RetryPolicy::from_config("30s,soon", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "retry schedule item 2 (`soon`): expected a number and a unit, e.g. 30s, 500ms or 2h30m"
        );
    }
}
