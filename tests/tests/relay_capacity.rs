//! The media relay's capacity benchmark (run by `bench/relay_capacity.sh`, not
//! by `cargo test`): a real `offhook media` with `OFFHOOK_BENCH_CALLS` emulated
//! lines, and this load client in the place of signaling. It answers the
//! relay's REGISTERs, INVITEs every line to the echo number at once (signed
//! with the relay's key, as signaling signs them), and sends each call a tone
//! of its own frequency as 20 ms PCMU packets in real time from the project's
//! own [`RtpSender`]. Once every call is answered and has run
//! [`WARM_UP`], it measures for `OFFHOOK_BENCH_SECONDS` (default 8): the
//! relay process's CPU (utime+stime from `/proc`) per call, its resident memory
//! per call (above the same relay idle with its lines open), the echo's packet
//! loss (gaps in the relay's sequence numbers) and interarrival jitter
//! (RFC 3550), and whether each call's own tone came back (Goertzel). The
//! relay's jitter-buffer late and lost counters come from the metrics it
//! publishes. The CPU figure includes the emulated modems (tasks in the relay
//! process, each streaming 8000 B/s both ways over its PTY). One table row is
//! printed per run. `OFFHOOK_BENCH_RELAY_CPU` pins the relay to that core.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the environment"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use offhook_directory::testing::Backend;
use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::dsp::goertzel::relative_level;
use offhook_media::dsp::tone::Tone;
use offhook_media::emulator::network::ECHO;
use offhook_media::rtp::packet::parse as parse_rtp;
use offhook_media::rtp::report::is_rtcp;
use offhook_media::rtp::sender::RtpSender;
use offhook_media::rtp::units::{ClockRate, ExtSeq, RtpTime, SeqExtender, SeqNo};
use offhook_sip::message::{Message, Method, Request, Response, parse};
use offhook_tests::ua::sdp_port;
use offhook_tests::{Offhook, Running};
use offhook_vocab::{DigestAlgorithm, headers};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

const RELAY: &str = "bench-relay";
const DOMAIN: &str = "bench.offhook.test";
const PASSWORD: &str = "bench-relay-secret";
/// How long every call runs after the last one is answered, before measuring.
const WARM_UP: Duration = Duration::from_secs(2);
/// Bound of call setup: the echo answers after two rings (~5 s).
const SETUP: Duration = Duration::from_secs(20);
/// Samples of echo a call keeps for its tone check (the last 0.5 s).
const CHECKED_SAMPLES: usize = 4000;
/// Tone share of the echo that counts as "our tone came back".
const ECHO_LEVEL: f64 = 0.3;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wall_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Line `i`'s name.
fn line_name(i: usize) -> String {
    format!("bench-line-{i}")
}

/// Call `i`'s tone: 400..=2750 Hz in 50 Hz steps, so a crossed call shows.
fn tone_hz(i: usize) -> f64 {
    400.0 + 50.0 * (i % 48) as f64
}

/// The relay's CPU time (utime+stime, in clock ticks) and resident memory
/// (KiB), from `/proc`.
fn relay_usage(relay: &Running) -> (u64, u64) {
    let pid = relay.child.id().expect("the relay runs");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the relay's stat");
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(14) + ticks(15), relay.rss_kib())
}

/// What the SIP side routes to a waiting call: responses by Call-ID.
type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>>;

/// Signaling's stand-in: one UDP socket; REGISTER, OPTIONS and BYE from the
/// relay get 200; responses go to the call that waits for them.
struct Signaling {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    key: String,
    waiters: Waiters,
}

impl Signaling {
    async fn bind() -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("a SIP socket"));
        let local = socket.local_addr().expect("bound");
        Self {
            socket,
            local,
            key: DigestAlgorithm::Sha256.ha1(RELAY, DOMAIN, PASSWORD),
            waiters: Waiters::default(),
        }
    }

    /// Serves the relay in the background; the relay's SIP address and the
    /// lines registered so far (a count) come out of the watch.
    fn serve(&self) -> watch::Receiver<(Option<SocketAddr>, usize)> {
        let (registered, watch) = watch::channel((None, 0));
        let (socket, waiters) = (Arc::clone(&self.socket), Arc::clone(&self.waiters));
        tokio::spawn(async move {
            let mut lines = std::collections::HashSet::new();
            let mut buf = vec![0u8; 65536];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                match parse(&buf[..len]) {
                    Ok(Message::Request(request)) => {
                        let mut ok = request.response(200, "OK", Some("bench"));
                        if request.method == Method::Register {
                            if let Some(contact) = request.headers.get("Contact") {
                                ok.headers.push("Contact", &format!("{contact};expires=3600"));
                            }
                            lines.insert(request.headers.get("To").unwrap_or_default().to_owned());
                            registered.send_replace((Some(from), lines.len()));
                        }
                        let _ = socket.send_to(&ok.to_bytes(), from).await;
                    }
                    Ok(Message::Response(response)) => {
                        let waiter = waiters.lock().unwrap().get(response.call_id()).cloned();
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(response);
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        watch
    }

    /// Signs `text` (a request) the way signaling does and sends it to `relay`.
    async fn send_signed(&self, text: &str, relay: SocketAddr) {
        let Ok(Message::Request(mut request)) = parse(text.as_bytes()) else {
            panic!("the load client's request parses: {text}");
        };
        if request.method != Method::Ack {
            offhook_sip::trust::sign(self.key.as_bytes(), &mut request, wall_ms());
        }
        self.send(&request, relay).await;
    }

    async fn send(&self, request: &Request, relay: SocketAddr) {
        self.socket
            .send_to(&request.to_bytes(), relay)
            .await
            .expect("send to the relay");
    }
}

/// The window every call measures in, once the last call is answered.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// One call's figures over the window.
#[derive(Debug, Default)]
struct CallFigures {
    answered: bool,
    sent: u64,
    received: u64,
    /// Packets missing from the relay's sequence numbers in the window.
    lost: u64,
    /// RFC 3550 interarrival jitter at the end, in ms.
    jitter_ms: f64,
    echo_present: bool,
}

/// The relay's sequence numbers and arrival times: loss and jitter (RFC 3550 s6.4.1).
#[derive(Debug, Default)]
struct EchoStream {
    seq: SeqExtender,
    first: Option<ExtSeq>,
    last: Option<(Instant, RtpTime)>,
    jitter_ticks: f64,
}

impl EchoStream {
    fn arrived(&mut self, at: Instant, seq: SeqNo, timestamp: RtpTime) {
        let extended = self.seq.extend(seq);
        self.first = Some(self.first.map_or(extended, |f| f.min(extended)));
        if let Some((then, ts)) = self.last {
            let transit = at.duration_since(then).as_secs_f64() * 8000.0;
            let d = (transit - f64::from(timestamp.ticks_since(ts))).abs();
            self.jitter_ticks += (d - self.jitter_ticks) / 16.0;
        }
        self.last = Some((at, timestamp));
    }

    /// Packets the relay sent in the span seen (first to highest).
    fn expected(&self) -> u64 {
        match (self.first, self.seq.highest()) {
            (Some(first), Some(highest)) => highest.0 - first.0 + 1,
            _ => 0,
        }
    }
}

/// Places call `i` on its line, runs its media until the window ends, hangs up.
async fn call(
    i: usize,
    run: u32,
    signaling: Arc<Signaling>,
    relay: SocketAddr,
    answered: mpsc::UnboundedSender<bool>,
    mut window: watch::Receiver<Option<Window>>,
) -> CallFigures {
    let mut figures = CallFigures::default();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("an RTP socket");
    let rtp_port = rtp.local_addr().expect("bound").port();
    let (sip, line) = (signaling.local, line_name(i));
    let call_id = format!("load-{run}-{i}@bench");
    let (tx, mut responses) = mpsc::unbounded_channel();
    signaling.waiters.lock().unwrap().insert(call_id.clone(), tx);
    let sdp = format!(
        "v=0\r\no=- {i} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n"
    );
    let dialog = format!("From: <sip:load@{sip}>;tag=load{i}\r\nCall-ID: {call_id}\r\nMax-Forwards: 70\r\n");
    let invite = format!(
        "INVITE sip:{line}@{relay} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bKinv{run}x{i}\r\n{dialog}\
         To: <sip:{line}@{relay}>\r\nCSeq: 1 INVITE\r\nContact: <sip:load@{sip}>\r\n\
         {}: {ECHO}\r\n{}: {line}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        headers::NUMBER,
        headers::LINE,
        sdp.len()
    );
    signaling.send_signed(&invite, relay).await;
    let ok = loop {
        match tokio::time::timeout(SETUP, responses.recv()).await {
            Ok(Some(r)) if r.status == 200 => break Some(r),
            Ok(Some(r)) if r.status < 200 => continue,
            _ => break None,
        }
    };
    let _ = answered.send(ok.is_some());
    let Some(ok) = ok else {
        return figures;
    };
    figures.answered = true;
    let to = ok.headers.get("To").unwrap_or_default().to_owned();
    let ack = format!(
        "ACK sip:{line}@{relay} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bKack{run}x{i}\r\n{dialog}\
         To: {to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    signaling.send_signed(&ack, relay).await;
    let relay_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_port(&ok.body)));

    let mut sender = RtpSender::new(0, &mut StdRng::seed_from_u64(i as u64));
    let mut tone = Tone::new(tone_hz(i), 8000.0, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut stream, mut heard) = (EchoStream::default(), Vec::with_capacity(2 * CHECKED_SAMPLES));
    let mut buf = [0u8; 2048];
    let mut frame = [0u8; 160];
    loop {
        let measuring = *window.borrow();
        let now = Instant::now();
        if measuring.is_some_and(|w| now >= w.end) {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                frame.iter_mut().for_each(|b| *b = linear_to_ulaw(tone.next_sample()));
                sender.handle_input(now, &frame);
                sender.handle_timeout(now);
                while let Some(packet) = sender.poll_output() {
                    let _ = rtp.send_to(&packet, relay_rtp).await;
                    if measuring.is_some_and(|w| now >= w.start) {
                        figures.sent += 1;
                    }
                }
            }
            got = rtp.recv_from(&mut buf) => {
                let Ok((len, _)) = got else { continue };
                if measuring.is_none_or(|w| Instant::now() < w.start) {
                    continue;
                }
                if is_rtcp(&buf[..len]) {
                    continue;
                }
                if let Ok(packet) = parse_rtp(&buf[..len]) {
                    figures.received += 1;
                    stream.arrived(Instant::now(), packet.seq, packet.time(ClockRate::NARROWBAND));
                    heard.extend(packet.payload.iter().map(|&c| ulaw_to_linear(c)));
                    if heard.len() > 2 * CHECKED_SAMPLES {
                        heard.drain(..heard.len() - CHECKED_SAMPLES);
                    }
                }
            }
            _ = window.changed() => {}
        }
    }
    figures.lost = stream.expected().saturating_sub(figures.received);
    figures.jitter_ms = stream.jitter_ticks / 8.0;
    let checked = &heard[heard.len().saturating_sub(CHECKED_SAMPLES)..];
    figures.echo_present =
        checked.len() == CHECKED_SAMPLES && relative_level(checked, tone_hz(i), 8000.0) > ECHO_LEVEL;

    let contact = ok
        .headers
        .get("Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .map_or_else(|| format!("sip:{line}@{relay}"), str::to_owned);
    let bye = format!(
        "BYE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bKbye{run}x{i}\r\n{dialog}\
         To: {to}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    signaling.send_signed(&bye, relay).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), responses.recv()).await;
    figures
}

/// The sum of the relay's published `name` over its labels.
async fn published(offhook: &Offhook, name: &str) -> i64 {
    let metrics = offhook
        .db
        .directory
        .node_metrics(0)
        .await
        .expect("the published metrics");
    metrics
        .iter()
        .filter(|m| m.node == RELAY && m.name == name)
        .map(|m| m.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: bench/relay_capacity.sh"]
async fn relay_capacity_of_rtp_avp_pcmu_calls_to_the_echo_number() {
    let calls = usize::try_from(env("OFFHOOK_BENCH_CALLS", 10)).unwrap_or(10);
    let seconds = env("OFFHOOK_BENCH_SECONDS", 8);
    let offhook = Offhook::new(Backend::Sqlite).await;
    let signaling = Arc::new(Signaling::bind().await);
    let mut registered = signaling.serve();
    let lines: Vec<String> = (0..calls)
        .map(|i| format!("{{ name = \"{}\", device = \"emulated\" }}", line_name(i)))
        .collect();
    let lines = format!("[{}]", lines.join(", "));
    let sip = signaling.local.to_string();
    let mut relay = offhook.spawn(
        &["media"],
        &[
            ("OFFHOOK_MEDIA__NAME", RELAY),
            ("OFFHOOK_MEDIA__PASSWORD", PASSWORD),
            ("OFFHOOK_MEDIA__DOMAIN", DOMAIN),
            ("OFFHOOK_MEDIA__SIGNALING", &sip),
            ("OFFHOOK_MEDIA__LINES", &lines),
        ],
    );
    if let Ok(core) = std::env::var("OFFHOOK_BENCH_RELAY_CPU") {
        let pid = relay.child.id().expect("the relay runs").to_string();
        let pinned = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", &core, &pid])
            .output()
            .expect("run taskset");
        assert!(pinned.status.success(), "taskset: {pinned:?}");
    }
    let relay_sip = tokio::time::timeout(SETUP, registered.wait_for(|(_, n)| *n >= 1))
        .await
        .expect("the relay registers in time")
        .expect("the SIP side runs")
        .0
        .expect("the REGISTERs' source");
    relay.wait_for_line("media relay at").await;
    // The lines idle for a moment: the relay's memory before any call.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, idle_rss) = relay_usage(&relay);

    let run = std::process::id();
    let (answered_tx, mut answered_rx) = mpsc::unbounded_channel();
    let (window_tx, window) = watch::channel(None);
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            tokio::spawn(call(
                i,
                run,
                Arc::clone(&signaling),
                relay_sip,
                answered_tx.clone(),
                window.clone(),
            ))
        })
        .collect();
    for _ in 0..calls {
        answered_rx.recv().await.expect("every call reports its answer");
    }
    let start = Instant::now() + WARM_UP;
    let end = start + Duration::from_secs(seconds);
    window_tx.send_replace(Some(Window { start, end }));
    tokio::time::sleep_until(start.into()).await;
    let (cpu_start, _) = relay_usage(&relay);
    let measured_from = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let (cpu_end, busy_rss) = relay_usage(&relay);
    let wall = measured_from.elapsed().as_secs_f64();
    let mut figures = Vec::new();
    for task in tasks {
        figures.push(task.await.expect("a call task"));
    }
    // The relay publishes its counters every 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late = published(&offhook, "offhook_rtp_packets_late_total").await;
    let jb_lost = published(&offhook, "offhook_rtp_packets_lost_total").await;
    let relay_received = published(&offhook, "offhook_rtp_packets_received_total").await;

    let up = figures.iter().filter(|f| f.answered).count();
    let echoed = figures.iter().filter(|f| f.echo_present).count();
    let sent: u64 = figures.iter().map(|f| f.sent).sum();
    let received: u64 = figures.iter().map(|f| f.received).sum();
    let lost: u64 = figures.iter().map(|f| f.lost).sum();
    let loss_pct = 100.0 * lost as f64 / (received + lost).max(1) as f64;
    let jitter_max = figures.iter().map(|f| f.jitter_ms).fold(0.0, f64::max);
    let core_share = (cpu_end - cpu_start) as f64 / 100.0 / wall;
    let per_call = core_share / up.max(1) as f64;
    let rss_per_call = busy_rss.saturating_sub(idle_rss) as f64 / up.max(1) as f64;
    let idle_per_line = idle_rss as f64 / calls as f64;
    println!(
        "RELAY-CAPACITY rtp calls={calls} answered={up} echo={echoed} relay-cpu={:.1}% cpu/call={:.3}% \
         calls/core={:.0} rss-idle={idle_rss}KiB ({idle_per_line:.0}KiB/line) rss/call={rss_per_call:.0}KiB \
         sent={sent} echoed-pkts={received} loss={loss_pct:.3}% jitter-max={jitter_max:.1}ms \
         jb-late={late} jb-lost={jb_lost} of {relay_received}",
        core_share * 100.0,
        per_call * 100.0,
        1.0 / per_call.max(1e-9),
    );
    assert!(relay.stop().await.success(), "the relay stops cleanly");
    offhook.db.finish().await;
    assert_eq!(up, calls, "every call answered");
}
