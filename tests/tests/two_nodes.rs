//! Two signaling nodes, one media relay and the web server on one PostgreSQL, as
//! separate processes, with the shared settings of `deploy/offhook.env` (the
//! file `docker-compose.yml` gives its services; here only the addresses become
//! loopback ports): a call through each node; the first node killed (SIGKILL)
//! mid-call; the survivor ends that call's CDR `node-lost` and frees its line
//! within the lease, the relay puts that line on hook when the caller's media
//! stops, and a new call through the survivor gets that line and hears its
//! echo; every CDR ends and both lines are idle afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use offhook_directory::testing::{Backend, backends};
use offhook_directory::{HangupCause, LineState, Scope};
use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::dsp::tone::Tone;
use offhook_media::rtp::packet::parse;
use offhook_tests::ua::{Placed, TestUa, click, sdp_port};
use offhook_tests::{Offhook, Running, after};
use tokio::net::UdpSocket;

const RELAY_PASSWORD: &str = "two-nodes-relay-password";

/// The shared settings, with every address moved to a loopback port of its own.
fn shared_settings() -> Vec<(String, String)> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/offhook.env");
    let text = std::fs::read_to_string(file).expect("deploy/offhook.env");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(key, _)| {
            // The database is the test's; addresses are loopback ports below.
            !matches!(
                *key,
                "OFFHOOK_DATABASE_URL" | "RUST_LOG" | "OFFHOOK_MEDIA__SIGNALING"
            ) && !key.ends_with("__UDP")
                && !key.ends_with("__TCP")
                && !key.ends_with("__WS")
                && !key.ends_with("__LISTEN")
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(
            [
                ("OFFHOOK_SIGNALING__UDP", "127.0.0.1:0"),
                ("OFFHOOK_SIGNALING__TCP", "127.0.0.1:0"),
                ("OFFHOOK_SIGNALING__WS", "127.0.0.1:0"),
                ("OFFHOOK_WEB__LISTEN", "127.0.0.1:0"),
                ("OFFHOOK_MEDIA__LISTEN", "127.0.0.1:0"),
                ("RUST_LOG", "warn"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} in deploy/offhook.env"))
}

fn spawn(offhook: &Offhook, what: &str, shared: &[(String, String)], own: &[(&str, String)]) -> Running {
    let envs: Vec<(&str, &str)> = shared
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(own.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    offhook.spawn(&[what], &envs)
}

/// A signaling node named `node_id`; its UDP address.
async fn node(offhook: &Offhook, shared: &[(String, String)], node_id: &str) -> (Running, SocketAddr) {
    let mut running = spawn(
        offhook,
        "signaling",
        shared,
        &[("OFFHOOK_SIGNALING__NODE_ID", node_id.to_owned())],
    );
    let line = running.wait_for_line("signaling serving SIP").await;
    let udp = after(&line, "udp=").parse().expect("the node's UDP address");
    (running, udp)
}

async fn cli(offhook: &Offhook, args: &[&str]) {
    let out = offhook.run(args).await;
    assert!(out.status.success(), "offhook {args:?}: {out:?}");
}

/// Where the relay takes a call's RTP (from its 200's SDP).
fn relay_rtp(placed: &Placed) -> SocketAddr {
    let body = &placed.response.as_ref().expect("the 200").body;
    SocketAddr::from(([127, 0, 0, 1], sdp_port(body)))
}

/// Sends `seconds` of a 1 kHz tone to the relay's RTP port (numbered on from
/// `seq`) and says whether its echo came back.
async fn echo_heard(rtp: &UdpSocket, relay: SocketAddr, seq: &AtomicU16, seconds: u16) -> bool {
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut heard, mut buf) = (Vec::new(), [0u8; 2048]);
    for _ in 0..seconds * 50 {
        tick.tick().await;
        let seq = seq.fetch_add(1, Ordering::Relaxed);
        let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
        packet.extend((u32::from(seq) * 160).to_be_bytes());
        packet.extend(0x0bad_cafe_u32.to_be_bytes());
        packet.extend((0..160).map(|_| linear_to_ulaw(tone.next_sample())));
        rtp.send_to(&packet, relay).await.expect("send RTP");
        while let Ok((len, _)) = rtp.try_recv_from(&mut buf) {
            if let Ok(packet) = parse(&buf[..len]) {
                heard.extend(packet.payload.iter().map(|&c| ulaw_to_linear(c)));
            }
        }
    }
    let last: Vec<i16> = heard.iter().rev().take(4000).copied().collect();
    let level = relative_level(&last, 1000.0, 8000.0);
    last.len() == 4000 && level > 0.3
}

/// Polls the directory until `done` holds (the processes work in real time).
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(tokio::time::Instant::now() < until, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_nodes_on_postgres_survive_one_killed_mid_call() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: OFFHOOK_TEST_DATABASE_URL=skip (this test needs PostgreSQL)");
        return;
    }
    let offhook = Offhook::new(Backend::Postgres).await;
    let shared = shared_settings();
    let (relay, domain) = (
        setting(&shared, "OFFHOOK_MEDIA__NAME").to_owned(),
        setting(&shared, "OFFHOOK_MEDIA__DOMAIN").to_owned(),
    );
    let lease_s: u64 = setting(&shared, "OFFHOOK_SIGNALING__OWNER_LEASE_S")
        .parse()
        .unwrap();

    // What the compose file's `seed` service makes, plus an icon for the echo.
    cli(
        &offhook,
        &["directory", "tenant", "create", "main", "--domain", &domain],
    )
    .await;
    let account = [
        "directory",
        "account",
        "create",
        "--tenant",
        "main",
        "--kind",
        "relay",
    ];
    cli(
        &offhook,
        &[&account[..], &[&relay, "--password", RELAY_PASSWORD]].concat(),
    )
    .await;
    for line in ["line-1", "line-2"] {
        let create = ["directory", "line", "create", line, "--relay", &relay];
        cli(
            &offhook,
            &[&create[..], &["--device", "emulated", "--kind", "emulated"]].concat(),
        )
        .await;
    }

    let mut web = spawn(&offhook, "web", &shared, &[]);
    let web_address = web.wait_for_web_address().await;
    let origin = format!("http://127.0.0.1:{}", web_address.rsplit(':').next().unwrap());
    let icon = [
        "directory",
        "icon",
        "create",
        "--tenant",
        "main",
        "--number",
        "5550100",
    ];
    let icon_args = [
        "--public-id",
        "echo",
        "--max-concurrent",
        "5",
        "--origin",
        &origin,
    ];
    cli(&offhook, &[&icon[..], &icon_args[..]].concat()).await;

    let (mut node_a, a) = node(&offhook, &shared, "node-a").await;
    let (node_b, b) = node(&offhook, &shared, "node-b").await;
    let mut media = spawn(
        &offhook,
        "media",
        &shared,
        &[
            ("OFFHOOK_MEDIA__SIGNALING", a.to_string()),
            ("OFFHOOK_MEDIA__PASSWORD", RELAY_PASSWORD.to_owned()),
            ("OFFHOOK_MEDIA__RTP_TIMEOUT_S", "4".to_owned()),
            (
                "OFFHOOK_MEDIA__LINES",
                r#"[{ name = "line-1", device = "emulated" }, { name = "line-2", device = "emulated" }]"#
                    .to_owned(),
            ),
        ],
    );
    media.wait_for_line("media relay at").await;

    let grant = click(&web_address, "echo").await;
    assert!(grant["target"].is_string(), "a call token: {grant}");

    // A call through each node, at once (an answered call whose caller is
    // silent ends after the relay's RTP timeout).
    let (mut ua_a, rtp_a) = (
        TestUa::bind().await,
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let (mut ua_b, rtp_b) = (
        TestUa::bind().await,
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let (grant_a, grant_b) = (
        click(&web_address, "echo").await,
        click(&web_address, "echo").await,
    );
    let (via_a, via_b) = tokio::join!(
        ua_a.call(a, &grant_a, rtp_a.local_addr().unwrap()),
        ua_b.call(b, &grant_b, rtp_b.local_addr().unwrap())
    );
    assert_eq!(via_a.status, 200, "{via_a:?}");
    assert_eq!(via_b.status, 200, "{via_b:?}");
    let (seq_a, seq_b) = (AtomicU16::new(0), Arc::new(AtomicU16::new(0)));
    let (heard_a, heard_b) = tokio::join!(
        echo_heard(&rtp_a, relay_rtp(&via_a), &seq_a, 2),
        echo_heard(&rtp_b, relay_rtp(&via_b), &seq_b, 2)
    );
    assert!(heard_a, "echo through node A");
    assert!(heard_b, "echo through node B");
    // Node B's caller goes on talking from here on.
    let rtp_b = Arc::new(rtp_b);
    let talking_b = tokio::spawn({
        let (rtp_b, to, seq) = (rtp_b.clone(), relay_rtp(&via_b), seq_b.clone());
        async move {
            loop {
                echo_heard(&rtp_b, to, &seq, 1).await;
            }
        }
    });
    let d = &offhook.db.directory;
    let lines = d.list_lines(&Scope::Operator).await.unwrap();
    assert!(lines.iter().all(|l| l.state == LineState::InCall), "{lines:?}");

    // Node A dies mid-call; its caller's media stops with it.
    node_a.child.start_kill().unwrap();
    node_a.child.wait().await.unwrap();
    let killed_at = tokio::time::Instant::now();
    let cdr_of = |call_id: String| async move {
        let cdrs = d.list_cdrs(&Scope::Operator, &Default::default()).await.unwrap();
        cdrs.into_iter()
            .find(|c| c.call_id == call_id)
            .expect("the call's CDR")
    };
    let bound = Duration::from_secs(lease_s * 2 + 5);
    wait_until("node B reaps node A's call", bound, || {
        let id = via_a.call_id.clone();
        async move { cdr_of(id).await.ended_at.is_some() }
    })
    .await;
    let lost = cdr_of(via_a.call_id.clone()).await;
    assert_eq!(lost.hangup_cause, Some(HangupCause::NodeLost));
    eprintln!(
        "node A's call ended node-lost {:?} after the kill",
        killed_at.elapsed()
    );
    let free = lost.line_id.clone().expect("the call's line");
    wait_until("its line is idle", bound, || async {
        d.list_lines(&Scope::Operator)
            .await
            .unwrap()
            .iter()
            .any(|l| l.id == free && l.state == LineState::Idle)
    })
    .await;

    // The survivor serves a new call on the freed line (the relay hung it up
    // when the dead node's caller fell silent), while its own call goes on.
    let (mut ua_c, rtp_c) = (
        TestUa::bind().await,
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let mut placed = None;
    for _ in 0..10 {
        let call = ua_c
            .call(b, &click(&web_address, "echo").await, rtp_c.local_addr().unwrap())
            .await;
        if call.status == 200 {
            placed = Some(call);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let via_c = placed.expect("a new call through node B is answered");
    assert!(
        echo_heard(&rtp_c, relay_rtp(&via_c), &AtomicU16::new(0), 2).await,
        "echo on the freed line"
    );
    assert_eq!(
        cdr_of(via_c.call_id.clone()).await.line_id.as_deref(),
        Some(free.as_str())
    );
    talking_b.abort();
    assert!(
        echo_heard(&rtp_b, relay_rtp(&via_b), &seq_b, 2).await,
        "node B's first call went on"
    );

    assert_eq!(ua_b.hang_up(via_b.session).await.status, 200);
    assert_eq!(ua_c.hang_up(via_c.session).await.status, 200);
    wait_until(
        "every CDR ended and every line idle",
        Duration::from_secs(10),
        || async {
            let cdrs = d.list_cdrs(&Scope::Operator, &Default::default()).await.unwrap();
            let lines = d.list_lines(&Scope::Operator).await.unwrap();
            cdrs.iter().all(|c| c.ended_at.is_some()) && lines.iter().all(|l| l.state == LineState::Idle)
        },
    )
    .await;
    node_b.stop().await;
    media.stop().await;
    web.stop().await;
}
