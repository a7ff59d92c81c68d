//! Digest authentication of requests against the directory's accounts: a 401
//! (registrar) or 407 (proxy) challenge when credentials are missing, stale or
//! wrong, and the account when they are right.

use offhook_directory::{Account, Tenant};

use super::node::{Node, lock};
use super::now_ms;
use offhook_sip::auth::{AuthError, Credentials};
use offhook_sip::message::Request;
use offhook_sip::transaction::ServerKey;

pub(crate) enum Authenticated {
    Account(Account),
    /// A challenge or refusal was sent.
    Answered,
}

fn challenge(node: &Node, key: &ServerKey, request: &Request, realm: &str, proxy: bool, stale: bool) {
    let (status, reason, header) = if proxy {
        (407, "Proxy Authentication Required", "Proxy-Authenticate")
    } else {
        (401, "Unauthorized", "WWW-Authenticate")
    };
    let mut response = request.response(status, reason, Some("auth"));
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    for value in node
        .digest
        .challenges(realm, now, stale, request.headers.get("User-Agent"))
    {
        response.headers.push(header, &value);
    }
    node.ctx.respond(key, response);
}

/// Authenticates `request` as an account of `tenant` (realm = its domain).
pub(crate) async fn authenticate(
    node: &Node,
    key: &ServerKey,
    request: &Request,
    tenant: &Tenant,
    proxy: bool,
) -> Authenticated {
    let header = if proxy {
        "Proxy-Authorization"
    } else {
        "Authorization"
    };
    let realm = &tenant.sip_domain;
    let credentials = request
        .headers
        .get_all(header)
        .into_iter()
        .filter_map(|v| Credentials::parse(v).ok())
        .find(|c| c.realm.eq_ignore_ascii_case(realm));
    let Some(credentials) = credentials else {
        challenge(node, key, request, realm, proxy, false);
        return Authenticated::Answered;
    };
    let account = match node
        .lookups
        .account(std::time::Instant::now(), &tenant.id, &credentials.username)
        .await
    {
        Ok(account) if account.enabled => account,
        _ => {
            node.ctx
                .respond(key, request.response(403, "Forbidden", Some("auth")));
            return Authenticated::Answered;
        }
    };
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let ha1 = account.ha1(credentials.algorithm).to_owned();
    let verdict = {
        let mut nonces = lock(&node.nonces);
        node.digest
            .verify(&credentials, request.method.as_str(), &ha1, now, &mut *nonces)
    };
    match verdict {
        Ok(()) => Authenticated::Account(account),
        Err(AuthError::Stale | AuthError::UnknownNonce | AuthError::Replay) => {
            challenge(node, key, request, realm, proxy, true);
            Authenticated::Answered
        }
        Err(AuthError::Malformed | AuthError::Mismatch) => {
            node.ctx
                .respond(key, request.response(403, "Forbidden", Some("auth")));
            Authenticated::Answered
        }
    }
}
