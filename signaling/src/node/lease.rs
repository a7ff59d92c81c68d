//! The node's lease in the directory (see `offhook_directory` owners): every
//! quarter of the lease the node refreshes it and reaps whatever lost owners
//! still hold (other nodes that died, and this node's own earlier starts), the
//! first time at once, so a restarted node frees the lines and closes the CDRs
//! its previous life left before it takes a call. Lines found released are read
//! again before the next call. When the directory says this node's own lease had
//! run out (it could not reach the directory for longer than the lease, and
//! another node reaped it), its calls were ended there and its lines given away:
//! it ends them here too (cause `node-lost`), since their lines may carry
//! another node's calls by now.

use std::time::{Duration, Instant};

use offhook_directory::{HangupCause, Reaped};

use super::directory_io::Change;
use super::{Node, Owner};

/// Who this node is in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerId {
    /// The owner id of this start (from `Directory::start_owner`).
    pub id: String,
    /// The node's name: a later start of the same name reaps this one.
    pub name: String,
}

/// The lease's timer.
#[derive(Debug)]
pub(crate) struct Lease {
    owner: OwnerId,
    lease: Duration,
    next_at: Option<Instant>,
}

impl Lease {
    /// A lease that is refreshed (and reaps) first at `now`.
    pub(crate) fn new(owner: OwnerId, lease: Duration, now: Instant) -> Self {
        Self {
            owner,
            lease,
            next_at: Some(now),
        }
    }

    /// When the next refresh is due (none while one is in flight).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    /// This start's owner id in the directory.
    pub(crate) fn owner_id(&self) -> &str {
        &self.owner.id
    }

    /// How often the lease is refreshed.
    fn every(&self) -> Duration {
        self.lease / 4
    }
}

impl Node {
    /// Refreshes the lease and reaps, when due.
    pub(super) fn lease_timeout(&mut self, now: Instant) {
        if self.lease.next_at.is_none_or(|at| at > now) {
            return;
        }
        self.lease.next_at = None;
        let change = Change::Lease {
            owner: self.lease.owner.clone(),
            lease: self.lease.lease,
        };
        self.change(change, Owner::Lease);
    }

    /// The refresh's result: whether this node's lease held, what was reaped.
    pub(super) fn lease_refreshed(&mut self, now: Instant, result: Option<(bool, Reaped)>) {
        self.lease.next_at = Some(now + self.lease.every());
        let Some((held, reaped)) = result else {
            return;
        };
        if !held {
            tracing::error!(
                calls = self.calls(),
                "this node's lease ran out and another node reaped it: its calls end"
            );
            self.end_every_call(now, HangupCause::NodeLost);
            self.end_every_invite(now, HangupCause::NodeLost);
        }
        if !reaped.lines.is_empty() {
            self.lines.invalidate();
        }
    }
}
