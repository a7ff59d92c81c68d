//! Operator requests carried out by the node that holds their target (see
//! `offhook_directory` operator actions): every `operator_poll_ms` the node
//! reads the open requests; a hang-up of a call it holds ends that call (BYE to
//! both sides, or the INVITE cancelled; cause `operator-hangup`); a reset of a
//! line it holds a call on ends that call, which frees the line. A hang-up of a
//! call that has ended anyway is settled `not-found` by whichever node sees it
//! first; a reset of a line no call holds sets it idle in the directory (unless
//! another owner holds it: that owner acts). The settlement is written after the
//! call's end, so whoever reads `done` finds the CDR ended too.

use std::time::{Duration, Instant};

use offhook_directory::{ActionKind, ActionResult, HangupCause, OperatorAction};

use super::directory_io::Change;
use super::{Node, Owner};

/// The poll's timer.
#[derive(Debug)]
pub(crate) struct OperatorPoll {
    every: Option<Duration>,
    next_at: Option<Instant>,
}

impl OperatorPoll {
    /// A poll every `every` (none: off), the first one after one period.
    pub(crate) fn new(every: Option<Duration>, now: Instant) -> Self {
        Self {
            every,
            next_at: every.map(|every| now + every),
        }
    }

    /// When the next poll is due (none while one is in flight, or when off).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }
}

impl Node {
    /// Reads the open requests, when due.
    pub(super) fn operator_timeout(&mut self, now: Instant) {
        if self.operator.next_at.is_none_or(|at| at > now) {
            return;
        }
        self.operator.next_at = None;
        let at = self.wall_ms(now);
        self.change(Change::OperatorRequests { at }, Owner::Operator);
    }

    /// The open requests (none: the directory failed; the next poll retries).
    pub(super) fn operator_requests(&mut self, now: Instant, open: Option<Vec<(OperatorAction, bool)>>) {
        self.operator.next_at = self.operator.every.map(|every| now + every);
        for (action, call_ended) in open.unwrap_or_default() {
            match action.kind {
                ActionKind::HangupCall => self.operator_hangup(now, &action, call_ended),
                ActionKind::ResetLine => self.operator_reset(now, &action),
            }
        }
    }

    fn operator_hangup(&mut self, now: Instant, action: &OperatorAction, call_ended: bool) {
        if self.hang_up_cdr(now, &action.target_id, HangupCause::OperatorHangup) {
            tracing::info!(request = %action.id, cdr = %action.target_id, by = %action.requested_by, "operator hung up a call");
            self.settle(now, action, ActionResult::Done, "the call was hung up");
        } else if call_ended {
            self.settle(now, action, ActionResult::NotFound, "the call had ended");
        }
    }

    fn operator_reset(&mut self, now: Instant, action: &OperatorAction) {
        let line = &action.target_id;
        if self.is_claiming(line) {
            return; // a call is taking it this moment: the next poll decides
        }
        if self.hang_up_line(now, line, HangupCause::OperatorHangup) {
            tracing::info!(request = %action.id, line = %line, by = %action.requested_by, "operator reset a line: its call was hung up");
            self.settle(
                now,
                action,
                ActionResult::Done,
                "its call was hung up; the line is idle",
            );
            return;
        }
        let change = Change::ResetUnheldLine {
            id: action.id.clone(),
            line: line.clone(),
            owner: self.lease.owner_id().to_owned(),
            at: self.wall_ms(now),
        };
        self.change(change, Owner::Background);
    }

    /// Ends the call (answered or in setup) whose CDR is `cdr`, if it is here.
    fn hang_up_cdr(&mut self, now: Instant, cdr: &str, cause: HangupCause) -> bool {
        if let Some(call_id) = self.dialogs.call_of_cdr(cdr) {
            self.end_call(now, &call_id, cause, None);
            return true;
        }
        self.end_invite_of_cdr(now, cdr, cause)
    }

    /// Ends the call here that holds `line`, if there is one.
    fn hang_up_line(&mut self, now: Instant, line: &str, cause: HangupCause) -> bool {
        if let Some(call_id) = self.dialogs.call_on_line(line) {
            self.end_call(now, &call_id, cause, None);
            return true;
        }
        self.end_invite_on_line(now, line, cause)
    }

    fn settle(&mut self, now: Instant, action: &OperatorAction, result: ActionResult, detail: &str) {
        let change = Change::SettleRequest {
            id: action.id.clone(),
            owner: self.lease.owner_id().to_owned(),
            result,
            detail: detail.to_owned(),
            at: self.wall_ms(now),
        };
        self.change(change, Owner::Background);
    }
}
