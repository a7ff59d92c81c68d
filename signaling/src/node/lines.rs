//! The lines this node routes calls to, in memory: a snapshot of every line with
//! a live relay binding (a [`Query::Lines`] answer, asked for when there is none
//! or a relay registered here, and refreshed in the background every
//! `directory_cache_ms`), overlaid with what this node did since: the lines its
//! calls hold, those they released, those another node turned out to hold, and
//! the relays its health checks found up or down. Choosing a line asks the
//! database nothing.
//!
//! Several nodes may share one directory, so a line's claim stays atomic across
//! nodes: a line is reserved here (two calls of this node never race for it),
//! then claimed in the directory ([`super::directory_io::Change::ClaimLine`],
//! one conditional `UPDATE` only one node can win, queued behind this node's
//! earlier records). A release is a record; the line is offered again here at
//! once, and the claim that takes it next is queued after the release, so it sees
//! the line idle. A snapshot forgets the overlay entries it already reflects (by
//! the sequence number of the last record committed before it was read).
//!
//! [`Query::Lines`]: super::directory_io::Query::Lines

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offhook_directory::{LineState, RoutableLine};

/// What this node knows of a line beyond the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// Reserved or claimed by a call of this node.
    Busy,
    /// Released by this node by the record with this sequence number.
    Released(u64),
    /// A claim failed: another node holds it (until the next snapshot).
    Elsewhere,
}

/// Whether the snapshot must be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// It is fresh.
    No,
    /// It is old: read a new one, but route with this one meanwhile.
    Background,
    /// There is none, or a relay registered since: wait for a new one.
    Needed,
}

/// The lines of one node (see the module comment).
#[derive(Debug)]
pub(crate) struct LinePool {
    ttl: Duration,
    lines: Vec<Arc<RoutableLine>>,
    taken_at: Option<Instant>,
    /// Bumped by [`LinePool::invalidate`]; a snapshot asked for before is stale.
    generation: u64,
    snapshot_generation: u64,
    /// The generation a read in flight was asked at.
    reading: Option<u64>,
    local: HashMap<String, Local>,
    /// Health seen by this node's checks, by relay name (true: up).
    relay_up: HashMap<String, bool>,
}

impl LinePool {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            lines: Vec::new(),
            taken_at: None,
            generation: 0,
            snapshot_generation: 0,
            reading: None,
            local: HashMap::new(),
            relay_up: HashMap::new(),
        }
    }

    /// The snapshot is out of date (a relay registered here).
    pub(crate) fn invalidate(&mut self) {
        self.generation += 1;
    }

    /// Whether a new snapshot is needed at `now`.
    pub(crate) fn refresh(&self, now: Instant) -> Refresh {
        if self.taken_at.is_none() || self.snapshot_generation != self.generation {
            Refresh::Needed
        } else if self
            .taken_at
            .is_some_and(|at| now.saturating_duration_since(at) >= self.ttl)
        {
            Refresh::Background
        } else {
            Refresh::No
        }
    }

    /// A snapshot read was asked for now.
    pub(crate) fn read_started(&mut self) {
        self.reading = Some(self.generation);
    }

    /// A snapshot arrived, read after every record up to `committed`.
    pub(crate) fn snapshot(&mut self, now: Instant, lines: Vec<RoutableLine>, committed: u64) {
        let asked = self.reading.take().unwrap_or(self.generation);
        self.lines = lines.into_iter().map(Arc::new).collect();
        self.taken_at = Some(now);
        self.snapshot_generation = asked;
        self.local.retain(|_, local| match local {
            Local::Busy => true,
            Local::Released(seq) => *seq > committed,
            Local::Elsewhere => false,
        });
    }

    /// A snapshot read failed: the next call asks again.
    pub(crate) fn read_failed(&mut self) {
        self.reading = None;
    }

    /// This node's health check of `relay` says up or down.
    pub(crate) fn set_relay_up(&mut self, relay: &str, up: bool) {
        self.relay_up.insert(relay.to_owned(), up);
    }

    /// The ids of `relay`'s lines in the snapshot.
    pub(crate) fn lines_of_relay(&self, relay: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.relay == relay)
            .map(|l| l.line.id.clone())
            .collect()
    }

    /// The id of `relay`'s line `name` when the snapshot has its binding from
    /// another REGISTER Call-ID than `call_id`: a UA keeps its Call-ID across
    /// refreshes (RFC 3261 s10.2.4), so a new one is the relay started again.
    pub(crate) fn rebound(&self, relay: &str, name: &str, call_id: &str) -> Option<String> {
        self.lines
            .iter()
            .find(|l| l.relay == relay && l.line.name == name)
            .filter(|l| l.registration.call_id != call_id)
            .map(|l| l.line.id.clone())
    }

    /// The relays that registered through node `node_id`, each with its newest
    /// line (its binding is where its health checks go).
    pub(crate) fn relays_of(&self, node_id: &str) -> Vec<(String, Arc<RoutableLine>)> {
        let mut relays: Vec<(String, Arc<RoutableLine>)> = Vec::new();
        for l in self.lines.iter().filter(|l| l.registration.node == node_id) {
            match relays.iter_mut().find(|(name, _)| *name == l.relay) {
                Some((_, newest)) if newest.registration.updated_at >= l.registration.updated_at => {}
                Some((_, newest)) => *newest = l.clone(),
                None => relays.push((l.relay.clone(), l.clone())),
            }
        }
        relays
    }

    /// Lines `tenant_id` may use (its own first, then the shared pool) that look
    /// free at `now_ms`, on relays not known to be down.
    pub(crate) fn candidates(&self, now_ms: i64, tenant_id: &str) -> Vec<Arc<RoutableLine>> {
        let mut free: Vec<Arc<RoutableLine>> = self
            .lines
            .iter()
            .filter(|l| l.line.tenant_id.as_deref().is_none_or(|t| t == tenant_id))
            .filter(|l| l.registration.expires_at > now_ms)
            .filter(|l| {
                self.relay_up
                    .get(&l.relay)
                    .copied()
                    .unwrap_or(l.relay_state != "down")
            })
            .filter(|l| match self.local.get(&l.line.id) {
                Some(Local::Busy | Local::Elsewhere) => false,
                Some(Local::Released(_)) => true,
                None => l.line.state == LineState::Idle,
            })
            .cloned()
            .collect();
        // The tenant's own lines before the shared pool (stable: snapshot order within).
        free.sort_by_key(|l| l.line.tenant_id.is_none());
        free
    }

    /// Reserves a line for a call of this node; false when this node holds it.
    pub(crate) fn reserve(&mut self, line_id: &str) -> bool {
        if self.local.get(line_id) == Some(&Local::Busy) {
            return false;
        }
        self.local.insert(line_id.to_owned(), Local::Busy);
        true
    }

    /// The directory said another node holds the line.
    pub(crate) fn held_elsewhere(&mut self, line_id: &str) {
        self.local.insert(line_id.to_owned(), Local::Elsewhere);
    }

    /// The call on a reserved line is over; the release is the record `seq`.
    pub(crate) fn release(&mut self, line_id: &str, seq: u64) {
        self.local.insert(line_id.to_owned(), Local::Released(seq));
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use offhook_directory::{Line, LineKind, Registration};

    use super::*;

    fn line(name: &str, tenant: Option<&str>, updated_at: i64) -> RoutableLine {
        RoutableLine {
            line: Line {
                id: format!("lin_{name}"),
                name: name.into(),
                relay_id: "rel_1".into(),
                tenant_id: tenant.map(str::to_owned),
                device_path: "emulated".into(),
                kind: LineKind::Emulated,
                state: LineState::Idle,
                fault_reason: None,
                state_changed_at: None,
                created_at: 0,
            },
            registration: Registration {
                id: String::new(),
                tenant_id: "ten_r".into(),
                aor: "relay-1".into(),
                contact: format!("sip:{name}@127.0.0.1:5070"),
                contact_user: name.into(),
                instance: String::new(),
                transport: "udp".into(),
                source: "127.0.0.1:5070".into(),
                node: "node-1".into(),
                connection: String::new(),
                call_id: "reg".into(),
                cseq: 1,
                expires_at: 1_000,
                updated_at,
            },
            relay: "relay-1".into(),
            relay_state: "up".into(),
            relay_key: offhook_vocab::Secret::new("key"),
        }
    }

    fn names(lines: &[Arc<RoutableLine>]) -> Vec<&str> {
        lines.iter().map(|l| l.line.name.as_str()).collect()
    }

    #[test]
    fn reserve_release_elsewhere_and_snapshots() {
        let t0 = Instant::now();
        let mut pool = LinePool::new(Duration::from_secs(1));
        assert_eq!(pool.refresh(t0), Refresh::Needed);
        pool.read_started();
        pool.invalidate();
        let lines = vec![line("shared", None, 1), line("own", Some("ten_a"), 2)];
        pool.snapshot(t0, lines.clone(), 0);
        assert_eq!(
            pool.refresh(t0),
            Refresh::Needed,
            "a relay registered during the read"
        );
        pool.read_started();
        pool.snapshot(t0, lines.clone(), 0);
        assert_eq!(pool.refresh(t0), Refresh::No);
        assert_eq!(names(&pool.candidates(0, "ten_a")), ["own", "shared"]);
        assert_eq!(names(&pool.candidates(0, "ten_b")), ["shared"]);

        assert!(pool.reserve("lin_own"));
        assert!(!pool.reserve("lin_own"));
        pool.held_elsewhere("lin_shared");
        assert!(pool.candidates(0, "ten_a").is_empty());
        pool.release("lin_own", 5);
        assert_eq!(names(&pool.candidates(0, "ten_a")), ["own"]);
        // A snapshot read before the release was committed keeps the release.
        pool.snapshot(t0, lines.clone(), 4);
        assert_eq!(names(&pool.candidates(0, "ten_a")), ["own", "shared"]);

        pool.set_relay_up("relay-1", false);
        assert!(pool.candidates(0, "ten_a").is_empty());
        pool.set_relay_up("relay-1", true);
        assert!(pool.candidates(1_000, "ten_a").is_empty(), "bindings expired");
        assert_eq!(pool.refresh(t0 + Duration::from_secs(1)), Refresh::Background);
        pool.invalidate();
        assert_eq!(pool.refresh(t0), Refresh::Needed);
        let relays = pool.relays_of("node-1");
        assert_eq!(relays.len(), 1);
        assert_eq!(relays[0].1.registration.contact_user, "own", "the newest binding");
    }
}
