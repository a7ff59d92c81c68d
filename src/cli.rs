//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// offhook: click-to-call from a web page or a SIP softphone to a telephone line.
#[derive(Debug, Parser)]
#[command(name = "offhook", version, about)]
pub(crate) struct Cli {
    /// TOML configuration file (settings also come from OFFHOOK_* variables).
    #[arg(long, global = true, env = "OFFHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The processes and the admin tool.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Seed a demo tenant and run every service in one process.
    Demo(DemoArgs),
    /// Run the SIP signaling server.
    Signaling,
    /// Run a media relay (owns the modem lines).
    Media,
    /// Run the web server (pages, widget, APIs).
    Web,
    /// Administer the SQL directory.
    #[command(subcommand)]
    Directory(Box<DirectoryCommand>),
}

/// Options of `offhook demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Seed the demo tenant, print what was seeded, and exit.
    #[arg(long)]
    pub seed_only: bool,
}

/// `offhook directory …`
#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Tenants (an ISP's customers, each with a SIP domain).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// SIP accounts of a tenant (softphones, relays).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Call icons that web pages embed.
    #[command(subcommand)]
    Icon(IconCommand),
    /// Telephone lines (modems) and the relays that own them.
    #[command(subcommand)]
    Line(LineCommand),
    /// Call detail records.
    #[command(subcommand)]
    Cdr(CdrCommand),
    /// Calls in progress: list them, hang one up.
    #[command(subcommand)]
    Call(CallCommand),
    /// Hang-up and reset requests and how they went.
    #[command(subcommand)]
    Action(ActionCommand),
    /// API tokens of the admin REST API and UI.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Billing webhooks of a tenant and their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Who changed what, and when.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `offhook directory call …`
#[derive(Debug, Subcommand)]
pub(crate) enum CallCommand {
    /// List the calls in progress.
    List(TenantList),
    /// Ask the node that owns a call to hang it up (both sides); prints the request.
    Hangup {
        /// The call's record id (`cdr_…`, from `call list`).
        id: String,
    },
}

/// `offhook directory action …`
#[derive(Debug, Subcommand)]
pub(crate) enum ActionCommand {
    /// List hang-up and reset requests, newest first.
    List {
        /// Only those not completed yet.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        format: ListFormat,
    },
}

/// `offhook directory audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List audit entries, newest first.
    List {
        /// Only entries about this tenant's objects.
        #[arg(long)]
        tenant: Option<String>,
        /// Only entries about this kind of object (tenant, icon, line, call, webhook, …).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        format: ListFormat,
    },
}

/// `offhook directory webhook …`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Make a webhook and print its secret (shown this once).
    Create {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// Where deliveries are posted (https://…).
        #[arg(long)]
        url: String,
        /// An event to send: call.started, call.answered, call.ended (repeat; default call.ended).
        #[arg(long = "event")]
        events: Vec<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List webhooks (never their secrets).
    List(TenantList),
    /// Change a webhook.
    Update {
        /// Webhook id (`whk_…`).
        id: String,
        /// New URL.
        #[arg(long)]
        url: Option<String>,
        /// Replace the events (repeat).
        #[arg(long = "event")]
        events: Vec<String>,
        #[command(flatten)]
        enabled: EnableArgs,
    },
    /// Replace a webhook's secret and print the new one (shown this once).
    RotateSecret {
        /// Webhook id.
        id: String,
    },
    /// Delete a webhook and its deliveries.
    Delete {
        /// Webhook id.
        id: String,
    },
    /// List deliveries, newest first, with where each stands.
    Deliveries {
        /// Of this webhook only.
        #[arg(long)]
        webhook: Option<String>,
        /// pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        format: ListFormat,
    },
    /// Send a delivery again now (one that failed, or is waiting).
    Retry {
        /// Delivery id (from `deliveries`).
        id: String,
    },
}

/// `offhook directory token …`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token and print its secret (shown this once; only a hash is kept).
    Create {
        /// What the token is for.
        name: String,
        /// A tenant admin's token for this tenant; absent: an operator token.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List tokens (never their secrets).
    List(TenantList),
    /// Revoke a token.
    Delete {
        /// Token id (`tok_…`).
        id: String,
    },
}

/// A list command's arguments: a tenant to narrow it to, and the format.
#[derive(Debug, Args)]
pub(crate) struct TenantList {
    /// Only this tenant's (lines: the ones it can use, its own and the shared pool).
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub format: ListFormat,
}

/// Output format of list commands.
#[derive(Debug, Args)]
pub(crate) struct ListFormat {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `offhook directory tenant …`
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Short name: lowercase letters, digits, '-'.
        name: String,
        /// SIP domain (the digest realm of its accounts).
        #[arg(long)]
        domain: String,
    },
    /// List tenants.
    List(ListFormat),
    /// Change a tenant.
    Update {
        /// Tenant name or id.
        name: String,
        /// New SIP domain (refused while the tenant has accounts).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Delete a tenant and everything it owns (named first; --yes to go ahead).
    Delete {
        /// Tenant name or id.
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// A tenant's toll-fraud policy: destinations, calls at once, daily caps.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// `offhook directory tenant policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print a tenant's policy (the defaults when it never set one).
    Show {
        /// Tenant name or id.
        tenant: String,
        #[command(flatten)]
        format: ListFormat,
    },
    /// Change a tenant's policy; what is not given stays as it is.
    Set(PolicySettings),
}

/// What `tenant policy set` changes.
#[derive(Debug, Args)]
pub(crate) struct PolicySettings {
    /// Tenant name or id.
    pub tenant: String,
    /// Calls of the tenant at once, all icons and accounts together (1-1000).
    #[arg(long)]
    pub max_concurrent: Option<i64>,
    /// Calls of the tenant started in one UTC day (1-1000000).
    #[arg(long)]
    pub tenant_daily: Option<i64>,
    /// Calls started in one UTC day through each icon or account (1-1000000).
    #[arg(long)]
    pub daily: Option<i64>,
    /// Calls of the tenant started in one UTC month (1-10000000).
    #[arg(long)]
    pub tenant_monthly: Option<i64>,
    /// Calls started in one UTC month through each icon or account (1-10000000).
    #[arg(long)]
    pub monthly: Option<i64>,
    /// Billed minutes of the tenant in one UTC day (1-10000000).
    #[arg(long)]
    pub tenant_minutes_daily: Option<i64>,
    /// Billed minutes in one UTC day through each icon or account (1-10000000).
    #[arg(long)]
    pub minutes_daily: Option<i64>,
    /// Billed minutes of the tenant in one UTC month (1-100000000).
    #[arg(long)]
    pub tenant_minutes_monthly: Option<i64>,
    /// Billed minutes in one UTC month through each icon or account (1-100000000).
    #[arg(long)]
    pub minutes_monthly: Option<i64>,
    /// Allowed prefix (repeat): the given ones replace the allow list.
    #[arg(long = "allow", conflicts_with = "clear_allow")]
    pub allow: Vec<String>,
    /// Denied prefix (repeat), on top of the built-in ones: the given ones replace the deny list.
    #[arg(long = "deny", conflicts_with = "clear_deny")]
    pub deny: Vec<String>,
    /// Empty the allow list.
    #[arg(long)]
    pub clear_allow: bool,
    /// Empty the deny list.
    #[arg(long)]
    pub clear_deny: bool,
}

/// `--yes`: a delete that takes other objects with it goes ahead.
#[derive(Debug, Args)]
pub(crate) struct Confirm {
    /// Delete what it owns too (without it, the command says what that is and stops).
    #[arg(long)]
    pub yes: bool,
}

/// `offhook directory account …`
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create an account.
    Create {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// SIP user name.
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Display name.
        #[arg(long, default_value = "")]
        display_name: String,
        /// The account's own number (digits, '*', '#', leading '+').
        #[arg(long)]
        number: Option<String>,
        /// `user` (softphone) or `relay` (media relay registering lines).
        #[arg(long, default_value = "user")]
        kind: String,
    },
    /// List accounts.
    List(TenantList),
    /// Change an account.
    Update {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// SIP user name.
        username: String,
        #[command(flatten)]
        password: OptionalPasswordArgs,
        /// New display name.
        #[arg(long)]
        display_name: Option<String>,
        /// New number.
        #[arg(long, conflicts_with = "no_number")]
        number: Option<String>,
        /// Remove the number.
        #[arg(long)]
        no_number: bool,
        #[command(flatten)]
        enabled: EnableArgs,
    },
    /// Delete an account.
    Delete {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// SIP user name.
        username: String,
    },
}

/// A required password, from the command line or standard input.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PasswordArgs {
    /// Password (at least 8 characters); only its digest HA1 is stored.
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// An optional new password.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub(crate) struct OptionalPasswordArgs {
    /// New password.
    #[arg(long)]
    pub password: Option<String>,
    /// Read the new password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `--enable` / `--disable`.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub(crate) struct EnableArgs {
    /// Enable.
    #[arg(long)]
    pub enable: bool,
    /// Disable.
    #[arg(long)]
    pub disable: bool,
}

impl EnableArgs {
    /// `Some(true)`, `Some(false)` or no change.
    pub(crate) fn value(&self) -> Option<bool> {
        match (self.enable, self.disable) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Icon settings shared by create and update.
#[derive(Debug, Args)]
pub(crate) struct IconSettings {
    /// Text next to the icon.
    #[arg(long)]
    pub label: Option<String>,
    /// Web origin allowed to place calls (repeat for several; on update, replaces all).
    #[arg(long = "origin")]
    pub origins: Vec<String>,
    /// Opening hours, e.g. "mon-fri 09:00-17:00; sat 10:00-12:00" (empty: always).
    #[arg(long)]
    pub hours: Option<String>,
    /// IANA time zone of the opening hours.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Calls through this icon at once.
    #[arg(long)]
    pub max_concurrent: Option<i64>,
    /// New calls per minute through this icon.
    #[arg(long)]
    pub per_minute: Option<i64>,
    /// Seconds a call rings before it ends as no answer (5-600; 0: the relay's own).
    #[arg(long)]
    pub ring_timeout: Option<i64>,
}

/// `offhook directory icon …`
#[derive(Debug, Subcommand)]
pub(crate) enum IconCommand {
    /// Create an icon.
    Create {
        /// Tenant name or id.
        #[arg(long)]
        tenant: String,
        /// Number to dial (digits, '*', '#', leading '+').
        #[arg(long)]
        number: String,
        /// Public id for embed snippets (generated if absent).
        #[arg(long)]
        public_id: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        settings: IconSettings,
    },
    /// List icons.
    List(TenantList),
    /// Change an icon.
    Update {
        /// Public id.
        public_id: String,
        /// New number.
        #[arg(long)]
        number: Option<String>,
        #[command(flatten)]
        settings: IconSettings,
        #[command(flatten)]
        enabled: EnableArgs,
    },
    /// Delete an icon.
    Delete {
        /// Public id.
        public_id: String,
    },
}

/// `offhook directory line …`
#[derive(Debug, Subcommand)]
pub(crate) enum LineCommand {
    /// Create a line (and its relay if new).
    Create {
        /// Line name.
        name: String,
        /// Relay that owns the device.
        #[arg(long)]
        relay: String,
        /// Serial device path, or `emulated`.
        #[arg(long)]
        device: String,
        /// `modem`, `modem+soundcard` or `emulated`.
        #[arg(long)]
        kind: String,
        /// Owning tenant (absent: the shared pool).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List lines.
    List(TenantList),
    /// Change a line.
    Update {
        /// Line name or id.
        name: String,
        /// New device path.
        #[arg(long)]
        device: Option<String>,
        /// New kind.
        #[arg(long)]
        kind: Option<String>,
        /// New state (idle, dialing, in-call, fault, offline).
        #[arg(long)]
        state: Option<String>,
    },
    /// Delete a line.
    Delete {
        /// Line name or id.
        name: String,
    },
    /// Ask the relay that owns a line to reset it (end its call, re-open the
    /// device, back to idle); prints the request.
    Reset {
        /// Line name or id.
        name: String,
    },
    /// Why a line is (not) working: state, fault reason, relay health,
    /// registrations, calls, open requests, its sound card.
    Diagnose {
        /// Line name or id.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a relay and its lines (named first; --yes to go ahead).
    DeleteRelay {
        /// Relay name or id.
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// `offhook directory cdr …`
#[derive(Debug, Subcommand)]
pub(crate) enum CdrCommand {
    /// List call detail records, newest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only calls through this icon (public id).
        #[arg(long)]
        icon: Option<String>,
        /// Only calls that ended with this cause.
        #[arg(long)]
        cause: Option<String>,
        /// Text in the number, Call-ID, tenant, icon or account.
        #[arg(long)]
        search: Option<String>,
        /// Started at or after (RFC 3339, e.g. 2026-11-24T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Started before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Skip this many rows first.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[command(flatten)]
        format: ListFormat,
    },
}
