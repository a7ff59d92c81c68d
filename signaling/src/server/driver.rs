//! The node's one loop: what arrives on the SIP transports goes into the core;
//! the core's directory outputs are performed (reads and awaited writes in tasks
//! of their own, whose results come back on a channel; records into the
//! write-behind queue at once, in order); the endpoint's datagrams are sent; the
//! loop sleeps until the core's next deadline. The only place signaling reads
//! the clock.

use std::time::{Duration, Instant};

use offhook_directory::{CallWriter, Directory};
use offhook_sip::driver::SipSockets;
use tokio::sync::mpsc;

use super::directory::{RecordNumbers, answer};
use crate::node::directory_io::{Answer, Changed, Query, Ticket};
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

/// Performs one output of the core: reads and changes in tasks of their own
/// (their results come back on `done`), records at once.
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
            let result = super::directory::change(directory, writer, change, now_ms);
            let done = done.clone();
            tokio::spawn(async move {
                let _ = done.send(Done::Changed(ticket, result.await));
            });
        }
        Output::Record(seq, record) => {
            numbers.pushed(seq, super::directory::record(directory, writer, record))
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
