//! Per-tenant call limits, sans-IO with the clock as input: concurrent calls per
//! icon, new calls per minute per icon, and new calls per minute per source
//! address (a sliding 60 s window). Over a limit the caller answers 486 (busy:
//! too many calls at once) or 503 with Retry-After (rate).

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
}

/// Counters for every icon and source address.
#[derive(Debug, Default)]
pub struct Limiter {
    active: HashMap<String, u32>,
    starts: HashMap<String, VecDeque<Instant>>,
    sources: HashMap<IpAddr, VecDeque<Instant>>,
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
        let starts = self.starts.entry(key.to_owned()).or_default();
        prune(starts, now);
        let from_source = self.sources.entry(source).or_default();
        prune(from_source, now);
        if self.active.get(key).copied().unwrap_or(0) >= limits.max_concurrent {
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
        starts.push_back(now);
        from_source.push_back(now);
        *self.active.entry(key.to_owned()).or_default() += 1;
        Ok(())
    }

    /// A call admitted through `key` has ended.
    pub fn end(&mut self, key: &str) {
        if let Some(count) = self.active.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.active.remove(key);
            }
        }
    }

    /// Calls in progress through `key`.
    pub fn active(&self, key: &str) -> u32 {
        self.active.get(key).copied().unwrap_or(0)
    }

    /// Forgets windows that are empty at `now` (call now and then).
    pub fn sweep(&mut self, now: Instant) {
        for window in self.starts.values_mut().chain(self.sources.values_mut()) {
            prune(window, now);
        }
        self.starts.retain(|_, w| !w.is_empty());
        self.sources.retain(|_, w| !w.is_empty());
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
}
