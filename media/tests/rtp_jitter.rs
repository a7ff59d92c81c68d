//! The jitter buffer against seeded packet schedules in simulated time: in order,
//! reordered, lossy, jittery (uniform and Pareto), plus SSRC changes, timestamp
//! jumps, duplicates and talkspurts. Every pop must yield a frame and audio must
//! never play out of order.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

use std::time::{Duration, Instant};

use offhook_media::rtp::jitter::{FrameKind, JitterBuffer, JitterConfig};
use offhook_media::rtp::netsim::{
    JitterModel, NetProfile, PlayoutReport, play_through, schedule, sim_packet,
};
use offhook_media::rtp::units::{RtpTime, SeqNo, Ssrc};

const MS: Duration = Duration::from_millis(1);
const PACKETS: u32 = 3000;
const TAIL: Duration = Duration::from_millis(400);
const TAIL_FRAMES: u64 = 20;

fn run(seed: u64, profile: NetProfile) -> PlayoutReport {
    let packets = schedule(seed, PACKETS, &profile);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let report = play_through(&mut jb, Instant::now(), &packets, &profile, 7 * MS, TAIL);
    assert_eq!(report.out_of_order, 0, "audio played out of order");
    let expected_frames = (packets.last().unwrap().arrival + TAIL - 7 * MS).as_millis() / 20 + 1;
    assert_eq!(u128::from(report.frames), expected_frames, "one frame per pop");
    report
}

fn profile(jitter: JitterModel, loss: f64) -> NetProfile {
    NetProfile {
        base_delay: 35 * MS,
        jitter,
        loss,
    }
}

#[test]
fn in_order_plays_everything_with_little_delay() {
    let r = run(1, profile(JitterModel::None, 0.0));
    assert_eq!(r.audio, u64::from(PACKETS));
    assert_eq!((r.stats.late, r.stats.lost), (0, 0));
    assert!(
        r.stats.concealed <= TAIL_FRAMES,
        "only the tail after the stream ends"
    );
    assert!(
        r.latency_quantile(0.95) <= 40 * MS,
        "p95 {:?}",
        r.latency_quantile(0.95)
    );
}

#[test]
fn reordered_packets_are_put_back_in_order() {
    // 60 ms of uniform jitter reorders up to three packets deep.
    let r = run(2, profile(JitterModel::Uniform(60 * MS), 0.0));
    assert!(r.late_fraction() < 0.02, "late {:?}", r.stats);
    assert!(r.audio as f64 >= f64::from(PACKETS) * 0.98);
    assert!(
        r.latency_quantile(0.95) <= 110 * MS,
        "p95 {:?}",
        r.latency_quantile(0.95)
    );
}

#[test]
fn random_loss_is_counted_and_concealed() {
    let r = run(3, profile(JitterModel::None, 0.05));
    let lost = r.stats.lost as f64 / f64::from(PACKETS);
    assert!((0.03..0.07).contains(&lost), "lost {lost}");
    assert_eq!(r.stats.late, 0);
    assert!(r.stats.concealed >= r.stats.lost, "{:?}", r.stats);
    assert_eq!(r.audio + r.stats.lost, u64::from(PACKETS));
}

#[test]
fn uniform_40ms_jitter_stays_continuous_with_bounded_delay() {
    let r = run(4, profile(JitterModel::Uniform(40 * MS), 0.0));
    assert!(r.late_fraction() < 0.01, "late {:?}", r.stats);
    assert!(
        r.latency_quantile(0.5) <= 70 * MS,
        "p50 {:?}",
        r.latency_quantile(0.5)
    );
    assert!(
        r.latency_quantile(0.95) <= 80 * MS,
        "p95 {:?}",
        r.latency_quantile(0.95)
    );
    assert!(
        r.stats.jitter > 5 * MS && r.stats.target_delay >= 30 * MS,
        "{:?}",
        r.stats
    );
}

#[test]
fn pareto_jitter_keeps_late_loss_and_delay_sane() {
    let jitter = JitterModel::Pareto {
        scale: 10 * MS,
        shape: 2.5,
        cap: 40 * MS,
    };
    let r = run(5, profile(jitter, 0.01));
    assert!(r.late_fraction() < 0.03, "late {:?}", r.stats);
    assert!(
        r.latency_quantile(0.95) <= 120 * MS,
        "p95 {:?}",
        r.latency_quantile(0.95)
    );
    assert!(r.stats.added_delay <= JitterConfig::default().max_delay + 40 * MS);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    for i in 0..50u32 {
        let at = t0 + 20 * MS * i;
        jb.push(at, sim_packet(i));
        jb.push(at, sim_packet(i));
        assert_ne!(jb.pop(at + MS).kind, FrameKind::Concealed, "frame {i}");
    }
    let s = jb.stats();
    assert_eq!((s.received, s.duplicate, s.lost), (50, 50, 0));
}

#[test]
fn new_ssrc_and_timestamp_jump_reanchor_without_gaps() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut kinds = Vec::new();
    for i in 0..150u32 {
        let at = t0 + 20 * MS * i;
        let mut p = sim_packet(i);
        if i >= 50 {
            p.ssrc = Ssrc(0xbeef);
        }
        if i >= 100 {
            p.time = RtpTime {
                ticks: p.time.ticks.wrapping_add(3_000_000),
                ..p.time
            };
        }
        jb.push(at, p);
        kinds.push(jb.pop(at + MS).kind);
    }
    let s = jb.stats();
    assert_eq!(s.resets, 2, "{s:?}");
    let audio = kinds.iter().filter(|k| **k == FrameKind::Audio).count();
    assert!(audio >= 140, "audio frames {audio}");
    assert!(kinds[140..].iter().all(|k| *k == FrameKind::Audio));
}

#[test]
fn talkspurt_after_silence_starts_fresh() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut audio = 0;
    for i in 0..=200u32 {
        let at = t0 + 20 * MS * i;
        // Silence (nothing sent) for packets 50..100; the next one is marked.
        if !(50..100).contains(&i) && i < 200 {
            let mut p = sim_packet(i);
            p.marker = i == 0 || i == 100;
            if i >= 100 {
                // Nothing was sent in the pause: sequence numbers continue.
                p.seq = SeqNo(p.seq.0.wrapping_sub(50));
            }
            jb.push(at, p);
        }
        audio += u32::from(jb.pop(at + MS).kind == FrameKind::Audio);
    }
    assert_eq!(audio, 150);
    let s = jb.stats();
    assert_eq!((s.late, s.lost, s.resets), (0, 0, 0), "{s:?}");
}

#[test]
fn arbitrary_packets_and_pop_times_never_panic() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(0xbad_5eed);
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut now = t0;
    for _ in 0..20_000 {
        now += Duration::from_micros(rng.random_range(0..40_000));
        if rng.random_bool(0.7) {
            let mut p = sim_packet(rng.random_range(0..50));
            p.ssrc = Ssrc(rng.random_range(0..3));
            p.seq = SeqNo(rng.random());
            p.time = RtpTime {
                ticks: rng.random(),
                ..p.time
            };
            p.marker = rng.random_bool(0.1);
            p.samples.truncate(rng.random_range(0..=160));
            // Arrival times may also go backwards.
            jb.push(
                now - Duration::from_micros(rng.random_range(0..30_000)).min(now - t0),
                p,
            );
        } else {
            let _ = jb.pop(now);
        }
    }
    let s = jb.stats();
    assert!(s.received + s.duplicate + s.late > 0);
}

/// Pops every 20 ms from `from` until `until` (since `t0`), pushing packets
/// `next..` that are due by their arrival time `arrival(i)`; the buffer's added
/// delay after each simulated second.
fn play_seconds(
    jb: &mut JitterBuffer,
    t0: Instant,
    next: &mut u32,
    span: (Duration, Duration),
    arrival: impl Fn(u32) -> Duration,
) -> Vec<Duration> {
    let (from, until) = span;
    let mut per_second = Vec::new();
    let mut tick = from;
    while tick < until {
        while arrival(*next) <= tick {
            jb.push(t0 + arrival(*next), sim_packet(*next));
            *next += 1;
        }
        jb.pop(t0 + tick);
        tick += 20 * MS;
        if (tick - from).as_millis() % 1000 == 0 {
            per_second.push(jb.stats().added_delay.max(jb.stats().depth));
        }
    }
    per_second
}

#[test]
fn audio_queued_before_playout_starts_adds_no_delay() {
    // The leg hears the caller from ICE/DTLS on, seconds before the answer starts
    // the playout clock: that audio is stale, the call must start in the present
    // (1.5 s: less than a timestamp jump, which would re-anchor).
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let arrival = |i: u32| 20 * MS * i + 35 * MS;
    let mut next = 0;
    while arrival(next) < 1500 * MS {
        jb.push(t0 + arrival(next), sim_packet(next));
        next += 1;
    }
    let delay = play_seconds(&mut jb, t0, &mut next, (1507 * MS, 61_507 * MS), arrival);
    eprintln!("added delay or depth per second: {delay:?}");
    assert!(delay.iter().all(|d| *d <= 30 * MS), "{delay:?}");
    let s = jb.stats();
    assert!(s.late == 0 && s.concealed == 0 && s.resets == 0, "{s:?}");
}

#[test]
fn depth_follows_a_jitter_burst_and_shrinks_back() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    // 20 s clean, 10 s of up to 80 ms jitter, 30 s clean again.
    let mut rng = StdRng::seed_from_u64(13);
    let extra: Vec<Duration> = (0..3000)
        .map(|i| match i {
            1000..1500 => 80 * MS.mul_f64(rng.random()),
            _ => Duration::ZERO,
        })
        .collect();
    let arrival = |i: u32| 20 * MS * i + 35 * MS + extra.get(i as usize).copied().unwrap_or_default();
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut next = 0;
    let delay = play_seconds(&mut jb, t0, &mut next, (7 * MS, 59_007 * MS), arrival);
    eprintln!("added delay or depth per second: {delay:?}");
    let clean = &delay[2..20];
    let burst = &delay[22..30];
    let after = &delay[45..];
    assert!(clean.iter().all(|d| *d <= 30 * MS), "{clean:?}");
    assert!(
        burst.iter().any(|d| *d >= 60 * MS),
        "it follows the jitter: {burst:?}"
    );
    assert!(burst.iter().all(|d| *d <= 200 * MS), "{burst:?}");
    assert!(after.iter().all(|d| *d <= 40 * MS), "shrinks back: {after:?}");
}

/// Audio frames among the pops of each simulated 100 ms from `from` to `until`,
/// packets arriving at `arrival(i)`.
fn audio_per_100ms(
    jb: &mut JitterBuffer,
    t0: Instant,
    span: (Duration, Duration),
    arrival: impl Fn(u32) -> Duration,
) -> Vec<u32> {
    let (from, until) = span;
    let (mut next, mut tick, mut counts) = (0, from, vec![0]);
    while tick < until {
        while arrival(next) <= tick {
            jb.push(t0 + arrival(next), sim_packet(next));
            next += 1;
        }
        if jb.pop(t0 + tick).kind == FrameKind::Audio {
            *counts.last_mut().unwrap() += 1;
        }
        tick += 20 * MS;
        if (tick - from).as_millis() % 100 == 0 && tick < until {
            counts.push(0);
        }
    }
    counts
}

#[test]
fn a_sender_that_stalls_and_goes_on_is_heard_again_at_once() {
    // The browser's capture stalls for 1 s at 5 s (a loaded machine) and then
    // goes on where it was: every later packet arrives 1 s later than its
    // timestamp says, more than the buffer's maximum delay can wait for. The
    // playout must take up the new delay within a few frames, not wait for the
    // old fastest transit to leave its window.
    let stall = 1000 * MS;
    let arrival = |i: u32| 20 * MS * i + 35 * MS + if i >= 250 { stall } else { Duration::ZERO };
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let counts = audio_per_100ms(&mut jb, t0, (7 * MS, 15_007 * MS), arrival);
    eprintln!("audio frames per 100 ms: {counts:?} {:?}", jb.stats());
    let resumed = 60 + 4;
    assert!(
        counts[resumed..].iter().all(|&n| n == 5),
        "heard again from 400 ms after the stall ends: {counts:?}"
    );
    assert!(jb.stats().added_delay <= 60 * MS, "{:?}", jb.stats());
}

#[test]
fn a_burst_after_a_stall_costs_only_the_burst() {
    // We stalled for 1 s (starved of CPU): the packets of that second are read
    // at once, all too late; the next ones are on time again. Playout goes on
    // with the old delay, no re-anchor.
    let arrival = |i: u32| match i {
        250..300 => 6035 * MS,
        _ => 20 * MS * i + 35 * MS,
    };
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let counts = audio_per_100ms(&mut jb, t0, (7 * MS, 10_007 * MS), arrival);
    eprintln!("audio frames per 100 ms: {counts:?} {:?}", jb.stats());
    assert!(
        counts[62..].iter().all(|&n| n == 5),
        "on time again after the burst: {counts:?}"
    );
    assert_eq!(jb.stats().resets, 0, "{:?}", jb.stats());
}
