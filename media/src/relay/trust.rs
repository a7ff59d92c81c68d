//! Which requests the relay executes: only those signaling signed
//! (`X-Offhook-Auth`, see [`offhook_sip::trust`]) with the key both hold — the
//! SHA-256 HA1 of the relay's account, computed here from its password — made
//! within the last [`WINDOW`], and not seen before: a captured INVITE or BYE
//! replayed within the window (the same Call-ID, CSeq and method) is refused
//! too. Whoever else reaches the relay's port cannot make it dial or hang up.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use offhook_sip::message::Request;
use offhook_sip::trust::{self, TrustError};
use offhook_vocab::DigestAlgorithm;

use super::config::RelayConfig;

/// How old a signature may be.
pub(crate) const WINDOW: Duration = Duration::from_secs(30);

/// Why a request is not executed (answered 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Untrusted {
    /// Its signature does not hold.
    #[error(transparent)]
    Signature(#[from] TrustError),
    /// The same request came within the window already.
    #[error("request replayed")]
    Replayed,
}

/// What a request is known by for replays: Call-ID, CSeq, method.
type Seen = (String, String, String);

/// The relay's side of the trust (see the module comment).
#[derive(Debug)]
pub(crate) struct Trust {
    key: String,
    /// Requests executed within the window, oldest first.
    seen: VecDeque<(Instant, Seen)>,
    known: HashSet<Seen>,
}

impl Trust {
    /// The key of `config`'s relay account.
    pub(crate) fn new(config: &RelayConfig) -> Self {
        Self {
            key: DigestAlgorithm::Sha256.ha1(&config.name, &config.domain, &config.password),
            seen: VecDeque::new(),
            known: HashSet::new(),
        }
    }

    /// Whether to execute `request`, at `now` (Unix `wall_ms`).
    pub(crate) fn check(&mut self, now: Instant, wall_ms: i64, request: &Request) -> Result<(), Untrusted> {
        let window = i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX);
        trust::verify(self.key.as_bytes(), request, wall_ms, window)?;
        while let Some((at, _)) = self.seen.front()
            && now.saturating_duration_since(*at) > WINDOW
        {
            if let Some((_, old)) = self.seen.pop_front() {
                self.known.remove(&old);
            }
        }
        let cseq = request.headers.get("CSeq").unwrap_or_default().trim().to_owned();
        let id = (request.call_id().to_owned(), cseq, request.method.to_string());
        if !self.known.insert(id.clone()) {
            return Err(Untrusted::Replayed);
        }
        self.seen.push_back((now, id));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;
    use offhook_sip::message::Method;

    #[test]
    fn signed_requests_pass_once_and_others_never() {
        let config = RelayConfig::default();
        let mut trust = Trust::new(&config);
        let key = DigestAlgorithm::Sha256.ha1(&config.name, &config.domain, &config.password);
        let mut bye = Request::new(Method::Bye, "sip:line-1@192.0.2.9");
        bye.headers.push("Call-ID", "c1");
        bye.headers.push("CSeq", "2 BYE");
        let t0 = Instant::now();
        assert_eq!(
            trust.check(t0, 1_000, &bye),
            Err(Untrusted::Signature(TrustError::Missing))
        );
        trust::sign(key.as_bytes(), &mut bye, 1_000);
        assert_eq!(trust.check(t0, 1_200, &bye), Ok(()));
        assert_eq!(trust.check(t0, 1_300, &bye), Err(Untrusted::Replayed));
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!(
            trust.check(later, 1_000 + 31_000, &bye),
            Err(Untrusted::Signature(TrustError::Expired))
        );
        trust::sign(b"someone else", &mut bye, 31_000);
        assert_eq!(
            trust.check(later, 31_000, &bye),
            Err(Untrusted::Signature(TrustError::Mismatch))
        );
    }
}
