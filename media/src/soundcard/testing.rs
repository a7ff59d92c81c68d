//! Test support (feature `testing`): a PulseAudio daemon of the test's own, in
//! user mode on a private socket, with one null sink at 8 kHz mono. What is
//! played into the sink comes back from its monitor source, in real time: the
//! loopback stands in for the phone line. Used by the sound card tests of this
//! crate and the end-to-end tests; the daemon stops when the value is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The null sink's name; its monitor source is [`MONITOR`].
pub const SINK: &str = "offhook_test_line";
/// The sink's monitor source: what was played into [`SINK`].
pub const MONITOR: &str = "offhook_test_line.monitor";

/// A running private PulseAudio server.
#[derive(Debug)]
pub struct PulseServer {
    child: Child,
    socket: PathBuf,
}

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
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .arg("-L")
            .arg(format!(
                "module-null-sink sink_name={SINK} rate=8000 channels=1 format=s16le"
            ))
            .env("XDG_RUNTIME_DIR", dir)
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run pulseaudio ({e}); tests/setup.sh installs it"))?;
        let mut server = Self { child, socket };
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

    /// The server address for `PULSE_SERVER` (`unix:…`).
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Makes this server the one cpal's PulseAudio host connects to in this process.
    ///
    /// # Safety
    /// Sets `PULSE_SERVER` in the environment: no other thread may read or write
    /// the environment meanwhile (call it before starting threads that do).
    pub unsafe fn use_in_this_process(&self) {
        // SAFETY: the caller promises no concurrent access to the environment.
        unsafe { std::env::set_var("PULSE_SERVER", self.address()) };
    }
}
