//! The node's view of the directory: what its [`Query`]s returned, each trusted
//! for `directory_cache_ms` (misses too: a callee that is an icon, not an
//! account, is looked up as an account first on every call). A decision that
//! finds an entry missing gets [`Lookup::Unknown`] with the query to run; the
//! driver runs it and the decision is taken again. Bounded: past its capacity
//! the oldest entries go first (in insertion order, O(1) per insert), so a flood
//! of lookups for names that do not exist cannot grow it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use offhook_directory::{Account, DestinationPolicy, Icon, Tenant, Usage};

use super::directory_io::{Answer, Query};

/// Entries kept at most.
const CAPACITY: usize = 65_536;

/// What the view knows of one key.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    /// There, fresh.
    Found(T),
    /// Not in the directory (fresh knowledge of a miss).
    Missing,
    /// Not known: run this query and decide again.
    Unknown(Query),
}

/// Fresh answers to queries (see the module comment).
#[derive(Debug)]
pub(crate) struct View {
    ttl: Duration,
    entries: HashMap<Query, (Instant, Answer)>,
    order: VecDeque<(Instant, Query)>,
}

/// The query for a tenant's use on `day`, through its icon or else its account.
fn usage_query(tenant: &str, (icon, account): (Option<&str>, Option<&str>), day: i64) -> Query {
    Query::Usage {
        tenant: tenant.to_owned(),
        icon: icon.map(str::to_owned),
        account: account.map(str::to_owned),
        day,
    }
}

impl View {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn fresh(&self, now: Instant, query: &Query) -> Option<&Answer> {
        let (at, answer) = self.entries.get(query)?;
        (now.saturating_duration_since(*at) < self.ttl).then_some(answer)
    }

    /// Keeps what a query returned at `now`.
    pub(crate) fn insert(&mut self, now: Instant, query: Query, answer: Answer) {
        if self.ttl.is_zero() {
            return;
        }
        while self.order.len() >= CAPACITY
            || self
                .order
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= self.ttl)
        {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            // A key inserted again later has a newer time: keep that entry.
            if self.entries.get(&old).is_some_and(|(t, _)| *t == at) {
                self.entries.remove(&old);
            }
        }
        self.order.push_back((now, query.clone()));
        self.entries.insert(query, (now, answer));
    }

    fn look<T>(
        &self,
        now: Instant,
        query: Query,
        pick: impl FnOnce(&Answer) -> Option<Option<T>>,
    ) -> Lookup<T> {
        match self.fresh(now, &query).and_then(pick) {
            Some(Some(found)) => Lookup::Found(found),
            Some(None) => Lookup::Missing,
            None => Lookup::Unknown(query),
        }
    }

    /// The tenant owning a SIP domain.
    pub(crate) fn tenant_by_domain(&self, now: Instant, domain: &str) -> Lookup<Tenant> {
        self.look(now, Query::TenantByDomain(domain.to_ascii_lowercase()), tenant)
    }

    /// A tenant by id.
    pub(crate) fn tenant(&self, now: Instant, id: &str) -> Lookup<Tenant> {
        self.look(now, Query::Tenant(id.to_owned()), tenant)
    }

    /// An account of a tenant by user name.
    pub(crate) fn account(&self, now: Instant, tenant: &str, username: &str) -> Lookup<Account> {
        let query = Query::Account {
            tenant: tenant.to_owned(),
            username: username.to_owned(),
        };
        self.look(now, query, account)
    }

    /// An account of a tenant by its number.
    pub(crate) fn account_by_number(&self, now: Instant, tenant: &str, number: &str) -> Lookup<Account> {
        let query = Query::AccountByNumber {
            tenant: tenant.to_owned(),
            number: number.to_owned(),
        };
        self.look(now, query, account)
    }

    /// An icon by public id or id, of any tenant (`None`) or of one.
    pub(crate) fn icon(&self, now: Instant, tenant: Option<&str>, key: &str) -> Lookup<Icon> {
        let query = Query::Icon {
            tenant: tenant.map(str::to_owned),
            key: key.to_owned(),
        };
        self.look(now, query, |a| match a {
            Answer::Icon(icon) => Some(icon.clone()),
            _ => None,
        })
    }

    /// Use on day `day` and in its month: the tenant's, and through the icon or else the account.
    pub(crate) fn usage(
        &self,
        now: Instant,
        tenant: &str,
        (icon, account): (Option<&str>, Option<&str>),
        day: i64,
    ) -> Lookup<Usage> {
        self.look(now, usage_query(tenant, (icon, account), day), |a| match a {
            Answer::Usage(usage) => Some(Some(*usage)),
            _ => None,
        })
    }

    /// Counts a call just admitted into the cached use it was judged by, so
    /// that this node's next calls within the cache's lifetime see it.
    pub(crate) fn count_call(
        &mut self,
        tenant: &str,
        (icon, account): (Option<&str>, Option<&str>),
        day: i64,
    ) {
        let query = usage_query(tenant, (icon, account), day);
        if let Some((_, Answer::Usage(usage))) = self.entries.get_mut(&query) {
            for used in [
                &mut usage.tenant_day,
                &mut usage.tenant_month,
                &mut usage.day,
                &mut usage.month,
            ] {
                used.calls += 1;
            }
        }
    }

    /// A tenant's destination policy, by tenant id.
    pub(crate) fn policy(&self, now: Instant, tenant: &str) -> Lookup<DestinationPolicy> {
        self.look(now, Query::Policy(tenant.to_owned()), |a| match a {
            Answer::Policy(policy) => Some(Some(policy.clone())),
            _ => None,
        })
    }
}

fn tenant(answer: &Answer) -> Option<Option<Tenant>> {
    match answer {
        Answer::Tenant(t) => Some(t.clone()),
        _ => None,
    }
}

fn account(answer: &Answer) -> Option<Option<Account>> {
    match answer {
        Answer::Account(a) => Some(a.clone()),
        _ => None,
    }
}

/// Takes the found value out of a lookup, or returns from the enclosing function
/// with what to do instead (`$missing` when it is not there; the query to run
/// when it is not known).
macro_rules! found {
    ($lookup:expr, $missing:expr) => {
        match $lookup {
            $crate::node::view::Lookup::Found(value) => value,
            $crate::node::view::Lookup::Missing => return $missing,
            $crate::node::view::Lookup::Unknown(query) => return $crate::node::Step::Need(query),
        }
    };
}
pub(crate) use found;

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    fn tenant_named(name: &str) -> Tenant {
        Tenant {
            id: format!("ten_{name}"),
            name: name.into(),
            sip_domain: format!("{name}.test"),
            created_at: 0,
        }
    }

    #[test]
    fn answers_are_fresh_for_the_ttl_and_misses_count() {
        let t0 = Instant::now();
        let mut view = View::new(Duration::from_secs(1));
        assert!(matches!(
            view.tenant_by_domain(t0, "A.test"),
            Lookup::Unknown(Query::TenantByDomain(d)) if d == "a.test"
        ));
        let query = Query::TenantByDomain("a.test".into());
        view.insert(t0, query, Answer::Tenant(Some(tenant_named("a"))));
        view.insert(t0, Query::Tenant("ten_x".into()), Answer::Tenant(None));
        assert!(matches!(view.tenant_by_domain(t0, "a.test"), Lookup::Found(t) if t.name == "a"));
        assert!(matches!(view.tenant(t0, "ten_x"), Lookup::Missing));
        let later = t0 + Duration::from_secs(1);
        assert!(matches!(
            view.tenant_by_domain(later, "a.test"),
            Lookup::Unknown(_)
        ));
    }

    #[test]
    fn stays_bounded() {
        let t0 = Instant::now();
        let mut view = View::new(Duration::from_secs(3600));
        for i in 0..CAPACITY + 10 {
            view.insert(t0, Query::Tenant(format!("ten_{i}")), Answer::Tenant(None));
        }
        assert_eq!(view.entries.len(), CAPACITY);
        assert!(
            matches!(view.tenant(t0, "ten_0"), Lookup::Unknown(_)),
            "the oldest went"
        );
        assert!(matches!(view.tenant(t0, "ten_65545"), Lookup::Missing));
    }
}
