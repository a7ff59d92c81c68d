//! Where an initial INVITE goes (the click-to-call policy): a browser's call
//! carries a call token naming an icon, and the icon's number comes from the
//! directory; a softphone authenticates as an account and calls another account
//! (its registered contact), an icon, or a number. Calls to numbers go to a media
//! relay's free line. The caller never supplies the number a token call dials.

use std::time::Instant;

use offhook_directory::call_tokens::{self, TokenError};
use offhook_directory::{Account, DirectoryError, Icon, Scope, Tenant};

use super::auth_check::{Authenticated, authenticate};
use super::node::Node;
use super::now_ms;
use offhook_directory::limits::CallLimits;
use offhook_sip::message::Request;
use offhook_sip::transaction::ServerKey;

/// Limits for calls that are not through an icon (a softphone dialing a number).
const ACCOUNT_LIMITS: (u32, u32) = (4, 30);

/// The destination of a new call.
#[derive(Debug)]
pub(crate) enum Target {
    /// The telephone network, through a relay's line.
    Number { number: String },
    /// Another account's registered contacts.
    Account { callee: Account },
}

/// A routed call: who pays, through what, to where, under which limits.
#[derive(Debug)]
pub(crate) struct Routed {
    pub tenant: Tenant,
    pub icon: Option<Icon>,
    pub caller: Option<Account>,
    pub target: Target,
    pub limit_key: String,
    pub limits: CallLimits,
}

fn icon_limits(node: &Node, icon: &Icon) -> CallLimits {
    CallLimits {
        max_concurrent: u32::try_from(icon.max_concurrent_calls).unwrap_or(1),
        per_minute: u32::try_from(icon.calls_per_minute).unwrap_or(1),
        per_source_per_minute: node.config.calls_per_source_per_minute,
    }
}

/// Decides where `request` goes, or answers it (challenge, 403, 404, ...) and
/// returns `None`.
pub(crate) async fn route(node: &Node, key: &ServerKey, request: &Request) -> Option<Routed> {
    let refuse = |status: u16, reason: &str| {
        node.ctx
            .respond(key, request.response(status, reason, Some("route")));
        None
    };
    let uri = request.request_uri()?;
    let now = Instant::now();
    if let Some(token) = request.headers.get(offhook_vocab::headers::TOKEN) {
        let grant = match call_tokens::verify(&node.call_token_secret, token.trim(), now_ms()) {
            Ok(grant) => grant,
            Err(TokenError::Expired) => return refuse(403, "Call token expired"),
            Err(_) => return refuse(403, "Invalid call token"),
        };
        if uri.user_unescaped().as_deref() != Some(grant.icon.as_str()) {
            return refuse(403, "Call token is for another icon");
        }
        let icon = match node.lookups.icon(now, &Scope::Operator, &grant.icon).await {
            Ok(icon) if icon.enabled => icon,
            Ok(_) => return refuse(403, "Icon disabled"),
            Err(_) => return refuse(404, "Unknown icon"),
        };
        match node.directory.spend_call_token(&grant).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return refuse(403, "Call token already used"),
            Err(err) => {
                tracing::error!(%err, "proxy: cannot spend a call token");
                return refuse(500, "Directory unavailable");
            }
        }
        let tenant = node.lookups.tenant(now, &icon.tenant_id).await.ok()?;
        return Some(Routed {
            tenant,
            limits: icon_limits(node, &icon),
            limit_key: icon.id.clone(),
            target: Target::Number {
                number: icon.number.clone(),
            },
            icon: Some(icon),
            caller: None,
        });
    }
    // A softphone: the tenant is the one of the caller's domain.
    let domain = request.from().and_then(|f| f.parsed_uri()).map(|u| u.host)?;
    let tenant = match node.lookups.tenant_by_domain(now, &domain).await {
        Ok(tenant) => tenant,
        Err(DirectoryError::NotFound { .. }) => return refuse(403, "Unknown caller domain"),
        Err(_) => return refuse(500, "Directory unavailable"),
    };
    let caller = match authenticate(node, key, request, &tenant, true).await {
        Authenticated::Account(account) => account,
        Authenticated::Answered => return None,
    };
    let dialed = uri.user_unescaped().unwrap_or_default();
    let account_limits = CallLimits {
        max_concurrent: ACCOUNT_LIMITS.0,
        per_minute: ACCOUNT_LIMITS.1,
        per_source_per_minute: node.config.calls_per_source_per_minute,
    };
    let by_number = node.lookups.account_by_number(now, &tenant.id, &dialed).await;
    let callee = match by_number {
        Ok(callee) => Some(callee),
        Err(_) => node.lookups.account(now, &tenant.id, &dialed).await.ok(),
    };
    if let Some(callee) = callee.filter(|c| c.kind == offhook_directory::AccountKind::User) {
        return Some(Routed {
            tenant,
            icon: None,
            limit_key: caller.id.clone(),
            caller: Some(caller),
            target: Target::Account { callee },
            limits: account_limits,
        });
    }
    let icon = node
        .lookups
        .icon(now, &Scope::Tenant(tenant.id.clone()), &dialed)
        .await
        .ok();
    if let Some(icon) = icon {
        if !icon.enabled {
            return refuse(403, "Icon disabled");
        }
        return Some(Routed {
            tenant,
            limits: icon_limits(node, &icon),
            limit_key: icon.id.clone(),
            target: Target::Number {
                number: icon.number.clone(),
            },
            icon: Some(icon),
            caller: Some(caller),
        });
    }
    let dialable = !dialed.is_empty()
        && dialed
            .strip_prefix('+')
            .unwrap_or(&dialed)
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
    if !dialable {
        return refuse(404, "No such user, icon or number");
    }
    Some(Routed {
        tenant,
        icon: None,
        limit_key: caller.id.clone(),
        caller: Some(caller),
        target: Target::Number { number: dialed },
        limits: account_limits,
    })
}
