//! The connection to the directory database: connect by URL (SQLite file or
//! PostgreSQL), apply the migrations, and the [`Scope`] every listing query takes.

use std::str::FromStr;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::error::Result;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Who is asking: the operator (ISP) sees everything, a tenant only its own rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The ISP running offhook.
    Operator,
    /// One tenant, by tenant id.
    Tenant(String),
}

impl Scope {
    /// The tenant id a tenant scope is bound to; `None` for the operator.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Self::Operator => None,
            Self::Tenant(tenant) => Some(tenant),
        }
    }

    /// Whether a row owned by `owner` (a tenant id; `None` for the ISP's own rows,
    /// such as shared lines) is visible in this scope. Shared rows are visible to
    /// every tenant only when `shared_visible` says so.
    pub fn sees(&self, owner: Option<&str>, shared_visible: bool) -> bool {
        match (self, owner) {
            (Self::Operator, _) => true,
            (Self::Tenant(tenant), Some(owner)) => tenant == owner,
            (Self::Tenant(_), None) => shared_visible,
        }
    }
}

/// A handle on the directory; cheap to clone (a connection pool inside).
#[derive(Debug, Clone)]
pub struct Directory {
    pub(crate) pool: AnyPool,
    /// Whether the pool is SQLite (write transactions take its lock at BEGIN).
    sqlite: bool,
}

impl Directory {
    /// A transaction that reads, then writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred one that read first cannot wait
    /// for another writer when it comes to write, and fails "database is locked".
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.sqlite {
            true => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            false => self.pool.begin().await?,
        })
    }

    /// Connects to `url` and applies pending migrations.
    ///
    /// `sqlite://path/to/file.db` creates the file if missing; `postgres://…` needs
    /// the database to exist. A PostgreSQL URL may carry
    /// `?options=-c search_path=NAME` to live in its own schema.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = sqlite_create_if_missing(url);
        let options = AnyConnectOptions::from_str(&url)?;
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size(&url))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Write-ahead log: readers never wait for the writer, and a commit
                        // is one append (synced at checkpoints), not a journal rewrite.
                        // Writers wait for each other instead of failing.
                        // Checkpoints run in the background (see `checkpoints`), not in
                        // whichever commit found the log past 1,000 pages.
                        sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                                       PRAGMA wal_autocheckpoint = 0;")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        if sqlite && !url.contains(":memory:") {
            tokio::spawn(checkpoints(pool.clone()));
        }
        Ok(Self { pool, sqlite })
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How often the write-ahead log of a SQLite file is copied back into it.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Checkpoints a SQLite file's write-ahead log while its pool is open. A
/// passive checkpoint waits for no reader or writer and none waits for it: the
/// writer's commits stay appends (an automatic checkpoint ran inside the commit
/// that crossed 1,000 pages and stalled it for up to 0.6 s under load).
async fn checkpoints(pool: AnyPool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        every.tick().await;
        if let Err(err) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
            && !pool.is_closed()
        {
            tracing::warn!(%err, "directory: checkpoint failed");
        }
    }
}

/// An in-memory SQLite database exists per connection, so it gets exactly one;
/// a SQLite file a few (one writer at a time anyway); PostgreSQL more.
fn pool_size(url: &str) -> u32 {
    match url {
        u if u.contains(":memory:") => 1,
        u if u.starts_with("sqlite:") => 4,
        _ => 10,
    }
}

/// SQLite URLs get `mode=rwc` so that the file is created on first start.
fn sqlite_create_if_missing(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}
