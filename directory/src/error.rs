//! The directory's one error type. It names the culprit: the caller's input
//! (`Invalid`), a missing object (`NotFound`), a uniqueness clash (`Conflict`), or the
//! database itself (`Database`, whose SQL text callers must not show to end users).

/// Shorthand for results of directory operations.
pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

/// What went wrong in a directory operation.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Input that fails validation; nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field or argument at fault (`number`, `domain`, ...).
        field: &'static str,
        /// Why it was refused, in words a user can act on.
        reason: String,
    },
    /// The object does not exist (or is not visible in the caller's scope).
    #[error("{what} '{key}' not found")]
    NotFound {
        /// Kind of object: `tenant`, `icon`, ...
        what: &'static str,
        /// The key the caller gave.
        key: String,
    },
    /// A unique key is already taken, or the change would break a rule.
    #[error("{0}")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DirectoryError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str, key: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            key: key.into(),
        }
    }

    /// True when the caller's input is at fault (invalid, unknown object, or a
    /// clash), as opposed to the database failing.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. } | Self::NotFound { .. } | Self::Conflict(_)
        )
    }

    /// Turns a unique-constraint violation into a `Conflict` naming `what`.
    pub(crate) fn on_unique(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what()),
            _ => Self::Database(err),
        }
    }
}
