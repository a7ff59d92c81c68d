//! Settings of the signaling server: where each transport listens (none of them is
//! required), the TLS certificate, the host name it puts in Via and Record-Route,
//! transaction timers (RFC 3261 T1/T2/T4), size and rate limits. Defaults suit a
//! single machine (`offhook demo`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The signaling server's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SignalingConfig {
    /// SIP over UDP.
    pub udp: Option<SocketAddr>,
    /// SIP over TCP.
    pub tcp: Option<SocketAddr>,
    /// SIP over WebSocket (browsers).
    pub ws: Option<SocketAddr>,
    /// SIP over TLS (needs `tls_cert` and `tls_key`).
    pub tls: Option<SocketAddr>,
    /// SIP over secure WebSocket (needs `tls_cert` and `tls_key`).
    pub wss: Option<SocketAddr>,
    /// PEM certificate chain for TLS and WSS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS and WSS.
    pub tls_key: Option<PathBuf>,
    /// Host (name or IP) this node puts in Via and Record-Route; the UDP address's
    /// IP when empty.
    pub host: String,
    /// Name of this node in registrations (which node holds a client's
    /// connection) and as the owner of its calls and lines: unique per node
    /// sharing a directory, the same across restarts of one node (a start reaps
    /// what the node's previous life left).
    pub node_id: String,
    /// The node's lease on its calls and lines in the directory, in seconds:
    /// refreshed every quarter of it; when a node dies, another node (or its own
    /// restart) ends its calls and frees its lines once the lease ran out.
    pub owner_lease_s: u64,
    /// How often the node looks for operator requests (hang up a call, reset a
    /// line) on what it holds, in ms; 0 turns it off.
    pub operator_poll_ms: u64,
    /// RFC 3261 T1, the round-trip estimate, in ms.
    pub t1_ms: u64,
    /// RFC 3261 T2, the cap on non-INVITE retransmit intervals, in ms.
    pub t2_ms: u64,
    /// RFC 3261 T4, how long a message may stay in the network, in ms.
    pub t4_ms: u64,
    /// Largest message accepted on any transport, in bytes.
    pub max_message_bytes: usize,
    /// How long a digest nonce stays fresh, in seconds.
    pub nonce_lifetime_s: u64,
    /// Registration expiry bounds, in seconds.
    pub min_expires_s: u32,
    /// Longest registration granted, in seconds.
    pub max_expires_s: u32,
    /// New calls per minute from one source address.
    pub calls_per_source_per_minute: u32,
    /// How long this node trusts what it read from the directory (tenants,
    /// accounts, icons, the lines snapshot), in ms; 0 reads it for every call.
    pub directory_cache_ms: u64,
    /// Time between SIP OPTIONS probes of each relay registered here, in ms;
    /// 0 turns the health checks off.
    pub relay_check_interval_ms: u64,
    /// How long a probe waits for its answer, in ms.
    pub relay_check_timeout_ms: u64,
    /// Unanswered probes in a row that mark a relay down.
    pub relay_check_misses: u32,
    /// Digest algorithms offered in challenges, in this order (`MD5`, `SHA-256`).
    pub digest_algorithms: Vec<String>,
    /// Clients (a part of their User-Agent, any case) challenged with MD5 alone,
    /// because they give up on a challenge whose algorithm they do not know.
    pub md5_only_user_agents: Vec<String>,
    /// Longest a call may last, in seconds; then both sides get a BYE.
    pub max_call_s: u64,
    /// On SIGTERM, how long calls in progress may go on before both sides get a
    /// BYE, in seconds (new calls are refused at once).
    pub drain_s: u64,
    /// Stream connections (TCP, TLS, WebSocket) at once.
    pub max_connections: usize,
    /// Stream connections at once from one address.
    pub max_connections_per_source: usize,
    /// A stream connection must complete its handshake and send its first
    /// message within this, in ms; a message once started must be complete
    /// within it too.
    pub connection_deadline_ms: u64,
    /// Failed digest attempts per source address or account before each next
    /// attempt must wait (1 s, doubling).
    pub auth_free_failures: u32,
    /// Failed attempts that ban the source address or account.
    pub auth_ban_failures: u32,
    /// How long a ban lasts, in seconds.
    pub auth_ban_s: u64,
    /// Threads of the async runtime of `offhook signaling`; 0: one per core.
    /// The node is one task (and the directory writer another), so more
    /// threads mostly add wake-ups between them: at 1,000 calls a second on a
    /// 2-core machine, one thread took 0.90 ms of CPU per call, two 1.09 ms.
    pub worker_threads: usize,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        let local = |port| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        Self {
            udp: local(5060),
            tcp: local(5060),
            ws: local(5066),
            tls: None,
            wss: None,
            tls_cert: None,
            tls_key: None,
            host: String::new(),
            node_id: "node-1".to_owned(),
            owner_lease_s: 20,
            operator_poll_ms: 2_000,
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            max_message_bytes: 64 * 1024,
            nonce_lifetime_s: 300,
            min_expires_s: 60,
            max_expires_s: 3_600,
            calls_per_source_per_minute: 60,
            directory_cache_ms: 1_000,
            relay_check_interval_ms: 5_000,
            relay_check_timeout_ms: 2_000,
            relay_check_misses: 2,
            digest_algorithms: vec!["MD5".to_owned(), "SHA-256".to_owned()],
            md5_only_user_agents: vec!["baresip".to_owned()],
            max_call_s: 4 * 3600,
            drain_s: 20,
            max_connections: 4096,
            max_connections_per_source: 64,
            connection_deadline_ms: 10_000,
            auth_free_failures: 5,
            auth_ban_failures: 20,
            auth_ban_s: 900,
            worker_threads: 1,
        }
    }
}

impl SignalingConfig {
    /// T1 as a duration.
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    /// T2 as a duration.
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }

    /// T4 as a duration.
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }

    /// The relay health checks' settings, unless they are off.
    pub fn relay_checks(&self) -> Option<crate::health::HealthConfig> {
        (self.relay_check_interval_ms > 0).then(|| crate::health::HealthConfig {
            interval: Duration::from_millis(self.relay_check_interval_ms),
            timeout: Duration::from_millis(self.relay_check_timeout_ms),
            misses: self.relay_check_misses,
        })
    }

    /// `directory_cache_ms` as a duration.
    pub fn directory_cache(&self) -> Duration {
        Duration::from_millis(self.directory_cache_ms)
    }

    /// `max_call_s` as a duration.
    pub fn max_call_duration(&self) -> Duration {
        Duration::from_secs(self.max_call_s)
    }

    /// The caps and deadlines of stream connections.
    pub fn connection_limits(&self) -> offhook_sip::transport::ConnectionLimits {
        let deadline = Duration::from_millis(self.connection_deadline_ms);
        offhook_sip::transport::ConnectionLimits {
            max_connections: self.max_connections,
            max_per_source: self.max_connections_per_source,
            handshake: deadline,
            first_message: deadline,
            message: deadline,
            ..Default::default()
        }
    }

    /// The digest throttle's settings.
    pub(crate) fn auth_throttle(&self) -> crate::node::ThrottleConfig {
        crate::node::ThrottleConfig {
            free: self.auth_free_failures,
            backoff: Duration::from_secs(1),
            ban_after: self.auth_ban_failures.max(1),
            ban: Duration::from_secs(self.auth_ban_s),
            window: Duration::from_secs(self.auth_ban_s.max(60)),
        }
    }

    /// `owner_lease_s` as a duration (at least 4 s).
    pub fn owner_lease(&self) -> Duration {
        Duration::from_secs(self.owner_lease_s.max(4))
    }

    /// `operator_poll_ms` as a duration; `None` when off.
    pub fn operator_poll(&self) -> Option<Duration> {
        (self.operator_poll_ms > 0).then(|| Duration::from_millis(self.operator_poll_ms))
    }

    /// `drain_s` as a duration.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs(self.drain_s)
    }
}
