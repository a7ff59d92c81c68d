//! The lines this node routes calls to, kept in memory: a snapshot of every line
//! with a live relay registration (from the directory, refreshed in the
//! background every `directory_cache_ms`, and at once after a relay registers
//! here), overlaid with what this node did since: the lines its calls hold, those
//! they released, those another node turned out to hold, and the relays its
//! health checks found up or down. Choosing a line asks the database nothing.
//!
//! Several nodes may share one directory and route to the same relays, so the
//! claim of a line stays atomic across nodes: a line is reserved here (so that two
//! calls of this node never race for it), then claimed in the directory by the
//! write-behind queue's conditional `UPDATE` (see `offhook_directory::CallWriter`),
//! which one node only can win. A release is queued, and the line is offered
//! again here at once: the claim that takes it next is queued after the release,
//! so it sees the line idle. A snapshot forgets the overlay entries it already
//! reflects (by the queue's committed sequence number taken before the read).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offhook_directory::{CallWriter, Directory, LineState, Registration, Result, RoutableLine};

use super::node::lock;

/// What this node knows of a line beyond the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// Reserved or claimed by a call of this node.
    Busy,
    /// Released by this node by the queued op with this sequence number.
    Released(u64),
    /// A claim failed: another node holds it (until the next snapshot).
    Elsewhere,
}

#[derive(Debug, Default)]
struct State {
    lines: Vec<Arc<RoutableLine>>,
    taken_at: Option<Instant>,
    /// Bumped by [`LinePool::invalidate`]; a snapshot read before is stale.
    generation: u64,
    snapshot_generation: u64,
    refreshing: bool,
    local: HashMap<String, Local>,
    /// Health seen by this node's checks, by relay name (true: up).
    relay_up: HashMap<String, bool>,
}

/// The lines of one node (see the module comment).
#[derive(Debug)]
pub(crate) struct LinePool {
    directory: Directory,
    writer: CallWriter,
    ttl: Duration,
    state: Mutex<State>,
    /// One snapshot read at a time.
    reading: tokio::sync::Mutex<()>,
}

impl LinePool {
    pub(crate) fn new(directory: Directory, writer: CallWriter, ttl: Duration) -> Self {
        Self {
            directory,
            writer,
            ttl,
            state: Mutex::new(State::default()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot is out of date (a relay registered or left here).
    pub(crate) fn invalidate(&self) {
        lock(&self.state).generation += 1;
    }

    /// This node's health check of `relay` says up or down.
    pub(crate) fn set_relay_up(&self, relay: &str, up: bool) {
        lock(&self.state).relay_up.insert(relay.to_owned(), up);
    }

    /// The relays that registered through node `node_id`, each with its newest
    /// binding (where its health checks go).
    pub(crate) async fn relays_of(
        self: &Arc<Self>,
        now: Instant,
        node_id: &str,
    ) -> Result<Vec<(String, Registration)>> {
        self.fresh(now).await?;
        let state = lock(&self.state);
        let mut relays: Vec<(String, Registration)> = Vec::new();
        for l in state.lines.iter().filter(|l| l.registration.node == node_id) {
            match relays.iter_mut().find(|(name, _)| *name == l.relay) {
                Some((_, reg)) if reg.updated_at >= l.registration.updated_at => {}
                Some((_, reg)) => *reg = l.registration.clone(),
                None => relays.push((l.relay.clone(), l.registration.clone())),
            }
        }
        Ok(relays)
    }

    /// Reads the snapshot when there is none or it was invalidated; starts a
    /// background read when it is older than the TTL.
    async fn fresh(self: &Arc<Self>, now: Instant) -> Result<()> {
        let (needed, wanted) = {
            let mut state = lock(&self.state);
            let needed = state.taken_at.is_none() || state.snapshot_generation != state.generation;
            let old = state
                .taken_at
                .is_some_and(|at| now.saturating_duration_since(at) >= self.ttl);
            let wanted = old && !needed && !state.refreshing;
            if wanted {
                state.refreshing = true;
            }
            (needed, wanted)
        };
        if needed {
            self.refresh(now).await?;
        } else if wanted {
            let pool = self.clone();
            tokio::spawn(async move {
                if let Err(err) = pool.refresh(now).await {
                    tracing::warn!(%err, "lines: cannot refresh the snapshot");
                }
                lock(&pool.state).refreshing = false;
            });
        }
        Ok(())
    }

    /// Lines `tenant_id` may use (its own first, then the shared pool) that look
    /// free at `now_ms`, on relays not known to be down. Reads the directory only
    /// when there is no snapshot or it was invalidated; an old one is refreshed in
    /// the background.
    pub(crate) async fn candidates(
        self: &Arc<Self>,
        now: Instant,
        now_ms: i64,
        tenant_id: &str,
    ) -> Result<Vec<Arc<RoutableLine>>> {
        self.fresh(now).await?;
        let state = lock(&self.state);
        let free = state
            .lines
            .iter()
            .filter(|l| l.line.tenant_id.as_deref().is_none_or(|t| t == tenant_id))
            .filter(|l| l.registration.expires_at > now_ms)
            .filter(|l| {
                state
                    .relay_up
                    .get(&l.relay)
                    .copied()
                    .unwrap_or(l.relay_state != "down")
            })
            .filter(|l| match state.local.get(&l.line.id) {
                Some(Local::Busy | Local::Elsewhere) => false,
                Some(Local::Released(_)) => true,
                None => l.line.state == LineState::Idle,
            })
            .cloned()
            .collect();
        Ok(free)
    }

    /// Reads a new snapshot (one read at a time; a read that finds a fresher
    /// snapshot than it was asked for does nothing).
    async fn refresh(&self, asked_at: Instant) -> Result<()> {
        let _reading = self.reading.lock().await;
        let generation = {
            let state = lock(&self.state);
            let fresh = state.taken_at.is_some_and(|at| at > asked_at)
                && state.snapshot_generation == state.generation;
            if fresh {
                return Ok(());
            }
            state.generation
        };
        // Whatever was committed before the read is in what it returns.
        let committed = self.writer.committed();
        let taken_at = Instant::now();
        let lines = self.directory.routable_lines(super::now_ms()).await?;
        let mut state = lock(&self.state);
        state.lines = lines.into_iter().map(Arc::new).collect();
        state.taken_at = Some(taken_at);
        state.snapshot_generation = generation;
        state.local.retain(|_, local| match local {
            Local::Busy => true,
            Local::Released(seq) => *seq > committed,
            Local::Elsewhere => false,
        });
        Ok(())
    }

    /// Reserves a line for a call of this node, then claims it in the directory;
    /// false when it is taken (here or on another node).
    pub(crate) async fn claim(&self, line_id: &str) -> bool {
        {
            let mut state = lock(&self.state);
            if state.local.get(line_id) == Some(&Local::Busy) {
                return false;
            }
            state.local.insert(line_id.to_owned(), Local::Busy);
        }
        let won = self.writer.claim_line(line_id).await;
        if !won {
            lock(&self.state)
                .local
                .insert(line_id.to_owned(), Local::Elsewhere);
        }
        won
    }

    /// The call on a claimed line was answered.
    pub(crate) fn in_call(&self, line_id: &str) {
        self.writer.set_line_state(line_id, LineState::InCall);
    }

    /// The call on a claimed line is over: the line is free again.
    pub(crate) fn release(&self, line_id: &str) {
        let mut state = lock(&self.state);
        // Queued under the lock: a claim that sees the line released is queued after.
        let seq = self.writer.set_line_state(line_id, LineState::Idle);
        state.local.insert(line_id.to_owned(), Local::Released(seq));
    }
}

#[cfg(test)]
mod tests {
    use offhook_directory::testing::{Backend, TestDb};
    use offhook_directory::*;

    use super::*;

    /// A relay with lines `line-a` and `line-b`, both registered through node-1.
    async fn two_lines(d: &Directory) -> Tenant {
        let tenant = d
            .create_tenant(NewTenant {
                name: "t".into(),
                sip_domain: "t.test".into(),
            })
            .await
            .unwrap();
        d.create_account(NewAccount {
            tenant: "t".into(),
            username: "relay-1".into(),
            password: "relay-secret".into(),
            display_name: String::new(),
            number: None,
            kind: AccountKind::Relay,
        })
        .await
        .unwrap();
        for (n, line) in ["line-a", "line-b"].into_iter().enumerate() {
            d.create_line(NewLine {
                name: line.into(),
                relay: "relay-1".into(),
                tenant: None,
                device_path: "emulated".into(),
                kind: LineKind::Emulated,
            })
            .await
            .unwrap();
            d.upsert_registration(Registration {
                id: String::new(),
                tenant_id: tenant.id.clone(),
                aor: "relay-1".into(),
                contact: format!("sip:{line}@127.0.0.1:5070"),
                contact_user: line.into(),
                instance: String::new(),
                transport: "udp".into(),
                source: "127.0.0.1:5070".into(),
                node: "node-1".into(),
                connection: String::new(),
                call_id: "reg".into(),
                cseq: 1,
                expires_at: i64::MAX / 2,
                // line-b registered last: first choice.
                updated_at: i64::try_from(n).unwrap(),
            })
            .await
            .unwrap();
        }
        tenant
    }

    fn names(lines: &[Arc<RoutableLine>]) -> Vec<&str> {
        lines.iter().map(|l| l.line.name.as_str()).collect()
    }

    #[tokio::test]
    async fn claims_releases_and_lines_held_by_another_node() {
        let db = TestDb::new(Backend::Sqlite).await;
        let d = &db.directory;
        let tenant = two_lines(d).await;
        let pool = Arc::new(LinePool::new(d.clone(), d.call_writer(), Duration::from_secs(60)));
        let now = Instant::now();
        let free = pool.candidates(now, 0, &tenant.id).await.unwrap();
        assert_eq!(names(&free), ["line-b", "line-a"]);
        let (b, a) = (free[0].line.id.clone(), free[1].line.id.clone());

        assert!(pool.claim(&b).await);
        assert!(!pool.claim(&b).await, "one call per line on this node");
        // Another node takes line-a behind this node's snapshot.
        assert!(d.claim_line(&a).await.unwrap());
        assert_eq!(
            names(&pool.candidates(now, 0, &tenant.id).await.unwrap()),
            ["line-a"]
        );
        assert!(!pool.claim(&a).await, "the directory says no");
        assert!(pool.candidates(now, 0, &tenant.id).await.unwrap().is_empty());

        // A release is offered again at once, and the claim after it wins.
        pool.release(&b);
        assert_eq!(
            names(&pool.candidates(now, 0, &tenant.id).await.unwrap()),
            ["line-b"]
        );
        assert!(pool.claim(&b).await);
        pool.in_call(&b);
        pool.release(&b);
        d.set_line_state(&a, LineState::Idle).await.unwrap();

        // A new snapshot reflects what was committed.
        pool.writer.flush().await;
        pool.invalidate();
        let free = pool.candidates(now, 0, &tenant.id).await.unwrap();
        assert_eq!(names(&free), ["line-b", "line-a"]);
        assert!(free.iter().all(|l| l.line.state == LineState::Idle));

        // Lines of a relay found down are skipped; expired bindings too.
        pool.set_relay_up("relay-1", false);
        assert!(pool.candidates(now, 0, &tenant.id).await.unwrap().is_empty());
        pool.set_relay_up("relay-1", true);
        assert_eq!(pool.candidates(now, 0, &tenant.id).await.unwrap().len(), 2);
        assert!(
            pool.candidates(now, i64::MAX, &tenant.id)
                .await
                .unwrap()
                .is_empty()
        );
        let relays = pool.relays_of(now, "node-1").await.unwrap();
        assert_eq!(relays.len(), 1);
        assert_eq!(relays[0].1.contact_user, "line-b", "the newest binding");
        assert!(pool.relays_of(now, "node-2").await.unwrap().is_empty());
        db.finish().await;
    }
}
