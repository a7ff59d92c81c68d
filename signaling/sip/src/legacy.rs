//! The endpoint: one event loop per SIP socket set (the tokio edge of the
//! transaction layer). It parses what the transports deliver, answers unparsable
//! requests with 400, stamps `received`/`rport` (RFC 3581), feeds the
//! [`TransactionLayer`], sleeps until its next deadline, sends what it asks, and
//! hands requests and responses to the transaction users (the proxy, the relay,
//! a test UA), which talk back through [`Ctx`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::counters::Stats;
use crate::message::{self as sip, Message, Method, Request, Response};
use tokio::net::UdpSocket;

use crate::transaction::{ClientKey, Output, ServerKey, Timers, TransactionLayer};
use crate::transport::{self, Flow, Inbound, Transports};

/// What a transaction user hears on a client transaction.
#[derive(Debug)]
pub enum ClientEvent {
    /// A response (1xx, 2xx, or the final 3xx-6xx).
    Response(Response),
    /// No final response in time (Timer B/F): act as on 408.
    Timeout,
}

/// Requests from transaction users to the loop.
#[derive(Debug)]
pub(crate) enum Command {
    Respond {
        key: ServerKey,
        response: Response,
    },
    Send {
        request: Request,
        flow: Flow,
        events: mpsc::UnboundedSender<ClientEvent>,
        started: oneshot::Sender<Option<ClientKey>>,
    },
    Cancel {
        key: ClientKey,
    },
    Stateless {
        message: Message,
        flow: Flow,
    },
    WatchCancel {
        key: ServerKey,
        notify: oneshot::Sender<()>,
    },
}

/// A transaction user's handle on the loop; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ctx {
    commands: mpsc::UnboundedSender<Command>,
}

impl Ctx {
    /// Answers a server transaction.
    pub fn respond(&self, key: &ServerKey, response: Response) {
        let _ = self.commands.send(Command::Respond {
            key: key.clone(),
            response,
        });
    }

    /// Sends a request in a new client transaction; its responses arrive on the
    /// returned channel. `None` when the loop refused it (no Via branch).
    pub async fn send(
        &self,
        request: Request,
        flow: Flow,
    ) -> Option<(ClientKey, mpsc::UnboundedReceiver<ClientEvent>)> {
        let (events, rx) = mpsc::unbounded_channel();
        let (started, key) = oneshot::channel();
        self.commands
            .send(Command::Send {
                request,
                flow,
                events,
                started,
            })
            .ok()?;
        Some((key.await.ok()??, rx))
    }

    /// Cancels a client INVITE transaction (RFC 3261 s9.1).
    pub fn cancel(&self, key: &ClientKey) {
        let _ = self.commands.send(Command::Cancel { key: key.clone() });
    }

    /// Sends a message outside any transaction (ACK of a 2xx, stray 2xx).
    pub fn send_stateless(&self, message: Message, flow: Flow) {
        let _ = self.commands.send(Command::Stateless { message, flow });
    }

    /// Resolves when a CANCEL arrives for this INVITE server transaction.
    pub fn cancelled(&self, key: &ServerKey) -> oneshot::Receiver<()> {
        let (notify, rx) = oneshot::channel();
        let _ = self.commands.send(Command::WatchCancel {
            key: key.clone(),
            notify,
        });
        rx
    }
}

/// What the loop hands to the transaction users.
#[derive(Debug)]
pub enum Upcall {
    /// A new request in a server transaction (answer it through [`Ctx::respond`]).
    Request {
        /// The server transaction.
        key: ServerKey,
        /// The request.
        request: Request,
        /// Where it came from.
        flow: Flow,
    },
    /// The ACK of a 2xx (no transaction).
    Ack {
        /// The ACK.
        request: Request,
    },
    /// A response no client transaction wanted (a retransmitted 2xx).
    StrayResponse {
        /// The response.
        response: Response,
    },
}

/// The loop (see the module comment).
#[derive(Debug)]
pub struct Engine {
    layer: TransactionLayer,
    transports: Transports,
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_tx: mpsc::UnboundedSender<Command>,
    upcalls: mpsc::UnboundedSender<Upcall>,
    stats: Arc<Stats>,
    clients: HashMap<ClientKey, mpsc::UnboundedSender<ClientEvent>>,
    cancel_watchers: HashMap<ServerKey, oneshot::Sender<()>>,
    /// CANCELs that arrived before their INVITE's user asked to watch.
    early_cancels: HashSet<ServerKey>,
}

/// A 400 for bytes that look like a request with enough headers to route a reply.
fn bad_request_reply(bytes: &[u8], reason: &str) -> Option<Response> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    if first.starts_with("SIP/") || first.split(' ').next()? == "ACK" {
        return None;
    }
    let mut response = Response {
        status: 400,
        reason: reason.to_owned(),
        headers: Default::default(),
        body: Vec::new(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = sip::headers::canonical_name(name.trim());
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name.as_str()) {
            response.headers.push(&name, value.trim());
        }
    }
    let complete = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .all(|h| response.headers.contains(h));
    complete.then_some(response)
}

/// RFC 3261 s18.2.1 and RFC 3581: note where a request really came from.
fn stamp_received(request: &mut Request, flow: &Flow) {
    let Some(mut via) = request.top_via() else { return };
    let remote_ip = flow.remote.ip().to_string();
    if via.param("rport").is_some() {
        via.set_param("rport", Some(&flow.remote.port().to_string()));
        via.set_param("received", Some(&remote_ip));
    } else if via.host.trim_matches(['[', ']']) != remote_ip {
        via.set_param("received", Some(&remote_ip));
    }
    request.headers.replace_first("Via", &via.to_string());
}

impl Engine {
    /// A loop over `layer` that reads `inbound`, sends through `transports` and
    /// hands up on `upcalls`.
    pub fn new(
        layer: TransactionLayer,
        transports: Transports,
        inbound: mpsc::Receiver<Inbound>,
        upcalls: mpsc::UnboundedSender<Upcall>,
        stats: Arc<Stats>,
    ) -> Self {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        Self {
            layer,
            transports,
            inbound,
            commands,
            commands_tx,
            upcalls,
            stats,
            clients: HashMap::new(),
            cancel_watchers: HashMap::new(),
            early_cancels: HashSet::new(),
        }
    }

    /// A handle on the loop for transaction users.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            commands: self.commands_tx.clone(),
        }
    }

    /// Runs until the transports and every user are gone.
    pub async fn run(mut self) {
        loop {
            let deadline = self.layer.poll_timeout().map(tokio::time::Instant::from_std);
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                inbound = self.inbound.recv() => match inbound {
                    Some(inbound) => self.on_inbound(inbound).await,
                    None => return,
                },
                Some(command) = self.commands.recv() => self.on_command(command).await,
                () = tokio::time::sleep_until(deadline.unwrap_or(far)) => {
                    self.layer.handle_timeout(Instant::now());
                }
            }
            self.drain().await;
        }
    }

    async fn on_inbound(&mut self, inbound: Inbound) {
        let Inbound::Message { flow, bytes } = inbound else {
            return;
        };
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return; // keep-alive
        }
        match sip::parse(&bytes) {
            Ok(Message::Request(mut request)) => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.stats.messages.request(request.method.as_str());
                stamp_received(&mut request, &flow);
                self.layer
                    .handle_message(Instant::now(), Message::Request(request), flow);
            }
            Ok(Message::Response(response)) => {
                self.stats.responses.fetch_add(1, Ordering::Relaxed);
                self.stats.messages.response(response.status);
                self.layer
                    .handle_message(Instant::now(), Message::Response(response), flow);
            }
            Err(err) => {
                self.stats.unparsable.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(remote = %flow.remote, %err, "unparsable message");
                if let Some(reply) = bad_request_reply(&bytes, &err.to_string()) {
                    self.stats.answered_400.fetch_add(1, Ordering::Relaxed);
                    let _ = self.transports.send(&flow, reply.to_bytes()).await;
                }
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Respond { key, response } => {
                if let Err(err) = self.layer.respond(now, &key, response) {
                    tracing::debug!(%err, "response dropped");
                }
            }
            Command::Send {
                request,
                flow,
                events,
                started,
            } => {
                let key = self.layer.send_request(now, request, flow).ok();
                if let Some(key) = &key {
                    self.clients.insert(key.clone(), events);
                }
                let _ = started.send(key);
            }
            Command::Cancel { key } => self.cancel(now, &key),
            Command::Stateless { message, flow } => {
                let _ = self.transports.send(&flow, message.to_bytes()).await;
            }
            Command::WatchCancel { key, notify } => {
                if self.early_cancels.remove(&key) {
                    let _ = notify.send(());
                } else {
                    self.cancel_watchers.insert(key, notify);
                }
            }
        }
    }

    /// Builds the CANCEL of a client INVITE from the request it sent (s9.1).
    fn cancel(&mut self, now: Instant, key: &ClientKey) {
        let Some(invite) = self.layer.client_request(key) else {
            return;
        };
        let mut cancel = Request::new(Method::Cancel, &invite.uri);
        for name in ["Via", "Route", "From", "To", "Call-ID", "Max-Forwards"] {
            if let Some(value) = invite.headers.get(name) {
                cancel.headers.push(name, value);
            }
        }
        let number = invite.cseq().map_or(1, |c| c.number);
        cancel.headers.push("CSeq", &format!("{number} CANCEL"));
        let Some(flow) = self.layer.client_flow(key) else {
            return;
        };
        if let Ok(cancel_key) = self.layer.send_request(now, cancel, flow) {
            // The CANCEL's own 200 (or 481) is of no interest to the user.
            let (sink, _) = mpsc::unbounded_channel();
            self.clients.insert(cancel_key, sink);
        }
    }

    async fn drain(&mut self) {
        while let Some(output) = self.layer.poll_output() {
            match output {
                Output::Send { flow, message } => {
                    if let Err(err) = self.transports.send(&flow, message.to_bytes()).await {
                        tracing::debug!(%err, remote = %flow.remote, "send failed");
                    }
                }
                Output::Request { key, request, flow } => {
                    if request.method == Method::Cancel {
                        self.on_cancel(key, &request);
                    } else {
                        let _ = self.upcalls.send(Upcall::Request { key, request, flow });
                    }
                }
                Output::Ack { request, .. } => {
                    let _ = self.upcalls.send(Upcall::Ack { request });
                }
                Output::StrayResponse { response, .. } => {
                    let _ = self.upcalls.send(Upcall::StrayResponse { response });
                }
                Output::Response { key, response } => {
                    let last = response.status >= 200 && key.method() != &Method::Invite;
                    let unheard = match self.clients.get(&key) {
                        Some(events) => events.send(ClientEvent::Response(response)).err().map(|e| e.0),
                        None => Some(ClientEvent::Response(response)),
                    };
                    // A 2xx retransmission after the user went (RFC 6026 Accepted):
                    // the proxy forwards it statelessly.
                    if let Some(ClientEvent::Response(response)) = unheard
                        && (200..300).contains(&response.status)
                    {
                        let _ = self.upcalls.send(Upcall::StrayResponse { response });
                    }
                    if last {
                        self.clients.remove(&key);
                    }
                }
                Output::Timeout { key } => {
                    if let Some(events) = self.clients.remove(&key) {
                        let _ = events.send(ClientEvent::Timeout);
                    }
                }
                Output::AckTimeout { .. } => {}
            }
        }
        // Client INVITE transactions may pass 2xx up until Timer M; forget the
        // channels of those that ended.
        if self.clients.len() > 4 * self.layer.len() + 64 {
            let layer = &self.layer;
            self.clients
                .retain(|key, events| !events.is_closed() && layer.client_request(key).is_some());
        }
        // Each INVITE's user watches for a CANCEL; once answered, none can come.
        if self.cancel_watchers.len() > 2 * self.layer.len() + 64 {
            let layer = &self.layer;
            self.cancel_watchers
                .retain(|key, notify| !notify.is_closed() && !layer.is_answered(key));
        }
    }

    /// RFC 3261 s9.2: answer the CANCEL, and tell the INVITE's user.
    fn on_cancel(&mut self, key: ServerKey, cancel: &Request) {
        let now = Instant::now();
        match self.layer.invite_for_cancel(cancel) {
            Some(invite) => {
                let _ = self.layer.respond(now, &key, cancel.response(200, "OK", None));
                match self.cancel_watchers.remove(&invite) {
                    Some(notify) => {
                        let _ = notify.send(());
                    }
                    None => {
                        self.early_cancels.insert(invite);
                    }
                }
            }
            None => {
                let _ = self.layer.respond(
                    now,
                    &key,
                    cancel.response(481, "Call/Transaction Does Not Exist", None),
                );
            }
        }
        self.cancel_watchers.retain(|_, notify| !notify.is_closed());
        let layer = &self.layer;
        self.early_cancels.retain(|key| !layer.is_answered(key));
    }
}

/// A bare SIP user agent endpoint on one UDP socket: the event loop and the
/// transaction layer without registrar or proxy, for user agents such as the
/// media relay. Requests and stray messages arrive on `upcalls`.
#[derive(Debug)]
pub struct Endpoint {
    /// Sends and answers through the loop.
    pub ctx: Ctx,
    /// What arrives for the user agent.
    pub upcalls: mpsc::UnboundedReceiver<Upcall>,
    /// The socket's address.
    pub local: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Endpoint {
    /// Binds UDP at `addr` and starts the loop with these timers.
    pub async fn udp(addr: std::net::SocketAddr, timers: Timers) -> std::io::Result<Self> {
        let (inbound_tx, inbound) = mpsc::channel(1024);
        let transports = Transports::new(inbound_tx, 64 * 1024, Default::default());
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let udp = tokio::spawn({
            let transports = transports.clone();
            async move {
                let _ = transport::serve_udp(socket, transports).await;
            }
        });
        let (upcalls_tx, upcalls) = mpsc::unbounded_channel();
        let engine = Engine::new(
            TransactionLayer::new(timers),
            transports,
            inbound,
            upcalls_tx,
            Arc::default(),
        );
        let ctx = engine.ctx();
        Ok(Self {
            ctx,
            upcalls,
            local,
            tasks: vec![udp, tokio::spawn(engine.run())],
        })
    }
}
