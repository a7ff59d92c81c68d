//! Where an initial INVITE goes (the click-to-call policy), as decisions taken
//! on the directory view. First who calls ([`caller`]): a browser's call carries
//! a call token naming an icon (checked here, spent later by the INVITE's state
//! machine); a softphone authenticates as an account of the tenant owning its
//! From domain. Then where to ([`target`]): a token's icon dials the icon's
//! number from the directory, never one from the caller; an account calls
//! another account (its registered contacts), an icon of its tenant, or a number
//! of digits. Icons must be enabled and open (opening hours hold on every path).
//! Last, the tenant's destination policy ([`super::policy`]) judges the number.

use std::time::Instant;

use chrono::{DateTime, Utc};
use offhook_directory::call_tokens::{self, CallGrant, TokenError};
use offhook_directory::limits::CallLimits;
use offhook_directory::{Account, AccountKind, Icon, Tenant};
use offhook_sip::message::Request;
use offhook_vocab::headers;

use super::auth::{self, AuthCtx, Challenger, Verified};
use super::policy;
use super::view::{Lookup, View, found};
use super::{Reply, Step};

/// Limits for calls that are not through an icon (a softphone dialing a number).
const ACCOUNT_LIMITS: (u32, u32) = (4, 30);

/// Who places a call.
#[derive(Debug)]
pub(crate) enum Caller {
    /// A visitor with a valid (not yet spent) call token.
    Visitor(CallGrant),
    /// An authenticated account (its nonce not yet spent).
    Account {
        /// Its tenant.
        tenant: Box<Tenant>,
        /// The credentials that passed.
        verified: Verified,
    },
}

/// The destination of a call.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The telephone network, through a relay's line.
    Number(String),
    /// Another account's registered contacts.
    Account(Account),
}

/// A routed call: who pays, through what, to where, under which limits.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub tenant: Tenant,
    pub icon: Option<Icon>,
    pub caller: Option<Account>,
    pub target: Target,
    pub limit_key: String,
    pub limits: CallLimits,
    /// The call token to spend before the call goes on.
    pub token: Option<CallGrant>,
    /// The tenant's calls at once, at most (its destination policy).
    pub tenant_max_concurrent: u32,
    /// Billed time the call may use (its policy's smallest minute budget left).
    pub budget: Option<std::time::Duration>,
}

/// What the routing decisions read.
pub(crate) struct RouteCtx<'a> {
    pub auth: AuthCtx<'a>,
    pub view: &'a View,
    pub now: Instant,
    pub now_ms: i64,
    pub call_token_secret: &'a [u8],
    pub per_source_per_minute: u32,
    pub source: std::net::IpAddr,
}

impl RouteCtx<'_> {
    fn icon_limits(&self, icon: &Icon) -> CallLimits {
        CallLimits {
            max_concurrent: u32::try_from(icon.max_concurrent_calls).unwrap_or(1),
            per_minute: u32::try_from(icon.calls_per_minute).unwrap_or(1),
            per_source_per_minute: self.per_source_per_minute,
            per_source_on_key: u32::MAX,
        }
    }

    fn open(&self, icon: &Icon) -> bool {
        DateTime::<Utc>::from_timestamp_millis(self.now_ms).is_some_and(|at| icon.is_open(at))
    }

    /// The checks every call through an icon passes: enabled, open now.
    fn usable(&self, icon: &Icon) -> Result<(), Reply> {
        if !icon.enabled {
            return Err(Reply::new(403, "Icon disabled"));
        }
        if !self.open(icon) {
            return Err(Reply::new(480, "Icon closed at this time"));
        }
        Ok(())
    }
}

/// Who calls.
pub(crate) fn caller(ctx: &RouteCtx<'_>, request: &Request) -> Step<Caller> {
    if let Some(token) = request.headers.get(headers::TOKEN) {
        return match call_tokens::verify(ctx.call_token_secret, token.trim(), ctx.now_ms) {
            Ok(grant) => Step::Done(Caller::Visitor(grant)),
            Err(TokenError::Expired) => Step::Reply(Reply::new(403, "Call token expired")),
            Err(_) => Step::Reply(Reply::new(403, "Invalid call token")),
        };
    }
    let Some(domain) = request.from().and_then(|f| f.parsed_uri()).map(|u| u.host) else {
        return Step::Reply(Reply::new(400, "Bad From"));
    };
    let tenant = found!(
        ctx.view.tenant_by_domain(ctx.now, &domain),
        Step::Reply(Reply::new(403, "Unknown caller domain"))
    );
    let verified = match auth::check(&ctx.auth, request, &tenant, Challenger::Proxy).decided() {
        Ok(verified) => verified,
        Err(step) => return step,
    };
    Step::Done(Caller::Account {
        tenant: Box::new(tenant),
        verified,
    })
}

/// Where the call goes, under the tenant's destination policy.
pub(crate) fn target(ctx: &RouteCtx<'_>, request: &Request, caller: &Caller) -> Step<Routed> {
    match chosen(ctx, request, caller) {
        Step::Done(routed) => policy::apply(ctx, routed),
        other => other,
    }
}

fn chosen(ctx: &RouteCtx<'_>, request: &Request, caller: &Caller) -> Step<Routed> {
    let dialed = request
        .request_uri()
        .and_then(|u| u.user_unescaped())
        .unwrap_or_default();
    match caller {
        Caller::Visitor(grant) => {
            if dialed != grant.icon {
                return Step::Reply(Reply::new(403, "Call token is for another icon"));
            }
            let icon = found!(
                ctx.view.icon(ctx.now, None, &grant.icon),
                Step::Reply(Reply::new(404, "Unknown icon"))
            );
            if let Err(reply) = ctx.usable(&icon) {
                return Step::Reply(reply);
            }
            let tenant = found!(
                ctx.view.tenant(ctx.now, &icon.tenant_id),
                Step::Reply(Reply::new(404, "Unknown icon"))
            );
            Step::Done(Routed {
                tenant,
                limits: ctx.icon_limits(&icon),
                limit_key: icon.id.clone(),
                target: Target::Number(icon.number.clone()),
                icon: Some(icon),
                caller: None,
                token: Some(grant.clone()),
                // The policy's, set by `policy::apply`.
                tenant_max_concurrent: 0,
                budget: None,
            })
        }
        Caller::Account { tenant, verified } => account_target(ctx, tenant, &verified.account, dialed),
    }
}

fn account_target(ctx: &RouteCtx<'_>, tenant: &Tenant, caller: &Account, dialed: String) -> Step<Routed> {
    let account_limits = CallLimits {
        max_concurrent: ACCOUNT_LIMITS.0,
        per_minute: ACCOUNT_LIMITS.1,
        per_source_per_minute: ctx.per_source_per_minute,
        per_source_on_key: u32::MAX,
    };
    let routed = |target, icon: Option<Icon>, limits, limit_key| {
        Step::Done(Routed {
            tenant: tenant.clone(),
            icon,
            caller: Some(caller.clone()),
            target,
            limit_key,
            limits,
            token: None,
            // The policy's, set by `policy::apply`.
            tenant_max_concurrent: 0,
            budget: None,
        })
    };
    // Another user account, by its number, then by its user name.
    let by_number = || ctx.view.account_by_number(ctx.now, &tenant.id, &dialed);
    let by_name = || ctx.view.account(ctx.now, &tenant.id, &dialed);
    for lookup in [&by_number as &dyn Fn() -> Lookup<Account>, &by_name] {
        match lookup() {
            Lookup::Found(callee) if callee.kind == AccountKind::User => {
                return routed(Target::Account(callee), None, account_limits, caller.id.clone());
            }
            Lookup::Unknown(query) => return Step::Need(query),
            Lookup::Found(_) | Lookup::Missing => {}
        }
    }
    // An icon of the tenant.
    match ctx.view.icon(ctx.now, Some(&tenant.id), &dialed) {
        Lookup::Found(icon) => {
            if let Err(reply) = ctx.usable(&icon) {
                return Step::Reply(reply);
            }
            let (limits, key) = (ctx.icon_limits(&icon), icon.id.clone());
            return routed(Target::Number(icon.number.clone()), Some(icon), limits, key);
        }
        Lookup::Unknown(query) => return Step::Need(query),
        Lookup::Missing => {}
    }
    // Digits.
    let dialable = !dialed.is_empty()
        && dialed
            .strip_prefix('+')
            .unwrap_or(&dialed)
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
    if !dialable {
        return Step::Reply(Reply::new(404, "No such user, icon or number"));
    }
    routed(Target::Number(dialed), None, account_limits, caller.id.clone())
}
