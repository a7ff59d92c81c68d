//! Server transactions (RFC 3261 s17.2, RFC 6026): INVITE (Proceeding, Completed
//! with Timers G and H, Confirmed with Timer I, Accepted with Timer L) and
//! non-INVITE (Trying, Proceeding, Completed with Timer J). Retransmitted requests
//! are absorbed here and answered with the last response.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Output, ServerKey, Step, Timers, TransactionError};
use crate::message::{Message, Method, Request, Response};
use crate::transport::Flow;

#[derive(Debug)]
enum State {
    InviteProceeding {
        last: Option<Response>,
    },
    InviteCompleted {
        response: Response,
        timer_g: Option<(Instant, Duration)>,
        timer_h: Instant,
    },
    InviteConfirmed {
        timer_i: Instant,
    },
    InviteAccepted {
        timer_l: Instant,
    },
    Trying,
    Proceeding {
        last: Response,
    },
    Completed {
        last: Response,
        timer_j: Instant,
    },
}

/// One server transaction.
#[derive(Debug)]
pub(crate) struct ServerTx {
    flow: Flow,
    timers: Timers,
    state: State,
}

impl ServerTx {
    pub(crate) fn new(request: &Request, flow: Flow, timers: Timers) -> Self {
        let state = if request.method == Method::Invite {
            State::InviteProceeding { last: None }
        } else {
            State::Trying
        };
        Self { flow, timers, state }
    }

    fn reliable(&self) -> bool {
        self.flow.kind.is_reliable()
    }

    /// The flow responses go back on.
    pub(crate) fn flow(&self) -> Flow {
        self.flow
    }

    /// Zero on reliable transports, `d` otherwise.
    fn unreliable(&self, d: Duration) -> Duration {
        if self.reliable() { Duration::ZERO } else { d }
    }

    fn send(&self, response: &Response, out: &mut VecDeque<Output>) {
        out.push_back(Output::Send {
            flow: self.flow,
            message: Message::Response(response.clone()),
        });
    }

    pub(crate) fn is_answered(&self) -> bool {
        !matches!(
            self.state,
            State::InviteProceeding { .. } | State::Trying | State::Proceeding { .. }
        )
    }

    /// A retransmission of the request (or the ACK of our final response).
    pub(crate) fn on_request(&mut self, now: Instant, request: &Request, out: &mut VecDeque<Output>) -> Step {
        let is_ack = request.method == Method::Ack;
        match &self.state {
            State::InviteProceeding { last: Some(last) } if !is_ack => self.send(last, out),
            State::InviteCompleted { .. } if is_ack => {
                let timer_i = now + self.unreliable(self.timers.t4);
                self.state = State::InviteConfirmed { timer_i };
                if self.reliable() {
                    return Step::Done;
                }
            }
            State::InviteCompleted { response, .. } => self.send(response, out),
            State::InviteAccepted { .. } if is_ack => {
                out.push_back(Output::Ack {
                    request: request.clone(),
                    flow: self.flow,
                });
            }
            State::Proceeding { last } | State::Completed { last, .. } => self.send(last, out),
            _ => {}
        }
        Step::Stay
    }

    /// The user's response.
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        response: Response,
        out: &mut VecDeque<Output>,
    ) -> Result<Step, TransactionError> {
        let status = response.status;
        let long = self.timers.long();
        let next = match &self.state {
            State::InviteProceeding { .. } if status < 200 => State::InviteProceeding {
                last: Some(response.clone()),
            },
            State::InviteProceeding { .. } if status < 300 => State::InviteAccepted { timer_l: now + long },
            State::InviteProceeding { .. } => State::InviteCompleted {
                response: response.clone(),
                timer_g: (!self.reliable()).then(|| (now + self.timers.t1, self.timers.t1)),
                timer_h: now + long,
            },
            // A proxy forwards the 2xx retransmissions of the UAS (RFC 6026 s8.7).
            State::InviteAccepted { timer_l } if (200..300).contains(&status) => {
                State::InviteAccepted { timer_l: *timer_l }
            }
            State::Trying | State::Proceeding { .. } if status < 200 => State::Proceeding {
                last: response.clone(),
            },
            State::Trying | State::Proceeding { .. } => State::Completed {
                last: response.clone(),
                timer_j: now + self.unreliable(long),
            },
            _ => return Err(TransactionError::NoServerTransaction),
        };
        self.send(&response, out);
        let done = matches!(next, State::Completed { .. }) && self.reliable();
        self.state = next;
        Ok(if done { Step::Done } else { Step::Stay })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::InviteCompleted { timer_g, timer_h, .. } => {
                Some(timer_g.map_or(*timer_h, |(g, _)| g.min(*timer_h)))
            }
            State::InviteConfirmed { timer_i } => Some(*timer_i),
            State::InviteAccepted { timer_l } => Some(*timer_l),
            State::Completed { timer_j, .. } => Some(*timer_j),
            _ => None,
        }
    }

    pub(crate) fn on_timer(&mut self, now: Instant, key: &ServerKey, out: &mut VecDeque<Output>) -> Step {
        match &mut self.state {
            State::InviteCompleted { timer_h, .. } if *timer_h <= now => {
                out.push_back(Output::AckTimeout { key: key.clone() });
                Step::Done
            }
            State::InviteCompleted {
                response,
                timer_g: Some((at, interval)),
                ..
            } if *at <= now => {
                // Timer G: retransmit, doubling up to T2.
                *interval = (*interval * 2).min(self.timers.t2);
                *at = now + *interval;
                let message = Message::Response(response.clone());
                out.push_back(Output::Send {
                    flow: self.flow,
                    message,
                });
                Step::Stay
            }
            State::InviteConfirmed { .. } | State::InviteAccepted { .. } | State::Completed { .. } => {
                Step::Done
            }
            _ => Step::Stay,
        }
    }
}
