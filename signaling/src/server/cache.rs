//! Directory lookups on the path of every request (tenant by domain, account,
//! icon), cached per node for a short time (`directory_cache_ms`, default 1 s) so
//! that a call asks the database nothing while its data is cached. Misses are
//! cached too (a callee that is an icon, not an account, is looked up as an
//! account first on every call). A change made in the directory — by the web
//! admin, the command line or another node — takes effect on this node within
//! that time; nothing is written through here.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use offhook_directory::{Account, Directory, DirectoryError, Icon, Result, Scope, Tenant};

use super::node::lock;

/// Entries kept at most per cache; past that, expired ones go, then all.
const CAPACITY: usize = 65_536;

/// A map whose entries are fresh for `ttl` after they were loaded.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value loaded less than `ttl` before `now`.
    pub(crate) fn get(&self, now: Instant, key: &K) -> Option<V> {
        let entries = lock(&self.entries);
        let (at, value) = entries.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| value.clone())
    }

    /// Stores a value loaded at `at`.
    pub(crate) fn insert(&self, at: Instant, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (loaded, _)| at.saturating_duration_since(*loaded) < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (at, value));
    }
}

/// The cached lookups of one node.
#[derive(Debug)]
pub(crate) struct Lookups {
    directory: Directory,
    tenants_by_domain: TtlCache<String, Option<Tenant>>,
    tenants: TtlCache<String, Option<Tenant>>,
    accounts: TtlCache<(String, String), Option<Account>>,
    accounts_by_number: TtlCache<(String, String), Option<Account>>,
    icons: TtlCache<(Option<String>, String), Option<Icon>>,
}

/// Looks `key` up in `cache`, or loads it (and caches a found value or a miss).
async fn through<K, V>(
    cache: &TtlCache<K, Option<V>>,
    now: Instant,
    key: K,
    what: &'static str,
    shown: &str,
    load: impl Future<Output = Result<V>>,
) -> Result<V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    let missing = || DirectoryError::NotFound {
        what,
        key: shown.to_owned(),
    };
    if let Some(hit) = cache.get(now, &key) {
        return hit.ok_or_else(missing);
    }
    match load.await {
        Ok(value) => {
            cache.insert(now, key, Some(value.clone()));
            Ok(value)
        }
        Err(DirectoryError::NotFound { .. }) => {
            cache.insert(now, key, None);
            Err(missing())
        }
        Err(err) => Err(err),
    }
}

impl Lookups {
    pub(crate) fn new(directory: Directory, ttl: Duration) -> Self {
        Self {
            directory,
            tenants_by_domain: TtlCache::new(ttl),
            tenants: TtlCache::new(ttl),
            accounts: TtlCache::new(ttl),
            accounts_by_number: TtlCache::new(ttl),
            icons: TtlCache::new(ttl),
        }
    }

    /// The tenant owning a SIP domain.
    pub(crate) async fn tenant_by_domain(&self, now: Instant, domain: &str) -> Result<Tenant> {
        let load = self.directory.tenant_by_domain(domain);
        through(
            &self.tenants_by_domain,
            now,
            domain.to_owned(),
            "tenant",
            domain,
            load,
        )
        .await
    }

    /// A tenant by id.
    pub(crate) async fn tenant(&self, now: Instant, id: &str) -> Result<Tenant> {
        let load = self.directory.tenant(id);
        through(&self.tenants, now, id.to_owned(), "tenant", id, load).await
    }

    /// An account of a tenant by user name.
    pub(crate) async fn account(&self, now: Instant, tenant_id: &str, username: &str) -> Result<Account> {
        let key = (tenant_id.to_owned(), username.to_owned());
        let load = self.directory.account(tenant_id, username);
        through(&self.accounts, now, key, "account", username, load).await
    }

    /// An account of a tenant by its number.
    pub(crate) async fn account_by_number(
        &self,
        now: Instant,
        tenant_id: &str,
        number: &str,
    ) -> Result<Account> {
        let key = (tenant_id.to_owned(), number.to_owned());
        let load = self.directory.account_by_number(tenant_id, number);
        through(&self.accounts_by_number, now, key, "account", number, load).await
    }

    /// An icon by public id or id, within `scope`.
    pub(crate) async fn icon(&self, now: Instant, scope: &Scope, key: &str) -> Result<Icon> {
        let scoped = match scope {
            Scope::Operator => None,
            Scope::Tenant(tenant) => Some(tenant.clone()),
        };
        let load = self.directory.icon(scope, key);
        through(&self.icons, now, (scoped, key.to_owned()), "icon", key, load).await
    }
}
