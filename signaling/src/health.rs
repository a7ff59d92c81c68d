//! Health checks of media relays as a sans-IO core: each relay is probed (a SIP
//! OPTIONS, sent by the driver) at once when it appears and then every
//! `interval`; a probe with no answer within `timeout`, or answered 408/503,
//! is a miss, and `misses` misses in a row mark the relay down; one answer marks
//! it up again. Time is an input: `handle_*(now, ..)`, [`RelayHealth::poll_output`],
//! [`RelayHealth::poll_timeout`], [`RelayHealth::handle_timeout`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How relays are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between probes of one relay.
    pub interval: Duration,
    /// How long a probe may wait for its answer.
    pub timeout: Duration,
    /// Misses in a row that mark a relay down.
    pub misses: u32,
}

/// Names one probe (to match its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeId(pub u64);

/// What the checks know of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet, or no answer and not yet `misses` misses.
    Unknown,
    /// It answered its last probe.
    Up,
    /// Its last `misses` probes went unanswered.
    Down,
}

/// What the core asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOutput {
    /// Send a probe to this relay; answer with [`RelayHealth::handle_answer`].
    Probe {
        /// The relay's name.
        relay: String,
        /// The probe.
        probe: ProbeId,
    },
    /// A relay answered a probe (its `last_seen_at`).
    Seen {
        /// The relay's name.
        relay: String,
    },
    /// A relay went up or down.
    Changed {
        /// The relay's name.
        relay: String,
        /// Its new health.
        health: Health,
    },
}

#[derive(Debug)]
struct Relay {
    health: Health,
    next_probe: Instant,
    /// The probe in flight and when it counts as missed.
    pending: Option<(ProbeId, Instant)>,
    misses: u32,
}

/// The health of every relay this node checks.
#[derive(Debug)]
pub struct RelayHealth {
    config: HealthConfig,
    relays: HashMap<String, Relay>,
    next_probe_id: u64,
    out: VecDeque<HealthOutput>,
}

impl RelayHealth {
    /// No relays yet.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            relays: HashMap::new(),
            next_probe_id: 1,
            out: VecDeque::new(),
        }
    }

    /// The relays to check from now on: new ones are probed at once, those not
    /// named any more are forgotten.
    pub fn set_relays<'a>(&mut self, now: Instant, relays: impl IntoIterator<Item = &'a str>) {
        let wanted: Vec<&str> = relays.into_iter().collect();
        self.relays.retain(|name, _| wanted.contains(&name.as_str()));
        for name in wanted {
            self.relays.entry(name.to_owned()).or_insert(Relay {
                health: Health::Unknown,
                next_probe: now,
                pending: None,
                misses: 0,
            });
        }
    }

    /// What the checks know of `relay`.
    pub fn health(&self, relay: &str) -> Option<Health> {
        self.relays.get(relay).map(|r| r.health)
    }

    /// The answer to a probe: `alive` unless it was 408 or 503 (or the transport
    /// failed). An answer to a probe already counted as missed is ignored.
    pub fn handle_answer(&mut self, now: Instant, probe: ProbeId, alive: bool) {
        let found = self
            .relays
            .iter_mut()
            .find(|(_, r)| r.pending.is_some_and(|(id, _)| id == probe));
        let Some((name, relay)) = found else {
            return;
        };
        relay.pending = None;
        let name = name.clone();
        if alive {
            relay.misses = 0;
            self.out.push_back(HealthOutput::Seen { relay: name.clone() });
            if relay.health != Health::Up {
                relay.health = Health::Up;
                self.out.push_back(HealthOutput::Changed {
                    relay: name,
                    health: Health::Up,
                });
            }
        } else {
            self.missed(&name);
        }
        self.probe_due(now);
    }

    fn missed(&mut self, name: &str) {
        let misses = self.config.misses.max(1);
        let Some(relay) = self.relays.get_mut(name) else {
            return;
        };
        relay.misses += 1;
        if relay.misses >= misses && relay.health != Health::Down {
            relay.health = Health::Down;
            self.out.push_back(HealthOutput::Changed {
                relay: name.to_owned(),
                health: Health::Down,
            });
        }
    }

    /// Sends the probes that are due (none while one is in flight).
    fn probe_due(&mut self, now: Instant) {
        for (name, relay) in &mut self.relays {
            if relay.pending.is_none() && relay.next_probe <= now {
                let probe = ProbeId(self.next_probe_id);
                self.next_probe_id += 1;
                relay.pending = Some((probe, now + self.config.timeout));
                relay.next_probe = now + self.config.interval;
                self.out.push_back(HealthOutput::Probe {
                    relay: name.clone(),
                    probe,
                });
            }
        }
    }

    /// Counts the probes that timed out and sends those due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timed_out: Vec<String> = self
            .relays
            .iter_mut()
            .filter(|(_, r)| r.pending.is_some_and(|(_, at)| at <= now))
            .map(|(name, r)| {
                r.pending = None;
                name.clone()
            })
            .collect();
        for name in timed_out {
            self.missed(&name);
        }
        self.probe_due(now);
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<HealthOutput> {
        self.out.pop_front()
    }

    /// When [`RelayHealth::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.relays
            .values()
            .map(|r| match r.pending {
                Some((_, at)) => at,
                None => r.next_probe,
            })
            .min()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    const CONFIG: HealthConfig = HealthConfig {
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        misses: 2,
    };

    fn outputs(core: &mut RelayHealth) -> Vec<HealthOutput> {
        std::iter::from_fn(|| core.poll_output()).collect()
    }

    fn probes(outputs: &[HealthOutput]) -> Vec<(String, ProbeId)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                HealthOutput::Probe { relay, probe } => Some((relay.clone(), *probe)),
                _ => None,
            })
            .collect()
    }

    /// Runs the core to `until`, answering each probe of a relay in `answering`
    /// after 10 ms; returns the outputs with their times.
    fn run(
        core: &mut RelayHealth,
        t0: Instant,
        until: Duration,
        answering: &dyn Fn(&str, Duration) -> bool,
    ) -> Vec<(Duration, HealthOutput)> {
        let mut seen = Vec::new();
        let mut answers: Vec<(Instant, ProbeId)> = Vec::new();
        let mut now = t0;
        while now <= t0 + until {
            answers.sort_by_key(|(at, _)| *at);
            for (_, probe) in answers.iter().filter(|(at, _)| *at <= now) {
                core.handle_answer(now, *probe, true);
            }
            answers.retain(|(at, _)| *at > now);
            if core.poll_timeout().is_some_and(|at| at <= now) {
                core.handle_timeout(now);
            }
            for out in outputs(core) {
                if let HealthOutput::Probe { relay, probe } = &out
                    && answering(relay, now - t0)
                {
                    answers.push((now + Duration::from_millis(10), *probe));
                }
                seen.push((now - t0, out));
            }
            now += Duration::from_millis(10);
        }
        seen
    }

    #[test]
    fn probes_at_once_then_every_interval_and_an_answer_means_up() {
        let (mut core, t0) = (RelayHealth::new(CONFIG), Instant::now());
        core.set_relays(t0, ["relay-a"]);
        assert_eq!(core.poll_timeout(), Some(t0));
        let seen = run(&mut core, t0, Duration::from_secs(12), &|_, _| true);
        let at: Vec<u128> = seen
            .iter()
            .filter(|(_, o)| matches!(o, HealthOutput::Probe { .. }))
            .map(|(t, _)| t.as_millis())
            .collect();
        assert_eq!(at, [0, 5000, 10000]);
        let changes: Vec<_> = seen
            .iter()
            .filter_map(|(t, o)| matches!(o, HealthOutput::Changed { .. }).then_some((t.as_millis(), o)))
            .collect();
        assert_eq!(changes.len(), 1, "up once: {changes:?}");
        assert_eq!(changes[0].0, 10);
        assert_eq!(core.health("relay-a"), Some(Health::Up));
    }

    #[test]
    fn a_relay_that_stops_answering_is_down_after_two_misses_and_comes_back() {
        let (mut core, t0) = (RelayHealth::new(CONFIG), Instant::now());
        core.set_relays(t0, ["relay-a", "relay-b"]);
        // relay-a answers until 6 s, then not until 20 s; relay-b always.
        let answering = |relay: &str, t: Duration| {
            relay == "relay-b" || t < Duration::from_secs(6) || t >= Duration::from_secs(20)
        };
        let seen = run(&mut core, t0, Duration::from_secs(26), &answering);
        let changes: Vec<(u128, String, Health)> = seen
            .iter()
            .filter_map(|(t, o)| match o {
                HealthOutput::Changed { relay, health } => Some((t.as_millis(), relay.clone(), *health)),
                _ => None,
            })
            .collect();
        let a: Vec<_> = changes
            .iter()
            .filter(|c| c.1 == "relay-a")
            .map(|c| (c.0, c.2))
            .collect();
        // Probes at 0, 5 (answered), 10 and 15 (missed at 12 and 17), 20 (answered).
        assert_eq!(
            a,
            [(10, Health::Up), (17_000, Health::Down), (20_010, Health::Up)]
        );
        assert!(
            changes
                .iter()
                .filter(|c| c.1 == "relay-b")
                .all(|c| c.2 == Health::Up)
        );
    }

    #[test]
    fn a_late_answer_is_ignored_and_forgotten_relays_are_not_probed() {
        let (mut core, t0) = (RelayHealth::new(CONFIG), Instant::now());
        core.set_relays(t0, ["relay-a"]);
        core.handle_timeout(t0);
        let first = probes(&outputs(&mut core));
        assert_eq!(first.len(), 1);
        core.handle_timeout(t0 + Duration::from_secs(2));
        core.handle_answer(t0 + Duration::from_secs(3), first[0].1, true);
        assert!(
            outputs(&mut core).is_empty(),
            "missed already: no Seen, no change"
        );
        assert_eq!(
            core.health("relay-a"),
            Some(Health::Unknown),
            "one miss is not down"
        );
        core.set_relays(t0 + Duration::from_secs(4), std::iter::empty());
        assert_eq!(core.poll_timeout(), None);
        core.handle_timeout(t0 + Duration::from_secs(60));
        assert!(outputs(&mut core).is_empty());
    }
}
