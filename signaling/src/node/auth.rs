//! Digest authentication of a request as an account of a tenant (realm = the
//! tenant's SIP domain), as a decision: the account comes from the view; the
//! credentials are checked against its HA1, and their digest `uri` must name the
//! Request-URI or this server (sipp and some phones authenticate with the
//! server's address; the digest covers that `uri`); a missing, stale
//! or replayed credential is answered with a challenge (401 for the registrar, 407
//! for the proxy), a wrong one with 403. Known and unknown user names get the same
//! answers, so the answers tell an attacker nothing about which accounts exist.
//! The nonce is spent ([`Verified::spend`]) only once the caller accepts.

use std::net::IpAddr;
use std::time::Instant;

use offhook_directory::{Account, Tenant};
use offhook_sip::auth::{AuthError, Credentials, DigestServer, NonceStore, NonceUse, same_uri};
use offhook_sip::endpoint::Endpoint;
use offhook_sip::message::{Request, Uri};

use super::throttle::Throttle;
use super::view::{View, found};
use super::{Reply, Step};

/// Credentials that passed, not yet spent.
#[derive(Debug)]
pub(crate) struct Verified {
    pub account: Account,
    nonce: NonceUse,
}

impl Verified {
    /// Records the nonce's use; false when it was used already (a replay: the
    /// caller challenges again).
    pub(crate) fn spend(&self, store: &mut dyn NonceStore, now_secs: u64) -> bool {
        store.advance(&self.nonce, now_secs)
    }
}

/// Which challenge a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenger {
    /// The registrar: 401, `WWW-Authenticate`, credentials in `Authorization`.
    Registrar,
    /// The proxy: 407, `Proxy-Authenticate`, credentials in `Proxy-Authorization`.
    Proxy,
}

impl Challenger {
    fn credentials_header(self) -> &'static str {
        match self {
            Self::Registrar => "Authorization",
            Self::Proxy => "Proxy-Authorization",
        }
    }

    /// The challenge response (its nonces from `salt`).
    pub(crate) fn challenge(
        self,
        digest: &DigestServer,
        request: &Request,
        realm: &str,
        stale: bool,
        now_secs: u64,
        salt: u64,
    ) -> Reply {
        let (status, reason, header) = match self {
            Self::Registrar => (401, "Unauthorized", "WWW-Authenticate"),
            Self::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
        };
        let values = digest.challenges(realm, now_secs, stale, request.headers.get("User-Agent"), salt);
        Reply {
            status,
            reason: reason.into(),
            headers: values.into_iter().map(|v| (header, v)).collect(),
        }
    }
}

/// What an authentication decision reads.
pub(crate) struct AuthCtx<'a> {
    pub view: &'a View,
    pub endpoint: &'a Endpoint,
    pub throttle: &'a Throttle,
    pub digest: &'a DigestServer,
    pub now: Instant,
    pub now_secs: u64,
    /// Where the request came from.
    pub source: IpAddr,
}

/// Authenticates `request` as an account of `tenant`.
pub(crate) fn check(
    ctx: &AuthCtx<'_>,
    request: &Request,
    tenant: &Tenant,
    challenger: Challenger,
) -> Step<Verified> {
    let AuthCtx {
        view,
        endpoint,
        digest,
        now,
        now_secs,
        ..
    } = *ctx;
    let realm = &tenant.sip_domain;
    let credentials = request
        .headers
        .get_all(challenger.credentials_header())
        .into_iter()
        .filter_map(|v| Credentials::parse(v).ok())
        .find(|c| c.realm.eq_ignore_ascii_case(realm));
    let challenge = |stale| Step::Challenge {
        realm: realm.clone(),
        stale,
    };
    let Some(credentials) = credentials else {
        return challenge(false);
    };
    if let Some(until) = ctx
        .throttle
        .refused_until(now, ctx.source, realm, &credentials.username)
    {
        let wait = until.saturating_duration_since(now).as_secs().max(1);
        return Step::Reply(
            Reply::new(403, "Too many failed attempts").with("Retry-After", wait.to_string()),
        );
    }
    let failed = || Step::Failed {
        realm: realm.clone(),
        user: credentials.username.clone(),
    };
    let account = found!(view.account(now, &tenant.id, &credentials.username), failed());
    if !account.enabled {
        return failed();
    }
    let ha1 = account.ha1(credentials.algorithm);
    let uri_ok = |uri: &str| same_uri(uri, &request.uri) || Uri::parse(uri).is_ok_and(|u| endpoint.is_us(&u));
    match digest.check(&credentials, request.method.as_str(), uri_ok, ha1, now_secs) {
        Ok(nonce) => Step::Done(Verified { account, nonce }),
        Err(AuthError::Stale | AuthError::UnknownNonce | AuthError::Replay) => challenge(true),
        Err(AuthError::UriMismatch) => {
            Step::Reply(Reply::new(400, "Digest uri does not match the Request-URI"))
        }
        Err(AuthError::Malformed | AuthError::Mismatch) => failed(),
    }
}
