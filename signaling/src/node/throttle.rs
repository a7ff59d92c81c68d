//! Password guessing slowed down, then stopped: failed digest attempts are
//! counted per source address and per account name (pike/fail2ban style). After
//! `free` failures each further attempt must wait twice as long as the last
//! (from one second), and after `ban_after` failures the source or the account is
//! refused outright for `ban`. While refused, credentials are not even checked,
//! so a right guess in that time gains nothing, and the answer is the same for
//! names that exist and names that do not. A success clears the account's count
//! and the source's. Memory is bounded: entries expire after a quiet `window`,
//! and past a capacity the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Entries kept per kind at most.
const CAPACITY: usize = 100_000;

/// The throttle's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrottleConfig {
    /// Failures allowed before the waits begin.
    pub free: u32,
    /// The first wait.
    pub backoff: Duration,
    /// Failures that ban.
    pub ban_after: u32,
    /// How long a ban lasts.
    pub ban: Duration,
    /// Quiet time after which failures are forgotten.
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    /// No attempt before this.
    until: Instant,
}

/// Failure counts of one kind of key (addresses, account names).
#[derive(Debug)]
struct Counts<K> {
    records: HashMap<K, Record>,
    order: VecDeque<(Instant, K)>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new() -> Self {
        Self {
            records: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn until(&self, now: Instant, key: &K, window: Duration) -> Option<Instant> {
        let record = self.records.get(key)?;
        (now.saturating_duration_since(record.last) < window && record.until > now).then_some(record.until)
    }

    fn failed(&mut self, now: Instant, key: K, config: &ThrottleConfig) {
        while self.order.len() >= CAPACITY
            || self
                .order
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= config.window)
        {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.records.get(&old).is_some_and(|r| r.last == at) {
                self.records.remove(&old);
            }
        }
        let record = self.records.entry(key.clone()).or_insert(Record {
            failures: 0,
            last: now,
            until: now,
        });
        if now.saturating_duration_since(record.last) >= config.window {
            record.failures = 0;
        }
        record.failures += 1;
        record.last = now;
        record.until = if record.failures >= config.ban_after {
            now + config.ban
        } else if record.failures > config.free {
            let doublings = (record.failures - config.free - 1).min(16);
            now + (config.backoff * 2u32.pow(doublings)).min(config.ban)
        } else {
            now
        };
        self.order.push_back((now, key));
    }

    fn succeeded(&mut self, key: &K) {
        self.records.remove(key);
    }
}

/// The throttle (see the module comment).
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    sources: Counts<IpAddr>,
    accounts: Counts<(String, String)>,
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            sources: Counts::new(),
            accounts: Counts::new(),
        }
    }

    /// When an attempt from `source` for `user` of realm `realm` may come, if
    /// not now.
    pub(crate) fn refused_until(
        &self,
        now: Instant,
        source: IpAddr,
        realm: &str,
        user: &str,
    ) -> Option<Instant> {
        let window = self.config.window;
        let account = (realm.to_ascii_lowercase(), user.to_owned());
        [
            self.sources.until(now, &source, window),
            self.accounts.until(now, &account, window),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// An attempt failed.
    pub(crate) fn failed(&mut self, now: Instant, source: IpAddr, realm: &str, user: &str) {
        self.sources.failed(now, source, &self.config);
        let account = (realm.to_ascii_lowercase(), user.to_owned());
        self.accounts.failed(now, account, &self.config);
    }

    /// An attempt succeeded.
    pub(crate) fn succeeded(&mut self, source: IpAddr, realm: &str, user: &str) {
        self.sources.succeeded(&source);
        self.accounts
            .succeeded(&(realm.to_ascii_lowercase(), user.to_owned()));
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    const CONFIG: ThrottleConfig = ThrottleConfig {
        free: 3,
        backoff: Duration::from_secs(1),
        ban_after: 8,
        ban: Duration::from_secs(600),
        window: Duration::from_secs(900),
    };

    #[test]
    fn failures_back_off_then_ban_and_a_success_clears() {
        let t0 = Instant::now();
        let mut t = Throttle::new(CONFIG);
        let ip: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..3 {
            assert!(t.refused_until(t0, ip, "a.test", "alice").is_none());
            t.failed(t0, ip, "a.test", "alice");
        }
        assert!(
            t.refused_until(t0, ip, "a.test", "alice").is_none(),
            "three are free"
        );
        t.failed(t0, ip, "a.test", "alice");
        assert_eq!(
            t.refused_until(t0, ip, "a.test", "alice"),
            Some(t0 + Duration::from_secs(1))
        );
        let t1 = t0 + Duration::from_secs(1);
        assert!(t.refused_until(t1, ip, "a.test", "alice").is_none());
        t.failed(t1, ip, "a.test", "alice");
        assert_eq!(
            t.refused_until(t1, ip, "a.test", "alice"),
            Some(t1 + Duration::from_secs(2))
        );
        // Another address guessing the same account is held back too.
        let other: IpAddr = [198, 51, 100, 7].into();
        assert!(t.refused_until(t1, other, "A.TEST", "alice").is_some());
        assert!(t.refused_until(t1, other, "a.test", "bob").is_none());
        let mut at = t1;
        for _ in 0..3 {
            at += Duration::from_secs(60);
            t.failed(at, ip, "a.test", "alice");
        }
        assert_eq!(
            t.refused_until(at, ip, "a.test", "bob"),
            Some(at + CONFIG.ban),
            "the source is banned"
        );
        t.succeeded(ip, "a.test", "alice");
        assert!(t.refused_until(at, ip, "a.test", "alice").is_none());
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_sources() {
        let t0 = Instant::now();
        let mut t = Throttle::new(CONFIG);
        for n in 0..(CAPACITY as u32 + 500) {
            t.failed(t0, IpAddr::from(n.to_be_bytes()), "a.test", &format!("u{n}"));
        }
        assert_eq!(t.sources.records.len(), CAPACITY);
        assert_eq!(t.accounts.records.len(), CAPACITY);
    }
}
