//! The relay's network-side benchmark, on one core in simulated time:
//! (a) throughput: PCMU RTP datagrams parsed and validated, decoded, pushed into a
//! jitter buffer per stream, popped every 20 ms and encoded to mu-law line bytes,
//! across many interleaved streams; (b) the one-way latency the jitter buffer adds
//! (p50/p95) and its late loss, at 0 ms and 30 ms of uniform network jitter.
//! Run with `bench/rtp.sh` (`cargo bench -p offhook-media --bench relay`).

use std::time::{Duration, Instant};

use offhook_media::rtp::jitter::{JitterBuffer, JitterConfig};
use offhook_media::rtp::netsim::{JitterModel, NetProfile, play_through, schedule};

const MS: Duration = Duration::from_millis(1);

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
