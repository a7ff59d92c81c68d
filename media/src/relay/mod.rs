//! The media relay process: a SIP user agent (like an FXO gateway) that owns modem
//! lines. It registers each line with signaling (one contact per line, digest
//! credentials of its relay account), answers the INVITEs routed to it by dialing
//! the number signaling put in `X-Offhook-Number` on the line it named, maps call
//! progress to SIP (180, 200, 486, 480, 404, 503), bridges the caller's media (RTP
//! with a jitter buffer and paced sender, or WebRTC from a browser) with the line's
//! 8 kHz mu-law, and sends BYE when the far end hangs up. A line with a sound card
//! ([`LineSpec::soundcard`]) is a modem + sound card line: its modem only dials
//! and holds the line, and the call's audio is played and captured by the card.

mod bridge;
mod call;
mod legs;
mod register;
mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offhook_sip::legacy::{Endpoint, Upcall};
use offhook_sip::transaction::Timers;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use stats::{LegCounts, RelayStats};

use crate::emulator::{Faults, pty};
use crate::modem::{DriverConfig, LineEvent, LineHandle, open_modem, open_modem_with_card};
use crate::soundcard::{self, CardCounters, DEFAULT_DEVICE};

/// Where a line's modem is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The modem emulator on a fresh pseudo-terminal.
    Emulated,
    /// A serial device path.
    Serial(PathBuf),
}

/// One line of the relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineSpec {
    /// The line's name in the directory (its contact user).
    pub name: String,
    /// Its modem.
    pub device: Device,
    /// The sound card wired to the modem's audio ports, if the audio goes that way
    /// (a modem + sound card line; an emulated modem then streams no audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soundcard: Option<SoundCardSpec>,
}

/// The sound server a card is reached through.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SoundHost {
    /// PulseAudio (or PipeWire's PulseAudio server): paced, names sinks and sources.
    #[default]
    PulseAudio,
    /// ALSA directly (`hw:…`, `plughw:…` names).
    Alsa,
}

/// A line's sound card: where its audio is played (into the modem's line input)
/// and captured (from the modem's line output), 8 kHz mono.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SoundCardSpec {
    /// The sound server.
    #[serde(default)]
    pub host: SoundHost,
    /// Output device name, or `default`.
    #[serde(default = "default_device")]
    pub playback: String,
    /// Input device name, or `default`.
    #[serde(default = "default_device")]
    pub capture: String,
}

fn default_device() -> String {
    DEFAULT_DEVICE.to_owned()
}

/// The relay's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayConfig {
    /// Relay account name (also the relay's name in the directory).
    pub name: String,
    /// Relay account password.
    pub password: String,
    /// SIP domain of the tenant that holds the relay account.
    pub domain: String,
    /// Signaling server (UDP).
    pub signaling: SocketAddr,
    /// Our SIP address (UDP).
    pub listen: SocketAddr,
    /// Lines.
    pub lines: Vec<LineSpec>,
    /// What replaces a leading `+` in numbers (modems dial digits only).
    pub international_prefix: String,
    /// Seconds a line may ring before the call is given up (480).
    pub no_answer_s: u64,
    /// Milliseconds between our RTCP reports on RTP/AVP calls (RFC 3550: 5 s).
    pub rtcp_interval_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "demo-relay".into(),
            password: "demo-relay-secret".into(),
            domain: "demo.offhook.test".into(),
            signaling: SocketAddr::from(([127, 0, 0, 1], 5060)),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines: vec![LineSpec {
                name: "demo-line-1".into(),
                device: Device::Emulated,
                soundcard: None,
            }],
            international_prefix: "00".into(),
            no_answer_s: 60,
            rtcp_interval_ms: 5000,
        }
    }
}

/// A line's modem handle, taken by the call that uses it.
pub(crate) type LineSlot = Arc<Mutex<Option<LineHandle>>>;

pub(crate) struct Shared {
    pub config: RelayConfig,
    pub ctx: offhook_sip::legacy::Ctx,
    pub local: SocketAddr,
    pub rtp_ip: IpAddr,
    pub lines: HashMap<String, LineSlot>,
    /// In-dialog requests for live calls, by Call-ID.
    pub dialogs: Mutex<HashMap<String, mpsc::UnboundedSender<call::InDialog>>>,
    /// Media counters of all calls.
    pub stats: Arc<RelayStats>,
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    /// Our SIP address.
    pub local: SocketAddr,
    /// Media counters of all its calls.
    pub stats: Arc<RelayStats>,
    _endpoint: Endpoint,
    _endpoint_tasks: tokio::task::JoinHandle<()>,
    _modems: Vec<pty::EmulatedModem>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self._endpoint_tasks.abort();
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A socket or device failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// A modem did not initialise.
    #[error("line {0}: {1}")]
    Line(String, String),
}

async fn wait_ready(name: &str, line: &mut LineHandle) -> Result<(), RelayError> {
    let ready = tokio::time::timeout(Duration::from_secs(15), line.events.recv()).await;
    match ready {
        Ok(Some(LineEvent::Ready)) => Ok(()),
        Ok(Some(other)) => Err(RelayError::Line(name.into(), format!("{other:?}"))),
        _ => Err(RelayError::Line(name.into(), "the modem did not answer".into())),
    }
}

/// Opens the sound card of line `name` (cpal connects to the sound server
/// synchronously: off the async threads).
async fn open_card(name: &str, spec: &SoundCardSpec) -> Result<soundcard::SoundCard, RelayError> {
    let host = match spec.host {
        SoundHost::PulseAudio => cpal::HostId::PulseAudio,
        SoundHost::Alsa => cpal::HostId::Alsa,
    };
    let (playback, capture) = (spec.playback.clone(), spec.capture.clone());
    let opened = tokio::task::spawn_blocking(move || soundcard::open(host, &playback, &capture)).await;
    match opened {
        Ok(Ok(card)) => Ok(card),
        Ok(Err(err)) => Err(RelayError::Line(name.into(), format!("sound card: {err}"))),
        Err(err) => Err(RelayError::Line(name.into(), format!("sound card: {err}"))),
    }
}

/// What [`Relay::start`] keeps of each sound card: its line and counters.
pub(crate) type CardCountersOf = (String, Arc<CardCounters>);

impl Relay {
    /// Opens the modems, registers the lines and starts answering calls.
    pub async fn start(config: RelayConfig) -> Result<Self, RelayError> {
        let mut modems = Vec::new();
        let mut lines = HashMap::new();
        let mut cards = Vec::new();
        for spec in &config.lines {
            let path = match &spec.device {
                Device::Emulated => {
                    let faults = Faults {
                        no_serial_audio: spec.soundcard.is_some(),
                        ..Faults::default()
                    };
                    let modem = pty::spawn(faults, Duration::from_secs(5))
                        .map_err(|e| RelayError::Io("emulated modem".into(), e))?;
                    let path = modem.path.clone();
                    modems.push(modem);
                    path
                }
                Device::Serial(path) => path.clone(),
            };
            let driver = DriverConfig {
                no_answer: Duration::from_secs(config.no_answer_s),
                ..DriverConfig::default()
            };
            let opened = match &spec.soundcard {
                None => open_modem(&path, driver),
                Some(card) => {
                    let card = open_card(&spec.name, card).await?;
                    cards.push((spec.name.clone(), card.counters.clone()));
                    open_modem_with_card(&path, driver, card)
                }
            };
            let mut line = opened.map_err(|e| RelayError::Io(path.display().to_string(), e))?;
            wait_ready(&spec.name, &mut line).await?;
            lines.insert(spec.name.clone(), Arc::new(Mutex::new(Some(line))));
        }
        let mut endpoint = Endpoint::udp(config.listen, Timers::default())
            .await
            .map_err(|e| RelayError::Io(config.listen.to_string(), e))?;
        let (ctx, local) = (endpoint.ctx.clone(), endpoint.local);
        let mut upcalls = std::mem::replace(&mut endpoint.upcalls, mpsc::unbounded_channel().1);
        let stats = Arc::new(RelayStats::new(config.lines.iter().map(|l| l.name.as_str())).with_cards(cards));
        let shared = Arc::new(Shared {
            stats: stats.clone(),
            rtp_ip: local.ip(),
            config,
            ctx,
            local,
            lines,
            dialogs: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Some(upcall) = upcalls.recv().await {
                    dispatch(&shared, upcall);
                }
            }
        });
        // Lines are usable once registered: wait (bounded) for each first REGISTER.
        for spec in &shared.config.lines {
            let (first, registered) = tokio::sync::oneshot::channel();
            tokio::spawn(register::keep_registered(
                shared.clone(),
                spec.name.clone(),
                first,
            ));
            match tokio::time::timeout(Duration::from_secs(10), registered).await {
                Ok(Ok(true)) => {}
                _ => tracing::warn!(line = %spec.name, "not registered yet; retrying in the background"),
            }
        }
        Ok(Self {
            local,
            stats,
            _endpoint: endpoint,
            _endpoint_tasks: task,
            _modems: modems,
        })
    }
}

fn dispatch(shared: &Arc<Shared>, upcall: Upcall) {
    let (key, request, flow) = match upcall {
        Upcall::Request { key, request, flow } => (Some(key), request, Some(flow)),
        Upcall::Ack { request } => (None, request, None),
        Upcall::StrayResponse { .. } => return,
    };
    let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
    if in_dialog || key.is_none() {
        let sender = lock(&shared.dialogs).get(request.call_id()).cloned();
        match (sender, key) {
            (Some(sender), key) => {
                let _ = sender.send(call::InDialog { key, request });
            }
            (None, Some(key)) => shared.ctx.respond(
                &key,
                request.response(481, "Call/Transaction Does Not Exist", None),
            ),
            (None, None) => {}
        }
        return;
    }
    let (Some(key), Some(flow)) = (key, flow) else {
        return;
    };
    match request.method.as_str() {
        "INVITE" => {
            tokio::spawn(call::answer(shared.clone(), key, request, flow));
        }
        "OPTIONS" => shared
            .ctx
            .respond(&key, request.response(200, "OK", Some("relay"))),
        _ => shared
            .ctx
            .respond(&key, request.response(405, "Method Not Allowed", Some("relay"))),
    }
}

/// Locks a mutex; poisoning only means a task panicked mid-update of plain data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
