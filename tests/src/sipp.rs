//! sipp (Debian `sip-tester`) as a SIP softphone against the real binary: the
//! scenarios in `tests/sipp/`, one call each, with the account's credentials and
//! the call's parameters as injection fields, a message trace to read outcomes
//! from, and bounded waits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::STEP_TIMEOUT;

/// A scenario file of `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp").join(name)
}

/// A free UDP port on 127.0.0.1 (free when asked: sipp binds it right after).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP socket on 127.0.0.1")
        .port()
}

/// A softphone account as sipp uses it.
#[derive(Debug, Clone)]
pub struct Softphone {
    /// The signaling server (UDP).
    pub proxy: SocketAddr,
    /// Account user name.
    pub user: String,
    /// Account password.
    pub password: String,
    /// The tenant's SIP domain.
    pub domain: String,
    /// Where scenario runs keep their files (injection CSV, traces, audio).
    pub dir: PathBuf,
}

/// What a sipp run did.
#[derive(Debug)]
pub struct SippRun {
    /// Whether sipp counted its call successful.
    pub success: bool,
    /// The message trace (every SIP message sent and received).
    pub trace: String,
}

impl SippRun {
    /// The status code of the last final response sipp received.
    pub fn last_final_status(&self) -> Option<u16> {
        self.trace
            .lines()
            .filter_map(|line| line.strip_prefix("SIP/2.0 "))
            .filter_map(|rest| rest.get(..3)?.parse::<u16>().ok())
            .rfind(|status| *status >= 200)
    }
}

impl Softphone {
    /// Runs `scenario` once with the account's fields, then `extra` fields
    /// (field 3 onwards); the working directory is [`Softphone::dir`].
    ///
    /// # Panics
    /// When sipp cannot be started or does not finish in time.
    pub async fn run(&self, scenario_name: &str, run_name: &str, extra: &[&str]) -> SippRun {
        let auth = format!(
            "[authentication username={} password={}]",
            self.user, self.password
        );
        let mut fields = vec![self.user.as_str(), self.domain.as_str(), auth.as_str()];
        fields.extend_from_slice(extra);
        let csv = self.dir.join(format!("{run_name}.csv"));
        std::fs::write(&csv, format!("SEQUENTIAL\n{};\n", fields.join(";")))
            .expect("write the injection file");
        let trace = self.dir.join(format!("{run_name}.messages.log"));
        let _ = std::fs::remove_file(&trace);
        let media_port = free_udp_port().to_string();
        let mut command = Command::new("sipp");
        command
            .arg(self.proxy.to_string())
            .arg("-sf")
            .arg(scenario(scenario_name))
            .arg("-inf")
            .arg(&csv)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", &media_port])
            .args(["-m", "1", "-nostdin", "-timeout", "60", "-timeout_error"])
            .args(["-trace_msg", "-message_file"])
            .arg(&trace)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("sipp is installed (tests/setup.sh)");
        let status = tokio::time::timeout(STEP_TIMEOUT * 3, child.wait())
            .await
            .unwrap_or_else(|_| panic!("sipp {run_name} did not finish in time"))
            .expect("wait for sipp");
        SippRun {
            success: status.success(),
            trace: std::fs::read_to_string(&trace).unwrap_or_default(),
        }
    }
}
