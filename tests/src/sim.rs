//! Whole calls in simulated time: the signaling node's core, the relay's core
//! with a real modem driver against the modem emulator on each line, and a
//! caller on the project's user-agent layer, all on one virtual clock, with no
//! socket and no task; the directory is a real one (SQLite, a fresh file per
//! world), written through the same executor signaling uses. The world moves SIP
//! datagrams between the three endpoints by address, performs the node's
//! directory outputs, carries out the relay's line and media outputs, and
//! fast-forwards to the next deadline of anything in it (str0m's `progress()`
//! idea): a click-to-call through to the line and back takes milliseconds.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use offhook_directory::testing::{Backend, TestDb};
use offhook_directory::{
    AccountKind, Cdr, CdrFilter, LineKind, LineState, NewAccount, NewIcon, NewLine, NewTenant, Scope,
};
use offhook_media::dsp::cadence::Country;
use offhook_media::emulator::line::LineModel;
use offhook_media::relay::{Device, LineSpec, Registration, RelayConfig};
use offhook_media::testing::{CallerMedia, RelaySide};
use offhook_signaling::config::SignalingConfig;
use offhook_signaling::node::{Node, Output, OwnerId, Start};
use offhook_signaling::server::directory::{RecordNumbers, answer, change, record};
use offhook_sip::endpoint::{SipIo, Transmit};
use offhook_sip::testing::{arriving, bound_endpoint};
use offhook_sip::transport::{Flow, TransportKind};
use offhook_sip::ua::{Body, Outgoing, Reply, SessionId, UaConfig, UaEvent, UserAgent};
use offhook_vocab::headers;

/// The signaling node's address.
pub const NODE: &str = "127.0.0.1:5060";
/// The relay's SIP address.
pub const RELAY: &str = "127.0.0.2:5070";
/// The caller's SIP address.
pub const CALLER: &str = "127.0.0.3:5060";
/// The caller's RTP address.
pub const CALLER_RTP: &str = "127.0.0.3:6000";
/// The signaling node's name.
pub const NODE_NAME: &str = "sim-node";
/// The tenant's SIP domain.
pub const DOMAIN: &str = "sim.test";
const RELAY_PASSWORD: &str = "relay-secret";
/// Numbers that hang up do so this long after their answer.
pub const HANGS_UP_AFTER: Duration = Duration::from_secs(3);
/// Wall time at the world's start (Unix ms): a Friday noon.
const WALL_START: i64 = 1_800_000_000_000;

/// A wall clock reading of `unix_ms`.
fn wall_clock(unix_ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0))
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

/// The icons of the world's tenant: (public id, number).
pub const ICONS: [(&str, &str); 6] = [
    ("echo", "5550100"),
    ("greets", "5550108"),
    ("busy", "5550102"),
    ("silent", "5550103"),
    ("invalid", "5550104"),
    ("hangup", "5550105"),
];

/// Everything on one clock (see the module comment).
#[derive(Debug)]
pub struct World {
    /// The virtual clock.
    pub now: Instant,
    start: Instant,
    /// The directory.
    pub db: TestDb,
    writer: offhook_directory::CallWriter,
    numbers: RecordNumbers,
    signaling: SignalingConfig,
    /// The signaling node.
    pub node: Node,
    /// The relay and its lines.
    pub relay: RelaySide,
    /// The caller.
    pub caller: UserAgent,
    /// The caller's media.
    pub media: CallerMedia,
    /// What the caller's user agent said.
    pub events: Vec<UaEvent>,
    call_token_secret: Vec<u8>,
}

async fn seed(db: &TestDb, lines: &[&str]) {
    let d = &db.directory;
    d.create_tenant(NewTenant {
        name: "sim".into(),
        sip_domain: DOMAIN.into(),
    })
    .await
    .expect("tenant");
    d.create_account(NewAccount {
        tenant: "sim".into(),
        username: "relay".into(),
        password: RELAY_PASSWORD.into(),
        display_name: String::new(),
        number: None,
        kind: AccountKind::Relay,
    })
    .await
    .expect("relay account");
    for line in lines {
        d.create_line(NewLine {
            name: (*line).into(),
            relay: "relay".into(),
            tenant: None,
            device_path: "emulated".into(),
            kind: LineKind::Emulated,
        })
        .await
        .expect("line");
    }
    for (public_id, number) in ICONS {
        let icon = NewIcon {
            public_id: Some(public_id.into()),
            max_concurrent_calls: 5,
            ..NewIcon::new("sim", number, public_id)
        };
        d.create_icon(icon).await.expect("icon");
    }
}

/// A start of the signaling node at `clock` (monotonic, wall ms), as its server
/// does it: its owner recorded in the directory, its call writer owned by it.
async fn start_node(
    d: &offhook_directory::Directory,
    config: &SignalingConfig,
    clock: (Instant, i64),
    seed: u64,
) -> (Node, offhook_directory::CallWriter) {
    let owner = OwnerId {
        id: d
            .start_owner(NODE_NAME, clock.1, config.owner_lease())
            .await
            .expect("owner"),
        name: NODE_NAME.into(),
    };
    let start = Start {
        call_token_secret: d
            .shared_secret(offhook_directory::call_tokens::SECRET_NAME)
            .await
            .expect("secret"),
        nonce_secret: d.shared_secret("digest-nonce").await.expect("secret"),
        flow_token_secret: d.shared_secret("flow-token").await.expect("secret"),
        host: addr(NODE).ip().to_string(),
        clock,
        seed,
        owner: owner.clone(),
    };
    let mut node = Node::new(config.clone(), start).expect("node settings");
    node.endpoint().set_bound(TransportKind::Udp, addr(NODE));
    (node, d.call_writer(&owner.id))
}

impl World {
    /// A world with these relay lines, registered and ready.
    pub async fn new(lines: &[&str], signaling: SignalingConfig) -> Self {
        Self::in_country(lines, signaling, None).await
    }

    /// A world whose lines hear `country`'s call-progress tones (`None`: the
    /// demo cadence) and presume the answer accordingly.
    pub async fn in_country(lines: &[&str], signaling: SignalingConfig, country: Option<Country>) -> Self {
        Self::on_lines(lines, signaling, country, LineModel::default(), None).await
    }

    /// A world whose emulated lines have `emulated`'s modem clock error and
    /// hybrid echo, their echo canceller on, off or as by default.
    pub async fn on_lines(
        lines: &[&str],
        signaling: SignalingConfig,
        country: Option<Country>,
        emulated: LineModel,
        echo_canceller: Option<bool>,
    ) -> Self {
        let db = TestDb::new(Backend::Sqlite).await;
        seed(&db, lines).await;
        let d = &db.directory;
        let now = Instant::now();
        let call_token_secret = d
            .shared_secret(offhook_directory::call_tokens::SECRET_NAME)
            .await
            .expect("secret");
        let (node, writer) = start_node(d, &signaling, (now, WALL_START), 1).await;
        let relay_config = RelayConfig {
            name: "relay".into(),
            password: RELAY_PASSWORD.into(),
            domain: DOMAIN.into(),
            signaling: addr(NODE),
            listen: addr(RELAY),
            lines: lines
                .iter()
                .map(|name| LineSpec {
                    name: (*name).into(),
                    device: Device::Emulated,
                    soundcard: None,
                    country,
                    echo_canceller,
                    emulated,
                    modem_ports: None,
                })
                .collect(),
            ..RelayConfig::default()
        };
        let relay = RelaySide::new(
            relay_config,
            bound_endpoint(addr(RELAY), 2),
            (now, wall_clock(WALL_START)),
            3,
            &[],
            HANGS_UP_AFTER,
        );
        let mut world = Self {
            now,
            start: now,
            writer,
            db,
            signaling,
            numbers: RecordNumbers::default(),
            node,
            relay,
            caller: UserAgent::new(bound_endpoint(addr(CALLER), 4), UaConfig::default()),
            media: CallerMedia::default(),
            events: Vec::new(),
            call_token_secret,
        };
        world
            .run_until(Duration::from_secs(10), |w| {
                lines.iter().all(|l| {
                    w.relay.gateway.line(l).is_some_and(|s| {
                        s.state == LineState::Idle && s.registration == Registration::Registered
                    })
                })
            })
            .await;
        world
    }

    /// The signaling node dies (`kill -9`: what it had queued for the directory
    /// is written or lost, nothing more) and starts again under the same name.
    pub async fn restart_node(&mut self, seed: u64) {
        let (node, writer) = start_node(
            &self.db.directory,
            &self.signaling,
            (self.now, self.wall_ms()),
            seed,
        )
        .await;
        self.node = node;
        drop(std::mem::replace(&mut self.writer, writer));
        self.numbers = RecordNumbers::default();
        self.run(Duration::ZERO).await;
    }

    /// Wall time now, Unix ms.
    pub fn wall_ms(&self) -> i64 {
        WALL_START + i64::try_from((self.now - self.start).as_millis()).unwrap_or(i64::MAX)
    }

    /// SIP datagrams to wherever they go.
    fn deliver_sip(&mut self) -> bool {
        let mut moving: Vec<Transmit> = Vec::new();
        moving.extend(std::iter::from_fn(|| self.node.endpoint().poll_transmit()));
        moving.extend(std::iter::from_fn(|| self.relay.gateway.poll_transmit()));
        moving.extend(std::iter::from_fn(|| self.caller.poll_transmit()));
        let moved = !moving.is_empty();
        for t in moving {
            let (flow, now) = (arriving(&t), self.now);
            match t.flow.remote {
                to if to == addr(NODE) => {
                    self.node.endpoint().handle_datagram(now, flow, &t.bytes);
                    self.node.process(now);
                }
                to if to == addr(RELAY) => self.relay.gateway.handle_datagram(now, flow, &t.bytes),
                to if to == addr(CALLER) => self.caller.handle_datagram(now, flow, &t.bytes),
                _ => {}
            }
        }
        moved
    }

    /// The node's directory outputs, performed on the real directory in turn.
    async fn perform_node(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.node.poll_output() {
            moved = true;
            let now_ms = self.wall_ms();
            match output {
                Output::Query(query) => {
                    let committed = self.numbers.committed(self.writer.committed());
                    let result = answer(self.db.directory.clone(), &query, now_ms, committed).await;
                    self.node.handle_answer(self.now, query, result);
                }
                Output::Change(ticket, what) => {
                    let result = change(&self.db.directory, &self.writer, what, now_ms).await;
                    self.node.handle_changed(self.now, ticket, result);
                }
                Output::Record(seq, what) => {
                    let queued = record(&self.db.directory, &self.writer, what);
                    self.numbers.pushed(seq, queued);
                }
            }
        }
        moved
    }

    /// The relay's outputs and its lines; media for the caller.
    fn relay_side(&mut self) -> bool {
        let mut media = Vec::new();
        let mut moved = self.relay.perform(self.now, &mut media);
        for (to, bytes) in media {
            if to == addr(CALLER_RTP) {
                self.media.receive(&bytes);
            }
        }
        moved |= self.relay.move_line_bytes(self.now);
        moved
    }

    /// The caller's media out, and what its user agent says (a BYE is answered 200).
    fn caller_side(&mut self) -> bool {
        let mut moved = false;
        while let Some((to, packet)) = self.media.due(self.now) {
            moved = true;
            self.relay.media_in(self.now, to, addr(CALLER_RTP), &packet);
        }
        while let Some(event) = self.caller.poll_event() {
            moved = true;
            if let UaEvent::InDialog { key, request, .. } = &event
                && request.method == offhook_sip::message::Method::Bye
            {
                let ok = request.response(200, "OK", None);
                let _ = self.caller.respond(self.now, key, ok);
            }
            if let UaEvent::Answered { response, .. } | UaEvent::Progress { response, .. } = &event
                && !response.body.is_empty()
            {
                self.media.send_to_answer(&response.body);
            }
            self.events.push(event);
        }
        moved
    }

    /// Moves everything at the current time until nothing moves.
    pub async fn settle(&mut self) {
        loop {
            let moved =
                self.deliver_sip() | self.perform_node().await | self.relay_side() | self.caller_side();
            if !moved {
                return;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.node.poll_timeout(),
            self.relay.poll_timeout(),
            self.caller.poll_timeout(),
            self.media.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the clock for `span`, firing every deadline on the way.
    pub async fn run(&mut self, span: Duration) {
        let until = self.now + span;
        loop {
            self.settle().await;
            match self.next_deadline() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.node.handle_timeout(now);
                    self.relay.handle_timeout(now);
                    self.caller.handle_timeout(now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.settle().await;
    }

    /// Runs until `done` holds (checked every 10 ms of simulated time).
    ///
    /// # Panics
    /// When it does not within `limit`.
    pub async fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let until = self.now + limit;
        while !done(self) {
            assert!(self.now < until, "not done within {limit:?}");
            self.run(Duration::from_millis(10)).await;
        }
    }

    /// The caller clicks icon `icon`: an INVITE through signaling with a call
    /// token (as the widget sends it) and a PCMU offer, over `kind`.
    pub async fn click(&mut self, icon: &str) -> SessionId {
        let token =
            offhook_directory::call_tokens::sign(&self.call_token_secret, icon, self.wall_ms() + 60_000);
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=rtcp-mux\r\n",
            addr(CALLER_RTP).port()
        );
        let extra = Reply::default()
            .header(headers::TOKEN, &token)
            .body(Body::sdp(sdp));
        let flow: Flow = self.caller.endpoint().udp_flow(addr(NODE)).expect("caller bound");
        let target = format!("sip:{icon}@{DOMAIN}");
        let session = self.caller.invite(
            self.now,
            Outgoing {
                target: target.clone(),
                from: "sip:visitor@invalid".into(),
                to: target,
                contact_user: Some("visitor".into()),
                flow,
                extra,
            },
        );
        self.settle().await;
        session
    }

    /// The final status of the caller's INVITE, once it came.
    pub fn outcome(&self, session: SessionId) -> Option<u16> {
        use offhook_sip::ua::End;
        self.events.iter().find_map(|e| match e {
            UaEvent::Answered { session: s, .. } if *s == session => Some(200),
            UaEvent::Terminated {
                session: s,
                end: End::Failed { status, .. },
            } if *s == session => Some(*status),
            UaEvent::Terminated {
                session: s,
                end: End::Cancelled,
            } if *s == session => Some(487),
            _ => None,
        })
    }

    /// Whether the caller's session ended (any way).
    pub fn ended(&self, session: SessionId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, UaEvent::Terminated { session: s, .. } if *s == session))
    }

    /// Waits for the final status of the caller's INVITE.
    pub async fn wait_outcome(&mut self, session: SessionId, limit: Duration) -> u16 {
        self.run_until(limit, |w| w.outcome(session).is_some()).await;
        self.outcome(session).unwrap_or(0)
    }

    /// Every CDR, newest first, once every write is committed.
    pub async fn cdrs(&self) -> Vec<Cdr> {
        self.writer.flush().await;
        self.db
            .directory
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .expect("list CDRs")
    }

    /// A line's state in the directory.
    pub async fn line_state(&self, name: &str) -> LineState {
        self.writer.flush().await;
        self.db.directory.line(name).await.expect("the line").state
    }
}
