//! offhook's SQL directory, used by signaling, media and web alike: tenants (with
//! their SIP domain), accounts (digest credentials as HA1), icons, relays, lines and
//! CDRs, over SQLite (the embedded default, a file created on first start) or
//! PostgreSQL (shared by several nodes). One schema in `migrations/` serves both and
//! is applied at connect time. Every query is typed and parameterised; listing
//! queries take a [`Scope`] so that a tenant never sees another tenant's rows.

mod accounts;
mod api_tokens;
pub mod call_tokens;
mod cdrs;
mod db;
mod error;
mod hours;
mod icons;
mod ids;
pub mod limits;
mod lines;
mod node_metrics;
mod registrations;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod words;
mod write_behind;

pub use accounts::{Account, AccountKind, AccountUpdate, NewAccount};
pub use api_tokens::{ApiToken, NewApiToken};
pub use cdrs::{Cdr, CdrFilter, NewCdr};
pub use db::{Directory, Scope};
pub use error::{DirectoryError, Result};
pub use hours::OpeningHours;
pub use icons::{Icon, IconUpdate, NewIcon};
pub use lines::{Line, LineUpdate, NewLine, NewRelay, Relay};
pub use node_metrics::NodeMetric;
pub use registrations::{FreeLine, Registration, RoutableLine};
pub use tenants::{NewTenant, Tenant, TenantUpdate};
pub use write_behind::{CallWriter, WriterStats};

pub use offhook_vocab as vocab;
pub use offhook_vocab::{AnswerSource, DigestAlgorithm, HangupCause, LineKind, LineState};
