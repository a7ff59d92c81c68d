//! Two signaling nodes, one media relay and the web server on one PostgreSQL, as
//! separate processes, with the shared settings of `deploy/offhook.env` (the
//! file `docker-compose.yml` gives its services; here only the addresses become
//! loopback ports): a call through each node; the first node killed (SIGKILL)
//! mid-call; the survivor ends that call's CDR `node-lost` and frees its line
//! within the lease, the relay puts that line on hook when the caller's media
//! stops, and a new call through the survivor gets that line and hears its
//! echo; every CDR ends and both lines are idle afterwards. And the relay
//! killed (SIGKILL) mid-call, started again at once or left dead: the caller
//! gets a BYE, the CDR ends `relay-lost`, the line is idle, and once the relay
//! is back the line serves a new call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use offhook_directory::testing::{Backend, backends};
use offhook_directory::{Cdr, Directory, HangupCause, LineState, Scope};
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

/// A signaling node named `node_id` (with `own` settings too); its UDP address.
async fn node(
    offhook: &Offhook,
    shared: &[(String, String)],
    node_id: &str,
    own: &[(&str, String)],
) -> (Running, SocketAddr) {
    let own: Vec<(&str, String)> = [("OFFHOOK_SIGNALING__NODE_ID", node_id.to_owned())]
        .into_iter()
        .chain(own.iter().cloned())
        .collect();
    let mut running = spawn(offhook, "signaling", shared, &own);
    let line = running.wait_for_line("signaling serving SIP").await;
    let udp = after(&line, "udp=").parse().expect("the node's UDP address");
    (running, udp)
}

/// What the compose file's `seed` service makes (the tenant, the relay's
/// account, its emulated `lines`), the web server, and an icon for the echo
/// that takes the web server's origin; the web server's address.
async fn seeded(offhook: &Offhook, shared: &[(String, String)], lines: &[&str]) -> (Running, String) {
    let (relay, domain) = (
        setting(shared, "OFFHOOK_MEDIA__NAME"),
        setting(shared, "OFFHOOK_MEDIA__DOMAIN"),
    );
    cli(
        offhook,
        &["directory", "tenant", "create", "main", "--domain", domain],
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
        offhook,
        &[&account[..], &[relay, "--password", RELAY_PASSWORD]].concat(),
    )
    .await;
    for line in lines {
        let create = ["directory", "line", "create", line, "--relay", relay];
        cli(
            offhook,
            &[&create[..], &["--device", "emulated", "--kind", "emulated"]].concat(),
        )
        .await;
    }
    let mut web = spawn(offhook, "web", shared, &[]);
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
    cli(offhook, &[&icon[..], &icon_args[..]].concat()).await;
    (web, web_address)
}

/// The media relay with emulated `lines`, registered through `signaling`
/// (an answered call whose caller is silent ends after its RTP timeout, 4 s).
async fn relay(
    offhook: &Offhook,
    shared: &[(String, String)],
    signaling: SocketAddr,
    lines: &[&str],
) -> Running {
    let lines: Vec<String> = lines
        .iter()
        .map(|l| format!(r#"{{ name = "{l}", device = "emulated" }}"#))
        .collect();
    let mut media = spawn(
        offhook,
        "media",
        shared,
        &[
            ("OFFHOOK_MEDIA__SIGNALING", signaling.to_string()),
            ("OFFHOOK_MEDIA__PASSWORD", RELAY_PASSWORD.to_owned()),
            ("OFFHOOK_MEDIA__RTP_TIMEOUT_S", "4".to_owned()),
            ("OFFHOOK_MEDIA__LINES", format!("[{}]", lines.join(", "))),
        ],
    );
    media.wait_for_line("media relay at").await;
    media
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

/// The test's PostgreSQL directory and the shared settings; `None` (and a
/// line saying so) when the tests run without PostgreSQL.
async fn on_postgres() -> Option<(Offhook, Vec<(String, String)>)> {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: OFFHOOK_TEST_DATABASE_URL=skip (this test needs PostgreSQL)");
        return None;
    }
    Some((Offhook::new(Backend::Postgres).await, shared_settings()))
}

/// The CDR of the call `call_id`.
async fn cdr_of(d: &Directory, call_id: &str) -> Cdr {
    let cdrs = d.list_cdrs(&Scope::Operator, &Default::default()).await.unwrap();
    cdrs.into_iter()
        .find(|c| c.call_id == call_id)
        .expect("the call's CDR")
}

/// Whether line `id` is idle in the directory.
async fn line_idle(d: &Directory, id: &str) -> bool {
    let lines = d.list_lines(&Scope::Operator).await.unwrap();
    lines.iter().any(|l| l.id == id && l.state == LineState::Idle)
}

/// A call through `signaling` from `ua` (its RTP on `rtp`) answered, tried
/// once a second while the lines are not back yet.
async fn answered(ua: &mut TestUa, rtp: &UdpSocket, signaling: SocketAddr, web: &str) -> Placed {
    for _ in 0..10 {
        let call = ua
            .call(signaling, &click(web, "echo").await, rtp.local_addr().unwrap())
            .await;
        if call.status == 200 {
            return call;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("no call answered through {signaling} in 10 tries");
}

/// Waits until every CDR has ended and every line is idle.
async fn all_ended_and_idle(d: &Directory) {
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
}

#[tokio::test]
async fn two_nodes_on_postgres_survive_one_killed_mid_call() {
    let Some((offhook, shared)) = on_postgres().await else {
        return;
    };
    let lease_s: u64 = setting(&shared, "OFFHOOK_SIGNALING__OWNER_LEASE_S")
        .parse()
        .unwrap();
    let lines = ["line-1", "line-2"];
    let (web, web_address) = seeded(&offhook, &shared, &lines).await;
    let (mut node_a, a) = node(&offhook, &shared, "node-a", &[]).await;
    let (node_b, b) = node(&offhook, &shared, "node-b", &[]).await;
    let media = relay(&offhook, &shared, a, &lines).await;

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
    let bound = Duration::from_secs(lease_s * 2 + 5);
    wait_until("node B reaps node A's call", bound, || async {
        cdr_of(d, &via_a.call_id).await.ended_at.is_some()
    })
    .await;
    let lost = cdr_of(d, &via_a.call_id).await;
    assert_eq!(lost.hangup_cause, Some(HangupCause::NodeLost));
    eprintln!(
        "node A's call ended node-lost {:?} after the kill",
        killed_at.elapsed()
    );
    let free = lost.line_id.clone().expect("the call's line");
    wait_until("its line is idle", bound, || line_idle(d, &free)).await;

    // The survivor serves a new call on the freed line (the relay hung it up
    // when the dead node's caller fell silent), while its own call goes on.
    let (mut ua_c, rtp_c) = (
        TestUa::bind().await,
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let via_c = answered(&mut ua_c, &rtp_c, b, &web_address).await;
    assert!(
        echo_heard(&rtp_c, relay_rtp(&via_c), &AtomicU16::new(0), 2).await,
        "echo on the freed line"
    );
    assert_eq!(
        cdr_of(d, &via_c.call_id).await.line_id.as_deref(),
        Some(free.as_str())
    );
    talking_b.abort();
    assert!(
        echo_heard(&rtp_b, relay_rtp(&via_b), &seq_b, 2).await,
        "node B's first call went on"
    );

    assert_eq!(ua_b.hang_up(via_b.session).await.status, 200);
    assert_eq!(ua_c.hang_up(via_c.session).await.status, 200);
    all_ended_and_idle(d).await;
    node_b.stop().await;
    media.stop().await;
    web.stop().await;
}

#[tokio::test]
async fn a_relay_killed_mid_call_loses_its_call_and_its_line_serves_again_once_it_is_back() {
    let Some((offhook, shared)) = on_postgres().await else {
        return;
    };
    let lines = ["line-1"];
    let (web, web_address) = seeded(&offhook, &shared, &lines).await;
    // Probed every second, down after two probes unanswered for 500 ms.
    let checks = [
        ("OFFHOOK_SIGNALING__RELAY_CHECK_INTERVAL_MS", "1000".to_owned()),
        ("OFFHOOK_SIGNALING__RELAY_CHECK_TIMEOUT_MS", "500".to_owned()),
        ("OFFHOOK_SIGNALING__RELAY_CHECK_MISSES", "2".to_owned()),
    ];
    let (node, a) = node(&offhook, &shared, "node-a", &checks).await;
    let mut media = relay(&offhook, &shared, a, &lines).await;
    let d = &offhook.db.directory;

    // Started again at once, the relay registers with a new Call-ID before a
    // probe misses it; left dead, its probes go unanswered.
    for again_at_once in [true, false] {
        let (mut ua, rtp) = (
            TestUa::bind().await,
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        );
        let call = answered(&mut ua, &rtp, a, &web_address).await;
        let seq = AtomicU16::new(0);
        assert!(
            echo_heard(&rtp, relay_rtp(&call), &seq, 1).await,
            "echo before the kill"
        );
        media.child.start_kill().unwrap();
        media.child.wait().await.unwrap();
        let killed_at = tokio::time::Instant::now();
        if again_at_once {
            media = relay(&offhook, &shared, a, &lines).await;
        }
        let bye = ua.bye_from_far_side(call.session).await;
        let told = killed_at.elapsed();
        assert_eq!(
            bye.headers.get("Reason"),
            Some(r#"SIP;cause=200;text="relay lost""#),
            "{bye:?}"
        );
        let cdr = cdr_of(d, &call.call_id).await;
        wait_until("the CDR ended", Duration::from_secs(5), || async {
            cdr_of(d, &call.call_id).await.ended_at.is_some()
        })
        .await;
        assert_eq!(
            cdr_of(d, &call.call_id).await.hangup_cause,
            Some(HangupCause::RelayLost)
        );
        let line = cdr.line_id.expect("the call's line");
        wait_until("its line is idle", Duration::from_secs(5), || line_idle(d, &line)).await;
        eprintln!(
            "relay killed (started again at once: {again_at_once}): the caller got its BYE {told:?} after"
        );
        if !again_at_once {
            media = relay(&offhook, &shared, a, &lines).await;
        }
        let next = answered(&mut ua, &rtp, a, &web_address).await;
        assert!(
            echo_heard(&rtp, relay_rtp(&next), &seq, 2).await,
            "echo on the line once the relay is back"
        );
        assert_eq!(
            cdr_of(d, &next.call_id).await.line_id.as_deref(),
            Some(line.as_str())
        );
        assert_eq!(ua.hang_up(next.session).await.status, 200);
    }
    all_ended_and_idle(d).await;
    node.stop().await;
    media.stop().await;
    web.stop().await;
}
