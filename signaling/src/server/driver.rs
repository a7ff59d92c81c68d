//! The node's one loop: what arrives on the SIP transports goes into the core;
//! the core's directory outputs are performed (reads and awaited writes in tasks
//! of their own, whose results come back on a channel; records into the
//! write-behind queue at once, in order); the endpoint's datagrams are sent; the
//! loop sleeps until the core's next deadline. The only place signaling reads
//! the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use offhook_directory::{CallWriter, Directory, DirectoryError, Scope};
use offhook_sip::driver::SipSockets;
use tokio::sync::mpsc;

use crate::node::directory_io::{Answer, Change, Changed, Query, Record, Ticket};
use crate::node::{Node, Output};

/// `now` and the wall clock (Unix ms) at the same moment.
#[allow(clippy::disallowed_methods)] // the driver reads the clocks for its core
pub(super) fn clock() -> (Instant, i64) {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    (SipSockets::now(), wall)
}

/// What a directory task hands back.
#[derive(Debug)]
enum Done {
    Answer(Query, Box<Result<Answer, String>>),
    Changed(Ticket, Result<Changed, String>),
}

/// The core's record numbers of the line-state records not committed yet, with
/// the write-behind queue's own numbers, so that a lines snapshot can say which
/// of the core's records it reflects.
#[derive(Debug, Default)]
struct RecordNumbers {
    pending: VecDeque<(u64, u64)>,
    last: u64,
}

impl RecordNumbers {
    fn pushed(&mut self, core: u64, writer: Option<u64>) {
        self.last = core;
        if let Some(writer) = writer {
            self.pending.push_back((core, writer));
        }
    }

    /// The newest core record such that every line state up to it is committed.
    fn committed(&mut self, writer_committed: u64) -> u64 {
        while self.pending.front().is_some_and(|(_, w)| *w <= writer_committed) {
            self.pending.pop_front();
        }
        self.pending.front().map_or(self.last, |(core, _)| core - 1)
    }
}

/// A directory result as the core takes it: not found is an answer, not a failure.
fn found<T>(result: offhook_directory::Result<T>) -> Result<Option<T>, String> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DirectoryError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

async fn answer(directory: Directory, query: &Query, now_ms: i64, committed: u64) -> Result<Answer, String> {
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

/// Performs one output of the core.
fn perform(
    output: Output,
    directory: &Directory,
    writer: &CallWriter,
    numbers: &mut RecordNumbers,
    done: &mpsc::UnboundedSender<Done>,
) {
    let now_ms = clock().1;
    match output {
        Output::Query(query) => {
            let committed = numbers.committed(writer.committed());
            let (directory, done) = (directory.clone(), done.clone());
            tokio::spawn(async move {
                let result = answer(directory, &query, now_ms, committed).await;
                let _ = done.send(Done::Answer(query, Box::new(result)));
            });
        }
        Output::Change(ticket, change) => {
            let (directory, done) = (directory.clone(), done.clone());
            // Claims and CDR ends are queued now, behind every record before them.
            match change {
                Change::ClaimLine(line) => {
                    let won = writer.claim_line(&line);
                    tokio::spawn(async move {
                        let _ = done.send(Done::Changed(ticket, Ok(Changed::LineClaimed(won.await))));
                    });
                }
                Change::EndCdr { cdr, at, cause } => {
                    let committed = writer.end_cdr(&cdr, at, cause);
                    tokio::spawn(async move {
                        committed.await;
                        let _ = done.send(Done::Changed(ticket, Ok(Changed::CdrEnded)));
                    });
                }
                Change::SpendToken(grant) => {
                    tokio::spawn(async move {
                        let result = match directory.spend_call_token(&grant).await {
                            Ok(spent) => Ok(Changed::TokenSpent(spent.is_ok())),
                            Err(err) => Err(err.to_string()),
                        };
                        let _ = done.send(Done::Changed(ticket, result));
                    });
                }
                Change::Register {
                    tenant,
                    aor,
                    upserts,
                    removals,
                } => {
                    tokio::spawn(async move {
                        let result = register(&directory, &tenant, &aor, upserts, removals, now_ms).await;
                        let _ = done.send(Done::Changed(ticket, result.map_err(|e| e.to_string())));
                    });
                }
                Change::Bindings { tenant, aor } => {
                    tokio::spawn(async move {
                        let result = directory.registrations(&tenant, &aor, now_ms).await;
                        let result = result.map(Changed::Bindings).map_err(|e| e.to_string());
                        let _ = done.send(Done::Changed(ticket, result));
                    });
                }
            }
        }
        Output::Record(seq, record) => {
            let writer_seq = match record {
                Record::StartCdr(cdr) => {
                    writer.start_cdr(*cdr);
                    None
                }
                Record::CdrLine { cdr, line } => {
                    writer.set_cdr_line(&cdr, &line);
                    None
                }
                Record::AnswerCdr { cdr, at, source } => {
                    writer.answer_cdr(&cdr, at, source);
                    None
                }
                Record::LineState { line, state } => Some(writer.set_line_state(&line, state)),
                Record::RelaySeen { relay, uri, at } => {
                    let directory = directory.clone();
                    tokio::spawn(async move {
                        if let Err(err) = directory.set_relay_seen(&relay, &uri, "up", at).await {
                            tracing::warn!(%err, relay, "health: cannot record a relay's answer");
                        }
                    });
                    None
                }
                Record::RelayDown { relay } => {
                    let directory = directory.clone();
                    tokio::spawn(async move {
                        if let Err(err) = directory.set_relay_state(&relay, "down").await {
                            tracing::warn!(%err, relay, "health: cannot record a relay down");
                        }
                    });
                    None
                }
            };
            numbers.pushed(seq, writer_seq);
        }
    }
}

/// How long a drained node may wait for the answers to its BYEs and its last
/// CDR writes after the calls' deadline.
pub(super) const AFTER_DRAIN: Duration = Duration::from_secs(5);

/// Runs the node until its transports stop, or until it drained after `drain`.
pub(super) async fn run(
    mut node: Node,
    mut sockets: SipSockets,
    directory: Directory,
    writer: CallWriter,
    mut drain: tokio::sync::oneshot::Receiver<()>,
) {
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut numbers = RecordNumbers::default();
    let mut draining = false;
    loop {
        let now = SipSockets::now();
        while let Some(output) = node.poll_output() {
            perform(output, &directory, &writer, &mut numbers, &done_tx);
        }
        sockets.flush(node.endpoint(), now).await;
        if node.is_drained() {
            tracing::info!("drained");
            return;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let deadline = node.poll_timeout().map_or(far, tokio::time::Instant::from_std);
        tokio::select! {
            inbound = sockets.recv() => {
                let Some(inbound) = inbound else { return };
                let now = SipSockets::now();
                SipSockets::feed(node.endpoint(), now, inbound);
                node.process(now);
            }
            Some(result) = done.recv() => {
                let now = SipSockets::now();
                match result {
                    Done::Answer(query, answer) => node.handle_answer(now, query, *answer),
                    Done::Changed(ticket, changed) => node.handle_changed(now, ticket, changed),
                }
            }
            () = tokio::time::sleep_until(deadline) => node.handle_timeout(SipSockets::now()),
            _ = &mut drain, if !draining => {
                draining = true;
                node.drain(SipSockets::now());
            }
        }
    }
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
