//! RFC 4475 on the wire: each torture message (the RFC's byte-exact archive, in
//! `sip/tests/data/rfc4475`) is sent to a running signaling server over UDP and
//! over TCP (a fresh connection each), its answer is judged by the verdict in
//! `sip/tests/data/rfc4475/wire.txt`, and after every message an OPTIONS probe
//! must still get 200: nothing a peer sends may stop the server.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Setup, Site};
use offhook_directory::testing::Backend;
use offhook_signaling::config::SignalingConfig;
use offhook_sip::message::StreamFramer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

const SITE: Site = Site {
    tenant: "t",
    domain: "t.test",
    icon: "sales",
};

/// How long a message may take to be answered (a dropped one waits this long).
const ANSWER_WAIT: Duration = Duration::from_millis(400);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sip/tests/data/rfc4475")
}

/// What a message must get on one transport.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// A final response with this status.
    Status(u16),
    /// Nothing (a response with nowhere to go, an unroutable request, a
    /// stream that cannot be framed).
    Nothing,
}

fn verdict(text: &str) -> Verdict {
    match text {
        "nothing" => Verdict::Nothing,
        status => Verdict::Status(status.parse().unwrap_or_else(|_| panic!("verdict {status}"))),
    }
}

/// file -> (UDP verdict, TCP verdict).
fn verdicts() -> BTreeMap<String, (Verdict, Verdict)> {
    let text = std::fs::read_to_string(data_dir().join("wire.txt")).expect("wire.txt is committed");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (udp, tcp) = match words.as_slice() {
                [_, _, udp] => (verdict(udp), verdict(udp)),
                [_, _, udp, tcp] => (verdict(udp), verdict(tcp)),
                _ => panic!("wire.txt line {line:?}"),
            };
            (words[0].to_owned(), (udp, tcp))
        })
        .collect()
}

fn options_probe(n: usize, local: SocketAddr, transport: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bKprobe{n}{transport}\r\n\
         From: <sip:probe@t.test>;tag=p{n}\r\nTo: <sip:t.test>\r\nCall-ID: probe-{n}-{transport}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        SITE.domain
    )
    .into_bytes()
}

/// The final statuses among `messages` (provisional ones left out), read from
/// their status lines: a refusal copies the offending headers, so it may not
/// parse as a whole.
fn finals(messages: &[Vec<u8>]) -> Vec<u16> {
    messages
        .iter()
        .filter_map(|m| {
            let line = m.split(|b| *b == b'\r').next()?;
            let status = std::str::from_utf8(line)
                .ok()?
                .strip_prefix("SIP/2.0 ")?
                .get(..3)?;
            status.parse().ok().filter(|s| *s >= 200)
        })
        .collect()
}

async fn over_udp(server: SocketAddr, n: usize, bytes: &[u8]) -> (Vec<u16>, bool) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok((len, _))) = tokio::time::timeout(ANSWER_WAIT, socket.recv_from(&mut buf)).await {
        got.push(buf[..len].to_vec());
        if !finals(&got).is_empty() {
            break;
        }
    }
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    probe
        .send_to(&options_probe(n, probe.local_addr().unwrap(), "UDP"), server)
        .await
        .unwrap();
    let alive = tokio::time::timeout(Duration::from_secs(5), probe.recv_from(&mut buf))
        .await
        .is_ok_and(|r| r.is_ok_and(|(len, _)| finals(&[buf[..len].to_vec()]) == [200]));
    (finals(&got), alive)
}

/// Reads framed messages from `stream` until a final response or `wait`.
async fn read_messages(stream: &mut TcpStream, wait: Duration) -> Vec<Vec<u8>> {
    let mut framer = StreamFramer::new(65_536);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16_384];
    let deadline = tokio::time::Instant::now() + wait;
    while finals(&got).is_empty() {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        let Ok(Ok(len)) = read else { break };
        if len == 0 {
            break;
        }
        framer.push(&buf[..len]);
        while let Ok(Some(message)) = framer.next_message() {
            got.push(message);
        }
    }
    got
}

async fn over_tcp(server: SocketAddr, n: usize, bytes: &[u8]) -> (Vec<u16>, bool) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let got = read_messages(&mut stream, ANSWER_WAIT).await;
    let mut probe = TcpStream::connect(server).await.unwrap();
    let local = probe.local_addr().unwrap();
    probe.write_all(&options_probe(n, local, "TCP")).await.unwrap();
    let alive = finals(&read_messages(&mut probe, Duration::from_secs(5)).await) == [200];
    (finals(&got), alive)
}

/// A server on a fresh directory with UDP and TCP.
async fn server() -> Setup {
    let any = Some("127.0.0.1:0".parse().unwrap());
    let config = SignalingConfig {
        udp: any,
        tcp: any,
        relay_check_interval_ms: 0,
        ..SignalingConfig::default()
    };
    Setup::new(Backend::Sqlite, SITE, &[], config).await
}

#[tokio::test]
async fn every_torture_message_gets_the_answer_the_rfc_asks_for() {
    let verdicts = verdicts();
    assert_eq!(
        verdicts.len(),
        49,
        "every message of RFC 4475 has its wire verdict"
    );
    let mut wrong = Vec::new();
    // A server per message and transport: several messages share a Via branch
    // and sent-by, which name one transaction (RFC 3261 s17.2.3), so one would be
    // a retransmission of another.
    for transport in ["UDP", "TCP"] {
        for (n, (file, (on_udp, on_tcp))) in verdicts.iter().enumerate() {
            let setup = server().await;
            let (udp, tcp) = (setup.server.bound.udp.unwrap(), setup.server.bound.tcp.unwrap());
            let bytes = std::fs::read(data_dir().join(file)).unwrap();
            let (expected, (got, alive)) = match transport {
                "UDP" => (on_udp, over_udp(udp, n, &bytes).await),
                _ => (on_tcp, over_tcp(tcp, n, &bytes).await),
            };
            let fits = match expected {
                Verdict::Nothing => got.is_empty(),
                Verdict::Status(status) => got.first() == Some(status),
            };
            eprintln!("{file:<16} {transport}: got {got:?}, expected {expected:?}, alive {alive}");
            if !fits || !alive {
                wrong.push(format!(
                    "{file} over {transport}: got {got:?} (alive: {alive}), expected {expected:?}"
                ));
            }
            setup.db.finish().await;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
