//! The real signaling server on 127.0.0.1 driven by sipp (Debian `sip-tester`):
//! REGISTER with a digest challenge, a call from a sipp UAC through the proxy to
//! a sipp UAS registered as a relay line, CANCEL before answer, a busy line, and
//! calls under packet loss. Each test on a fresh database; CDRs checked.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use offhook_directory::testing::{Backend, TestDb, backends};
use offhook_directory::*;
use offhook_signaling::config::SignalingConfig;
use offhook_signaling::server::Server;
use tokio::process::{Child, Command};

const DOMAIN: &str = "t.test";

fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    db: TestDb,
    server: Server,
}

impl Setup {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let d = &db.directory;
        d.create_tenant(NewTenant {
            name: "t".into(),
            sip_domain: DOMAIN.into(),
        })
        .await
        .unwrap();
        for (user, kind) in [("alice", AccountKind::User), ("relay-1", AccountKind::Relay)] {
            d.create_account(NewAccount {
                tenant: "t".into(),
                username: user.into(),
                password: format!("{user}-secret"),
                display_name: String::new(),
                number: None,
                kind,
            })
            .await
            .unwrap();
        }
        let icon = NewIcon {
            public_id: Some("sales".into()),
            ..NewIcon::new("t", "5550100", "Sales")
        };
        d.create_icon(icon).await.unwrap();
        d.create_line(NewLine {
            name: "line-1".into(),
            relay: "relay-1".into(),
            tenant: None,
            device_path: "emulated".into(),
            kind: LineKind::Emulated,
        })
        .await
        .unwrap();
        let any = Some("127.0.0.1:0".parse().unwrap());
        let config = SignalingConfig {
            udp: any,
            tcp: None,
            ws: None,
            ..SignalingConfig::default()
        };
        let server = Server::start(config, d.clone()).await.unwrap();
        Self { db, server }
    }

    fn proxy(&self) -> String {
        self.server.bound.udp.unwrap().to_string()
    }

    async fn cdrs(&self) -> Vec<Cdr> {
        self.db
            .directory
            .list_cdrs(&Scope::Operator, &CdrFilter::default())
            .await
            .unwrap()
    }
}

fn sipp(args: &[&str]) -> Command {
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

async fn finish(mut child: Child, what: &str) -> bool {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| panic!("sipp {what} did not finish"))
        .unwrap();
    status.success()
}

/// Registers `contact_user@127.0.0.1:contact_port` for `user`.
async fn register(proxy: &str, user: &str, password: &str, contact_user: &str, contact_port: u16) -> bool {
    let port = free_port().to_string();
    let contact_port = contact_port.to_string();
    let child = sipp(&[
        "-sf",
        &scenario("register.xml"),
        proxy,
        "-p",
        &port,
        "-m",
        "1",
        "-key",
        "domain",
        DOMAIN,
        "-key",
        "user",
        user,
        "-key",
        "contact_user",
        contact_user,
        "-key",
        "contact_port",
        &contact_port,
        "-key",
        "expires",
        "600",
        "-au",
        user,
        "-ap",
        password,
    ])
    .spawn()
    .unwrap();
    finish(child, "register").await
}

fn uas(file: &str, port: u16, calls: u32, extra: &[&str]) -> Child {
    let (port, calls) = (port.to_string(), calls.to_string());
    sipp(&[&["-sf", &scenario(file), "-p", &port, "-m", &calls], extra].concat())
        .spawn()
        .unwrap()
}

fn uac(file: &str, proxy: &str, callee: &str, calls: u32, extra: &[&str]) -> Child {
    let (port, calls) = (free_port().to_string(), calls.to_string());
    let base = [
        "-sf",
        &scenario(file),
        proxy,
        "-p",
        &port,
        "-m",
        &calls,
        "-key",
        "domain",
        DOMAIN,
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

#[tokio::test]
async fn register_with_digest_challenge() {
    for backend in backends() {
        let s = Setup::new(backend).await;
        assert!(
            register(&s.proxy(), "alice", "alice-secret", "alice", 5999).await,
            "{backend:?}"
        );
        let tenant = s.db.directory.tenant("t").await.unwrap();
        let bindings =
            s.db.directory
                .registrations(&tenant.id, "alice", 0)
                .await
                .unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].contact, "sip:alice@127.0.0.1:5999");
        assert!(
            !register(&s.proxy(), "alice", "wrong-password", "alice", 5999).await,
            "wrong password refused"
        );
        s.db.finish().await;
    }
}

#[tokio::test]
async fn call_through_the_proxy_to_a_relay_line() {
    for backend in backends() {
        let s = Setup::new(backend).await;
        let uas_port = free_port();
        let relay = uas("uas.xml", uas_port, 1, &[]);
        assert!(register(&s.proxy(), "relay-1", "relay-1-secret", "line-1", uas_port).await);
        let caller = uac("uac.xml", &s.proxy(), "sales", 1, &[]);
        assert!(finish(caller, "uac").await, "{backend:?}: call completes");
        assert!(finish(relay, "uas").await);
        let cdrs = s.cdrs().await;
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].number, "5550100", "the icon's number, from the directory");
        assert!(cdrs[0].answered_at.is_some());
        assert_eq!(cdrs[0].answer_source.as_deref(), Some("sip"));
        assert_eq!(cdrs[0].hangup_cause.as_deref(), Some("normal"));
        let line = s.db.directory.line("line-1").await.unwrap();
        assert_eq!(line.state, "idle", "released after the call");
        s.db.finish().await;
    }
}

#[tokio::test]
async fn cancel_before_answer_and_busy_line() {
    let s = Setup::new(Backend::Sqlite).await;
    let uas_port = free_port();
    let relay = uas("uas_ringing.xml", uas_port, 1, &[]);
    assert!(register(&s.proxy(), "relay-1", "relay-1-secret", "line-1", uas_port).await);
    assert!(finish(uac("uac_cancel.xml", &s.proxy(), "sales", 1, &[]), "uac cancel").await);
    assert!(finish(relay, "uas ringing").await);
    let busy_port = free_port();
    let relay = uas("uas_busy.xml", busy_port, 1, &[]);
    assert!(register(&s.proxy(), "relay-1", "relay-1-secret", "line-1", busy_port).await);
    assert!(finish(uac("uac_busy.xml", &s.proxy(), "sales", 1, &[]), "uac busy").await);
    assert!(finish(relay, "uas busy").await);
    let mut causes: Vec<_> = s
        .cdrs()
        .await
        .into_iter()
        .filter_map(|c| c.hangup_cause)
        .collect();
    causes.sort();
    assert_eq!(causes, ["busy", "cancelled"]);
    s.db.finish().await;
}

/// A UDP hop between the proxy and the relay at `to` that loses the first INVITE
/// and the first ACK the proxy sends; everything else passes both ways.
async fn lossy_hop(to: u16) -> (u16, tokio::task::JoinHandle<u32>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut lost_invite, mut lost_ack, mut passed) = (false, false, 0);
        let relay: std::net::SocketAddr = ("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), to).into();
        let mut proxy = None;
        let mut buf = vec![0u8; 65_535];
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await
        {
            let bytes = &buf[..len];
            if !lost_invite && bytes.starts_with(b"INVITE ") {
                lost_invite = true;
                continue;
            }
            if !lost_ack && bytes.starts_with(b"ACK ") {
                lost_ack = true;
                continue;
            }
            passed += 1;
            if from == relay {
                if let Some(proxy) = proxy {
                    let _ = socket.send_to(bytes, proxy).await;
                }
            } else {
                proxy = Some(from);
                let _ = socket.send_to(bytes, relay).await;
            }
        }
        passed
    });
    (port, task)
}

#[tokio::test]
async fn retransmissions_recover_lost_invite_and_ack() {
    // The proxy's Timer A resends the lost INVITE; the relay's 200 retransmissions
    // (after the lost ACK) pass through the proxy's Accepted state to the caller,
    // whose new ACK gets through.
    let s = Setup::new(Backend::Sqlite).await;
    let uas_port = free_port();
    let relay = uas("uas.xml", uas_port, 1, &[]);
    let (hop, hop_task) = lossy_hop(uas_port).await;
    assert!(register(&s.proxy(), "relay-1", "relay-1-secret", "line-1", hop).await);
    // Hold 2 s: the relay's 200 retransmission (T1 = 500 ms) comes before the BYE.
    let caller = uac("uac.xml", &s.proxy(), "sales", 1, &["-d", "2000"]);
    assert!(
        finish(caller, "uac").await,
        "the call completes despite the losses"
    );
    assert!(finish(relay, "uas").await);
    let cdrs = s.cdrs().await;
    assert!(cdrs[0].answered_at.is_some());
    assert_eq!(cdrs[0].hangup_cause.as_deref(), Some("normal"));
    hop_task.abort();
    s.db.finish().await;
}
