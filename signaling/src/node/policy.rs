//! The tenant's destination policy on a routed call, taken after [`super::route`]
//! chose the target: a call to a number (an icon's or one an account dialed) is
//! refused 403 when the policy denies it, and any call once the tenant, or the
//! icon or account it goes through, has reached a cap on calls a day or month
//! or on billed minutes a day or month (the CDRs' count, as fresh as the view's
//! cache, which counts the calls this node admits at once: within
//! `directory_cache_ms` other nodes' calls are not seen); before any CDR, line claim or
//! dial, with one stable security log line. Every routed call carries the
//! tenant's cap on calls at once, which admission enforces, and the billed
//! time it may use, which ends it once answered (cause budget-exhausted).

use std::time::Duration;

use offhook_directory::{DAY_MS, DestinationPolicy, Usage};

use super::route::{RouteCtx, Routed, Target};
use super::view::Lookup;
use super::{Reply, Step};

/// The reason phrase of a refused destination.
pub(crate) const DENIED: &str = "Destination not allowed";

/// The icon, or else the account, a call goes through (what its caps count).
pub(crate) fn through(routed: &Routed) -> (Option<&str>, Option<&str>) {
    match &routed.icon {
        Some(icon) => (Some(icon.id.as_str()), None),
        None => (None, routed.caller.as_ref().map(|a| a.id.as_str())),
    }
}

/// `routed` under its tenant's policy (looked up when not in the view).
pub(crate) fn apply(ctx: &RouteCtx<'_>, mut routed: Routed) -> Step<Routed> {
    let policy = match ctx.view.policy(ctx.now, &routed.tenant.id) {
        Lookup::Found(policy) => policy,
        Lookup::Unknown(query) => return Step::Need(query),
        Lookup::Missing => DestinationPolicy::default(),
    };
    // Who calls through what, for the security log of a refusal.
    let icon = routed.icon.as_ref().map_or("", |i| i.public_id.as_str());
    let account = routed.caller.as_ref().map_or("", |a| a.username.as_str());
    if let Target::Number(number) = &routed.target
        && let Err(denied) = policy.check(number)
    {
        tracing::warn!(
            target: "offhook::security",
            source = %ctx.source,
            tenant = %routed.tenant.name,
            icon,
            account,
            number = %denied.number,
            prefix = %denied.prefix,
            built_in = denied.built_in,
            "destination denied by policy"
        );
        return Step::Reply(Reply::new(403, DENIED));
    }
    let day = ctx.now_ms.div_euclid(DAY_MS);
    let usage = match ctx.view.usage(ctx.now, &routed.tenant.id, through(&routed), day) {
        Lookup::Found(usage) => usage,
        Lookup::Unknown(query) => return Step::Need(query),
        Lookup::Missing => Usage::default(),
    };
    match policy.admit(&usage) {
        Ok(budget_ms) => routed.budget = Some(Duration::from_millis(u64::try_from(budget_ms).unwrap_or(0))),
        Err(reached) => {
            tracing::warn!(
                target: "offhook::security",
                source = %ctx.source,
                tenant = %routed.tenant.name,
                icon,
                account,
                cap = reached.cap,
                used = reached.used,
                limit = reached.limit,
                "call cap reached"
            );
            return Step::Reply(Reply::new(403, reached.reason()));
        }
    }
    routed.tenant_max_concurrent = u32::try_from(policy.max_concurrent_calls).unwrap_or(1);
    Step::Done(routed)
}
