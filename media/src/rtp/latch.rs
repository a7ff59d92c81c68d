//! Strict source validation: the one source address an RTP/AVP leg takes media
//! from. The signaled SDP names the peer's host; the first valid RTP packet from
//! that host latches its exact address (port included: peers such as sipp send
//! from another port than the one they offered), and from then on only that
//! address is heard. Datagrams from any other source never reach the RTP
//! validator (so a new SSRC can only take over from the latched source) and are
//! counted as foreign. Our own media still goes where the SDP says.

use std::net::SocketAddr;

/// Where a leg's media may come from.
#[derive(Debug, Clone)]
pub struct SourceLatch {
    signaled: SocketAddr,
    latched: Option<SocketAddr>,
    foreign: u64,
}

impl SourceLatch {
    /// A latch for the peer whose SDP named `signaled`.
    pub fn new(signaled: SocketAddr) -> Self {
        Self {
            signaled,
            latched: None,
            foreign: 0,
        }
    }

    /// Whether a datagram from `from` may be looked at: the latched address once
    /// latched, before that any port of the signaled host. Foreign ones are counted.
    pub fn admit(&mut self, from: SocketAddr) -> bool {
        let ours = match self.latched {
            Some(latched) => same(latched, from),
            None => from.ip().to_canonical() == self.signaled.ip().to_canonical(),
        };
        if !ours {
            self.foreign += 1;
        }
        ours
    }

    /// Whether an RTCP datagram from `from` on the leg's own RTCP port may be
    /// looked at: it must come from the peer's host (latched or signaled).
    pub fn admit_rtcp(&mut self, from: SocketAddr) -> bool {
        let host = self.latched.unwrap_or(self.signaled).ip();
        let ours = from.ip().to_canonical() == host.to_canonical();
        if !ours {
            self.foreign += 1;
        }
        ours
    }

    /// A new offer in the dialog (signed by signaling) names another address:
    /// the latch starts over there, with the same rules (its host only, then
    /// its first valid packet's exact address); the old source is foreign.
    pub fn resignal(&mut self, signaled: SocketAddr) {
        if signaled != self.signaled {
            self.signaled = signaled;
            self.latched = None;
        }
    }

    /// A valid RTP packet came from `from` (already admitted): the first one latches.
    pub fn confirm(&mut self, from: SocketAddr) {
        self.latched.get_or_insert(from);
    }

    /// The latched source, once there is one.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Datagrams refused for coming from elsewhere.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::SourceLatch;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_the_signaled_host_is_heard_before_the_latch() {
        let mut latch = SourceLatch::new(addr("192.0.2.10:4000"));
        assert!(!latch.admit(addr("198.51.100.7:4000")));
        assert!(latch.admit(addr("192.0.2.10:4000")));
        // A NAT may map the port: the host agrees, so it is admitted.
        assert!(latch.admit(addr("192.0.2.10:31000")));
        assert_eq!(latch.foreign(), 1);
    }

    #[test]
    fn after_the_first_packet_only_its_exact_address_is_heard() {
        let mut latch = SourceLatch::new(addr("192.0.2.10:4000"));
        assert!(latch.admit(addr("192.0.2.10:31000")));
        latch.confirm(addr("192.0.2.10:31000"));
        assert_eq!(latch.latched(), Some(addr("192.0.2.10:31000")));
        // Another port of the same host and another host are both foreign now.
        assert!(!latch.admit(addr("192.0.2.10:4000")));
        assert!(!latch.admit(addr("198.51.100.7:31000")));
        assert!(latch.admit(addr("192.0.2.10:31000")));
        // A later confirm from elsewhere cannot move the latch.
        latch.confirm(addr("192.0.2.10:4000"));
        assert_eq!(latch.latched(), Some(addr("192.0.2.10:31000")));
        assert_eq!(latch.foreign(), 2);
    }

    #[test]
    fn a_new_signaled_address_moves_the_latch_and_the_old_source_is_foreign() {
        let mut latch = SourceLatch::new(addr("192.0.2.10:4000"));
        latch.confirm(addr("192.0.2.10:4000"));
        latch.resignal(addr("192.0.2.10:4000"));
        assert_eq!(
            latch.latched(),
            Some(addr("192.0.2.10:4000")),
            "same address: kept"
        );
        latch.resignal(addr("198.51.100.7:5000"));
        assert_eq!(latch.latched(), None);
        assert!(!latch.admit(addr("192.0.2.10:4000")), "the old source");
        assert!(!latch.admit(addr("203.0.113.5:5000")), "a third host");
        assert!(latch.admit(addr("198.51.100.7:5002")));
        latch.confirm(addr("198.51.100.7:5002"));
        assert!(!latch.admit(addr("198.51.100.7:5000")));
        assert_eq!(latch.foreign(), 3);
    }

    #[test]
    fn ipv4_mapped_addresses_are_the_same_host() {
        let mut latch = SourceLatch::new(addr("127.0.0.1:4000"));
        assert!(latch.admit(addr("[::ffff:127.0.0.1]:4000")));
        latch.confirm(addr("[::ffff:127.0.0.1]:4000"));
        assert!(latch.admit(addr("127.0.0.1:4000")));
    }

    #[test]
    fn rtcp_on_its_own_port_must_come_from_the_peer_host() {
        let mut latch = SourceLatch::new(addr("192.0.2.10:4000"));
        assert!(latch.admit_rtcp(addr("192.0.2.10:4001")));
        assert!(!latch.admit_rtcp(addr("198.51.100.7:4001")));
        assert_eq!(latch.foreign(), 1);
    }
}
