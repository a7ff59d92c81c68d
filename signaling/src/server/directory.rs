//! Performs the node core's directory outputs ([`crate::node::Output`]) on a
//! real directory: reads answered from SQL, changes made (claims and CDR ends
//! queued at once behind the records before them, in the write-behind queue),
//! records written behind the calls. The tokio loop ([`super::driver`]) runs the
//! futures in tasks of their own; the simulated-time harness of the tests awaits
//! them in turn. Nothing here decides anything.

use std::collections::VecDeque;
use std::future::Future;

use offhook_directory::{ActionResult, CallWriter, Directory, DirectoryError, Scope};

use crate::node::directory_io::{Answer, Change, Changed, Query, Record};

/// The node's record numbers of the line-state records not committed yet, with
/// the write-behind queue's own numbers, so that a lines snapshot can say which
/// of the node's records it reflects.
#[derive(Debug, Default)]
pub struct RecordNumbers {
    pending: VecDeque<(u64, u64)>,
    last: u64,
}

impl RecordNumbers {
    /// The node's record `core` went into the queue as its op `writer` (a line
    /// state), or as nothing the lines care about.
    pub fn pushed(&mut self, core: u64, writer: Option<u64>) {
        self.last = core;
        if let Some(writer) = writer {
            self.pending.push_back((core, writer));
        }
    }

    /// The newest node record such that every line state up to it is committed.
    pub fn committed(&mut self, writer_committed: u64) -> u64 {
        while self.pending.front().is_some_and(|(_, w)| *w <= writer_committed) {
            self.pending.pop_front();
        }
        self.pending.front().map_or(self.last, |(core, _)| core - 1)
    }
}

/// A directory result as the node takes it: not found is an answer, not a failure.
fn found<T>(result: offhook_directory::Result<T>) -> Result<Option<T>, String> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DirectoryError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

/// Answers a read; `committed` is what [`RecordNumbers::committed`] said just
/// before (a lines snapshot reflects those records).
pub async fn answer(
    directory: Directory,
    query: &Query,
    now_ms: i64,
    committed: u64,
) -> Result<Answer, String> {
    Ok(match query {
        Query::TenantByDomain(domain) => Answer::Tenant(found(directory.tenant_by_domain(domain).await)?),
        Query::Tenant(id) => Answer::Tenant(found(directory.tenant(id).await)?),
        Query::Account { tenant, username } => {
            Answer::Account(found(directory.account(tenant, username).await)?)
        }
        Query::AccountByNumber { tenant, number } => {
            Answer::Account(found(directory.account_by_number(tenant, number).await)?)
        }
        Query::Icon { tenant, key } => {
            let scope = tenant.clone().map_or(Scope::Operator, Scope::Tenant);
            Answer::Icon(found(directory.icon(&scope, key).await)?)
        }
        Query::Policy(tenant) => Answer::Policy(
            directory
                .destination_policy(tenant)
                .await
                .map_err(|e| e.to_string())?,
        ),
        Query::Usage {
            tenant,
            icon,
            account,
            day,
        } => Answer::Usage(
            directory
                .usage(tenant, icon.as_deref(), account.as_deref(), *day, now_ms)
                .await
                .map_err(|e| e.to_string())?,
        ),
        Query::Lines => Answer::Lines {
            lines: directory
                .routable_lines(now_ms)
                .await
                .map_err(|e| e.to_string())?,
            committed,
        },
    })
}

async fn register(
    directory: &Directory,
    tenant: &str,
    aor: &str,
    upserts: Vec<offhook_directory::Registration>,
    removals: Vec<Option<String>>,
    now_ms: i64,
) -> offhook_directory::Result<Changed> {
    for contact in removals {
        directory
            .remove_registration(tenant, aor, contact.as_deref())
            .await?;
    }
    for binding in upserts {
        directory.upsert_registration(binding).await?;
    }
    Ok(Changed::Bindings(
        directory.registrations(tenant, aor, now_ms).await?,
    ))
}

/// Claims an operator request and completes it (a claim lasts a minute: the
/// completion follows at once).
async fn settle(
    directory: &Directory,
    id: &str,
    owner: &str,
    result: ActionResult,
    detail: &str,
    at: i64,
) -> offhook_directory::Result<Changed> {
    let claimed = directory
        .claim_operator_action(id, owner, at, at + 60_000)
        .await?;
    let settled = claimed
        && directory
            .complete_operator_action(id, owner, result, detail, at)
            .await?;
    Ok(Changed::Settled(settled))
}

/// Makes a change. Claims and CDR ends are queued before this returns, behind
/// every record queued before them; the future resolves with the result.
pub fn change(
    directory: &Directory,
    writer: &CallWriter,
    change: Change,
    now_ms: i64,
) -> impl Future<Output = Result<Changed, String>> + Send + 'static {
    enum Queued<C, E, F> {
        Claim(C),
        End(E),
        Flushed(F, Change),
        Later(Change),
    }
    let queued = match change {
        Change::ClaimLine(line) => Queued::Claim(writer.claim_line(&line)),
        // Behind the CDR ends queued before: whoever reads `done` finds them.
        settle @ Change::SettleRequest { .. } => Queued::Flushed(writer.flush(), settle),
        Change::EndCdr { cdr, at, cause } => Queued::End(writer.end_cdr(&cdr, at, cause)),
        other => Queued::Later(other),
    };
    let directory = directory.clone();
    async move {
        match queued {
            Queued::Claim(won) => Ok(Changed::LineClaimed(won.await)),
            Queued::End(committed) => {
                committed.await;
                Ok(Changed::CdrEnded)
            }
            Queued::Later(Change::SpendToken(grant)) => match directory.spend_call_token(&grant).await {
                Ok(spent) => Ok(Changed::TokenSpent(spent.is_ok())),
                Err(err) => Err(err.to_string()),
            },
            Queued::Later(Change::Register {
                tenant,
                aor,
                upserts,
                removals,
            }) => register(&directory, &tenant, &aor, upserts, removals, now_ms)
                .await
                .map_err(|e| e.to_string()),
            Queued::Later(Change::Bindings { tenant, aor }) => directory
                .registrations(&tenant, &aor, now_ms)
                .await
                .map(Changed::Bindings)
                .map_err(|e| e.to_string()),
            Queued::Later(Change::Lease { owner, lease }) => {
                let lease = async {
                    let held = directory
                        .refresh_owner(&owner.id, &owner.name, now_ms, lease)
                        .await?;
                    let reaped = directory.reap_owners(&owner.id, &owner.name, now_ms).await?;
                    Ok::<_, offhook_directory::DirectoryError>(Changed::Lease(held, reaped))
                };
                lease.await.map_err(|e| e.to_string())
            }
            Queued::Flushed(
                flushed,
                Change::SettleRequest {
                    id,
                    owner,
                    result,
                    detail,
                    at,
                },
            ) => {
                flushed.await;
                settle(&directory, &id, &owner, result, &detail, at)
                    .await
                    .map_err(|e| e.to_string())
            }
            Queued::Later(Change::OperatorRequests { at }) => directory
                .open_operator_actions(at)
                .await
                .map(Changed::OperatorRequests)
                .map_err(|e| e.to_string()),
            Queued::Later(Change::ResetUnheldLine { id, line, owner, at }) => {
                let reset = async {
                    if !directory.reset_unheld_line(&line, &owner, at).await? {
                        return Ok(Changed::Settled(false));
                    }
                    tracing::info!(request = %id, line = %line, "operator reset a line: idle");
                    settle(
                        &directory,
                        &id,
                        &owner,
                        ActionResult::Done,
                        "the line is idle",
                        at,
                    )
                    .await
                };
                reset.await.map_err(|e| e.to_string())
            }
            Queued::Later(Change::ClaimLine(_) | Change::EndCdr { .. } | Change::SettleRequest { .. })
            | Queued::Flushed(..) => {
                unreachable!("claims, CDR ends and settlements were queued above")
            }
        }
    }
}

/// Writes a record behind the calls: into the queue at once (a line state
/// returns its queue number), or, for a relay's health, in a task of its own.
pub fn record(directory: &Directory, writer: &CallWriter, record: Record) -> Option<u64> {
    match record {
        Record::StartCdr(cdr) => writer.start_cdr(*cdr),
        Record::CdrLine { cdr, line } => writer.set_cdr_line(&cdr, &line),
        Record::AnswerCdr { cdr, at, source } => writer.answer_cdr(&cdr, at, source),
        Record::LineState { line, state } => return Some(writer.set_line_state(&line, state)),
        Record::RelaySeen { relay, uri, at } => {
            let directory = directory.clone();
            tokio::spawn(async move {
                if let Err(err) = directory.set_relay_seen(&relay, &uri, "up", at).await {
                    tracing::warn!(%err, relay, "health: cannot record a relay's answer");
                }
            });
        }
        Record::RelayDown { relay } => {
            let directory = directory.clone();
            tokio::spawn(async move {
                if let Err(err) = directory.set_relay_state(&relay, "down").await {
                    tracing::warn!(%err, relay, "health: cannot record a relay down");
                }
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::RecordNumbers;

    #[test]
    fn record_numbers_follow_the_writer() {
        let mut n = RecordNumbers::default();
        n.pushed(1, None);
        n.pushed(2, Some(10));
        n.pushed(3, None);
        n.pushed(4, Some(11));
        assert_eq!(n.committed(9), 1, "line state 2 not committed");
        assert_eq!(n.committed(10), 3);
        assert_eq!(n.committed(11), 4);
    }
}
