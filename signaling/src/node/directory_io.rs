//! What the node core asks of the directory, and what comes back: the core never
//! touches the database; it emits these as outputs and its driver performs them
//! (the simulated-time harness performs them too, on a real directory) and hands
//! the results back. [`Query`] reads are cached by the core ([`super::view`]);
//! [`Change`] operations are awaited (a call token spent, a line claimed,
//! bindings stored or listed, a CDR's end committed); [`Record`] writes are fire-and-forget, written
//! behind the calls in order ([`offhook_directory::CallWriter`]).

use std::time::Duration;

use offhook_directory::call_tokens::CallGrant;
use offhook_directory::{
    Account, ActionResult, AnswerSource, Cdr, DestinationPolicy, HangupCause, Icon, LineState,
    OperatorAction, Reaped, Registration, RoutableLine, Tenant, Usage,
};

use super::OwnerId;

/// Names one query or change in flight, to match its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// The tenant owning a SIP domain.
    TenantByDomain(String),
    /// A tenant by id.
    Tenant(String),
    /// An account of a tenant by user name.
    Account {
        /// Tenant id.
        tenant: String,
        /// User name.
        username: String,
    },
    /// An account of a tenant by its number.
    AccountByNumber {
        /// Tenant id.
        tenant: String,
        /// The number.
        number: String,
    },
    /// An icon by public id or id: any tenant's (`None`, a call token's icon)
    /// or one tenant's (a softphone dialing an icon).
    Icon {
        /// Tenant id, or none for any.
        tenant: Option<String>,
        /// Public id or id.
        key: String,
    },
    /// A tenant's destination policy, by tenant id.
    Policy(String),
    /// Calls started and time billed on one UTC day and in its month: the
    /// tenant's, and through an icon or else an account.
    Usage {
        /// Tenant id.
        tenant: String,
        /// Icon id.
        icon: Option<String>,
        /// Account id (when no icon).
        account: Option<String>,
        /// The day, Unix ms / `DAY_MS`.
        day: i64,
    },
    /// Every line with a live relay binding, with its state and relay's health.
    Lines,
}

/// A read's result; `None` for "not found", `Err` for a failed directory.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A tenant or none.
    Tenant(Option<Tenant>),
    /// An account or none.
    Account(Option<Account>),
    /// An icon or none.
    Icon(Option<Icon>),
    /// A tenant's destination policy (the defaults when it set none).
    Policy(DestinationPolicy),
    /// Use on the day and in the month: the tenant's, and through the icon or account.
    Usage(Usage),
    /// The lines snapshot, with the last record ticket committed before the read.
    Lines {
        /// The lines.
        lines: Vec<RoutableLine>,
        /// Every [`Record`] up to this sequence number is in it.
        committed: u64,
    },
}

/// A write the core waits for.
#[derive(Debug, Clone)]
pub enum Change {
    /// Spend a call token's nonce (single use across nodes).
    SpendToken(CallGrant),
    /// Claim an idle line (atomic across nodes), after every record queued before.
    ClaimLine(String),
    /// The live bindings of an address of record.
    Bindings {
        /// Tenant id.
        tenant: String,
        /// The account's user name.
        aor: String,
    },
    /// Store (or refresh) these bindings, remove those, then list the AOR's
    /// live bindings.
    Register {
        /// Tenant id.
        tenant: String,
        /// The AOR.
        aor: String,
        /// Bindings to store.
        upserts: Vec<Registration>,
        /// Contact URIs to remove; `None` in the list removes them all (`*`).
        removals: Vec<Option<String>>,
    },
    /// End a CDR; done once committed (whoever sees the call end can read it).
    EndCdr {
        /// The CDR.
        cdr: String,
        /// When, Unix ms.
        at: i64,
        /// Why.
        cause: HangupCause,
    },
    /// Refresh this node's lease, then reap lost owners (see `super::lease`).
    Lease {
        /// This node.
        owner: OwnerId,
        /// For how long the refresh holds.
        lease: Duration,
    },
    /// The operator requests open at `at` (Unix ms), each with whether its
    /// call has ended (see `super::operator`).
    OperatorRequests {
        /// Unix ms.
        at: i64,
    },
    /// Claim an operator request for `owner` and complete it so, once every
    /// record and CDR end queued before is committed.
    SettleRequest {
        /// The request.
        id: String,
        /// This node's owner id.
        owner: String,
        /// How it went.
        result: ActionResult,
        /// The node's words on it.
        detail: String,
        /// Unix ms.
        at: i64,
    },
    /// An operator's reset of a line no call here holds: back to idle unless
    /// another owner holds it, then the request settled `done`.
    ResetUnheldLine {
        /// The request.
        id: String,
        /// The line id.
        line: String,
        /// This node's owner id.
        owner: String,
        /// Unix ms.
        at: i64,
    },
}

/// A write's result.
#[derive(Debug, Clone)]
pub enum Changed {
    /// The token was spent now (false: already used).
    TokenSpent(bool),
    /// The line was won (false: another call holds it).
    LineClaimed(bool),
    /// An AOR's live bindings (after the change, for [`Change::Register`]).
    Bindings(Vec<Registration>),
    /// The CDR's end is committed.
    CdrEnded,
    /// The lease was refreshed (false: it had run out and this node was
    /// reaped); what the reaping released.
    Lease(bool, Reaped),
    /// The open operator requests, each with whether its call has ended.
    OperatorRequests(Vec<(OperatorAction, bool)>),
    /// An operator request was settled (false: another node had it, or the
    /// line belongs to another owner).
    Settled(bool),
}

/// A write behind the calls, in order.
#[derive(Debug, Clone)]
pub enum Record {
    /// A call started.
    StartCdr(Box<Cdr>),
    /// The call got its line.
    CdrLine {
        /// The CDR.
        cdr: String,
        /// The line id.
        line: String,
    },
    /// The call was answered.
    AnswerCdr {
        /// The CDR.
        cdr: String,
        /// When, Unix ms.
        at: i64,
        /// How the answer was known.
        source: AnswerSource,
    },
    /// A claimed line's new state (in call, or idle again).
    LineState {
        /// The line id.
        line: String,
        /// Its state.
        state: LineState,
    },
    /// A relay answered (its contact and health, `last_seen_at`).
    RelaySeen {
        /// The relay's name.
        relay: String,
        /// Where it was seen.
        uri: String,
        /// When, Unix ms.
        at: i64,
    },
    /// A relay stopped answering.
    RelayDown {
        /// The relay's name.
        relay: String,
    },
}
