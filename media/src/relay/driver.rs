//! The relay's tokio edge: [`Relay::start`] opens the modems (a modem that
//! fails is reported to the gateway as a faulty line, and the others go on),
//! binds the SIP socket ([`SipSockets`]), and runs one loop that moves bytes for
//! the sans-IO [`Gateway`]: SIP datagrams in and out, each line's events in and
//! commands out (the modem ports' [`LineHandle`] channels), one UDP socket per
//! call (two without `rtcp-mux`) bound, read, written and closed as the gateway
//! asks, and the sleep until its next deadline. It reads the clock for the core.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use offhook_sip::driver::{BindError, Listen, SipSockets};
use offhook_sip::endpoint::{Endpoint, EndpointConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::call::MediaAddrs;
use super::config::{Device, LineSpec, RelayConfig, SoundCardSpec, SoundHost};
use super::gateway::{CallId, Gateway, Output};
use super::legs::Port;
use super::lines::Registration;
use super::stats::RelayStats;
use crate::emulator::{Faults, pty};
use crate::modem::{LineCommand, LineEvent, LineHandle, open_modem, open_modem_with_card};
use crate::soundcard::{self, CardCounters};

/// How long [`Relay::start`] waits for every line to be registered (or out of use).
const START: Duration = Duration::from_secs(20);

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    /// Our SIP address.
    pub local: SocketAddr,
    /// Media counters of all its calls.
    pub stats: Arc<RelayStats>,
    task: JoinHandle<()>,
    _modems: Vec<pty::EmulatedModem>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The SIP socket could not be bound.
    #[error(transparent)]
    Sip(#[from] BindError),
}

/// A line's event, and which opening of its modem said it.
type LineNews = (String, u64, LineEvent);

/// A datagram a call's socket received.
type MediaIn = (CallId, Port, SocketAddr, Vec<u8>);

/// The wall clock and fresh seeds, read once at start.
#[allow(clippy::disallowed_methods)] // the edge reads the clock and the OS's randomness for the core
fn clock_and_seeds() -> (SystemTime, u64, u64) {
    (SystemTime::now(), rand::random(), rand::random())
}

/// Opens the sound card of a line (cpal connects to the sound server
/// synchronously: off the async threads).
async fn open_card(spec: &SoundCardSpec) -> Result<soundcard::SoundCard, String> {
    let host = match spec.host {
        SoundHost::PulseAudio => cpal::HostId::PulseAudio,
        SoundHost::Alsa => cpal::HostId::Alsa,
    };
    let (playback, capture) = (spec.playback.clone(), spec.capture.clone());
    match tokio::task::spawn_blocking(move || soundcard::open(host, &playback, &capture)).await {
        Ok(Ok(card)) => Ok(card),
        Ok(Err(err)) => Err(format!("sound card: {err}")),
        Err(err) => Err(format!("sound card: {err}")),
    }
}

/// What the lines are, once opened: their handles and what failed.
#[derive(Default)]
struct Opened {
    handles: Vec<(String, LineHandle)>,
    faults: Vec<(String, String)>,
    modems: Vec<pty::EmulatedModem>,
    cards: Vec<(String, Arc<CardCounters>)>,
}

impl Opened {
    async fn line(&mut self, spec: &LineSpec, no_answer: Duration) -> Result<LineHandle, String> {
        let path = match &spec.device {
            Device::Emulated => {
                let faults = Faults {
                    no_serial_audio: spec.soundcard.is_some(),
                    ..Faults::default()
                };
                let modem = pty::spawn(
                    faults,
                    Duration::from_secs(5),
                    spec.exchange(),
                    spec.modem_ports.as_ref(),
                )
                .map_err(|e| format!("emulated modem: {e}"))?;
                let path = modem.path.clone();
                self.modems.push(modem);
                path
            }
            Device::Serial(path) => path.clone(),
        };
        let driver = spec.driver_config(no_answer);
        let opened = match &spec.soundcard {
            None => open_modem(&path, driver),
            Some(card) => {
                let card = open_card(card).await?;
                self.cards.push((spec.name.clone(), card.counters.clone()));
                open_modem_with_card(&path, driver, card)
            }
        };
        opened.map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A call's media sockets, and the tasks reading them.
struct CallSockets {
    rtp: Arc<UdpSocket>,
    rtcp: Option<Arc<UdpSocket>>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for CallSockets {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// The RTCP socket next to the RTP one: its port + 1 where free (RFC 3550
/// s11), else any port (announced with `a=rtcp`, RFC 3605).
async fn bind_rtcp(rtp: SocketAddr) -> std::io::Result<UdpSocket> {
    if let Some(next) = rtp.port().checked_add(1)
        && let Ok(socket) = UdpSocket::bind(SocketAddr::new(rtp.ip(), next)).await
    {
        return Ok(socket);
    }
    UdpSocket::bind(SocketAddr::new(rtp.ip(), 0)).await
}

/// Reads `socket` into the loop's channel until aborted or the loop is gone.
fn reader(socket: Arc<UdpSocket>, call: CallId, port: Port, to: mpsc::Sender<MediaIn>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            // An ICMP error from the last send shows up here: read on.
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if to.send((call, port, from, buf[..len].to_vec())).await.is_err() {
                return;
            }
        }
    })
}

struct Driver {
    gateway: Gateway,
    sockets: SipSockets,
    lines: HashMap<String, mpsc::Sender<LineCommand>>,
    line_events: mpsc::Receiver<LineNews>,
    /// Where line events go (a reopened modem's too).
    events_tx: mpsc::Sender<LineNews>,
    /// Each line's modem opening, counted: news of an earlier one is stale.
    generations: HashMap<String, u64>,
    /// The lines' settings, to open a modem again.
    specs: Vec<LineSpec>,
    no_answer: Duration,
    /// The modems opened again (emulated ones live here).
    reopened: Opened,
    media: HashMap<CallId, CallSockets>,
    media_tx: mpsc::Sender<MediaIn>,
    media_rx: mpsc::Receiver<MediaIn>,
    media_ip: IpAddr,
    started: Option<oneshot::Sender<()>>,
}

impl Relay {
    /// Opens the modems, registers the lines and starts answering calls;
    /// returns once every line is registered or out of use (or after 20 s).
    pub async fn start(config: RelayConfig) -> Result<Self, RelayError> {
        let listen = Listen {
            udp: Some(config.listen),
            max_message: 64 * 1024,
            ..Listen::default()
        };
        let sockets = SipSockets::bind(&listen).await?;
        let (wallclock, endpoint_seed, relay_seed) = clock_and_seeds();
        let host = config.listen.ip().to_string();
        let mut endpoint = Endpoint::new(EndpointConfig::user_agent(&host, endpoint_seed));
        sockets.bind_endpoint(&mut endpoint);
        let local = endpoint
            .bound(offhook_sip::transport::TransportKind::Udp)
            .unwrap_or(config.listen);

        let mut opened = Opened::default();
        let no_answer = Duration::from_secs(config.no_answer_s);
        for spec in &config.lines {
            match opened.line(spec, no_answer).await {
                Ok(handle) => opened.handles.push((spec.name.clone(), handle)),
                Err(why) => opened.faults.push((spec.name.clone(), why)),
            }
        }
        let specs = config.lines.clone();
        let names = config.lines.iter().map(|l| l.name.as_str());
        let stats = Arc::new(RelayStats::new(names));
        for (line, counters) in std::mem::take(&mut opened.cards) {
            stats.set_card(&line, counters);
        }
        let now = SipSockets::now();
        let mut gateway = Gateway::new(config, endpoint, stats.clone(), now, wallclock, relay_seed);
        for (line, why) in opened.faults {
            gateway.handle_line_event(now, &line, LineEvent::Fault(why));
        }
        let (events_tx, line_events) = mpsc::channel(1024);
        let mut lines = HashMap::new();
        for (name, handle) in opened.handles {
            lines.insert(name.clone(), handle.commands);
            tokio::spawn(forward_events(name, 0, handle.events, events_tx.clone()));
        }
        let (media_tx, media_rx) = mpsc::channel(1024);
        let (started, is_started) = oneshot::channel();
        let driver = Driver {
            gateway,
            media_ip: local.ip(),
            sockets,
            lines,
            line_events,
            events_tx,
            generations: HashMap::new(),
            specs,
            no_answer,
            reopened: Opened::default(),
            media: HashMap::new(),
            media_tx,
            media_rx,
            started: Some(started),
        };
        let task = tokio::spawn(driver.run());
        if tokio::time::timeout(START, is_started).await.is_err() {
            tracing::warn!("lines not all registered yet; retrying in the background");
        }
        Ok(Self {
            local,
            stats,
            task,
            _modems: opened.modems,
        })
    }
}

/// Hands a line's events to the loop; when the port's task ends without
/// having said why (its last word a fault), the line is faulty.
async fn forward_events(
    name: String,
    generation: u64,
    mut events: mpsc::Receiver<LineEvent>,
    to: mpsc::Sender<LineNews>,
) {
    let mut said_why = false;
    while let Some(event) = events.recv().await {
        said_why = matches!(event, LineEvent::Fault(_));
        if to.send((name.clone(), generation, event)).await.is_err() {
            return;
        }
    }
    if !said_why {
        let closed = LineEvent::Fault("the modem's port closed".into());
        let _ = to.send((name, generation, closed)).await;
    }
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.perform().await;
            self.check_started();
            let now = SipSockets::now();
            let far = now + Duration::from_secs(3600);
            let deadline = tokio::time::Instant::from_std(self.gateway.poll_timeout().unwrap_or(far));
            tokio::select! {
                inbound = self.sockets.recv() => match inbound {
                    Some(inbound) => SipSockets::feed(&mut self.gateway, SipSockets::now(), inbound),
                    None => return,
                },
                Some((line, generation, event)) = self.line_events.recv() => {
                    if self.generations.get(&line).copied().unwrap_or(0) == generation {
                        self.gateway.handle_line_event(SipSockets::now(), &line, event);
                    }
                }
                Some((call, port, from, bytes)) = self.media_rx.recv() => {
                    self.gateway.handle_media(SipSockets::now(), call, port, from, &bytes);
                }
                () = tokio::time::sleep_until(deadline) => self.gateway.handle_timeout(SipSockets::now()),
            }
        }
    }

    /// Tells [`Relay::start`] once every line is registered or out of use.
    fn check_started(&mut self) {
        let settled = self.gateway.lines().all(|(_, status)| {
            status.state == offhook_vocab::LineState::Fault
                || matches!(
                    status.registration,
                    Registration::Registered | Registration::Failed(_)
                )
        });
        if settled && let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }

    /// Does what the gateway asks until it asks nothing more.
    async fn perform(&mut self) {
        loop {
            self.sockets.flush(&mut self.gateway, SipSockets::now()).await;
            let Some(output) = self.gateway.poll_output() else {
                return;
            };
            match output {
                Output::Line { line, command } => self.command(&line, command),
                Output::BindMedia { call, rtcp } => {
                    let bound = self.bind(call, rtcp).await;
                    self.gateway.handle_media_bound(SipSockets::now(), call, bound);
                }
                Output::Media {
                    call,
                    port,
                    to,
                    bytes,
                } => {
                    if let Some(sockets) = self.media.get(&call) {
                        let socket = match port {
                            Port::Rtcp => sockets.rtcp.as_ref().unwrap_or(&sockets.rtp),
                            Port::Rtp => &sockets.rtp,
                        };
                        // A full socket buffer loses this datagram; the call goes on.
                        let _ = socket.try_send_to(&bytes, to);
                    }
                }
                Output::CloseMedia { call } => drop(self.media.remove(&call)),
                Output::Reopen { line } => self.reopen(line).await,
            }
        }
    }

    /// Opens `line`'s modem again; the old one's news is stale from now on.
    async fn reopen(&mut self, line: String) {
        let Some(spec) = self.specs.iter().find(|s| s.name == line).cloned() else {
            return;
        };
        let generation = self.generations.entry(line.clone()).or_default();
        *generation += 1;
        let generation = *generation;
        // The old port's task ends with its command queue.
        self.lines.remove(&line);
        match self.reopened.line(&spec, self.no_answer).await {
            Ok(handle) => {
                for (line, counters) in std::mem::take(&mut self.reopened.cards) {
                    self.gateway.stats().set_card(&line, counters);
                }
                self.lines.insert(line.clone(), handle.commands);
                tokio::spawn(forward_events(
                    line,
                    generation,
                    handle.events,
                    self.events_tx.clone(),
                ));
            }
            Err(why) => self
                .gateway
                .handle_line_event(SipSockets::now(), &line, LineEvent::Fault(why)),
        }
    }

    /// A command for a line's port; audio never waits (a full queue drops it).
    fn command(&self, line: &str, command: LineCommand) {
        let Some(commands) = self.lines.get(line) else {
            return;
        };
        match commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(LineCommand::Audio(_) | LineCommand::Dtmf(_))) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                let commands = commands.clone();
                tokio::spawn(async move {
                    let _ = commands.send(command).await;
                });
            }
            // The port's task ended: its line is reported faulty.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    async fn bind(&mut self, call: CallId, rtcp: bool) -> std::io::Result<MediaAddrs> {
        let rtp = Arc::new(UdpSocket::bind((self.media_ip, 0)).await?);
        let rtp_addr = rtp.local_addr()?;
        let rtcp = match rtcp {
            true => Some(Arc::new(bind_rtcp(rtp_addr).await?)),
            false => None,
        };
        let rtcp_addr = rtcp.as_ref().map(|s| s.local_addr()).transpose()?;
        let mut readers = vec![reader(rtp.clone(), call, Port::Rtp, self.media_tx.clone())];
        if let Some(socket) = &rtcp {
            readers.push(reader(socket.clone(), call, Port::Rtcp, self.media_tx.clone()));
        }
        self.media.insert(call, CallSockets { rtp, rtcp, readers });
        Ok(MediaAddrs {
            rtp: rtp_addr,
            rtcp: rtcp_addr,
        })
    }
}
