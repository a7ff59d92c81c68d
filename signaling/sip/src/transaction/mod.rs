//! The SIP transaction layer (RFC 3261 s17, with RFC 6026's Accepted states) as a
//! sans-IO state machine: messages and the time go in, messages to send and
//! events for the transaction user (registrar, proxy) come out, with the next
//! deadline. Timers carry their RFC names (A..K, L, M) and T1/T2/T4 are settings.
//! Reliable transports get the zero timers the RFC prescribes.
//!
//! Shape (see STYLE.md): `handle_*(now, ..)`, [`TransactionLayer::poll_output`],
//! [`TransactionLayer::poll_timeout`], [`TransactionLayer::handle_timeout`].
//!
//! Deadlines live in one min-heap beside the transactions (a proxy at 1,500 calls
//! per second holds ~100k transactions in their 32 s wait states, too many to scan
//! on every event): each change of a transaction's deadline pushes the new one,
//! and an entry whose transaction has gone or moved on is dropped when it reaches
//! the top, so that [`TransactionLayer::poll_timeout`] is exact and O(1).

mod client;
mod server;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::message::{Message, Method, Request, Response};
use crate::transport::Flow;

use client::ClientTx;
use server::ServerTx;

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// Longest non-INVITE retransmit interval (default 4 s).
    pub t2: Duration,
    /// Longest a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J, L, M.
    fn long(&self) -> Duration {
        self.t1 * 64
    }
}

/// Identifies a server transaction (RFC 3261 s17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    branch: String,
    sent_by: String,
    method: Method,
}

/// Identifies a client transaction (RFC 3261 s17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    branch: String,
    method: Method,
}

impl ClientKey {
    /// The branch of the request this transaction sent.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method of that request.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

/// What the layer asks of its user.
#[derive(Debug)]
pub enum Output {
    /// Send these bytes along this flow.
    Send {
        /// Where.
        flow: Flow,
        /// The message.
        message: Message,
    },
    /// A new request (a new server transaction, answer it with
    /// [`TransactionLayer::respond`]).
    Request {
        /// The server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// An ACK that matched no transaction: the ACK of a 2xx, end to end.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// A response on a client transaction (1xx, each 2xx, the first 3xx-6xx).
    Response {
        /// The client transaction.
        key: ClientKey,
        /// The response.
        response: Response,
    },
    /// A response that matched no client transaction (e.g. a 2xx retransmitted
    /// after the transaction ended): a proxy forwards it statelessly.
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        flow: Flow,
    },
    /// Timer B or F: no final response came; the user acts as on a 408.
    Timeout {
        /// The client transaction.
        key: ClientKey,
    },
    /// Timer H: the ACK of our final response never came.
    AckTimeout {
        /// The server transaction.
        key: ServerKey,
    },
}

/// Why the user's call on the layer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The server transaction is unknown or already answered finally.
    #[error("no server transaction to respond on")]
    NoServerTransaction,
    /// A request to send needs a top Via with a branch.
    #[error("request has no Via branch")]
    NoBranch,
}

/// What a transaction does when time or a message comes.
pub(crate) enum Step {
    /// Nothing to report.
    Stay,
    /// The transaction is over: forget it.
    Done,
}

/// A transaction named in the deadline heap.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TxId {
    Server(ServerKey),
    Client(ClientKey),
}

/// All transactions of one node.
#[derive(Debug, Default)]
pub struct TransactionLayer {
    timers: Timers,
    servers: HashMap<ServerKey, ServerTx>,
    clients: HashMap<ClientKey, ClientTx>,
    /// Deadlines, earliest on top; entries go stale (see the module comment).
    deadlines: BinaryHeap<Reverse<(Instant, TxId)>>,
    out: VecDeque<Output>,
}

/// The magic cookie of RFC 3261 branches.
const MAGIC: &str = "z9hG4bK";

fn server_key(request: &Request) -> Option<ServerKey> {
    let via = request.top_via()?;
    let branch = via.branch().unwrap_or("").to_owned();
    let method = match &request.method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    };
    let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(0));
    if branch.starts_with(MAGIC) {
        return Some(ServerKey {
            branch,
            sent_by,
            method,
        });
    }
    // RFC 2543 peers: no usable branch; match on the dialog-ish identifiers (s17.2.3).
    let cseq = request.cseq()?.number;
    let from_tag = request
        .from()
        .and_then(|f| f.tag().map(str::to_owned))
        .unwrap_or_default();
    let branch = format!("2543:{}:{}:{}:{}", request.call_id(), cseq, from_tag, request.uri);
    Some(ServerKey {
        branch,
        sent_by,
        method,
    })
}

fn client_key(response: &Response) -> Option<ClientKey> {
    let branch = response.top_via()?.branch()?.to_owned();
    Some(ClientKey {
        branch,
        method: response.cseq()?.method,
    })
}

impl TransactionLayer {
    /// A layer with these timer values.
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            ..Self::default()
        }
    }

    /// Transactions alive (for metrics and tests).
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// No transaction alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A message arrived on `flow`.
    pub fn handle_message(&mut self, now: Instant, message: Message, flow: Flow) {
        match message {
            Message::Request(request) => self.handle_request(now, request, flow),
            Message::Response(response) => self.handle_response(now, response, flow),
        }
    }

    fn handle_request(&mut self, now: Instant, request: Request, flow: Flow) {
        let Some(key) = server_key(&request) else {
            return;
        };
        if let Some(tx) = self.servers.get_mut(&key) {
            let before = tx.deadline();
            match tx.on_request(now, &request, &mut self.out) {
                Step::Done => {
                    self.servers.remove(&key);
                }
                Step::Stay => self.rescheduled(TxId::Server(key), before),
            }
            return;
        }
        if request.method == Method::Ack {
            self.out.push_back(Output::Ack { request, flow });
            return;
        }
        let tx = ServerTx::new(&request, flow, self.timers);
        self.servers.insert(key.clone(), tx);
        self.rescheduled(TxId::Server(key.clone()), None);
        self.out.push_back(Output::Request { key, request, flow });
    }

    fn handle_response(&mut self, now: Instant, response: Response, flow: Flow) {
        let Some(key) = client_key(&response) else {
            return;
        };
        match self.clients.get_mut(&key) {
            Some(tx) => {
                let before = tx.deadline();
                match tx.on_response(now, &key, response, &mut self.out) {
                    Step::Done => {
                        self.clients.remove(&key);
                        self.prune();
                    }
                    Step::Stay => self.rescheduled(TxId::Client(key), before),
                }
            }
            None => self.out.push_back(Output::StrayResponse { response, flow }),
        }
    }

    /// The user answers a server transaction.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &ServerKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        let tx = self
            .servers
            .get_mut(key)
            .ok_or(TransactionError::NoServerTransaction)?;
        let before = tx.deadline();
        match tx.respond(now, response, &mut self.out)? {
            Step::Done => {
                self.servers.remove(key);
                self.prune();
            }
            Step::Stay => self.rescheduled(TxId::Server(key.clone()), before),
        }
        Ok(())
    }

    /// The server transaction an incoming CANCEL is for (RFC 3261 s9.2), if alive.
    pub fn invite_for_cancel(&self, cancel: &Request) -> Option<ServerKey> {
        let key = server_key(cancel)?;
        let invite = ServerKey {
            method: Method::Invite,
            ..key
        };
        self.servers.contains_key(&invite).then_some(invite)
    }

    /// Whether a server transaction has sent a final response.
    pub fn is_answered(&self, key: &ServerKey) -> bool {
        self.servers.get(key).is_none_or(ServerTx::is_answered)
    }

    /// Starts a client transaction sending `request` along `flow`; the request's
    /// top Via must carry the branch that names it.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        flow: Flow,
    ) -> Result<ClientKey, TransactionError> {
        let branch = request
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .ok_or(TransactionError::NoBranch)?;
        let key = ClientKey {
            branch,
            method: request.method.clone(),
        };
        let tx = ClientTx::start(now, request, flow, self.timers, &mut self.out);
        self.clients.insert(key.clone(), tx);
        self.rescheduled(TxId::Client(key.clone()), None);
        Ok(key)
    }

    /// The request a client transaction sent (to build its CANCEL).
    pub fn client_request(&self, key: &ClientKey) -> Option<&Request> {
        self.clients.get(key).map(ClientTx::request)
    }

    /// The flow a client transaction sends on.
    pub fn client_flow(&self, key: &ClientKey) -> Option<Flow> {
        self.clients.get(key).map(ClientTx::flow)
    }

    /// The transport failed on `flow` (a connection closed, a send refused; RFC
    /// 3261 s17.1.4, s17.2.4): every transaction bound to it ends at once. Returns
    /// the client transactions that ended, whose users act as on a 503.
    pub fn handle_transport_error(&mut self, flow: Flow) -> Vec<ClientKey> {
        self.servers.retain(|_, tx| tx.flow() != flow);
        let failed: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, tx)| tx.flow() == flow)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &failed {
            self.clients.remove(key);
        }
        self.prune();
        failed
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The top is never stale: every change ends with `prune`.
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut again = Vec::new();
        while let Some(Reverse((at, _))) = self.deadlines.peek()
            && *at <= now
        {
            // The loop condition just saw an entry.
            let Some(Reverse((at, id))) = self.deadlines.pop() else {
                break;
            };
            let out = &mut self.out;
            let fired = match &id {
                TxId::Server(key) => match self.servers.get_mut(key) {
                    Some(tx) if tx.deadline() == Some(at) => {
                        let step = tx.on_timer(now, key, out);
                        Some((step, tx.deadline()))
                    }
                    _ => None,
                },
                TxId::Client(key) => match self.clients.get_mut(key) {
                    Some(tx) if tx.deadline() == Some(at) => {
                        let step = tx.on_timer(now, key, out);
                        Some((step, tx.deadline()))
                    }
                    _ => None,
                },
            };
            match fired {
                None => {} // stale entry
                Some((Step::Done, _)) => match &id {
                    TxId::Server(key) => drop(self.servers.remove(key)),
                    TxId::Client(key) => drop(self.clients.remove(key)),
                },
                // Pushed after the loop, so that a timer that does not move on
                // fires once per call, as before.
                Some((Step::Stay, Some(next))) => again.push(Reverse((next, id))),
                Some((Step::Stay, None)) => {}
            }
        }
        self.deadlines.extend(again);
        self.prune();
    }

    /// A transaction's deadline may have changed from `before`: push the new one.
    fn rescheduled(&mut self, id: TxId, before: Option<Instant>) {
        let after = match &id {
            TxId::Server(key) => self.servers.get(key).and_then(ServerTx::deadline),
            TxId::Client(key) => self.clients.get(key).and_then(ClientTx::deadline),
        };
        if let Some(at) = after
            && after != before
        {
            self.deadlines.push(Reverse((at, id)));
        }
        self.prune();
    }

    /// Drops stale entries from the top of the heap.
    fn prune(&mut self) {
        while let Some(Reverse((at, id))) = self.deadlines.peek() {
            let current = match id {
                TxId::Server(key) => self.servers.get(key).and_then(ServerTx::deadline),
                TxId::Client(key) => self.clients.get(key).and_then(ClientTx::deadline),
            };
            if current == Some(*at) {
                return;
            }
            self.deadlines.pop();
        }
    }
}

#[cfg(test)]
mod tests;
