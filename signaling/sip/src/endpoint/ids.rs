//! Fresh identifiers for what an endpoint sends: Via branches, From/To tags and
//! Call-IDs, random per RFC 3261 s19.3 (at least 32 bits; ours carry 64 or more)
//! from a seedable RNG, so that a test replays a whole call exactly.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The RFC 3261 magic cookie that starts every branch we make.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Makes branches, tags and Call-IDs.
#[derive(Debug)]
pub(crate) struct Ids {
    rng: StdRng,
}

impl Ids {
    pub(crate) fn seeded(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes * 2);
        for _ in 0..bytes {
            let byte: u8 = self.rng.random();
            out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        out
    }

    /// A Via branch: the magic cookie and 80 random bits.
    pub(crate) fn branch(&mut self) -> String {
        format!("{BRANCH_COOKIE}{}", self.hex(10))
    }

    /// A From or To tag: 64 random bits.
    pub(crate) fn tag(&mut self) -> String {
        self.hex(8)
    }

    /// A Call-ID: 128 random bits at `host`.
    pub(crate) fn call_id(&mut self, host: &str) -> String {
        format!("{}@{host}", self.hex(16))
    }

    /// A random number for callers that need one from the same seed (CSeq
    /// starts, SDP session ids).
    pub(crate) fn number(&mut self, below: u32) -> u32 {
        self.rng.random_range(1..below.max(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_replay_and_differ() {
        let (mut a, mut b) = (Ids::seeded(7), Ids::seeded(7));
        let first = (a.branch(), a.tag(), a.call_id("h"));
        assert_eq!(first, (b.branch(), b.tag(), b.call_id("h")));
        assert!(first.0.starts_with(BRANCH_COOKIE) && first.0.len() == 27);
        assert_eq!(first.1.len(), 16);
        assert_ne!(a.tag(), first.1, "each tag is new");
    }
}
