//! What the signaling tests against real peers share: a fresh directory with a
//! tenant, the user `alice`, relays with one line each and an icon; the server
//! on 127.0.0.1; and sipp (Debian `sip-tester`) as registering relays, user
//! agent servers and callers, with the scenarios in `tests/sipp`.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use offhook_directory::testing::{Backend, TestDb};
use offhook_directory::*;
use offhook_signaling::config::SignalingConfig;
use offhook_signaling::server::Server;
use tokio::process::{Child, Command};

/// The tenant a test runs in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    /// Tenant name.
    pub tenant: &'static str,
    /// Its SIP domain.
    pub domain: &'static str,
    /// Public id of its icon (dialing 5550100).
    pub icon: &'static str,
}

/// A server on a fresh directory.
pub(crate) struct Setup {
    pub db: TestDb,
    pub server: Server,
    pub site: Site,
}

/// UDP on an ephemeral port (`ws`: WebSocket too), relay health checks off
/// (sipp counts an OPTIONS as one of its `-m` calls).
pub(crate) fn test_config(ws: bool) -> SignalingConfig {
    let any = Some("127.0.0.1:0".parse().unwrap());
    SignalingConfig {
        udp: any,
        tcp: None,
        ws: if ws { any } else { None },
        relay_check_interval_ms: 0,
        ..SignalingConfig::default()
    }
}

impl Setup {
    /// `site` with `alice` (password `alice-secret`), each `(relay, line)` of
    /// `relays` as a relay account (password `{relay}-secret`) owning a shared
    /// line, the icon, and the server started with `config`.
    pub(crate) async fn new(
        backend: Backend,
        site: Site,
        relays: &[(&str, &str)],
        config: SignalingConfig,
    ) -> Self {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        d.create_tenant(NewTenant {
            name: site.tenant.into(),
            sip_domain: site.domain.into(),
        })
        .await
        .unwrap();
        let accounts = std::iter::once(("alice", AccountKind::User))
            .chain(relays.iter().map(|(relay, _)| (*relay, AccountKind::Relay)));
        for (user, kind) in accounts {
            d.create_account(NewAccount {
                tenant: site.tenant.into(),
                username: user.into(),
                password: format!("{user}-secret"),
                display_name: String::new(),
                number: None,
                kind,
            })
            .await
            .unwrap();
        }
        d.create_icon(NewIcon {
            public_id: Some(site.icon.into()),
            ..NewIcon::new(site.tenant, "5550100", "Sales")
        })
        .await
        .unwrap();
        for (relay, line) in relays {
            d.create_line(NewLine {
                name: (*line).into(),
                relay: (*relay).into(),
                tenant: None,
                device_path: "emulated".into(),
                kind: LineKind::Emulated,
            })
            .await
            .unwrap();
        }
        let server = Server::start(config, d.clone()).await.unwrap();
        Self { db, server, site }
    }

    /// The server's UDP address.
    pub(crate) fn proxy(&self) -> String {
        self.server.bound.udp.unwrap().to_string()
    }

    /// Every CDR.
    pub(crate) async fn cdrs(&self) -> Vec<Cdr> {
        self.db
            .directory
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap()
    }

    /// Registers `contact_user@127.0.0.1:contact_port` for `user` (password
    /// `password`) with a digest challenge; whether sipp got a 200.
    pub(crate) async fn register(
        &self,
        user: &str,
        password: &str,
        contact_user: &str,
        contact_port: u16,
    ) -> bool {
        let (port, contact_port) = (free_port().to_string(), contact_port.to_string());
        let proxy = self.proxy();
        let keys = [
            ("domain", self.site.domain),
            ("user", user),
            ("contact_user", contact_user),
            ("contact_port", &contact_port),
            ("expires", "600"),
        ];
        let mut args = vec![
            "-sf".to_owned(),
            scenario("register.xml"),
            proxy,
            "-p".into(),
            port,
        ];
        args.extend(["-m", "1", "-au", user, "-ap", password].map(str::to_owned));
        for (key, value) in keys {
            args.extend(["-key".to_owned(), key.to_owned(), value.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        finish(sipp(&args).spawn().unwrap(), "register").await
    }

    /// A caller (`alice`) placing `calls` calls to `callee` with scenario `file`.
    pub(crate) fn uac(&self, file: &str, callee: &str, calls: u32, extra: &[&str]) -> Child {
        let (port, calls) = (free_port().to_string(), calls.to_string());
        let proxy = self.proxy();
        let base = [
            "-sf",
            &scenario(file),
            &proxy,
            "-p",
            &port,
            "-m",
            &calls,
            "-key",
            "domain",
            self.site.domain,
            "-key",
            "user",
            "alice",
            "-key",
            "callee",
            callee,
            "-d",
            "200",
            "-au",
            "alice",
            "-ap",
            "alice-secret",
        ];
        sipp(&[&base[..], extra].concat()).spawn().unwrap()
    }
}

/// The path of a sipp scenario in `tests/sipp`.
pub(crate) fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

/// A UDP port free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// sipp with these arguments, a 20 s limit, silent, killed when dropped.
pub(crate) fn sipp(args: &[&str]) -> Command {
    let mut command = Command::new("sipp");
    command
        .args(args)
        .args(["-timeout", "20", "-timeout_error", "-nostdin"]);
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Waits (30 s at most) for sipp to end; whether it succeeded.
pub(crate) async fn finish(mut child: Child, what: &str) -> bool {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| panic!("sipp {what} did not finish"))
        .unwrap();
    status.success()
}

/// A relay line: a sipp UAS with scenario `file` on `port` for `calls` calls.
pub(crate) fn uas(file: &str, port: u16, calls: u32, extra: &[&str]) -> Child {
    let (port, calls) = (port.to_string(), calls.to_string());
    sipp(&[&["-sf", &scenario(file), "-p", &port, "-m", &calls], extra].concat())
        .spawn()
        .unwrap()
}
