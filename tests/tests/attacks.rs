//! Attacks on signaling, as an outsider on the network would make them, against
//! the real binary: password guessing with SIPVicious (`sipvicious_svcrack`, from
//! PyPI) and account enumeration (`sipvicious_svwar`); a captured REGISTER
//! replayed after a restart and on another node; the proxy used as an open relay
//! (a request naming another host, a forged in-dialog route); a spoofed stray
//! response; file-descriptor exhaustion under `prlimit --nofile`; RTP
//! sprayed at a call's media port from third sockets; and toll fraud (an icon
//! set to dial international premium, an account dialing it). Each asserts the attack
//! fails and that nothing was dialed or billed, or heard.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use offhook_directory::testing::Backend;
use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::dsp::tone::Tone;
use offhook_sip::message::{Message, Response, parse};
use offhook_tests::ua::{TestUa, click, sdp_port};
use offhook_tests::{ANY_PORTS, Offhook, after, scratch_dir, wait_for_metric};
use tokio::net::UdpSocket;

const DOMAIN: &str = "demo.offhook.test";
const PASSWORD: &str = "correct-horse-battery";

/// Sends `text` from `socket` to `to`; the first final response within 3 s.
async fn exchange(socket: &UdpSocket, to: SocketAddr, text: &str) -> Option<Response> {
    socket.send_to(text.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok((len, _))) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        if let Ok(Message::Response(r)) = parse(&buf[..len])
            && r.status >= 200
        {
            return Some(r);
        }
    }
    None
}

fn register(local: SocketAddr, cseq: u32, authorization: Option<&str>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg{cseq}\r\n\
         From: <sip:alice@{DOMAIN}>;tag=a1\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: replay-{}@x\r\n\
         CSeq: {cseq} REGISTER\r\nContact: <sip:alice@{local}>\r\nExpires: 600\r\nMax-Forwards: 70\r\n\
         {auth}Content-Length: 0\r\n\r\n",
        local.port()
    )
}

/// `offhook signaling` on the demo's database, its UDP address.
async fn signaling(offhook: &Offhook, node: &str) -> (offhook_tests::Running, SocketAddr) {
    let envs = [ANY_PORTS, &[("OFFHOOK_SIGNALING__NODE_ID", node)]].concat();
    let mut running = offhook.spawn(&["signaling"], &envs);
    let line = running.wait_for_line("signaling serving SIP").await;
    (running, after(&line, "udp=").parse().unwrap())
}

#[tokio::test]
async fn a_captured_register_does_not_work_again_after_a_restart_or_on_another_node() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    offhook.create_demo_account("alice", PASSWORD, "201").await;
    let (first, proxy) = signaling(&offhook, "node-1").await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let challenge = exchange(&socket, proxy, &register(local, 1, None)).await.unwrap();
    assert_eq!(challenge.status, 401);
    let www = challenge.headers.get("WWW-Authenticate").unwrap();
    let credentials = offhook_sip::auth::answer_challenge(
        www,
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        "alice",
        PASSWORD,
        "c0ffee",
    )
    .unwrap();
    let captured = register(local, 2, Some(&credentials));
    assert_eq!(exchange(&socket, proxy, &captured).await.unwrap().status, 200);

    // The same bytes on another node of the same directory.
    let (second, other) = signaling(&offhook, "node-2").await;
    let replayed = exchange(&socket, other, &captured.replace("z9hG4bKreg2", "z9hG4bKreg2b"))
        .await
        .unwrap();
    assert_eq!(replayed.status, 401, "another node challenges again");
    assert!(
        replayed
            .headers
            .get("WWW-Authenticate")
            .unwrap()
            .contains("stale=true")
    );

    // The same bytes after a restart of the first node.
    first.stop().await;
    let (_restarted, proxy) = signaling(&offhook, "node-1").await;
    let replayed = exchange(&socket, proxy, &captured.replace("z9hG4bKreg2", "z9hG4bKreg2c"))
        .await
        .unwrap();
    assert_eq!(replayed.status, 401, "a restarted node challenges again");
    drop(second);
}

#[tokio::test]
async fn svcrack_does_not_find_the_password_and_svwar_finds_no_account() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    offhook.create_demo_account("alice", PASSWORD, "201").await;
    let (running, proxy) = signaling(&offhook, "node-1").await;
    let dir = scratch_dir("svcrack");
    // The right password is the 40th guess.
    let mut guesses: Vec<String> = (0..39).map(|n| format!("guess{n:03}")).collect();
    guesses.push(PASSWORD.into());
    guesses.extend((40..60).map(|n| format!("guess{n:03}")));
    let dictionary = dir.join("dictionary.txt");
    std::fs::write(&dictionary, guesses.join("\n") + "\n").unwrap();
    let started = Instant::now();
    let crack = tokio::process::Command::new("sipvicious_svcrack")
        .args([
            "-u",
            "alice",
            "--domain",
            DOMAIN,
            "-p",
            &proxy.port().to_string(),
            "-d",
        ])
        .arg(&dictionary)
        .args(["--maximumtime", "10", "127.0.0.1"])
        .kill_on_drop(true)
        .output();
    let crack = tokio::time::timeout(Duration::from_secs(120), crack)
        .await
        .expect("svcrack ends")
        .expect("sipvicious_svcrack runs (tests/setup.sh installs it)");
    let report =
        String::from_utf8_lossy(&crack.stdout).into_owned() + &String::from_utf8_lossy(&crack.stderr);
    eprintln!("svcrack ran {:?}:\n{report}", started.elapsed());
    assert!(
        !report.contains(PASSWORD),
        "svcrack must not find the password: {report}"
    );

    // Enumeration: REGISTER and INVITE for known and unknown names get the same answers.
    let names = dir.join("names.txt");
    std::fs::write(&names, "alice\nbob\n201\n202\ndemo-relay\nadmin\n").unwrap();
    for method in ["REGISTER", "INVITE"] {
        let war = tokio::process::Command::new("sipvicious_svwar")
            .arg("-d")
            .arg(&names)
            .args(["--domain", DOMAIN, "-m", method, "--force"])
            .args([
                "-p",
                &proxy.port().to_string(),
                "--maximumtime",
                "10",
                "127.0.0.1",
            ])
            .kill_on_drop(true)
            .output();
        let war = tokio::time::timeout(Duration::from_secs(120), war)
            .await
            .expect("svwar ends")
            .expect("sipvicious_svwar runs");
        let report =
            String::from_utf8_lossy(&war.stdout).into_owned() + &String::from_utf8_lossy(&war.stderr);
        eprintln!("svwar {method}:\n{report}");
        assert!(
            report.contains("found nothing"),
            "svwar {method} must tell no account from another: {report}"
        );
    }
    drop(running);
}

#[tokio::test]
async fn the_proxy_is_no_open_relay_and_forwards_no_spoofed_response() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    let (running, proxy) = signaling(&offhook, "node-1").await;
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = attacker.local_addr().unwrap();
    // The victim: where the attacker wants the proxy to send things.
    let victim = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = victim.local_addr().unwrap();

    // An in-dialog request (a To tag) routed to the victim, and one with a forged
    // Record-Route token of ours: refused, not forwarded.
    for route in [
        format!("<sip:{target};lr>"),
        format!("<sip:{proxy};lr;ft=udp~{target}~0~000000000000000000000000>"),
    ] {
        let bye = format!(
            "BYE sip:x@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopen{}\r\nRoute: {route}\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: open-relay@x\r\nCSeq: 2 BYE\r\n\
             Max-Forwards: 70\r\n{}: 5550100\r\nContent-Length: 0\r\n\r\n",
            route.len(),
            offhook_vocab::headers::NUMBER
        );
        let answer = exchange(&attacker, proxy, &bye).await.unwrap();
        assert_eq!(answer.status, 403, "{route}: {}", answer.reason);
    }
    // An initial INVITE for another host, unauthenticated: challenged, not forwarded.
    let invite = format!(
        "INVITE sip:anyone@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopen3\r\n\
         From: <sip:a@{DOMAIN}>;tag=1\r\nTo: <sip:anyone@{target}>\r\nCall-ID: open-relay-2@x\r\nCSeq: 1 INVITE\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(exchange(&attacker, proxy, &invite).await.unwrap().status, 407);
    // A stray 200 whose top Via is not the proxy's, with the victim as next hop.
    let stray = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKspoof\r\n\
         Via: SIP/2.0/UDP {target};branch=z9hG4bKvictim\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\n\
         Call-ID: spoof@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    attacker.send_to(stray.as_bytes(), proxy).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let reached = tokio::time::timeout(Duration::from_secs(2), victim.recv_from(&mut buf)).await;
    assert!(reached.is_err(), "nothing reached the victim");
    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    assert_eq!(
        String::from_utf8_lossy(&cdrs.stdout).trim(),
        "[]",
        "nothing was dialed or billed"
    );
    drop(running);
}

#[tokio::test]
async fn the_listener_survives_running_out_of_file_descriptors() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    let binary = offhook_tests::offhook_bin();
    let mut command = tokio::process::Command::new("prlimit");
    command
        .arg("--nofile=256")
        .arg(&binary)
        .arg("signaling")
        .env("OFFHOOK_DATABASE_URL", &offhook.db.url)
        .env("RUST_LOG", "warn")
        .env("OFFHOOK_SIGNALING__MAX_CONNECTIONS_PER_SOURCE", "100000")
        .env("OFFHOOK_SIGNALING__MAX_CONNECTIONS", "100000");
    for (name, value) in ANY_PORTS {
        command.env(name, value);
    }
    let mut running = offhook_tests::Running::from_command(command);
    let line = running.wait_for_line("signaling serving SIP").await;
    let tcp: SocketAddr = after(&line, "tcp=").parse().unwrap();
    // Far more connections than descriptors: accept() fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(tcp)).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
    }
    eprintln!("held {} connections against a 256-descriptor limit", held.len());
    drop(held);
    // Once descriptors are free again, a new connection is served.
    let mut served = false;
    for _ in 0..50 {
        if offhook_tests::options_over_tcp(tcp).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served, "the listener serves again");
}

#[tokio::test]
async fn idle_websocket_connections_cost_little_memory_each() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    const CONNECTIONS: usize = 500;
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    let envs = [
        ANY_PORTS,
        &[("OFFHOOK_SIGNALING__MAX_CONNECTIONS_PER_SOURCE", "1000")],
    ]
    .concat();
    let mut running = offhook.spawn(&["signaling"], &envs);
    let line = running.wait_for_line("signaling serving SIP").await;
    let ws = after(&line, "ws=").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = running.rss_kib();
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut request = format!("ws://{ws}").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        // A keep-alive: the connection has spoken, so it is idle, not new.
        socket
            .send(tokio_tungstenite::tungstenite::Message::text("\r\n\r\n"))
            .await
            .unwrap();
        held.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_all = running.rss_kib();
    let per_connection = (after_all.saturating_sub(before)) as f64 / CONNECTIONS as f64;
    eprintln!(
        "{CONNECTIONS} idle WebSocket connections: RSS {before} KiB -> {after_all} KiB, {per_connection:.1} KiB each"
    );
    assert!(
        per_connection < 48.0,
        "an idle WebSocket connection holds {per_connection:.1} KiB"
    );
    assert!(offhook_tests::options_over_tcp(after(&line, "tcp=").parse().unwrap()).await);
    drop(held);
}

/// 20 ms of `tone` as a PCMU packet.
fn pcmu(ssrc: u32, seq: u16, tone: &mut Tone) -> Vec<u8> {
    let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
    packet.extend((u32::from(seq) * 160).to_be_bytes());
    packet.extend(ssrc.to_be_bytes());
    packet.extend((0..160).map(|_| linear_to_ulaw(tone.next_sample())));
    packet
}

#[tokio::test]
async fn rtp_sprayed_from_third_sockets_during_a_call_never_reaches_the_line() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook.demo(&[]).await;
    let mut ua = TestUa::bind().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let grant = click(&demo.web, "demo-echo").await;
    let echo = ua.call(demo.sip_udp, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    let relay_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_port(&echo.response.unwrap().body)));

    // Another host (127.0.0.2) sprays 2.5 kHz from before the caller's first
    // packet; another port of the caller's host joins once the leg has latched.
    // Each has an SSRC of its own and keeps its sequence (it would pass probation),
    // two packets per 20 ms each.
    let strangers = [
        UdpSocket::bind("127.0.0.2:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    ];
    let (mut ours, mut theirs) = (
        Tone::new(1000.0, 8000.0, 8000.0),
        Tone::new(2500.0, 8000.0, 8000.0),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut heard, mut sprayed, mut buf) = (Vec::new(), 0u64, [0u8; 2048]);
    for step in 0..200u16 {
        tick.tick().await;
        for (n, stranger) in strangers.iter().enumerate().take(if step < 20 { 1 } else { 2 }) {
            for k in 0..2 {
                let packet = pcmu(0xBAD0 + n as u32, step * 2 + k, &mut theirs);
                stranger.send_to(&packet, relay_rtp).await.unwrap();
                sprayed += 1;
            }
        }
        if step >= 10 {
            rtp.send_to(&pcmu(0x600D, step, &mut ours), relay_rtp)
                .await
                .unwrap();
        }
        while let Ok((len, _)) = rtp.try_recv_from(&mut buf) {
            if let Ok(packet) = offhook_media::rtp::packet::parse(&buf[..len]) {
                heard.extend(packet.payload.iter().map(|&c| ulaw_to_linear(c)));
            }
        }
        for stranger in &strangers {
            assert!(
                stranger.try_recv_from(&mut buf).is_err(),
                "the relay sends nothing to a stranger"
            );
        }
    }
    let last: Vec<i16> = heard.iter().rev().take(8000).copied().collect();
    assert_eq!(last.len(), 8000, "the echo came back ({} samples)", heard.len());
    let (tone, foreign) = (
        relative_level(&last, 1000.0, 8000.0),
        relative_level(&last, 2500.0, 8000.0),
    );
    eprintln!(
        "{sprayed} foreign packets sprayed; on the line: caller's tone {tone:.3}, foreign tone {foreign:.4}"
    );
    assert!(tone > 0.3, "the caller's tone reached the line and came back");
    assert!(foreign < 0.01, "foreign audio reached the line: level {foreign}");
    // The relay counted every foreign datagram as dropped (published every 5 s).
    let invalid = wait_for_metric(
        &demo.web,
        "offhook_rtp_packets_invalid_total{node=\"demo-relay\"}",
        i64::try_from(sprayed).unwrap(),
    )
    .await;
    eprintln!("relay: {invalid} RTP datagrams dropped as invalid or foreign");
    assert_eq!(ua.hang_up(echo.session).await.status, 200);
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}

/// Alice's INVITE for `number` from `socket`, answered to the challenge; the final answer.
async fn account_invite(socket: &UdpSocket, proxy: SocketAddr, number: &str) -> Response {
    let local = socket.local_addr().unwrap();
    let uri = format!("sip:{number}@{DOMAIN}");
    let invite = |cseq: u32, auth: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKfraud{number}{cseq}\r\n\
             From: <sip:alice@{DOMAIN}>;tag=f1\r\nTo: <{uri}>\r\nCall-ID: fraud-{number}@x\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:alice@{local}>\r\nMax-Forwards: 70\r\n{auth}\
             Content-Length: 0\r\n\r\n"
        )
    };
    let challenge = exchange(socket, proxy, &invite(1, "")).await.unwrap();
    assert_eq!(challenge.status, 407, "{}", challenge.reason);
    let www = challenge.headers.get("Proxy-Authenticate").unwrap();
    let answer = offhook_sip::auth::answer_challenge(www, "INVITE", &uri, "alice", PASSWORD, "f00d").unwrap();
    let ack = format!(
        "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKfraud{number}1\r\n\
         From: <sip:alice@{DOMAIN}>;tag=f1\r\nTo: <{uri}>;tag={}\r\nCall-ID: fraud-{number}@x\r\n\
         CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        challenge
            .to()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default()
    );
    socket.send_to(ack.as_bytes(), proxy).await.unwrap();
    exchange(
        socket,
        proxy,
        &invite(2, &format!("Proxy-Authorization: {answer}\r\n")),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn toll_fraud_is_refused_and_nothing_is_dialed_or_billed() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    assert!(offhook.run(&["demo", "--seed-only"]).await.status.success());
    offhook.create_demo_account("alice", PASSWORD, "201").await;
    // An icon set to dial international premium: refused with the reason.
    let icon = offhook
        .run(&[
            "directory",
            "icon",
            "create",
            "--tenant",
            "demo",
            "--number",
            "+88212345678",
            "--label",
            "Fraud",
        ])
        .await;
    let stderr = String::from_utf8_lossy(&icon.stderr);
    assert!(
        !icon.status.success(),
        "created: {}",
        String::from_utf8_lossy(&icon.stdout)
    );
    assert!(stderr.contains("number") && stderr.contains("+882"), "{stderr}");

    // An account dialing international premium, an access code, national premium.
    let (running, proxy) = signaling(&offhook, "node-1").await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for number in ["+88212345678", "0044201234567", "09001234567"] {
        let answer = account_invite(&socket, proxy, number).await;
        assert_eq!(
            (answer.status, answer.reason.as_str()),
            (403, "Destination not allowed"),
            "{number}"
        );
    }
    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    assert_eq!(
        String::from_utf8_lossy(&cdrs.stdout).trim(),
        "[]",
        "nothing was dialed or billed"
    );
    let icons = offhook.run(&["directory", "icon", "list"]).await;
    assert!(!String::from_utf8_lossy(&icons.stdout).contains("Fraud"));
    drop(running);
}
