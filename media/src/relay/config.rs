//! The relay's settings: its account with signaling, its SIP address, its lines
//! (each a modem on a serial device or the emulator, optionally with a sound
//! card for the audio) and the call timings.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dsp::cadence::Country;
use crate::emulator::line::LineModel;
use crate::emulator::network::Exchange;
use crate::emulator::ports::PortDevices;
use crate::modem::DriverConfig;
use crate::soundcard::DEFAULT_DEVICE;

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
    /// Whose call-progress tones the line hears: its answer presumption waits out
    /// that country's ringback silence (and an emulated line plays them); `None`:
    /// the short demo cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    /// Cancel the line's hybrid echo in what the caller hears; by default on for
    /// a modem, and on an emulated line when it has a hybrid echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_canceller: Option<bool>,
    /// An emulated line's modem clock error and hybrid echo (`clock_ppm`,
    /// `hybrid = { delay_ms, erl_db }`); none by default.
    #[serde(default, skip_serializing_if = "LineModel::is_ideal")]
    pub emulated: LineModel,
    /// An emulated line's modem audio ports on PulseAudio (`mic_in` source,
    /// `speaker_out` sink), routed to the line by `+VLS=7`; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem_ports: Option<PortDevices>,
}

impl LineSpec {
    /// Its modem driver's settings: answer presumption after its country's
    /// ringback silence, no answer after `no_answer`, off hook with its card's
    /// `+VLS` value on a sound card line.
    pub fn driver_config(&self, no_answer: Duration) -> DriverConfig {
        DriverConfig {
            no_answer,
            cancel_echo: self.echo_canceller.unwrap_or(match self.device {
                Device::Serial(_) => true,
                Device::Emulated => self.emulated.hybrid.is_some(),
            }),
            vls: self.soundcard.as_ref().map_or(1, |card| card.vls),
            ..self
                .country
                .map_or_else(DriverConfig::default, DriverConfig::for_country)
        }
    }

    /// How the exchange sounds when the line is emulated.
    pub fn exchange(&self) -> Exchange {
        Exchange {
            country: self.country,
            line: self.emulated,
            ..Exchange::default()
        }
    }
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
    /// The modem's `+VLS` value that routes line audio to its speaker-out and
    /// microphone-in ports, where this card is wired (1 by default; modems differ,
    /// see the modem's `AT+VLS=?` and manual).
    #[serde(default = "line_vls")]
    pub vls: u8,
}

fn line_vls() -> u8 {
    1
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
    /// Seconds an answered RTP/AVP call may go without a packet from the
    /// caller before it ends `media-timeout` (20).
    pub rtp_timeout_s: u64,
    /// Seconds a WebRTC call's ICE may take to connect after the answer before
    /// it ends `no-audio-path` (10).
    pub ice_connect_timeout_s: u64,
    /// The address(es) callers reach our media sockets at, when that is not the
    /// address they are bound to (a relay behind 1:1 NAT, a cloud host's public
    /// IP): each becomes an ICE host candidate of WebRTC calls (same port as the
    /// socket), the first one the `c=` line of RTP/AVP calls. Empty: the bound
    /// address.
    pub advertise: Vec<IpAddr>,
    /// Where `offhook media` serves its own `/healthz` and `/readyz` (ready
    /// while at least one of its lines works); `None`: not served.
    pub health_listen: Option<SocketAddr>,
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
                country: None,
                echo_canceller: None,
                emulated: LineModel::default(),
                modem_ports: None,
            }],
            international_prefix: "00".into(),
            no_answer_s: 60,
            rtcp_interval_ms: 5000,
            rtp_timeout_s: 20,
            ice_connect_timeout_s: 10,
            advertise: Vec::new(),
            health_listen: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::LineSpec;

    fn line(text: &str) -> LineSpec {
        toml::from_str(text).expect("a line spec")
    }

    #[test]
    fn a_sound_card_line_goes_off_hook_with_its_card_s_vls_value() {
        let plain = line(
            r#"name = "l1"
device = "emulated""#,
        );
        assert_eq!(plain.driver_config(Duration::from_secs(60)).vls, 1);
        let card = line(
            r#"name = "l2"
device = "emulated"
soundcard = { playback = "out", capture = "in" }"#,
        );
        assert_eq!(card.driver_config(Duration::from_secs(60)).vls, 1, "the default");
        let ported = line(
            r#"name = "l3"
device = { serial = "/dev/ttyACM0" }
soundcard = { host = "alsa", playback = "hw:CARD=Device,DEV=0", capture = "hw:CARD=Device,DEV=0", vls = 7 }"#,
        );
        let config = ported.driver_config(Duration::from_secs(60));
        assert_eq!(config.vls, 7);
        assert_eq!(config.no_answer, Duration::from_secs(60));
    }
}
