//! End-to-end test support: find (or build) the real `offhook` binary, run it on a
//! fresh test database, start long-running subcommands and wait for what they print.

mod audio;
pub mod browser;
pub mod netns;
pub mod sim;
pub mod sipp;
pub mod ua;
pub mod webhook_receiver;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use offhook_directory::testing::{Backend, TestDb};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub use audio::{read_wav_samples, write_tone_wav, write_tone_wav_at, write_ulaw_tone};

/// Environment that puts every listener of `offhook demo` on a free port.
pub const ANY_PORTS: &[(&str, &str)] = &[
    ("OFFHOOK_WEB__LISTEN", "127.0.0.1:0"),
    ("OFFHOOK_SIGNALING__UDP", "127.0.0.1:0"),
    ("OFFHOOK_SIGNALING__TCP", "127.0.0.1:0"),
    ("OFFHOOK_SIGNALING__WS", "127.0.0.1:0"),
];

/// How long any single step of an end-to-end test may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh scratch directory for one test (`name` tells whose it is).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offhook-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The address after `marker` in a line the binary printed (up to a space or `/`),
/// e.g. `after(line, "udp=")` on `signaling serving SIP udp=127.0.0.1:5060 tcp=…`.
///
/// # Panics
/// When the line has no such address: the binary's output changed.
pub fn after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split([' ', '/']).next())
        .unwrap_or_else(|| panic!("no address after '{marker}' in: {line}"))
}

/// A minimal HTTP/1.0 GET over a real socket: the whole response.
///
/// # Panics
/// When the web server cannot be reached.
pub async fn http_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to offhook web");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    response
}

/// Polls `/metrics` of the web server at `address` until the sample `series`
/// (`name{labels}` as printed) is at least `min`, as processes publish their
/// counters every few seconds; its value.
///
/// # Panics
/// When it does not get there within [`STEP_TIMEOUT`].
pub async fn wait_for_metric(address: &str, series: &str, min: i64) -> i64 {
    let poll = async {
        loop {
            let metrics = http_get(address, "/metrics").await;
            let value = metrics
                .lines()
                .find_map(|l| l.strip_prefix(series))
                .and_then(|v| v.trim().parse::<i64>().ok());
            if let Some(value) = value.filter(|v| *v >= min) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, poll)
        .await
        .unwrap_or_else(|_| panic!("{series} >= {min} in /metrics in time"))
}

/// Path of the `offhook` binary of this build, brought up to date by `cargo build`
/// once per test process (a test package does not depend on a binary, so cargo
/// would not rebuild it for us, and a stale one would test old code).
///
/// # Panics
/// When it cannot be built: nothing can be tested without it.
pub fn offhook_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/<test-exe> -> target/<profile>/offhook
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("test executable lives in target/<profile>/deps");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "-p", "offhook", "--bin", "offhook"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "cargo build -p offhook failed");
            profile_dir.join("offhook")
        })
        .clone()
}

/// The binary, configured for one test database.
#[derive(Debug)]
pub struct Offhook {
    /// The database the binary uses.
    pub db: TestDb,
}

impl Offhook {
    /// A fresh database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        Self {
            db: TestDb::new(backend).await,
        }
    }

    /// A command for the binary with this database and a quiet log.
    pub fn command(&self, args: &[&str]) -> Command {
        self.configured(Command::new(offhook_bin()), args)
    }

    /// `command` (the binary, or a wrapper that runs it) with `args`, this
    /// database and a quiet log (`OFFHOOK_TEST_LOG`, when set, is its `RUST_LOG`:
    /// to see what a failing test's processes did).
    fn configured(&self, mut command: Command, args: &[&str]) -> Command {
        command
            .args(args)
            .env("OFFHOOK_DATABASE_URL", &self.db.url)
            .env(
                "RUST_LOG",
                std::env::var("OFFHOOK_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("OFFHOOK_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(STEP_TIMEOUT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("offhook {args:?} did not finish in time"))
            .expect("run offhook")
    }

    /// Starts a long-running command with its standard output piped.
    pub fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> Running {
        Self::started(self.command(args), envs)
    }

    /// `spawn`, with standard error (the log, at `RUST_LOG`) written to `log`.
    pub fn spawn_logged(&self, args: &[&str], envs: &[(&str, &str)], log: &std::path::Path) -> Running {
        let file = std::fs::File::create(log).expect("create the log file");
        let mut command = self.command(args);
        command.stderr(file);
        Self::started(command, envs)
    }

    /// Starts a long-running command inside `network`.
    pub fn spawn_in(&self, network: &impl netns::Namespace, args: &[&str], envs: &[(&str, &str)]) -> Running {
        Self::started(self.configured(network.command(&offhook_bin()), args), envs)
    }

    fn started(mut command: Command, envs: &[(&str, &str)]) -> Running {
        command.envs(envs.iter().copied()).stdout(Stdio::piped());
        let mut child = command.spawn().expect("spawn offhook");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Running { child, stdout }
    }
}

/// `offhook demo` started and serving: signaling's UDP address and the web address.
#[derive(Debug)]
pub struct Demo {
    /// The process.
    pub running: Running,
    /// Signaling over UDP.
    pub sip_udp: std::net::SocketAddr,
    /// The web server (`host:port`).
    pub web: String,
    /// The relay's health endpoints (`host:port`), when `media.health_listen` is set.
    pub media_health: Option<String>,
}

impl Offhook {
    /// Creates a softphone account of the demo tenant with `offhook directory
    /// account create`, the way an administrator would.
    ///
    /// # Panics
    /// When the command fails.
    pub async fn create_demo_account(&self, username: &str, password: &str, number: &str) {
        let created = self
            .run(&[
                "directory",
                "account",
                "create",
                "--tenant",
                "demo",
                username,
                "--password",
                password,
                "--number",
                number,
            ])
            .await;
        assert!(created.status.success(), "account create: {created:?}");
    }

    /// Starts `offhook demo` on free ports with `extra` environment and waits until
    /// signaling, the media relay (its lines registered) and the web server serve.
    pub async fn demo(&self, extra: &[(&str, &str)]) -> Demo {
        Demo::serving(self.spawn(&["demo"], &[ANY_PORTS, extra].concat())).await
    }

    /// `demo`, with its log (at `RUST_LOG`, `warn` unless `extra` says) in `log`.
    pub async fn demo_logged(&self, extra: &[(&str, &str)], log: &std::path::Path) -> Demo {
        Demo::serving(self.spawn_logged(&["demo"], &[ANY_PORTS, extra].concat(), log)).await
    }
}

impl Demo {
    /// Waits until the started demo serves.
    async fn serving(mut running: Running) -> Self {
        let sip_line = running.wait_for_line("signaling serving SIP").await;
        let sip_udp = after(&sip_line, "udp=").parse().expect("signaling's UDP address");
        running.wait_for_line("media relay at").await;
        // The relay's health endpoints, when configured, come before the web.
        let mut media_health = None;
        let web = loop {
            let line = running
                .wait_for_any(&["media health serving http://", "web serving http://"])
                .await;
            match line.contains("media health") {
                true => media_health = Some(after(&line, "http://").to_owned()),
                false => break after(&line, "http://").to_owned(),
            }
        };
        Self {
            running,
            sip_udp,
            web,
            media_health,
        }
    }
}

/// A running `offhook` process.
#[derive(Debug)]
pub struct Running {
    /// The process.
    pub child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Reads standard output until a line contains `needle`; returns that line.
    pub async fn wait_for_line(&mut self, needle: &str) -> String {
        self.wait_for_any(&[needle]).await
    }

    /// Reads standard output until a line contains one of `needles`; returns
    /// that line.
    pub async fn wait_for_any(&mut self, needles: &[&str]) -> String {
        let read = async {
            while let Some(line) = self.stdout.next_line().await.expect("read offhook stdout") {
                if needles.iter().any(|n| line.contains(n)) {
                    return line;
                }
            }
            panic!("offhook exited before printing any of {needles:?}");
        };
        tokio::time::timeout(STEP_TIMEOUT, read)
            .await
            .unwrap_or_else(|_| panic!("offhook did not print any of {needles:?} in time"))
    }

    /// Waits for the web server's "web serving http://ADDRESS/" line; the address
    /// (`127.0.0.1:PORT`).
    pub async fn wait_for_web_address(&mut self) -> String {
        let line = self.wait_for_line("web serving http://").await;
        after(&line, "http://").to_owned()
    }

    /// Sends the process SIGTERM (it drains, then exits).
    ///
    /// # Panics
    /// When it is gone already.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("process still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Asks the process to stop (SIGTERM) and waits for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        tokio::time::timeout(STEP_TIMEOUT, self.child.wait())
            .await
            .expect("offhook stops after SIGTERM")
            .expect("wait for offhook")
    }
}

impl Running {
    /// Starts `command` (a real `offhook` process, possibly under a wrapper such
    /// as `prlimit`) with its standard output piped.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn from_command(mut command: Command) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn the command");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self { child, stdout }
    }

    /// The process's resident memory, in KiB (`VmRSS` of `/proc/<pid>/status`).
    ///
    /// # Panics
    /// When the process is gone.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("process still running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

/// Whether an OPTIONS over a fresh TCP connection to `tcp` gets its 200 (within 5 s).
pub async fn options_over_tcp(tcp: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(tcp)).await
    else {
        return false;
    };
    let Ok(local) = stream.local_addr() else {
        return false;
    };
    let options = format!(
        "OPTIONS sip:probe@{tcp} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKprobe{}\r\n\
         From: <sip:probe@invalid>;tag=p\r\nTo: <sip:probe@{tcp}>\r\nCall-ID: probe-{}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    if stream.write_all(options.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    read.is_ok_and(|r| r.is_ok_and(|n| buf[..n].starts_with(b"SIP/2.0 200")))
}
