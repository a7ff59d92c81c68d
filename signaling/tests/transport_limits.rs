//! Stream transports an outsider cannot exhaust, against a real server on
//! loopback with small caps and deadlines: connections over the per-source cap
//! are closed at once; a connection that says nothing, or drips a message too
//! slowly, or never finishes its WebSocket handshake, is closed at its deadline;
//! and through all of it the server keeps answering.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Setup, Site};
use offhook_directory::testing::Backend;
use offhook_signaling::config::SignalingConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const SITE: Site = Site {
    tenant: "t",
    domain: "t.test",
    icon: "sales",
};
const PER_SOURCE: usize = 8;
const DEADLINE: Duration = Duration::from_millis(600);

async fn server() -> Setup {
    let any = Some("127.0.0.1:0".parse().unwrap());
    let config = SignalingConfig {
        udp: any,
        tcp: any,
        ws: any,
        relay_check_interval_ms: 0,
        max_connections_per_source: PER_SOURCE,
        connection_deadline_ms: DEADLINE.as_millis() as u64,
        ..SignalingConfig::default()
    };
    Setup::new(Backend::Sqlite, SITE, &[], config).await
}

/// How long until the server closes `stream` (bounded by `limit`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// An OPTIONS over a fresh TCP connection gets its 200.
async fn answers(tcp: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(tcp).await else {
        return false;
    };
    let local = stream.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:t.test SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKlive{}\r\nFrom: <sip:p@t.test>;tag=1\r\n\
         To: <sip:t.test>\r\nCall-ID: live-{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    stream.write_all(options.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    read.is_ok_and(|r| r.is_ok_and(|n| buf[..n].starts_with(b"SIP/2.0 200")))
}

#[tokio::test]
async fn connections_over_the_cap_and_silent_or_slow_ones_are_closed() {
    let setup = server().await;
    let (tcp, ws) = (setup.server.bound.tcp.unwrap(), setup.server.bound.ws.unwrap());

    // The per-source cap: the first connections are held, the rest closed at once.
    let mut held = Vec::new();
    for _ in 0..PER_SOURCE {
        held.push(TcpStream::connect(tcp).await.unwrap());
    }
    let mut over = TcpStream::connect(tcp).await.unwrap();
    let closed = closed_within(&mut over, Duration::from_secs(2)).await;
    assert!(
        closed.is_some_and(|t| t < DEADLINE),
        "over the cap: closed at once ({closed:?})"
    );
    // The held ones say nothing: each is closed at its first-message deadline.
    for stream in &mut held {
        let closed = closed_within(stream, DEADLINE * 4).await;
        assert!(closed.is_some(), "a silent connection is closed");
    }
    drop(held);

    // A message dripped slower than its deadline.
    let mut slow = TcpStream::connect(tcp).await.unwrap();
    slow.write_all(b"OPTIONS sip:t.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKslow\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    while started.elapsed() < DEADLINE * 4 {
        let gone = slow.write_all(b"X").await.is_err()
            || closed_within(&mut slow, Duration::from_millis(150))
                .await
                .is_some();
        if gone {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    assert!(
        cut_off.is_some_and(|t| t >= DEADLINE / 2),
        "a dripping message is cut off at its deadline, though bytes keep coming ({cut_off:?})"
    );

    // A WebSocket connection that never finishes its handshake.
    let mut half = TcpStream::connect(ws).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(
        closed_within(&mut half, DEADLINE * 4).await.is_some(),
        "a handshake that does not end"
    );

    assert!(answers(tcp).await, "the server still serves");
    setup.db.finish().await;
}
