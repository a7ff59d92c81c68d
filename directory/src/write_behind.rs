//! Write-behind of what calls change in the directory, for signaling's hot path:
//! CDR rows (start, line, answer, end) and line states are queued and written by
//! one task in batches, a group commit: the task takes everything queued, writes
//! it in one transaction (all CDR changes as one multi-row upsert, line states as
//! one `UPDATE` per state), and starts over, so that a quiet node writes each
//! change at once and a busy one writes many per commit. A call never waits for
//! these writes, except where it asks to ([`CallWriter::end_cdr`] resolves when
//! the row is committed, so that whoever sees a call end can read its CDR).
//!
//! Line claims go through the same queue, because they must stay atomic across
//! nodes sharing the directory: the claims of a batch are one conditional
//! `UPDATE … WHERE state = 'idle' AND id IN (…) RETURNING id` in a statement of
//! its own; a line only one node can win. Claims run before the batch's
//! transaction, so a call setting up waits for no CDR writes (at 1,500 calls a
//! second that wait held each line a transaction longer and ran the pool dry),
//! except a claim of a line whose state the batch also changes before it: that
//! one runs after the transaction (the release is committed first). No
//! transaction holds line rows while it waits for other line rows (PostgreSQL
//! visits an `IN` list in index order), so nodes cannot deadlock on lines.
//!
//! The webhook outbox rows of the calls that start, are answered and end in a
//! batch are written in the batch's transaction too (see [`crate::outbox`]),
//! and so are their usage counters (see [`crate::usage_counters`]).
//!
//! Every CDR the writer starts and every line it claims carries the writer's
//! owner (see [`crate::owners`]), and it changes the state of no line another
//! owner holds: when this process dies, whoever reaps its owner finds what it held.
//!
//! Nothing queued is dropped: a failed batch is retried with a growing pause, and
//! [`CallWriter::close`] writes everything queued before it returns. A crash loses
//! what was queued and not yet committed (normally less than one batch).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use offhook_vocab::{AnswerSource, HangupCause, LineState};

use crate::cdrs::{CallQuality, Cdr};
use crate::db::Directory;
use crate::error::Result;
use crate::ids::now_ms;
use crate::outbox::{self, WebhookEvent};
use crate::usage_counters::{Counted, UsageDeltas, billed};

/// Rows per multi-row statement, largest first: a few statement texts only, so
/// that they stay prepared (sqlx caches them), and few parameters each (SQLite
/// finds a `$N` among a statement's parameters by a linear search).
const STATEMENT_ROWS: [usize; 4] = [32, 8, 2, 1];

/// Splits `items` into chunks of the sizes in [`STATEMENT_ROWS`].
pub(crate) fn statement_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = STATEMENT_ROWS.iter().copied().find(|s| *s <= items.len())?;
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}
/// Ops taken into one batch at most.
const OPS_PER_BATCH: usize = 4_000;
/// Attempts at a failing batch once the writer is closing.
const ATTEMPTS_ON_CLOSE: u32 = 5;

/// A change to one CDR.
#[derive(Debug)]
enum CdrChange {
    Start(Box<Cdr>),
    Line(String),
    Answer(i64, AnswerSource),
    Quality(CallQuality),
    End(i64, HangupCause),
}

#[derive(Debug)]
enum Op {
    Cdr {
        id: String,
        change: CdrChange,
        written: Option<oneshot::Sender<()>>,
    },
    LineState {
        line_id: String,
        state: &'static str,
    },
    Claim {
        line_id: String,
        reply: oneshot::Sender<bool>,
    },
    Flush {
        written: oneshot::Sender<()>,
    },
    Close {
        written: oneshot::Sender<()>,
    },
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// CDR rows written (a row changed several times in one batch counts once).
    pub cdr_rows: AtomicU64,
    /// Line state changes written.
    pub line_states: AtomicU64,
    /// Line claims tried, and won.
    pub claims: AtomicU64,
    /// Of those, won.
    pub claims_won: AtomicU64,
    /// Batches that failed and were tried again.
    pub retries: AtomicU64,
}

/// The queue's sending side; the sequence number and the send happen under one
/// lock, so that ops arrive in the order of their numbers.
#[derive(Debug)]
struct Queue {
    next_seq: u64,
    ops: mpsc::UnboundedSender<(u64, Op)>,
}

/// A handle on the write-behind task; cheap to clone.
#[derive(Debug, Clone)]
pub struct CallWriter {
    queue: Arc<Mutex<Queue>>,
    committed: Arc<AtomicU64>,
    stats: Arc<WriterStats>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic mid-update cannot leave it half-changed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Directory {
    /// Starts the write-behind task for the calls of `owner` (an id from
    /// [`Directory::start_owner`]) on this directory (needs a tokio runtime).
    /// Stop it with [`CallWriter::close`].
    pub fn call_writer(&self, owner: &str) -> CallWriter {
        let (ops, rx) = mpsc::unbounded_channel();
        let committed = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(WriterStats::default());
        let task = Task {
            directory: self.clone(),
            owner: owner.to_owned(),
            ops: rx,
            open: HashMap::new(),
            committed: committed.clone(),
            stats: stats.clone(),
        };
        tokio::spawn(task.run());
        CallWriter {
            queue: Arc::new(Mutex::new(Queue { next_seq: 1, ops })),
            committed,
            stats,
        }
    }
}

impl CallWriter {
    /// Queues `op`; returns its sequence number, or `None` when the writer is closed.
    fn push(&self, op: Op) -> Option<u64> {
        let mut queue = lock(&self.queue);
        let seq = queue.next_seq;
        if queue.ops.send((seq, op)).is_err() {
            tracing::error!("directory writer is closed: a call's change is not written");
            return None;
        }
        queue.next_seq += 1;
        Some(seq)
    }

    /// Everything queued up to this sequence number is committed.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Queues the CDR row of a call that starts now (its id and number are the
    /// caller's: signaling makes them).
    pub fn start_cdr(&self, cdr: Cdr) {
        self.push(Op::Cdr {
            id: cdr.id.clone(),
            change: CdrChange::Start(Box::new(cdr)),
            written: None,
        });
    }

    /// Queues the line a call uses.
    pub fn set_cdr_line(&self, cdr_id: &str, line_id: &str) {
        self.push(Op::Cdr {
            id: cdr_id.to_owned(),
            change: CdrChange::Line(line_id.to_owned()),
            written: None,
        });
    }

    /// Queues the answer of a call.
    pub fn answer_cdr(&self, cdr_id: &str, at: i64, source: AnswerSource) {
        self.push(Op::Cdr {
            id: cdr_id.to_owned(),
            change: CdrChange::Answer(at, source),
            written: None,
        });
    }

    /// Queues the RTCP figures of a call (see [`CallQuality::parse_rtcp_header`]),
    /// before its end so that the end's webhook deliveries carry them.
    pub fn set_cdr_quality(&self, cdr_id: &str, quality: CallQuality) {
        self.push(Op::Cdr {
            id: cdr_id.to_owned(),
            change: CdrChange::Quality(quality),
            written: None,
        });
    }

    /// Queues the end of a call (now); the future resolves when its row is committed.
    pub fn end_cdr(
        &self,
        cdr_id: &str,
        at: i64,
        cause: HangupCause,
    ) -> impl Future<Output = ()> + Send + use<> {
        let (written, done) = oneshot::channel();
        self.push(Op::Cdr {
            id: cdr_id.to_owned(),
            change: CdrChange::End(at, cause),
            written: Some(written),
        });
        async move {
            let _ = done.await;
        }
    }

    /// Queues a claimed line's new state (`in-call`, or `idle` to release it);
    /// returns the op's sequence number (see [`CallWriter::committed`]).
    pub fn set_line_state(&self, line_id: &str, state: LineState) -> u64 {
        self.push(Op::LineState {
            line_id: line_id.to_owned(),
            state: state.as_str(),
        })
        .unwrap_or(0)
    }

    /// Queues (now) the claim of an idle line for a call, after every change
    /// queued before; resolves to false when another call (on any node) holds it.
    pub fn claim_line(&self, line_id: &str) -> impl Future<Output = bool> + Send + use<> {
        let (reply, won) = oneshot::channel();
        self.push(Op::Claim {
            line_id: line_id.to_owned(),
            reply,
        });
        async move { won.await.unwrap_or(false) }
    }

    /// Resolves when everything queued before this call is committed.
    pub fn flush(&self) -> impl Future<Output = ()> + Send + use<> {
        let (written, done) = oneshot::channel();
        self.push(Op::Flush { written });
        async move {
            let _ = done.await;
        }
    }

    /// Writes everything queued, then stops the task; later changes are refused
    /// (and logged).
    pub fn close(&self) -> impl Future<Output = ()> + Send + use<> {
        let (written, done) = oneshot::channel();
        self.push(Op::Close { written });
        async move {
            let _ = done.await;
        }
    }
}

/// One batch: what the ops taken from the queue change.
#[derive(Default)]
struct Batch {
    /// CDRs whose rows changed, in first-change order.
    cdrs: Vec<String>,
    cdr_set: HashSet<String>,
    /// The webhook events of the batch: calls started, answered, ended in it.
    events: Vec<(WebhookEvent, String)>,
    /// Final state per line, in first-change order.
    lines: Vec<(String, &'static str)>,
    line_index: HashMap<String, usize>,
    /// Claims of lines the batch changes nothing of before them: run first.
    early_claims: Vec<(String, oneshot::Sender<bool>)>,
    /// Claims of lines the batch changes before them: run after its transaction.
    claims: Vec<(String, oneshot::Sender<bool>)>,
    written: Vec<oneshot::Sender<()>>,
    last_seq: u64,
    /// A close was asked for: answered once everything is written.
    close: Option<oneshot::Sender<()>>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.cdrs.is_empty() && self.lines.is_empty()
    }
}

struct Task {
    directory: Directory,
    owner: String,
    ops: mpsc::UnboundedReceiver<(u64, Op)>,
    /// Rows of calls not ended yet (and of those ended in the current batch).
    open: HashMap<String, Cdr>,
    committed: Arc<AtomicU64>,
    stats: Arc<WriterStats>,
}

impl Task {
    async fn run(mut self) {
        while let Some(first) = self.ops.recv().await {
            let mut batch = Batch::default();
            self.take(&mut batch, first);
            while batch.early_claims.len() + batch.claims.len() + batch.cdrs.len() + batch.lines.len()
                < OPS_PER_BATCH
                && batch.close.is_none()
            {
                match self.ops.try_recv() {
                    Ok(next) => self.take(&mut batch, next),
                    Err(_) => break,
                }
            }
            self.write(&mut batch).await;
            if let Some(closed) = batch.close {
                self.ops.close();
                // Whatever raced the close in is written too.
                while let Some(late) = self.ops.recv().await {
                    let mut batch = Batch::default();
                    self.take(&mut batch, late);
                    self.write(&mut batch).await;
                }
                let _ = closed.send(());
                return;
            }
        }
    }

    fn take(&mut self, batch: &mut Batch, (seq, op): (u64, Op)) {
        batch.last_seq = seq;
        match op {
            Op::Cdr { id, change, written } => {
                match change {
                    CdrChange::Start(cdr) => {
                        self.open.insert(id.clone(), *cdr);
                        batch.events.push((WebhookEvent::CallStarted, id.clone()));
                    }
                    change => match self.open.get_mut(&id) {
                        Some(row) => match change {
                            CdrChange::Line(line) => row.line_id = Some(line),
                            CdrChange::Answer(at, source) => {
                                row.answered_at = Some(at);
                                row.answer_source = Some(source);
                                batch.events.push((WebhookEvent::CallAnswered, id.clone()));
                            }
                            CdrChange::Quality(quality) => row.quality = Some(quality),
                            CdrChange::End(at, cause) => {
                                row.ended_at = Some(at);
                                row.hangup_cause = Some(cause);
                                batch.events.push((WebhookEvent::CallEnded, id.clone()));
                            }
                            CdrChange::Start(_) => {}
                        },
                        None => {
                            tracing::warn!(cdr = %id, "directory writer: change of an unknown or ended CDR")
                        }
                    },
                }
                if batch.cdr_set.insert(id.clone()) {
                    batch.cdrs.push(id);
                }
                batch.written.extend(written);
            }
            Op::LineState { line_id, state } => match batch.line_index.get(&line_id) {
                Some(&at) => batch.lines[at].1 = state,
                None => {
                    batch.line_index.insert(line_id.clone(), batch.lines.len());
                    batch.lines.push((line_id, state));
                }
            },
            Op::Claim { line_id, reply } => match batch.line_index.contains_key(&line_id) {
                true => batch.claims.push((line_id, reply)),
                false => batch.early_claims.push((line_id, reply)),
            },
            Op::Flush { written } => batch.written.push(written),
            Op::Close { written } => batch.close = Some(written),
        }
    }

    async fn write(&mut self, batch: &mut Batch) {
        self.answer_claims(&mut batch.early_claims).await;
        let mut pause = Duration::from_millis(50);
        let mut attempt = 0;
        while !batch.is_empty() {
            attempt += 1;
            match self.commit(batch).await {
                Ok(()) => break,
                Err(err) if batch.close.is_some() && attempt >= ATTEMPTS_ON_CLOSE => {
                    tracing::error!(%err, cdrs = batch.cdrs.len(), lines = batch.lines.len(),
                        "directory writer: giving up on a batch at close");
                    break;
                }
                Err(err) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%err, "directory writer: batch failed; trying again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        for id in &batch.cdrs {
            if self.open.get(id).is_some_and(|row| row.ended_at.is_some()) {
                self.open.remove(id);
            }
        }
        self.answer_claims(&mut batch.claims).await;
        self.committed.fetch_max(batch.last_seq, Ordering::AcqRel);
        for written in batch.written.drain(..) {
            let _ = written.send(());
        }
    }

    /// Claims these lines at once and tells each claimant whether it won.
    async fn answer_claims(&self, claims: &mut Vec<(String, oneshot::Sender<bool>)>) {
        if claims.is_empty() {
            return;
        }
        let mut won = self.claim(claims).await;
        for (line_id, reply) in claims.drain(..) {
            // Two claims of one line in a batch: the first wins, never both.
            let _ = reply.send(won.remove(&line_id));
        }
    }

    /// Claims these lines at once; returns those won.
    async fn claim(&self, claims: &[(String, oneshot::Sender<bool>)]) -> HashSet<String> {
        let mut ids: Vec<&String> = claims.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        self.stats
            .claims
            .fetch_add(claims.len() as u64, Ordering::Relaxed);
        let mut won = HashSet::new();
        let changed_at = now_ms();
        for chunk in statement_chunks(&ids) {
            let params: Vec<String> = (3..=chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "UPDATE lines SET state = 'dialing', state_changed_at = $1, owner_id = $2 \
                 WHERE state = 'idle' AND id IN ({}) RETURNING id",
                params.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .bind(changed_at)
                .bind(&self.owner);
            for id in chunk {
                query = query.bind((*id).clone());
            }
            match query.fetch_all(&self.directory.pool).await {
                Ok(ids) => won.extend(ids),
                Err(err) => tracing::error!(%err, "directory writer: cannot claim lines"),
            }
        }
        self.stats
            .claims_won
            .fetch_add(won.len() as u64, Ordering::Relaxed);
        won
    }

    async fn commit(&self, batch: &Batch) -> Result<()> {
        let mut tx = self.directory.begin_write().await?;
        let rows: Vec<&Cdr> = batch.cdrs.iter().filter_map(|id| self.open.get(id)).collect();
        for chunk in statement_chunks(&rows) {
            let mut sql = String::from(
                "INSERT INTO cdrs (id, tenant_id, icon_id, account_id, call_id, number, line_id, started_at, \
                 answered_at, ended_at, answer_source, hangup_cause, rtcp_loss_permille, rtcp_lost_packets, \
                 rtcp_jitter_ms, rtcp_rtt_ms, owner_id) VALUES ",
            );
            for n in 0..chunk.len() {
                let p = n * 17;
                if n > 0 {
                    sql.push_str(", ");
                }
                let params: Vec<String> = (1..=17).map(|i| format!("${}", p + i)).collect();
                sql.push('(');
                sql.push_str(&params.join(", "));
                sql.push(')');
            }
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET line_id = excluded.line_id, answered_at = excluded.answered_at, \
                 ended_at = excluded.ended_at, answer_source = excluded.answer_source, \
                 hangup_cause = excluded.hangup_cause, rtcp_loss_permille = excluded.rtcp_loss_permille, \
                 rtcp_lost_packets = excluded.rtcp_lost_packets, rtcp_jitter_ms = excluded.rtcp_jitter_ms, \
                 rtcp_rtt_ms = excluded.rtcp_rtt_ms",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for cdr in chunk {
                let quality = cdr.quality;
                query = query
                    .bind(cdr.id.clone())
                    .bind(cdr.tenant_id.clone())
                    .bind(cdr.icon_id.clone())
                    .bind(cdr.account_id.clone())
                    .bind(cdr.call_id.clone())
                    .bind(cdr.number.clone())
                    .bind(cdr.line_id.clone())
                    .bind(cdr.started_at)
                    .bind(cdr.answered_at)
                    .bind(cdr.ended_at)
                    .bind(cdr.answer_source.map(AnswerSource::as_str))
                    .bind(cdr.hangup_cause.map(|c| c.to_string()))
                    .bind(quality.and_then(|q| q.loss_permille))
                    .bind(quality.and_then(|q| q.lost_packets))
                    .bind(quality.and_then(|q| q.jitter_ms))
                    .bind(quality.and_then(|q| q.rtt_ms))
                    .bind(&self.owner);
            }
            query.execute(&mut *tx).await?;
        }
        let mut usage = UsageDeltas::default();
        for (event, id) in &batch.events {
            let Some(row) = self.open.get(id) else { continue };
            match event {
                WebhookEvent::CallStarted => usage.add(&Counted::of(row), 1, 0),
                WebhookEvent::CallEnded => {
                    usage.add(&Counted::of(row), 0, billed(row.answered_at, row.ended_at))
                }
                WebhookEvent::CallAnswered => {}
            }
        }
        usage.write(&mut tx).await?;
        let hooks = !batch.events.is_empty() && outbox::any_enabled(&mut tx).await?;
        for event in WebhookEvent::ALL.into_iter().filter(|_| hooks) {
            let ids: Vec<&str> = batch
                .events
                .iter()
                .filter(|(e, _)| *e == event)
                .map(|(_, id)| id.as_str())
                .collect();
            if !ids.is_empty() {
                outbox::enqueue(&mut tx, event, &ids).await?;
            }
        }
        let changed_at = now_ms();
        let mut states: Vec<&'static str> = batch.lines.iter().map(|(_, s)| *s).collect();
        states.sort_unstable();
        states.dedup();
        for state in states {
            let ids: Vec<&String> = batch
                .lines
                .iter()
                .filter(|(_, s)| *s == state)
                .map(|(l, _)| l)
                .collect();
            for chunk in statement_chunks(&ids) {
                let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
                // Released (idle): held by nobody any more.
                let sql = format!(
                    "UPDATE lines SET state = $1, state_changed_at = $2, \
                     fault_reason = CASE WHEN $1 = 'fault' THEN fault_reason ELSE NULL END, \
                     owner_id = CASE WHEN $1 = 'idle' THEN NULL ELSE owner_id END \
                     WHERE owner_id = $3 AND id IN ({})",
                    params.join(", ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(state)
                    .bind(changed_at)
                    .bind(&self.owner);
                for id in chunk {
                    query = query.bind((*id).clone());
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .cdr_rows
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.stats
            .line_states
            .fetch_add(batch.lines.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
