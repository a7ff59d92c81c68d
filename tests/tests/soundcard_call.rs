//! A call on a modem + sound card line through the real `offhook demo`: the line
//! is configured with a sound card (`soundcard = { playback, capture, vls = 7 }`)
//! and its emulated modem has audio ports (`modem_ports = { mic_in, speaker_out }`)
//! on this test's own PulseAudio server. The modem streams no audio over the PTY
//! (it dials the echo number and reports ringback, answer and hang-up in voice
//! command mode); off hook with `+VLS=7` its line is routed to its ports. The
//! only wires are two null sinks: the card plays into `card_out`, whose monitor
//! the modem's microphone-in records toward the line; the modem's speaker-out
//! plays the line (the echo number, 300 ms late) into `modem_spk`, whose monitor
//! the card captures. Our UA sends 1 s of silence then 5 s of 1 kHz PCMU; the
//! tone must come back as RTP (Goertzel): it went card -> modem mic -> line ->
//! echo -> modem speaker -> card. With the card's wires swapped (it plays into
//! `modem_spk` and captures `card_out.monitor`) or the modem's ports absent, the
//! same call hears nothing back: the path is through the modem, not a loopback
//! around it. The call ends with BYE, the CDR says normal, the line is idle
//! again, and the card's counters reach /metrics. Measured and printed: tone
//! onset sent -> heard back, less the echo number's own delay (bounded:
//! [`ONSET_BOUND`]), and the card's counts; the card's devices, rate and device
//! latency are in /metrics and in the line's diagnostics. A sound server that
//! dies mid-call (the card's streams fail) faults the line: the relay's BYE
//! ends the call, the CDR says line-fault, the line stays in fault while the
//! reopen backoff finds no server, and is idle again, carrying a call, once the
//! server is back.
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
use offhook_media::emulator::VLS_PORTS;
use offhook_media::emulator::network::ECHO_DELAY;
use offhook_media::rtp::packet::parse;
use offhook_media::rtp::report::is_rtcp;
use offhook_media::soundcard::testing::{
    CARD_OUT, CARD_OUT_MONITOR, MODEM_SPK, MODEM_SPK_MONITOR, PulseServer,
};
use offhook_tests::ua::{TestUa, click, sdp_port};
use offhook_tests::{Offhook, STEP_TIMEOUT, http_get, scratch_dir, wait_for_metric};
use serde_json::Value;
use tokio::net::UdpSocket;

const LINE: &str = "sound-line-1";
/// A line whose card is not there: a fault with a clear reason, the other line works.
const MISSING: &str = "sound-line-missing";
/// Silence before the tone, and the tone's length, in 20 ms packets.
const QUIET_PACKETS: u16 = 50;
const TONE_PACKETS: u16 = 250;
/// Listening after the last packet sent.
const TAIL: Duration = Duration::from_secs(1);
/// Tone onset sent -> heard back, end to end less the echo number's delay: the
/// relay's jitter buffer, the card and the modem's ports each way and the
/// capture periods. Measured 199 ms on a loaded machine (load average 6-8; it
/// was 0.5-1.2 s while the emulated modem's speaker port let ~0.9 s stand in
/// its queue), against the target of 150 ms; bounded here so that it
/// cannot grow back unseen.
const ONSET_BOUND: Duration = Duration::from_millis(350);

/// One call at a time: each runs its own server, relay and card threads in real time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn is_tone(samples: &[i16]) -> bool {
    let loud = samples.iter().any(|s| s.unsigned_abs() > 1000);
    loud && relative_level(samples, 1000.0, 8000.0) > 0.5
}

/// `line` in `offhook directory line list --json`.
async fn line_row(offhook: &Offhook, line: &str) -> Value {
    let out = offhook.run(&["directory", "line", "list", "--json"]).await;
    let lines: Value = serde_json::from_slice(&out.stdout).expect("line list JSON");
    let found = lines
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == line));
    found.cloned().unwrap_or_default()
}

/// The state of `line` in `offhook directory line list --json`.
async fn line_state(offhook: &Offhook, line: &str) -> String {
    line_row(offhook, line).await["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The value of `series` in `/metrics` of `web`.
async fn metric(web: &str, series: &str) -> i64 {
    let metrics = http_get(web, "/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} in /metrics"))
}

/// What came back of the tone in one call.
struct Heard {
    call_id: String,
    samples: Vec<i16>,
    /// Tone heard before it was sent (must be none).
    early: usize,
    /// Tone onset sent -> heard back.
    onset: Option<Duration>,
}

impl Heard {
    /// 250 ms windows with the tone in them (5 s sent = 20).
    fn windows(&self) -> usize {
        self.samples.chunks_exact(2000).filter(|w| is_tone(w)).count()
    }
}

/// The config of one line with its card, and the other line with a missing card.
fn config(dir: &std::path::Path, card: (&str, &str), ports: Option<(&str, &str)>) -> String {
    let ports = ports.map_or(String::new(), |(mic_in, speaker_out)| {
        format!(", modem_ports = {{ mic_in = \"{mic_in}\", speaker_out = \"{speaker_out}\" }}")
    });
    let (playback, capture) = card;
    let config = dir.join("offhook.toml");
    std::fs::write(
        &config,
        format!(
            "[media]\nlines = [{{ name = \"{LINE}\", device = \"emulated\", \
             soundcard = {{ playback = \"{playback}\", capture = \"{capture}\", vls = {VLS_PORTS} }}{ports} }}, \
             {{ name = \"{MISSING}\", device = \"emulated\", \
             soundcard = {{ playback = \"no_such_card\", capture = \"no_such_card.monitor\" }} }}]\n"
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// Starts the demo on `config` with `pulse`'s server.
async fn demo(offhook: &Offhook, pulse: &PulseServer, config: &str) -> offhook_tests::Demo {
    let sound = pulse.client_env();
    let mut env = vec![
        ("OFFHOOK_CONFIG", config),
        ("RUST_LOG", "warn,offhook_media::modem::port=info"),
    ];
    env.extend(sound.iter().map(|(name, value)| (*name, value.as_str())));
    offhook.demo(&env).await
}

/// Calls the echo number on the sound card line, sends 1 s of silence and 5 s
/// of tone, listens a while, hangs up.
async fn tone_call(web: &str, proxy: SocketAddr) -> Heard {
    let mut ua = TestUa::bind().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let grant = click(web, "demo-echo").await;
    let call = ua.call(proxy, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(call.status, 200, "{call:?}");
    let ok = call.response.clone().unwrap();
    assert_eq!(ok.headers.get("X-Offhook-Answer"), Some("ringback-stopped"));
    let relay_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_port(&ok.body)));

    // 1 s of silence, 5 s of tone, one packet every 20 ms; then listen a while.
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut buf = [0u8; 2048];
    let (mut heard, mut onset_sent, mut onset_heard) = (Vec::<i16>::new(), None, None);
    let mut early = 0;
    let mut seq = 0u16;
    let mut tail_until = None;
    while tail_until.is_none_or(|until| Instant::now() < until) {
        tick.tick().await;
        if seq < QUIET_PACKETS + TONE_PACKETS {
            let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
            packet.extend((u32::from(seq) * 160).to_be_bytes());
            packet.extend(0x0bad_cafe_u32.to_be_bytes());
            if seq < QUIET_PACKETS {
                packet.extend([0xFF; 160]);
            } else {
                onset_sent.get_or_insert_with(Instant::now);
                packet.extend((0..160).map(|_| linear_to_ulaw(tone.next_sample())));
            }
            rtp.send_to(&packet, relay_rtp).await.unwrap();
            seq += 1;
        } else {
            tail_until.get_or_insert_with(|| Instant::now() + TAIL);
        }
        while let Ok((len, _)) = rtp.try_recv_from(&mut buf) {
            if is_rtcp(&buf[..len]) {
                continue;
            }
            let Ok(packet) = parse(&buf[..len]) else { continue };
            let samples: Vec<i16> = packet.payload.iter().map(|&c| ulaw_to_linear(c)).collect();
            if is_tone(&samples) {
                match onset_sent {
                    None => early += 1,
                    Some(_) => {
                        onset_heard.get_or_insert_with(Instant::now);
                    }
                }
            }
            heard.extend(samples);
        }
    }
    let bye = ua.hang_up(call.session).await;
    assert_eq!(bye.status, 200);
    Heard {
        call_id: call.call_id.clone(),
        samples: heard,
        early,
        onset: onset_heard
            .zip(onset_sent)
            .map(|(heard, sent): (Instant, Instant)| heard.duration_since(sent)),
    }
}

/// The CDR of the call `call_id`.
async fn cdr_of(offhook: &Offhook, call_id: &str) -> Value {
    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    cdrs.as_array()
        .and_then(|c| c.iter().find(|c| c["call_id"] == call_id))
        .cloned()
        .expect("the call's CDR")
}

/// Waits (at most `within`) until `line` is in `state`; its row then.
async fn line_reaches(offhook: &Offhook, line: &str, state: &str, within: Duration) -> Value {
    let reached = async {
        loop {
            let row = line_row(offhook, line).await;
            if row["state"] == state {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(within, reached)
        .await
        .unwrap_or_else(|_| panic!("{line} is {state} within {within:?}"))
}

/// The call's CDR ended normally and the line is idle again.
async fn ended_cleanly(offhook: &Offhook, call_id: &str) {
    let cdr = cdr_of(offhook, call_id).await;
    assert_eq!(cdr["answer_source"], "ringback-stopped");
    assert_eq!(cdr["hangup_cause"], "normal");
    line_reaches(offhook, LINE, "idle", STEP_TIMEOUT).await;
}

/// The demo with the sound card line wired to the modem's ports, on its own
/// sound server in a scratch directory `name`.
async fn wired_demo(name: &str) -> (std::path::PathBuf, PulseServer, Offhook, offhook_tests::Demo) {
    let dir = scratch_dir(name);
    let pulse = PulseServer::start(&dir)
        .unwrap_or_else(|e| panic!("the sound card line test needs its PulseAudio server: {e}"));
    let config = config(
        &dir,
        (CARD_OUT, MODEM_SPK_MONITOR),
        Some((CARD_OUT_MONITOR, MODEM_SPK)),
    );
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = demo(&offhook, &pulse, &config).await;
    (dir, pulse, offhook, demo)
}

#[tokio::test]
async fn a_tone_reaches_the_line_through_the_card_and_the_modem_s_ports_and_its_echo_comes_back() {
    let _serial = SERIAL.lock().await;
    let (_dir, pulse, offhook, demo) = wired_demo("soundcard-call").await;
    let (proxy, web) = (demo.sip_udp, demo.web.clone());
    let out = offhook.run(&["directory", "line", "list", "--json"]).await;
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        lines.contains(LINE) && lines.contains("modem+soundcard"),
        "the configured line is in the directory: {lines}"
    );

    // The line with no card is in fault, saying why; the other one still takes the call.
    let row = line_reaches(&offhook, MISSING, "fault", STEP_TIMEOUT).await;
    let why = row["fault_reason"].as_str().unwrap_or("");
    assert!(why.contains("no output device named 'no_such_card'"), "{why}");

    let heard = tone_call(&web, proxy).await;
    let windows = heard.windows();
    let latency = heard.onset.map(|onset| onset.saturating_sub(ECHO_DELAY));
    eprintln!(
        "sound card line: {} samples heard back, {windows} windows of 250 ms with the tone \
         (5 s sent = 20); tone onset sent -> heard back less the echo's {ECHO_DELAY:?}: {latency:?}",
        heard.samples.len()
    );
    assert_eq!(heard.early, 0, "no tone heard before it was sent");
    let latency = latency.expect("the tone came back through the card and the modem's ports");
    assert!(
        windows >= 14,
        "the tone came back for most of its 5 s ({windows} of 20 windows)"
    );
    assert!(latency <= ONSET_BOUND, "{latency:?}");

    // The call ended cleanly: CDR, the line idle again, the card's counters published.
    ended_cleanly(&offhook, &heard.call_id).await;
    let series = |name: &str| format!("{name}{{node=\"demo-relay\",line=\"{LINE}\"}}");
    let played = wait_for_metric(&web, &series("offhook_soundcard_played_samples_total"), 40_000).await;
    // Published every 5 s: wait (bounded) until a publication no longer changes it.
    let settled = async {
        let mut last = played;
        loop {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let now = metric(&web, &series("offhook_soundcard_played_samples_total")).await;
            if now == last {
                break;
            }
            last = now;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), settled)
        .await
        .expect("the card's counters settle after the call");
    let played = metric(&web, &series("offhook_soundcard_played_samples_total")).await;
    let underruns = metric(&web, &series("offhook_soundcard_underrun_samples_total")).await;
    let overruns = metric(&web, &series("offhook_soundcard_overrun_samples_total")).await;
    let dropped = metric(&web, &series("offhook_soundcard_dropped_samples_total")).await;
    let captured = metric(&web, &series("offhook_soundcard_captured_samples_total")).await;
    let drift_dropped = metric(&web, &series("offhook_soundcard_drift_dropped_samples_total")).await;
    let drift_repeated = metric(&web, &series("offhook_soundcard_drift_repeated_samples_total")).await;
    eprintln!(
        "sound card during the call: played {played}, underruns {underruns}, captured {captured}, \
         overruns {overruns}, dropped {dropped}; drift compensation dropped {drift_dropped}, \
         repeated {drift_repeated}"
    );
    assert!(
        played >= i64::from(QUIET_PACKETS + TONE_PACKETS) * 160 * 9 / 10,
        "the call's audio was played by the card: {played}"
    );
    assert_eq!(overruns, 0, "the relay kept up with the card's capture");
    // A machine this loaded (CI beside other builds) may starve the card's thread
    // for a frame or two; more than 1 % of the call dropped is a card that does
    // not keep up.
    assert!(
        dropped * 100 <= played,
        "the card kept up with the relay's audio: {dropped} of {played} dropped"
    );
    // The operator's view: devices, rate and latency in /metrics and the line's diagnostics.
    let metrics = http_get(&web, "/metrics").await;
    let info = format!(
        "offhook_soundcard_info{{node=\"demo-relay\",line=\"{LINE}\",playback=\"{CARD_OUT}\",capture=\"{MODEM_SPK_MONITOR}\"}} 1"
    );
    assert!(metrics.contains(&info), "{info} in /metrics");
    assert_eq!(metric(&web, &series("offhook_soundcard_rate_hz")).await, 8000);
    let play_us = metric(&web, &series("offhook_soundcard_playback_latency_us")).await;
    assert!(
        0 < play_us && play_us <= 60_000,
        "playback device latency {play_us} us"
    );
    let diagnose = offhook
        .run(&["directory", "line", "diagnose", LINE, "--json"])
        .await;
    let diagnose: Value = serde_json::from_slice(&diagnose.stdout).expect("diagnostics JSON");
    let card = &diagnose["sound_card"];
    assert_eq!(card["playback"], CARD_OUT, "{diagnose}");
    assert_eq!(
        (card["capture"].as_str(), card["rate_hz"].as_i64()),
        (Some(MODEM_SPK_MONITOR), Some(8000))
    );
    assert_eq!(card["played_samples"].as_i64(), Some(played));
    assert_eq!(
        (
            card["drift_dropped_samples"].as_i64(),
            card["drift_repeated_samples"].as_i64()
        ),
        (Some(drift_dropped), Some(drift_repeated))
    );
    assert!(demo.running.stop().await.success());
    drop(pulse);
    offhook.db.finish().await;
}

/// The same call with the card not wired to the modem's ports: nothing comes back.
async fn no_tone_back(name: &str, card: (&str, &str), ports: Option<(&str, &str)>) {
    let _serial = SERIAL.lock().await;
    let dir = scratch_dir(name);
    let pulse = PulseServer::start(&dir)
        .unwrap_or_else(|e| panic!("the sound card line test needs its PulseAudio server: {e}"));
    let config = config(&dir, card, ports);
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = demo(&offhook, &pulse, &config).await;
    let heard = tone_call(&demo.web, demo.sip_udp).await;
    let windows = heard.windows();
    eprintln!(
        "{name}: {windows} windows of 250 ms with the tone, onset {:?}",
        heard.onset
    );
    assert_eq!(
        (heard.onset, windows, heard.early),
        (None, 0, 0),
        "no tone without the card <-> modem wires"
    );
    ended_cleanly(&offhook, &heard.call_id).await;
    assert!(demo.running.stop().await.success());
    drop(pulse);
    offhook.db.finish().await;
}

#[tokio::test]
async fn with_the_card_s_wires_swapped_no_audio_reaches_the_line_or_comes_back() {
    // The card plays into the modem's speaker wire and captures its own output's
    // wire, which only the modem's microphone listens to.
    no_tone_back(
        "soundcard-swapped",
        (MODEM_SPK, CARD_OUT_MONITOR),
        Some((CARD_OUT_MONITOR, MODEM_SPK)),
    )
    .await;
}

#[tokio::test]
async fn without_the_modem_s_ports_no_audio_comes_back() {
    no_tone_back("soundcard-no-ports", (CARD_OUT, MODEM_SPK_MONITOR), None).await;
}

/// Sends 20 ms of PCMU silence to `to` every 20 ms, until aborted.
fn silence_to(rtp: std::sync::Arc<UdpSocket>, to: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for seq in 0u16.. {
            tick.tick().await;
            let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
            packet.extend((u32::from(seq) * 160).to_be_bytes());
            packet.extend(0x0bad_f00d_u32.to_be_bytes());
            packet.extend([0xFF; 160]);
            let _ = rtp.send_to(&packet, to).await;
        }
    })
}

#[tokio::test]
async fn a_sound_server_that_dies_mid_call_faults_the_line_ends_the_call_and_the_line_comes_back() {
    let _serial = SERIAL.lock().await;
    let (dir, mut pulse, offhook, demo) = wired_demo("soundcard-unplugged").await;
    let (proxy, web) = (demo.sip_udp, demo.web.clone());
    line_reaches(&offhook, LINE, "idle", STEP_TIMEOUT).await;

    // A call on the line, the caller sending; then the sound server dies.
    let mut ua = TestUa::bind().await;
    let rtp = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let grant = click(&web, "demo-echo").await;
    let call = ua.call(proxy, &grant, rtp.local_addr().unwrap()).await;
    assert_eq!(call.status, 200, "{call:?}");
    let relay_rtp = SocketAddr::from(([127, 0, 0, 1], sdp_port(&call.response.unwrap().body)));
    let sending = silence_to(rtp, relay_rtp);
    line_reaches(&offhook, LINE, "in-call", STEP_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(pulse);

    // The relay ends the call (BYE, CDR line-fault); the line is in fault, saying why.
    let bye = ua.bye_from_far_side(call.session).await;
    sending.abort();
    eprintln!("the relay's BYE: Reason {:?}", bye.headers.get("Reason"));
    let row = line_reaches(&offhook, LINE, "fault", STEP_TIMEOUT).await;
    let why = row["fault_reason"].as_str().unwrap_or("").to_owned();
    eprintln!("the line's fault: {why}");
    assert!(
        why.contains("sound card") || why.contains("audio ports"),
        "the fault says the sound went: {why}"
    );
    let cdr = cdr_of(&offhook, &call.call_id).await;
    assert_eq!(cdr["hangup_cause"], "line-fault", "{cdr}");
    assert!(!cdr["ended_at"].is_null(), "the CDR ended: {cdr}");
    // Retried with the backoff while the card is away: still in fault.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(line_state(&offhook, LINE).await, "fault");

    // The server is back (same address): a retry opens the card (and the
    // emulated modem's ports), the line is idle and carries a call again.
    pulse = PulseServer::start(&dir).expect("the sound server starts again");
    line_reaches(&offhook, LINE, "idle", Duration::from_secs(90)).await;
    let heard = tone_call(&web, proxy).await;
    let windows = heard.windows();
    eprintln!("after the card came back: {windows} windows of 250 ms with the tone");
    assert!(
        heard.onset.is_some() && windows >= 14,
        "the tone came back ({windows} of 20 windows)"
    );
    ended_cleanly(&offhook, &heard.call_id).await;
    assert!(demo.running.stop().await.success());
    drop(pulse);
    offhook.db.finish().await;
}
