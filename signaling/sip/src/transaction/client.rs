//! Client transactions (RFC 3261 s17.1, RFC 6026): INVITE (Calling with Timers A and
//! B, Proceeding, Completed with Timer D, Accepted with Timer M) and non-INVITE
//! (Trying and Proceeding with Timers E and F, Completed with Timer K). The ACK of a
//! non-2xx final response is built and sent here, on the same branch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ClientKey, Output, Step, Timers};
use crate::message::{Message, Method, Request, Response};
use crate::transport::Flow;

/// Timer D on unreliable transports (at least 32 s, RFC 3261 s17.1.1.2).
const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug)]
enum State {
    /// INVITE sent; Timer A retransmits (unreliable only), Timer B gives up.
    Calling {
        timer_a: Option<(Instant, Duration)>,
        timer_b: Instant,
    },
    /// A provisional response came.
    InviteProceeding,
    /// A 3xx-6xx came and was ACKed; Timer D absorbs its retransmissions.
    InviteCompleted { ack: Request, timer_d: Instant },
    /// A 2xx came; Timer M passes further 2xx up.
    InviteAccepted { timer_m: Instant },
    /// Non-INVITE sent; Timer E retransmits, Timer F gives up.
    Trying {
        timer_e: Option<(Instant, Duration)>,
        timer_f: Instant,
    },
    /// Non-INVITE provisional came; Timer E at T2.
    Proceeding {
        timer_e: Option<(Instant, Duration)>,
        timer_f: Instant,
    },
    /// Final came; Timer K absorbs retransmissions.
    Completed { timer_k: Instant },
}

/// One client transaction.
#[derive(Debug)]
pub(crate) struct ClientTx {
    request: Request,
    flow: Flow,
    timers: Timers,
    state: State,
}

impl ClientTx {
    pub(crate) fn start(
        now: Instant,
        request: Request,
        flow: Flow,
        timers: Timers,
        out: &mut VecDeque<Output>,
    ) -> Self {
        let unreliable = !flow.kind.is_reliable();
        let first = unreliable.then(|| (now + timers.t1, timers.t1));
        let state = if request.method == Method::Invite {
            State::Calling {
                timer_a: first,
                timer_b: now + timers.long(),
            }
        } else {
            State::Trying {
                timer_e: first,
                timer_f: now + timers.long(),
            }
        };
        out.push_back(Output::Send {
            flow,
            message: Message::Request(request.clone()),
        });
        Self {
            request,
            flow,
            timers,
            state,
        }
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn flow(&self) -> Flow {
        self.flow
    }

    fn unreliable(&self, d: Duration) -> Duration {
        if self.flow.kind.is_reliable() {
            Duration::ZERO
        } else {
            d
        }
    }

    /// RFC 3261 s17.1.1.3: the ACK of a non-2xx final response.
    fn ack_for(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, &self.request.uri);
        if let Some(via) = self.request.headers.get("Via") {
            ack.headers.push("Via", via);
        }
        for name in ["Route", "From", "Call-ID"] {
            for value in self.request.headers.get_all(name) {
                ack.headers.push(name, value);
            }
        }
        ack.headers.push("To", response.headers.get("To").unwrap_or(""));
        let number = self.request.cseq().map_or(1, |c| c.number);
        ack.headers.push("CSeq", &format!("{number} ACK"));
        ack.headers.push("Max-Forwards", "70");
        ack
    }

    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        key: &ClientKey,
        response: Response,
        out: &mut VecDeque<Output>,
    ) -> Step {
        let status = response.status;
        let pass_up = |out: &mut VecDeque<Output>, response: Response| {
            out.push_back(Output::Response {
                key: key.clone(),
                response,
            });
        };
        match &self.state {
            State::Calling { .. } | State::InviteProceeding => {
                if status < 200 {
                    self.state = State::InviteProceeding;
                } else if status < 300 {
                    self.state = State::InviteAccepted {
                        timer_m: now + self.timers.long(),
                    };
                } else {
                    let ack = self.ack_for(&response);
                    out.push_back(Output::Send {
                        flow: self.flow,
                        message: Message::Request(ack.clone()),
                    });
                    let timer_d = now + self.unreliable(TIMER_D);
                    self.state = State::InviteCompleted { ack, timer_d };
                    pass_up(out, response);
                    return if self.flow.kind.is_reliable() {
                        Step::Done
                    } else {
                        Step::Stay
                    };
                }
                pass_up(out, response);
            }
            State::InviteAccepted { .. } if (200..300).contains(&status) => pass_up(out, response),
            State::InviteCompleted { ack, .. } if status >= 300 => {
                out.push_back(Output::Send {
                    flow: self.flow,
                    message: Message::Request(ack.clone()),
                });
            }
            State::Trying { timer_f, .. } | State::Proceeding { timer_f, .. } => {
                if status < 200 {
                    let timer_e =
                        (!self.flow.kind.is_reliable()).then(|| (now + self.timers.t2, self.timers.t2));
                    self.state = State::Proceeding {
                        timer_e,
                        timer_f: *timer_f,
                    };
                } else {
                    let timer_k = now + self.unreliable(self.timers.t4);
                    self.state = State::Completed { timer_k };
                    pass_up(out, response);
                    return if self.flow.kind.is_reliable() {
                        Step::Done
                    } else {
                        Step::Stay
                    };
                }
                pass_up(out, response);
            }
            _ => {}
        }
        Step::Stay
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        let with_retransmit = |timer: &Option<(Instant, Duration)>, give_up: Instant| {
            Some(timer.map_or(give_up, |(at, _)| at.min(give_up)))
        };
        match &self.state {
            State::Calling { timer_a, timer_b } => with_retransmit(timer_a, *timer_b),
            State::Trying { timer_e, timer_f } | State::Proceeding { timer_e, timer_f } => {
                with_retransmit(timer_e, *timer_f)
            }
            State::InviteCompleted { timer_d, .. } => Some(*timer_d),
            State::InviteAccepted { timer_m } => Some(*timer_m),
            State::Completed { timer_k } => Some(*timer_k),
            State::InviteProceeding => None,
        }
    }

    pub(crate) fn on_timer(&mut self, now: Instant, key: &ClientKey, out: &mut VecDeque<Output>) -> Step {
        let (t2, flow) = (self.timers.t2, self.flow);
        let resend = |out: &mut VecDeque<Output>, request: &Request| {
            out.push_back(Output::Send {
                flow,
                message: Message::Request(request.clone()),
            });
        };
        match &mut self.state {
            State::Calling { timer_b, .. }
            | State::Trying { timer_f: timer_b, .. }
            | State::Proceeding { timer_f: timer_b, .. }
                if *timer_b <= now =>
            {
                out.push_back(Output::Timeout { key: key.clone() });
                Step::Done
            }
            State::Calling {
                timer_a: Some((at, interval)),
                ..
            } if *at <= now => {
                // Timer A doubles without a cap.
                *interval *= 2;
                *at = now + *interval;
                resend(out, &self.request);
                Step::Stay
            }
            State::Trying {
                timer_e: Some((at, interval)),
                ..
            }
            | State::Proceeding {
                timer_e: Some((at, interval)),
                ..
            } if *at <= now => {
                // Timer E doubles up to T2.
                *interval = (*interval * 2).min(t2);
                *at = now + *interval;
                resend(out, &self.request);
                Step::Stay
            }
            State::InviteCompleted { .. } | State::InviteAccepted { .. } | State::Completed { .. } => {
                Step::Done
            }
            _ => Step::Stay,
        }
    }
}
