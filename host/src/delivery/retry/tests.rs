//! Tests of `retry`.

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
