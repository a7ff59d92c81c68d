//! When to try a failed delivery again: exponential backoff from `initial`,
//! doubling per attempt up to `max`, spread by up to a fifth (derived from the
//! delivery's id and attempt, so no clock or RNG is read and many deliveries
//! failing at once do not all come back at once), until `give_up_after` has
//! passed since the event; then the delivery is `failed` (and can be retried by
//! hand). With the defaults (10 s doubling to 15 min, 3 days) a receiver that is
//! down for an hour gets everything within minutes of coming back.

use std::hash::{Hash as _, Hasher as _};
use std::time::Duration;

/// The backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pause after the first failure.
    pub initial: Duration,
    /// Longest pause.
    pub max: Duration,
    /// Give up when the event is this old.
    pub give_up_after: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl RetryPolicy {
    /// The next attempt (Unix ms) after failed attempt number `attempt` (1 for the
    /// first) at `now`, of the delivery `id` whose event happened at `created_at`;
    /// `None`: give up.
    pub fn next_attempt(&self, id: &str, attempt: i64, created_at: i64, now: i64) -> Option<i64> {
        if now.saturating_sub(created_at) >= ms(self.give_up_after) {
            return None;
        }
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let pause = ms(self.initial)
            .saturating_mul(1 << doublings)
            .min(ms(self.max))
            .max(1);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (id, attempt).hash(&mut hasher);
        let spread =
            i64::try_from(hasher.finish() % (u64::try_from(pause / 5).unwrap_or(0) + 1)).unwrap_or(0);
        Some(now.saturating_add(pause).saturating_add(spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(900),
        give_up_after: Duration::from_secs(3 * 24 * 3600),
    };

    #[test]
    fn doubles_up_to_the_cap_with_a_bounded_spread() {
        let pauses: Vec<i64> = (1..=10)
            .map(|n| POLICY.next_attempt("d1", n, 0, 1_000).unwrap() - 1_000)
            .collect();
        for (n, pause) in pauses.iter().enumerate() {
            let base = (10_000i64 << n).min(900_000);
            assert!(
                (base..=base + base / 5).contains(pause),
                "attempt {}: {pause}",
                n + 1
            );
        }
        assert_ne!(
            POLICY.next_attempt("d1", 3, 0, 1_000),
            POLICY.next_attempt("d2", 3, 0, 1_000),
            "spread apart"
        );
        assert_eq!(
            POLICY.next_attempt("d1", 3, 0, 1_000),
            POLICY.next_attempt("d1", 3, 0, 1_000)
        );
        assert_eq!(
            POLICY
                .next_attempt("d1", i64::MAX, 0, 1_000)
                .map(|t| t <= 1_000 + 1_080_000),
            Some(true)
        );
    }

    #[test]
    fn an_hour_down_loses_nothing_and_three_days_gives_up() {
        // Fails every attempt for an hour: still pending, next try within 18 minutes.
        let (mut now, mut attempt) = (0, 1);
        while now < 3_600_000 {
            now = POLICY.next_attempt("d", attempt, 0, now).unwrap();
            attempt += 1;
        }
        assert!(now < 3_600_000 + 1_080_000);
        assert_eq!(POLICY.next_attempt("d", attempt, 0, 3 * 24 * 3_600_000), None);
    }
}
