//! Per-tenant call limits, sans-IO with the clock as input: concurrent calls per
//! icon (or account) and per group (its tenant, across its icons and accounts),
//! new calls per minute per icon, per source address across icons, and per
//! source address on one icon (a sliding 60 s window). The click API gives one
//! source [`source_share`] of an icon's minute, strictly below the icon's
//! budget, so one client cannot exhaust an icon for every visitor. Over a limit the caller
//! answers 486 (busy: too many calls at once) or 503 with Retry-After (rate).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The sliding window of the per-minute limits.
const WINDOW: Duration = Duration::from_secs(60);

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The icon has its maximum of calls in progress: answer 486.
    TooManyConcurrent,
    /// Too many new calls in the last minute: answer 503 with this Retry-After.
    RateLimited {
        /// Seconds until a call would be admitted.
        retry_after: u32,
    },
}

/// The limits of one call attempt.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Calls at once through the icon (or account).
    pub max_concurrent: u32,
    /// New calls per minute through the icon (or account).
    pub per_minute: u32,
    /// New calls per minute from one source address.
    pub per_source_per_minute: u32,
    /// New calls per minute from one source address through this icon (the
    /// click API's is [`source_share`] of `per_minute`).
    pub per_source_on_key: u32,
}

/// What one source may start through one key in a minute: half the key's
/// budget, at least one (strictly below the budget whenever it is 2 or more).
pub fn source_share(per_minute: u32) -> u32 {
    (per_minute / 2).max(1)
}

/// Counters for every icon, group and source address.
#[derive(Debug, Default)]
pub struct Limiter {
    active: HashMap<String, u32>,
    /// The group of each key with calls in progress.
    groups: HashMap<String, String>,
    starts: HashMap<String, VecDeque<Instant>>,
    sources: HashMap<IpAddr, VecDeque<Instant>>,
    source_on_key: HashMap<(String, IpAddr), VecDeque<Instant>>,
}

fn prune(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW)
    {
        window.pop_front();
    }
}

/// Seconds until the oldest start leaves the window.
fn retry_after(window: &VecDeque<Instant>, now: Instant) -> u32 {
    let wait = window.front().map_or(Duration::ZERO, |&oldest| {
        WINDOW.saturating_sub(now.saturating_duration_since(oldest))
    });
    u32::try_from(wait.as_secs()).unwrap_or(60).max(1)
}

impl Limiter {
    /// Admits a new call through `key` (an icon or account id) from `source`, or
    /// says why not. An admitted call counts until [`Limiter::end`].
    pub fn admit(
        &mut self,
        key: &str,
        source: IpAddr,
        limits: CallLimits,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.admit_in(key, None, source, limits, now)
    }

    /// Like [`Limiter::admit`], and the call also holds one of `group`'s
    /// `group_max` calls at once (a key always belongs to the same group, as an
    /// icon to its tenant); [`Limiter::end`] of `key` releases both.
    pub fn admit_in_group(
        &mut self,
        key: &str,
        (group, group_max): (&str, u32),
        source: IpAddr,
        limits: CallLimits,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.admit_in(key, Some((group, group_max)), source, limits, now)
    }

    fn admit_in(
        &mut self,
        key: &str,
        group: Option<(&str, u32)>,
        source: IpAddr,
        limits: CallLimits,
        now: Instant,
    ) -> Result<(), Refusal> {
        let starts = self.starts.entry(key.to_owned()).or_default();
        prune(starts, now);
        let from_source = self.sources.entry(source).or_default();
        prune(from_source, now);
        let on_key = self.source_on_key.entry((key.to_owned(), source)).or_default();
        prune(on_key, now);
        if self.active.get(key).copied().unwrap_or(0) >= limits.max_concurrent {
            return Err(Refusal::TooManyConcurrent);
        }
        if let Some((group, max)) = group
            && self.active.get(group).copied().unwrap_or(0) >= max
        {
            return Err(Refusal::TooManyConcurrent);
        }
        if starts.len() >= limits.per_minute as usize {
            return Err(Refusal::RateLimited {
                retry_after: retry_after(starts, now),
            });
        }
        if from_source.len() >= limits.per_source_per_minute as usize {
            return Err(Refusal::RateLimited {
                retry_after: retry_after(from_source, now),
            });
        }
        if on_key.len() >= limits.per_source_on_key as usize {
            return Err(Refusal::RateLimited {
                retry_after: retry_after(on_key, now),
            });
        }
        starts.push_back(now);
        from_source.push_back(now);
        on_key.push_back(now);
        *self.active.entry(key.to_owned()).or_default() += 1;
        if let Some((group, _)) = group {
            *self.active.entry(group.to_owned()).or_default() += 1;
            self.groups.insert(key.to_owned(), group.to_owned());
        }
        Ok(())
    }

    /// A call admitted through `key` has ended.
    pub fn end(&mut self, key: &str) {
        let group = self.groups.get(key).cloned();
        if self.release(key) {
            self.groups.remove(key);
        }
        if let Some(group) = group {
            self.release(&group);
        }
    }

    /// One call of `key` fewer; whether none is left.
    fn release(&mut self, key: &str) -> bool {
        let Some(count) = self.active.get_mut(key) else {
            return true;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.active.remove(key);
            return true;
        }
        false
    }

    /// Calls in progress through `key`.
    pub fn active(&self, key: &str) -> u32 {
        self.active.get(key).copied().unwrap_or(0)
    }

    /// Forgets windows that are empty at `now` (call now and then).
    pub fn sweep(&mut self, now: Instant) {
        let windows = self.starts.values_mut().chain(self.sources.values_mut());
        for window in windows.chain(self.source_on_key.values_mut()) {
            prune(window, now);
        }
        self.starts.retain(|_, w| !w.is_empty());
        self.sources.retain(|_, w| !w.is_empty());
        self.source_on_key.retain(|_, w| !w.is_empty());
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    const LIMITS: CallLimits = CallLimits {
        max_concurrent: 2,
        per_minute: 3,
        per_source_per_minute: 100,
        per_source_on_key: u32::MAX,
    };

    #[test]
    fn concurrent_then_rate_then_recovery() {
        let (mut l, t0) = (Limiter::default(), Instant::now());
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(l.admit("icon", ip, LIMITS, t0).is_ok());
        assert!(l.admit("icon", ip, LIMITS, t0).is_ok());
        assert_eq!(l.admit("icon", ip, LIMITS, t0), Err(Refusal::TooManyConcurrent));
        l.end("icon");
        assert!(l.admit("icon", ip, LIMITS, t0 + Duration::from_secs(10)).is_ok());
        l.end("icon");
        assert_eq!(
            l.admit("icon", ip, LIMITS, t0 + Duration::from_secs(15)),
            Err(Refusal::RateLimited { retry_after: 45 })
        );
        // A minute after the first two, they leave the window.
        assert!(l.admit("icon", ip, LIMITS, t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(l.active("icon"), 2);
    }

    #[test]
    fn per_source_limit_spans_icons() {
        let (mut l, t0) = (Limiter::default(), Instant::now());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let limits = CallLimits {
            per_source_per_minute: 2,
            ..LIMITS
        };
        assert!(l.admit("a", ip, limits, t0).is_ok());
        assert!(l.admit("b", ip, limits, t0).is_ok());
        assert!(matches!(
            l.admit("c", ip, limits, t0),
            Err(Refusal::RateLimited { .. })
        ));
        assert!(l.admit("c", [192, 0, 2, 2].into(), limits, t0).is_ok());
        l.sweep(t0 + Duration::from_secs(61));
        assert!(l.admit("c", ip, limits, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn one_source_gets_less_than_an_icons_minute_and_others_still_get_in() {
        let (mut l, t0) = (Limiter::default(), Instant::now());
        let limits = CallLimits {
            max_concurrent: u32::MAX,
            per_minute: 10,
            per_source_per_minute: 100,
            per_source_on_key: source_share(10),
        };
        let flooder: IpAddr = [203, 0, 113, 7].into();
        let admitted = (0..10)
            .filter(|_| l.admit("icon", flooder, limits, t0).is_ok())
            .count();
        assert_eq!(admitted, 5, "one source: half the icon's minute");
        for n in 1..=5u8 {
            assert!(
                l.admit("icon", [198, 51, 100, n].into(), limits, t0).is_ok(),
                "visitor {n}"
            );
        }
        assert!(source_share(2) < 2 && source_share(1) == 1 && source_share(3) == 1);
    }

    #[test]
    fn a_group_caps_calls_at_once_across_its_keys_and_each_end_releases_it() {
        let (mut l, t0) = (Limiter::default(), Instant::now());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let limits = CallLimits {
            per_minute: 100,
            ..LIMITS
        };
        assert!(l.admit_in_group("icon-a", ("tenant", 3), ip, limits, t0).is_ok());
        assert!(l.admit_in_group("icon-a", ("tenant", 3), ip, limits, t0).is_ok());
        assert!(l.admit_in_group("account", ("tenant", 3), ip, limits, t0).is_ok());
        assert_eq!(
            l.admit_in_group("icon-b", ("tenant", 3), ip, limits, t0),
            Err(Refusal::TooManyConcurrent)
        );
        assert!(l.admit_in_group("icon-c", ("other", 3), ip, limits, t0).is_ok());
        l.end("icon-a");
        assert_eq!((l.active("tenant"), l.active("icon-a")), (2, 1));
        assert!(l.admit_in_group("icon-b", ("tenant", 3), ip, limits, t0).is_ok());
        for key in ["icon-a", "icon-b", "account", "icon-c"] {
            l.end(key);
        }
        assert_eq!((l.active("tenant"), l.active("other")), (0, 0));
        assert!(l.groups.is_empty(), "nothing kept for ended calls");
    }
}
