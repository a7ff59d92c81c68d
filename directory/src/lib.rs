//! offhook's SQL directory, used by signaling, media and web alike: tenants (with
//! their SIP domain), accounts (digest credentials as HA1), icons, relays, lines and
//! CDRs; and what administration and billing add to them: the audit log, operator
//! requests (hang up, reset), webhooks and their outbox; each tenant's
//! destination policy (toll fraud). Over SQLite (the
//! embedded default, a file created on first start) or PostgreSQL (shared by several nodes). One schema in `migrations/` serves both and
//! is applied at connect time. Every query is typed and parameterised; listing
//! queries take a [`Scope`] so that a tenant never sees another tenant's rows.

mod accounts;
mod api_tokens;
mod audit;
mod call_records;
pub mod call_tokens;
mod cdrs;
mod db;
mod diagnostics;
mod error;
mod hours;
mod icons;
mod ids;
mod impact;
pub mod limits;
mod lines;
mod node_metrics;
mod operator_actions;
mod outbox;
mod owners;
mod policy;
mod registrations;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod usage;
mod usage_counters;
mod validate;
mod webhooks;
mod words;
mod write_behind;

pub use accounts::{Account, AccountKind, AccountUpdate, NewAccount};
pub use api_tokens::{ApiToken, NewApiToken};
pub use audit::{Actor, AuditAction, AuditChange, AuditEntry, AuditFilter};
pub use call_records::CallRecord;
pub use cdrs::{CallQuality, Cdr, CdrFilter, NewCdr};
pub use db::{Directory, Scope};
pub use diagnostics::{LineDiagnostics, SoundCardDiagnostics};
pub use error::{DirectoryError, Result};
pub use hours::OpeningHours;
pub use icons::{Icon, IconUpdate, NewIcon};
pub use impact::{DeleteImpact, Dependents};
pub use lines::{Line, LineUpdate, NewLine, NewRelay, Relay};
pub use node_metrics::NodeMetric;
pub use operator_actions::{ActionKind, ActionResult, OperatorAction};
pub use outbox::{Attempt, Delivery, DeliveryFilter, DeliveryState, DueDelivery, WebhookEvent};
pub use owners::Reaped;
pub use policy::{
    DAY_MS, DEFAULT_CALLS_PER_DAY, DEFAULT_DENY, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_TENANT_CALLS_PER_DAY,
    Denied, DestinationPolicy, PolicyUpdate,
};
pub use registrations::{FreeLine, Registration, RoutableLine};
pub use tenants::{NewTenant, Tenant, TenantUpdate};
pub use usage::{CapReached, Usage, Used, day_and_month};
pub use validate::is_internal_address;
pub use webhooks::{MAX_WEBHOOKS_PER_TENANT, NewWebhook, Webhook, WebhookUpdate};
pub use write_behind::{CallWriter, WriterStats};

pub use offhook_vocab as vocab;
pub use offhook_vocab::{AnswerSource, DigestAlgorithm, HangupCause, LineKind, LineState};
