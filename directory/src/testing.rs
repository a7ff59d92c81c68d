//! Fresh, migrated test databases for this crate's tests and the other crates':
//! a new SQLite file in a temporary folder, or a new schema in the PostgreSQL
//! database named by `OFFHOOK_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; set it to `skip` to skip PostgreSQL).

use sqlx::Connection;

use crate::db::Directory;
use crate::ids::new_id;

/// The default URL of the test PostgreSQL server.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A schema of the test PostgreSQL database.
    Postgres,
}

/// The backends to test on: SQLite, and PostgreSQL unless skipped.
pub fn backends() -> Vec<Backend> {
    match postgres_base_url() {
        Some(_) => vec![Backend::Sqlite, Backend::Postgres],
        None => vec![Backend::Sqlite],
    }
}

fn postgres_base_url() -> Option<String> {
    let url =
        std::env::var("OFFHOOK_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    (url != "skip").then_some(url)
}

/// A fresh database; dropped (PostgreSQL schema) by [`TestDb::finish`].
#[derive(Debug)]
pub struct TestDb {
    /// The URL a process (e.g. the `offhook` binary) can connect with.
    pub url: String,
    /// A connected, migrated directory.
    pub directory: Directory,
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates an empty, migrated database on `backend`.
    ///
    /// # Panics
    /// When the database cannot be created: tests cannot go on without it.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder for the test database");
                let url = format!("sqlite://{}/offhook.db", dir.path().display());
                let directory = Directory::connect(&url).await.expect("SQLite test database");
                Self {
                    url,
                    directory,
                    schema: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = postgres_base_url().expect("PostgreSQL tests are not skipped");
                let schema = new_id("offhook_test");
                let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {base} (set OFFHOOK_TEST_DATABASE_URL=skip to skip): {e}")
                });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                    .execute(&mut admin)
                    .await
                    .expect("create a test schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                let directory = Directory::connect(&url).await.expect("PostgreSQL test database");
                Self {
                    url,
                    directory,
                    schema: Some((base, schema)),
                    _dir: None,
                }
            }
        }
    }

    /// Closes the pool and drops the PostgreSQL schema.
    pub async fn finish(self) {
        self.directory.close().await;
        if let Some((base, schema)) = &self.schema
            && let Ok(mut admin) = sqlx::PgConnection::connect(base).await
        {
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
        }
    }
}
