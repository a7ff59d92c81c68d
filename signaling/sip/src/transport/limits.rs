//! What a stream connection may hold, and for how long: connections are
//! admitted against a global cap and a cap per source address (a flood from one
//! address is refused before it fills the table), each admitted connection holds
//! a [`Permit`] that gives its slot back when it ends, and every connection has
//! deadlines: its TLS or WebSocket handshake, its first message, each message it
//! starts, and its silence after that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::TransportStats;

/// The caps and timeouts of stream connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections at once, all sources.
    pub max_connections: usize,
    /// Connections at once from one address.
    pub max_per_source: usize,
    /// A TLS or WebSocket handshake must be done within this.
    pub handshake: Duration,
    /// A new connection must deliver its first message within this.
    pub first_message: Duration,
    /// A message once started must be complete within this.
    pub message: Duration,
    /// A connection that says nothing for this long is closed.
    pub idle: Duration,
    /// WebSocket connections are pinged this often; one that answers nothing
    /// for two of these is closed.
    pub ping: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_per_source: 64,
            handshake: Duration::from_secs(10),
            first_message: Duration::from_secs(10),
            message: Duration::from_secs(10),
            // Longer than the longest registration a client keeps alive.
            idle: Duration::from_secs(3900),
            ping: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// The connections held, by source.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection's slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    source: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    // Plain counters: a panic mid-update cannot leave them half-changed.
    counts.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            counts: Arc::default(),
        }
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// A slot for a connection from `source`, or `None` (counted) when a cap is reached.
    pub(crate) fn admit(&self, source: IpAddr, stats: &TransportStats) -> Option<Permit> {
        let mut counts = lock(&self.counts);
        let from_source = counts.by_source.get(&source).copied().unwrap_or(0);
        if counts.total >= self.limits.max_connections || from_source >= self.limits.max_per_source {
            stats.refused_connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        counts.total += 1;
        *counts.by_source.entry(source).or_default() += 1;
        Some(Permit {
            source,
            counts: self.counts.clone(),
        })
    }

    /// Connections held now.
    pub(crate) fn held(&self) -> usize {
        lock(&self.counts).total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_source_and_overall_and_slots_come_back() {
        let stats = TransportStats::default();
        let admission = Admission::new(ConnectionLimits {
            max_connections: 3,
            max_per_source: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let first = admission.admit(a, &stats).unwrap();
        let _second = admission.admit(a, &stats).unwrap();
        assert!(admission.admit(a, &stats).is_none(), "two per source");
        let _third = admission.admit(b, &stats).unwrap();
        assert!(admission.admit(b, &stats).is_none(), "three in all");
        drop(first);
        assert!(admission.admit(a, &stats).is_some(), "a slot came back");
        assert_eq!(stats.refused_connections.load(Ordering::Relaxed), 2);
    }
}
