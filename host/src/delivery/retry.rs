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
mod tests;
