//! Test support (feature `testing`): a PulseAudio daemon of the test's own, in
//! user mode on a private socket, with null sinks at 8 kHz mono. What is played
//! into a sink comes back from its monitor source, in real time: [`SINK`] loops
//! back (the sound card's own tests); [`CARD_OUT`] and [`MODEM_SPK`] are the two
//! wires between a sound card and an emulated modem's audio ports (the card
//! plays into `CARD_OUT`, the modem's microphone records its monitor; the
//! modem's speaker plays into `MODEM_SPK`, the card captures its monitor). Used
//! by the sound card tests of this crate and the end-to-end tests; the daemon
//! stops when the value is dropped, and starts again in the same directory at
//! the same address (a sound server that died and came back).
//!
//! ALSA reaches the same sinks: the server's directory holds an ALSA
//! configuration (`alsa/asoundrc`, found through `XDG_CONFIG_HOME` in
//! [`PulseServer::client_env`]) naming [`ALSA_PLAYBACK`] and [`ALSA_CAPTURE`],
//! PCMs of alsa-plugins' `pulse` type on [`SINK`] and [`MONITOR`]: cpal's ALSA
//! host, the one a `hw:` card uses, runs on them where this machine has no
//! sound hardware.
//!
//! It is self-contained: it makes its own authentication cookie in its directory
//! and tells clients where it is ([`PulseServer::client_env`]), so nothing depends
//! on a `~/.config/pulse/cookie` an earlier PulseAudio run left behind (the
//! native protocol refuses an AUTH without a 256-byte cookie even in anonymous
//! mode, and a client without one is kicked with a protocol error).
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The null sink's name; its monitor source is [`MONITOR`].
pub const SINK: &str = "offhook_test_line";
/// The sink's monitor source: what was played into [`SINK`].
pub const MONITOR: &str = "offhook_test_line.monitor";

/// The sink a sound card plays into, toward the modem's microphone port.
pub const CARD_OUT: &str = "card_out";
/// What the card played: the modem's microphone port records it.
pub const CARD_OUT_MONITOR: &str = "card_out.monitor";
/// The sink the modem's speaker port plays into, toward the card's capture.
pub const MODEM_SPK: &str = "modem_spk";
/// What the modem's speaker played: the card captures it.
pub const MODEM_SPK_MONITOR: &str = "modem_spk.monitor";

/// An ALSA PCM playing into [`SINK`] (through the server).
pub const ALSA_PLAYBACK: &str = "offhook_alsa_line";
/// An ALSA PCM capturing [`MONITOR`] (through the server).
pub const ALSA_CAPTURE: &str = "offhook_alsa_line_monitor";

/// A running private PulseAudio server.
#[derive(Debug)]
pub struct PulseServer {
    child: Child,
    socket: PathBuf,
    cookie: PathBuf,
    dir: PathBuf,
}

/// Length of a PulseAudio authentication cookie (`PA_NATIVE_COOKIE_LENGTH`).
const COOKIE_LEN: usize = 256;

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PulseServer {
    /// Starts `pulseaudio` with its runtime files, socket and log in `dir`, and
    /// waits (at most 20 s) for its socket.
    ///
    /// # Errors
    /// Why it could not be started (not installed, exited early, no socket in
    /// time), with the end of its log: a test needing it must fail with this,
    /// not pass without a sound server.
    pub fn start(dir: &Path) -> Result<Self, String> {
        let socket = dir.join("native");
        // A server that ran here before left its socket: wait for a fresh one.
        let _ = std::fs::remove_file(&socket);
        let cookie = dir.join("cookie");
        let mut secret = [0u8; COOKIE_LEN];
        rand::fill(&mut secret[..]);
        std::fs::write(&cookie, secret).map_err(|e| format!("{}: {e}", cookie.display()))?;
        let alsa = dir.join("alsa");
        std::fs::create_dir_all(&alsa).map_err(|e| format!("{}: {e}", alsa.display()))?;
        let pcm = |name: &str, device: &str, role: &str| {
            format!(
                "pcm.{name} {{\n  type pulse\n  device \"{device}\"\n  hint {{ show on description \"{role}\" }}\n}}\n"
            )
        };
        let asoundrc = pcm(ALSA_PLAYBACK, SINK, "plays into the test line")
            + &pcm(ALSA_CAPTURE, MONITOR, "captures the test line");
        std::fs::write(alsa.join("asoundrc"), asoundrc).map_err(|e| format!("asoundrc: {e}"))?;
        let log_path = dir.join("pulseaudio.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--log-target=stderr",
            ])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix socket={} auth-cookie={} auth-anonymous=1",
                socket.display(),
                cookie.display()
            ))
            .args([SINK, CARD_OUT, MODEM_SPK].iter().flat_map(|sink| {
                [
                    "-L".to_owned(),
                    format!("module-null-sink sink_name={sink} rate=8000 channels=1 format=s16le"),
                ]
            }))
            .env("XDG_RUNTIME_DIR", dir)
            .env("HOME", dir)
            .env("PULSE_COOKIE", &cookie)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run pulseaudio ({e}); tests/setup.sh installs it"))?;
        let mut server = Self {
            child,
            socket,
            cookie,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.socket.exists() {
            let tail = || {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(10)..].join("\n")
            };
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "pulseaudio exited ({status}) before serving; its log:\n{}",
                    tail()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "pulseaudio did not open {} in 20 s; its log:\n{}",
                    server.socket.display(),
                    tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// What a client process needs in its environment to reach this server:
    /// `PULSE_SERVER` (`unix:…`), `PULSE_COOKIE` (the server's own cookie), and
    /// `XDG_CONFIG_HOME` (where ALSA finds the server's PCMs).
    pub fn client_env(&self) -> [(&'static str, String); 3] {
        [
            ("PULSE_SERVER", format!("unix:{}", self.socket.display())),
            ("PULSE_COOKIE", self.cookie.display().to_string()),
            ("XDG_CONFIG_HOME", self.dir.display().to_string()),
        ]
    }

    /// Makes this server the one the sound card (PulseAudio or ALSA) reaches
    /// in this process.
    ///
    /// # Safety
    /// Sets [`Self::client_env`] in the environment: no other thread
    /// may read or write the environment meanwhile (call it before starting
    /// threads that do).
    pub unsafe fn use_in_this_process(&self) {
        for (name, value) in self.client_env() {
            // SAFETY: the caller promises no concurrent access to the environment.
            unsafe { std::env::set_var(name, value) };
        }
    }
}
