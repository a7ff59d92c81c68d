//! Digest authentication (RFC 7616 as used by SIP, RFC 8760 for SHA-256): the
//! server's challenges and their verification against the HA1 an account stores,
//! and the client's answer to a challenge (the media relay registering its lines).
//!
//! Nonces are stateless, signed with a secret every node shares, and bound to the
//! incarnation of the process that issued them (a random id per start):
//! `<issued-at secs, hex>.<salt, 16 hex>.<incarnation>.<HMAC(secret, issued-at
//! ':' salt ':' incarnation ':' realm), 32 hex>`. Replays are refused by
//! remembering the highest nonce-count seen per nonce ([`NonceStore`]), and
//! since only the issuing incarnation accepts its nonces, a captured request
//! replayed after a restart or on another node meets a fresh challenge
//! (`stale=true`), never an account. A nonce older than its lifetime is
//! answered with `stale=true`.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use offhook_vocab::DigestAlgorithm;
use sha2::Sha256;

use crate::message::headers::split_values;

/// Why credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header does not parse or misses parameters.
    #[error("malformed credentials")]
    Malformed,
    /// The nonce was not issued by us.
    #[error("unknown nonce")]
    UnknownNonce,
    /// The nonce is ours but too old: challenge again with `stale=true`.
    #[error("stale nonce")]
    Stale,
    /// The nonce-count did not increase: a replay.
    #[error("replayed nonce count")]
    Replay,
    /// The response does not match the password.
    #[error("wrong credentials")]
    Mismatch,
    /// The digest `uri` is not the Request-URI (credentials taken from another request).
    #[error("digest uri does not match the Request-URI")]
    UriMismatch,
}

/// Parsed `Authorization` / `Proxy-Authorization` digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Realm.
    pub realm: String,
    /// Nonce.
    pub nonce: String,
    /// Digest URI.
    pub uri: String,
    /// The response hash.
    pub response: String,
    /// Algorithm.
    pub algorithm: DigestAlgorithm,
    /// `auth` or none.
    pub qop: Option<String>,
    /// Nonce count (hex).
    pub nc: Option<String>,
    /// Client nonce.
    pub cnonce: Option<String>,
}

/// Splits `Digest a="b", c=d` into lowercase names and unquoted values.
fn digest_params(value: &str) -> Option<HashMap<String, String>> {
    let rest = value.trim();
    let rest = rest
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("digest"))
        .map(|_| &rest[6..])?;
    let mut params = HashMap::new();
    for part in split_values(rest) {
        let (name, value) = part.split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        params.insert(name.trim().to_ascii_lowercase(), value.replace("\\\"", "\""));
    }
    Some(params)
}

fn algorithm(text: Option<&String>) -> Option<DigestAlgorithm> {
    match text.map(|s| s.to_ascii_uppercase()) {
        None => Some(DigestAlgorithm::Md5),
        Some(a) if a == "MD5" => Some(DigestAlgorithm::Md5),
        Some(a) if a == "SHA-256" => Some(DigestAlgorithm::Sha256),
        _ => None,
    }
}

/// The expected `response` (RFC 7616 s3.4.1) for an HA1.
pub fn digest_response(
    algorithm: DigestAlgorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

impl Credentials {
    /// Parses an `Authorization` or `Proxy-Authorization` value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = digest_params(value).ok_or(AuthError::Malformed)?;
        let get = |name: &str| p.get(name).cloned().ok_or(AuthError::Malformed);
        Ok(Self {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?.to_ascii_lowercase(),
            algorithm: algorithm(p.get("algorithm")).ok_or(AuthError::Malformed)?,
            qop: p.get("qop").cloned(),
            nc: p.get("nc").cloned(),
            cnonce: p.get("cnonce").cloned(),
        })
    }
}

/// Remembers the highest nonce-count per nonce (shared replay protection).
pub trait NonceStore {
    /// Records a use of a nonce; false when its count is not higher than the
    /// last one (a replay), or the store cannot vouch for it.
    fn advance(&mut self, used: &NonceUse, now_secs: u64) -> bool;
}

/// What accepted credentials used: a nonce and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceUse {
    /// The nonce.
    pub nonce: String,
    /// Its nonce-count (1 without qop).
    pub count: u32,
    /// When the nonce was issued (Unix seconds, from the nonce itself).
    pub issued: u64,
}

/// Whether two URIs name the same resource (the digest `uri` and the
/// Request-URI, RFC 7616 s3.4.6): the same text, or the same scheme, user,
/// host and port.
pub fn same_uri(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri.trim() == request_uri.trim() {
        return true;
    }
    match (
        crate::message::Uri::parse(digest_uri),
        crate::message::Uri::parse(request_uri),
    ) {
        (Ok(a), Ok(b)) => {
            a.scheme.eq_ignore_ascii_case(&b.scheme)
                && a.user == b.user
                && a.host.eq_ignore_ascii_case(&b.host)
                && a.port.unwrap_or(5060) == b.port.unwrap_or(5060)
        }
        _ => false,
    }
}

/// A [`NonceStore`] in memory, O(1) per use and bounded: nonces are forgotten
/// once their lifetime is over (the server refuses them as stale from then on),
/// oldest first, a few per use, so no request ever scans the store. When it
/// holds `capacity` live nonces, the oldest is forgotten early and every nonce
/// issued no later than it is refused from then on (its client is challenged
/// again): memory stays bounded and no forgotten nonce can be replayed.
#[derive(Debug)]
pub struct MemoryNonceStore {
    /// Each nonce's highest count.
    last: HashMap<String, u32>,
    /// Nonces in the order of their first use, with when they were issued.
    order: VecDeque<(u64, String)>,
    lifetime_secs: u64,
    capacity: usize,
    /// Nonces issued at or before this were forgotten early: refused.
    floor: Option<u64>,
}

impl MemoryNonceStore {
    /// A store for nonces fresh for `lifetime_secs`, holding at most `capacity`.
    pub fn new(lifetime_secs: u64, capacity: usize) -> Self {
        Self {
            last: HashMap::new(),
            order: VecDeque::new(),
            lifetime_secs,
            capacity: capacity.max(1),
            floor: None,
        }
    }

    /// Nonces held now.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Forgets the oldest nonce.
    fn forget_oldest(&mut self) -> Option<u64> {
        let (issued, nonce) = self.order.pop_front()?;
        self.last.remove(&nonce);
        Some(issued)
    }
}

impl NonceStore for MemoryNonceStore {
    fn advance(&mut self, used: &NonceUse, now_secs: u64) -> bool {
        // Those past their lifetime at the front go (at most two per use keeps
        // each use O(1) and still outpaces the one insert).
        for _ in 0..2 {
            match self.order.front() {
                Some((issued, _)) if now_secs.saturating_sub(*issued) > self.lifetime_secs => {
                    self.forget_oldest();
                }
                _ => break,
            }
        }
        if let Some(last) = self.last.get_mut(&used.nonce) {
            if used.count <= *last {
                return false;
            }
            *last = used.count;
            return true;
        }
        if self.floor.is_some_and(|floor| used.issued <= floor) {
            return false;
        }
        if self.last.len() >= self.capacity
            && let Some(issued) = self.forget_oldest()
        {
            self.floor = Some(self.floor.map_or(issued, |floor| floor.max(issued)));
            if used.issued <= issued {
                return false;
            }
        }
        self.last.insert(used.nonce.clone(), used.count);
        self.order.push_back((used.issued, used.nonce.clone()));
        true
    }
}

/// Issues and checks nonces for one realm set.
#[derive(Debug, Clone)]
pub struct DigestServer {
    secret: Vec<u8>,
    incarnation: String,
    lifetime_secs: u64,
    algorithms: Vec<DigestAlgorithm>,
    md5_only_user_agents: Vec<String>,
}

/// The algorithm a challenge or setting names (`MD5`, `SHA-256`), any case.
pub fn algorithm_named(name: &str) -> Option<DigestAlgorithm> {
    algorithm(Some(&name.to_owned()))
}

impl DigestServer {
    /// A server signing nonces with `secret` for process incarnation
    /// `incarnation` (random per start), fresh for `lifetime_secs`, challenging
    /// with MD5 and SHA-256.
    pub fn new(secret: Vec<u8>, incarnation: u64, lifetime_secs: u64) -> Self {
        Self {
            secret,
            incarnation: format!("{incarnation:016x}"),
            lifetime_secs,
            algorithms: vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256],
            md5_only_user_agents: Vec::new(),
        }
    }

    /// Challenges with `algorithms`, in this order (none: MD5), and with MD5
    /// alone to clients whose User-Agent contains one of `md5_only_user_agents`
    /// (case-insensitive): some stacks (libre, so baresip) give up on a request
    /// challenged with an algorithm they do not know instead of picking one they
    /// do (RFC 8760 s2.4).
    pub fn with_algorithms(
        mut self,
        algorithms: Vec<DigestAlgorithm>,
        md5_only_user_agents: &[String],
    ) -> Self {
        self.algorithms = if algorithms.is_empty() {
            vec![DigestAlgorithm::Md5]
        } else {
            algorithms
        };
        self.md5_only_user_agents = md5_only_user_agents
            .iter()
            .map(|u| u.to_ascii_lowercase())
            .collect();
        self
    }

    fn nonce_mac(&self, issued: u64, salt: &str, realm: &str) -> String {
        // HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{issued:x}:{salt}:{}:{realm}", self.incarnation).as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A nonce for `realm` at `now_secs`, unique by its `salt` (random, from
    /// the caller's RNG).
    pub fn nonce(&self, realm: &str, now_secs: u64, salt: u64) -> String {
        let salt = format!("{salt:016x}");
        let mac = self.nonce_mac(now_secs, &salt, realm);
        format!("{now_secs:x}.{salt}.{}.{mac}", self.incarnation)
    }

    /// The challenge header values for a client sending `user_agent`, one per
    /// algorithm (by default MD5 then SHA-256, RFC 8760). RFC 8760 s2.4 asks for
    /// the preferred first, but many clients (sipp, older phones) only read the
    /// first challenge and only speak MD5; SHA-256 clients find theirs.
    pub fn challenges(
        &self,
        realm: &str,
        now_secs: u64,
        stale: bool,
        user_agent: Option<&str>,
        salt: u64,
    ) -> Vec<String> {
        let nonce = self.nonce(realm, now_secs, salt);
        let stale = if stale { ", stale=true" } else { "" };
        let md5_only = user_agent.is_some_and(|ua| {
            let ua = ua.to_ascii_lowercase();
            self.md5_only_user_agents
                .iter()
                .any(|quirk| ua.contains(quirk.as_str()))
        });
        let algorithms: &[DigestAlgorithm] = if md5_only {
            &[DigestAlgorithm::Md5]
        } else {
            &self.algorithms
        };
        algorithms
            .iter()
            .map(|&a| {
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    a.as_str()
                )
            })
            .collect()
    }

    /// Checks credentials for a request (`method`) against the stored HA1 of
    /// their algorithm; `uri_ok` judges the digest `uri` (the caller knows which
    /// URIs name the request: [`same_uri`]). What the nonce was used for comes
    /// back, to be recorded with [`NonceStore::advance`] once the caller accepts
    /// it (a count that does not grow is a replay).
    pub fn check(
        &self,
        credentials: &Credentials,
        method: &str,
        uri_ok: impl FnOnce(&str) -> bool,
        ha1: &str,
        now_secs: u64,
    ) -> Result<NonceUse, AuthError> {
        if !uri_ok(&credentials.uri) {
            return Err(AuthError::UriMismatch);
        }
        let mut parts = credentials.nonce.split('.');
        let (Some(issued), Some(salt), Some(incarnation), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthError::UnknownNonce);
        };
        if incarnation != self.incarnation {
            return Err(AuthError::UnknownNonce);
        }
        let issued = u64::from_str_radix(issued, 16).map_err(|_| AuthError::UnknownNonce)?;
        if mac != self.nonce_mac(issued, salt, &credentials.realm) {
            return Err(AuthError::UnknownNonce);
        }
        let qop = match (credentials.qop.as_deref(), &credentials.nc, &credentials.cnonce) {
            (Some("auth"), Some(nc), Some(cnonce)) => Some(("auth", nc.as_str(), cnonce.as_str())),
            (None, _, _) => None,
            _ => return Err(AuthError::Malformed),
        };
        let expected = digest_response(
            credentials.algorithm,
            ha1,
            &credentials.nonce,
            method,
            &credentials.uri,
            qop,
        );
        if expected != credentials.response {
            return Err(AuthError::Mismatch);
        }
        if now_secs.saturating_sub(issued) > self.lifetime_secs {
            return Err(AuthError::Stale);
        }
        // Without qop there is no count: the nonce works once.
        let count = match qop {
            Some((_, nc, _)) => u32::from_str_radix(nc, 16).map_err(|_| AuthError::Malformed)?,
            None => 1,
        };
        Ok(NonceUse {
            nonce: credentials.nonce.clone(),
            count,
            issued,
        })
    }
}

/// A digest challenge (`WWW-Authenticate` or `Proxy-Authenticate`) as a client
/// answers it: parsed once, then answered for each request with the next nonce
/// count (RFC 7616 s3.4: a client that reuses a nonce counts its requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// Realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Algorithm.
    pub algorithm: DigestAlgorithm,
    /// Whether `qop=auth` is offered (then the answer carries nc and cnonce).
    pub qop_auth: bool,
    /// Echoed back unchanged when present.
    pub opaque: Option<String>,
    /// The server says our last nonce is stale, not our credentials wrong.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a challenge; `None` when it is not a digest we speak.
    pub fn parse(challenge: &str) -> Option<Self> {
        let p = digest_params(challenge)?;
        Some(Self {
            realm: p.get("realm")?.clone(),
            nonce: p.get("nonce")?.clone(),
            algorithm: algorithm(p.get("algorithm"))?,
            qop_auth: p
                .get("qop")
                .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")),
            opaque: p.get("opaque").cloned(),
            stale: p.get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` value for request `count` (1 for the first) on this
    /// nonce.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        cnonce: &str,
        count: u32,
    ) -> String {
        let ha1 = self.algorithm.ha1(username, &self.realm, password);
        let nc = format!("{count:08x}");
        let qop = self.qop_auth.then_some(("auth", nc.as_str(), cnonce));
        let response = digest_response(self.algorithm, &ha1, &self.nonce, method, uri, qop);
        let mut value = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.as_str()
        );
        if self.qop_auth {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{opaque}\""));
        }
        value
    }
}

/// The client's `Authorization` value answering a challenge (qop=auth when
/// offered) for the first request on its nonce, or `None` when the challenge is
/// not a digest we speak.
pub fn answer_challenge(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let challenge = DigestChallenge::parse(challenge)?;
    Some(challenge.answer(method, uri, username, password, cnonce, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_known_answer() {
        // RFC 2617 s3.5 (HTTP, same computation): Mufasa / "Circle Of Life".
        let ha1 = DigestAlgorithm::ha1(
            DigestAlgorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let response = digest_response(
            DigestAlgorithm::Md5,
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(("auth", "00000001", "0a4f113b")),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc_7616_known_answers() {
        // RFC 7616 s3.9.1: the same request answered with MD5 and with SHA-256.
        for (algorithm, expected) in [
            (DigestAlgorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                DigestAlgorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ha1 = algorithm.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
            let response = digest_response(
                algorithm,
                &ha1,
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                "GET",
                "/dir/index.html",
                Some(("auth", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
            );
            assert_eq!(response, expected, "{algorithm:?}");
        }
    }

    #[test]
    fn challenge_answer_verify_replay_stale() {
        let server = DigestServer::new(b"secret".to_vec(), 1, 300);
        const URI: &str = "sip:demo.test";
        for challenge in server.challenges("demo.test", 1_000, false, None, 7) {
            // Both challenges share a nonce: each answer gets its own store here.
            let mut store = MemoryNonceStore::new(300, 1_000);
            let answer = answer_challenge(&challenge, "REGISTER", URI, "alice", "pw123456", "c1").unwrap();
            let creds = Credentials::parse(&answer).unwrap();
            let ha1 = creds.algorithm.ha1("alice", "demo.test", "pw123456");
            let ok = |uri: &str| same_uri(uri, URI);
            let used = server.check(&creds, "REGISTER", ok, &ha1, 1_010).unwrap();
            assert_eq!(used.count, 1);
            assert!(store.advance(&used, 1_010));
            assert!(!store.advance(&used, 1_011), "a replay");
            let wrong = creds.algorithm.ha1("alice", "demo.test", "nope");
            assert_eq!(
                server.check(&creds, "REGISTER", ok, &wrong, 1_012),
                Err(AuthError::Mismatch)
            );
            assert_eq!(
                server.check(&creds, "REGISTER", ok, &ha1, 2_000),
                Err(AuthError::Stale)
            );
            assert_eq!(
                server.check(&creds, "REGISTER", |u| same_uri(u, "sip:other.test"), &ha1, 1_010),
                Err(AuthError::UriMismatch),
                "credentials of another request"
            );
            assert!(
                server
                    .check(
                        &creds,
                        "REGISTER",
                        |u| same_uri(u, "sip:DEMO.test:5060"),
                        &ha1,
                        1_010
                    )
                    .is_ok(),
                "the same URI written otherwise"
            );
            let other = DigestServer::new(b"other".to_vec(), 1, 300);
            assert_eq!(
                other.check(&creds, "REGISTER", ok, &ha1, 1_010),
                Err(AuthError::UnknownNonce)
            );
            let restarted = DigestServer::new(b"secret".to_vec(), 2, 300);
            assert_eq!(
                restarted.check(&creds, "REGISTER", ok, &ha1, 1_010),
                Err(AuthError::UnknownNonce),
                "another incarnation (a restart, another node) does not take it"
            );
        }
        assert!(server.challenges("r", 0, false, None, 1)[1].contains("algorithm=SHA-256"));
        assert!(server.challenges("r", 0, true, None, 1)[1].contains("stale=true"));
        // Settings: SHA-256 only, and MD5 alone for a client that cannot skip one.
        let quirks = ["baresip".to_owned()];
        let sha = server
            .clone()
            .with_algorithms(vec![DigestAlgorithm::Sha256], &quirks);
        let offered = sha.challenges("r", 0, false, Some("Linphone/5.2"), 1);
        assert_eq!(offered.len(), 1);
        assert!(offered[0].contains("algorithm=SHA-256"));
        let offered = sha.challenges("r", 0, false, Some("baresip v1.0.0 (x86_64/linux)"), 1);
        assert_eq!(offered.len(), 1);
        assert!(offered[0].contains("algorithm=MD5"));
        assert_eq!(algorithm_named("sha-256"), Some(DigestAlgorithm::Sha256));
        assert_eq!(algorithm_named("SHA-512"), None);
    }

    #[test]
    fn parses_qop_lists_and_refuses_garbage() {
        let c = "Digest realm=\"r\", nonce=\"n\", qop=\"auth,auth-int\", algorithm=MD5";
        assert!(
            answer_challenge(c, "INVITE", "sip:x@r", "u", "p", "c")
                .unwrap()
                .contains("qop=auth")
        );
        for junk in [
            "",
            "Basic abc",
            "Digest",
            "Digest username=\"a\"",
            "Digest \"\"=,=,",
        ] {
            assert!(Credentials::parse(junk).is_err(), "{junk}");
        }
        assert!(
            answer_challenge(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512",
                "A",
                "u",
                "u",
                "p",
                "c"
            )
            .is_none()
        );
    }

    fn used(nonce: u32, count: u32, issued: u64) -> NonceUse {
        NonceUse {
            nonce: format!("n{nonce}"),
            count,
            issued,
        }
    }

    #[test]
    fn the_nonce_store_stays_bounded_under_any_load_and_refuses_what_it_forgot() {
        let mut store = MemoryNonceStore::new(300, 1_000);
        // A million fresh nonces in one second: never more than 1,000 held.
        for n in 0..1_000_000 {
            assert!(store.advance(&used(n, 1, 1_000), 1_000) || n >= 1_000);
            assert!(store.len() <= 1_000);
        }
        // The one forgotten early cannot be replayed, nor any as old that came
        // after it (their clients are challenged again); those held cannot be
        // replayed either, and go on counting.
        assert!(!store.advance(&used(0, 1, 1_000), 1_000), "forgotten: refused");
        assert!(!store.advance(&used(999_999, 2, 1_000), 1_000), "as old: refused");
        assert!(!store.advance(&used(5, 1, 1_000), 1_000), "held: a replay");
        assert!(store.advance(&used(5, 2, 1_000), 1_000), "held: a higher count");
        // A nonce issued later is taken.
        assert!(store.advance(&used(2_000_000, 1, 1_001), 1_001));
    }

    #[test]
    fn the_nonce_store_forgets_nonces_past_their_lifetime_a_few_per_use() {
        let mut store = MemoryNonceStore::new(300, 1_000);
        for n in 0..10 {
            assert!(store.advance(&used(n, 1, 1_000), 1_000));
        }
        // Past their lifetime: each later use forgets two of them.
        for n in 10..15 {
            assert!(store.advance(&used(n, 1, 1_400), 1_400));
        }
        assert_eq!(store.len(), 5, "the ten old ones are gone, the five new held");
        assert!(
            !store.advance(&used(12, 1, 1_400), 1_400),
            "a replay of a held one"
        );
    }
}
