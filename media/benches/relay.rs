//! The relay's network-side benchmark, on one core in simulated time:
//! (a) throughput: PCMU RTP datagrams parsed and validated, decoded, pushed into a
//! jitter buffer per stream, popped every 20 ms and encoded to mu-law line bytes,
//! across many interleaved streams; (b) the one-way latency the jitter buffer adds
//! (p50/p95) and its late loss, at 0 ms and 30 ms of uniform network jitter.
//! Targets: >= 100,000 packets/s; at 30 ms jitter p95 <= 60 ms with < 1 % late loss.
//! Run with `bench/rtp.sh` (`cargo bench -p offhook-media --bench relay`).
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use offhook_media::rtp::codec::{frame_to_line, to_audio_packet};
use offhook_media::rtp::jitter::{FRAME_PERIOD, FrameKind, JitterBuffer, JitterConfig};
use offhook_media::rtp::netsim::{JitterModel, NetProfile, play_through, schedule};
use offhook_media::rtp::packet::{PayloadMap, RtpReceiver};

const MS: Duration = Duration::from_millis(1);

/// Simultaneous streams and packets per stream in the throughput run (2,000,000).
const STREAMS: u32 = 1000;
const PACKETS_PER_STREAM: u32 = 2000;

/// One PCMU datagram of `stream` with sequence number and timestamp for `index`.
fn datagram(stream: u32, index: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..160u32).map(|i| (i * 7 + stream) as u8).collect();
    rtp_rs::RtpPacketBuilder::new()
        .payload_type(0)
        .marked(index == 0)
        .sequence((index as u16).into())
        .ssrc(0x1000 + stream)
        .timestamp(index * 160)
        .payload(&payload)
        .build()
        .expect("payload type 0 and no CSRCs build")
}

/// Relays every stream's packets in 20 ms rounds: each datagram is validated,
/// decoded into its stream's jitter buffer, and a frame is popped as line bytes.
fn throughput() {
    let start = Instant::now();
    let mut calls: Vec<(RtpReceiver, JitterBuffer, Vec<u8>)> = (0..STREAMS)
        .map(|s| {
            (
                RtpReceiver::new(PayloadMap::g711(Some(101))),
                JitterBuffer::new(JitterConfig::default()),
                datagram(s, 0),
            )
        })
        .collect();
    let mut line_checksum = 0u64;
    let (mut relayed, mut audio_frames) = (0u64, 0u64);
    let began = Instant::now();
    for index in 0..PACKETS_PER_STREAM {
        // Simulated time: packets arrive 5 ms into each 20 ms playout period.
        let tick = start + FRAME_PERIOD * index;
        for (stream, (receiver, jb, buf)) in calls.iter_mut().enumerate() {
            // Stamping the next datagram stands in for receiving it (a few stores).
            buf[2..4].copy_from_slice(&(index as u16).to_be_bytes());
            buf[4..8].copy_from_slice(&(index * 160).to_be_bytes());
            buf[1] = if index == 0 { 0x80 } else { 0 };
            if let Ok(packet) = receiver.receive(buf)
                && let Some(audio) = to_audio_packet(&packet)
            {
                jb.push(tick + 5 * MS, audio);
                relayed += 1;
            }
            let frame = jb.pop(tick + 20 * MS);
            audio_frames += u64::from(frame.kind == FrameKind::Audio);
            let line = frame_to_line(&frame);
            line_checksum = line_checksum.wrapping_add(u64::from(line[stream % 160]));
        }
    }
    let busy = began.elapsed();
    let rate = relayed as f64 / busy.as_secs_f64();
    println!(
        "throughput: {relayed} PCMU packets over {STREAMS} streams relayed in {:.2} s on one core: {:.0} packets/s ({audio_frames} audio frames to the line, checksum {line_checksum})",
        busy.as_secs_f64(),
        rate,
    );
}

/// Calls per latency scenario and packets per call (60 s each).
const LATENCY_CALLS: u64 = 40;
const LATENCY_PACKETS: u32 = 3000;

fn latency(name: &str, jitter: JitterModel) {
    let profile = NetProfile {
        base_delay: 30 * MS,
        jitter,
        loss: 0.0,
    };
    let mut added = Vec::new();
    let (mut late, mut received, mut grown, mut shrunk) = (0, 0, 0, 0);
    for call in 0..LATENCY_CALLS {
        let packets = schedule(call, LATENCY_PACKETS, &profile);
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Spread the playout clock's phase against the packets' over the calls.
        let phase = Duration::from_micros(call * 20_000 / LATENCY_CALLS);
        let r = play_through(&mut jb, Instant::now(), &packets, &profile, phase, 300 * MS);
        added.extend(r.added_latency);
        late += r.stats.late;
        received += r.stats.received;
        grown += r.stats.grown;
        shrunk += r.stats.shrunk;
    }
    added.sort();
    let q = |q: f64| added[((added.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency {name:>14}: added one-way p50 {:>5.1} ms  p95 {:>5.1} ms  late loss {:.3} %  grown/shrunk {}/{} frames  ({} calls x {} packets)",
        q(0.5).as_secs_f64() * 1e3,
        q(0.95).as_secs_f64() * 1e3,
        late as f64 * 100.0 / received.max(1) as f64,
        grown,
        shrunk,
        LATENCY_CALLS,
        LATENCY_PACKETS,
    );
}

fn main() {
    throughput();
    latency("0 ms jitter", JitterModel::None);
    latency("30 ms jitter", JitterModel::Uniform(30 * MS));
    latency(
        "pareto 10/2.5",
        JitterModel::Pareto {
            scale: 10 * MS,
            shape: 2.5,
            cap: 200 * MS,
        },
    );
}
