//! The adaptive jitter buffer between the network and the line: validated audio
//! packets go in with their arrival time ([`JitterBuffer::push`]); the playout clock
//! takes one 20 ms frame out every 20 ms ([`JitterBuffer::pop`]) for the line, always,
//! so the line sees a steady 8 kHz stream. Sans-IO: `now` is an input.
//!
//! Packets are kept by extended timestamp, so reordering and duplicates sort
//! themselves out; a missing frame is concealed (the last frame repeated,
//! attenuated, then comfort silence); a packet arriving after its frame was played
//! is dropped and counted as late loss. The delay adapts: with `transit` the
//! arrival time minus the media time of a packet, the playout offset `P` (pop time
//! minus media time played) must stay above the transit of (almost) every packet.
//! `P - min(transit)` is the delay the buffer adds; it is kept near a target of
//! `k` times the interarrival jitter (RFC 3550's estimate, averaged more slowly),
//! bounded by a minimum and a maximum.
//! A late packet raises the target at once towards what would have caught it (by
//! up to a frame); the target falls back slowly. Packets later than the maximum
//! delay could catch, arriving for [`STEP_TICKS`] on end, are a step, not a
//! spike: the sender stalled and went on where it was (a loaded machine), or the
//! route got longer. Waiting for the old fastest transit to leave its window
//! would lose seconds of audio; the buffer re-anchors on the new delay instead.
//! A burst of late packets read at once (we stalled) is no step: it is dropped. Growing (holding playout one frame) happens at once; shrinking (skipping a frame)
//! happens freely in silence and otherwise at most once per `shrink_interval`.
//! Before the first pop (a call not answered yet) only the last `max_delay` of
//! audio is kept, and playout starts in the present, never on that stale audio.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::units::{ClockRate, ExtSeq, RtpTime, SeqExtender, SeqNo, Ssrc, TimeExtender};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// The playout period.
pub const FRAME_PERIOD: Duration = Duration::from_millis(20);
const FRAME_TICKS: i64 = FRAME_SAMPLES as i64;
/// Longest packet kept, in samples (120 ms), bounding the look-back of a window.
const MAX_PACKET_TICKS: i64 = 960;
/// Repeated frames before concealment falls back to silence.
const MAX_REPEATS: u32 = 2;
/// Peak amplitude below which a frame counts as silence for shrinking.
const SILENCE_PEAK: i16 = 256;
/// Inverse gain of the slow jitter average the target follows (RFC 3550 uses 16).
const SMOOTH_JITTER_GAIN: f64 = 128.0;
/// How fast the target delay falls, in ticks per pop (1 tick per 20 ms = 6.25 ms/s).
const TARGET_FALL_PER_POP: i64 = 1;
/// Sequence numbers remembered for duplicate detection.
const SEEN_WINDOW: u64 = 1024;
/// How long packets too late for the maximum delay must keep arriving before
/// they count as a step in the delay (100 ms).
const STEP_TICKS: i64 = 800;

/// How the buffer adapts.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// Delay kept even with no jitter (covers playout clock wobble).
    pub min_delay: Duration,
    /// Delay never exceeded.
    pub max_delay: Duration,
    /// Target delay = `jitter_factor` x RFC 3550 jitter, then bounded.
    pub jitter_factor: f64,
    /// Shortest time between two skips of non-silent audio.
    pub shrink_interval: Duration,
    /// How long the lowest transit time is remembered.
    pub transit_window: Duration,
    /// A timestamp further than this from the playout point is a jump: re-anchor.
    pub max_jump: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            jitter_factor: 3.5,
            shrink_interval: Duration::from_millis(500),
            transit_window: Duration::from_secs(4),
            max_jump: Duration::from_secs(2),
        }
    }
}

/// One validated audio packet, decoded to linear samples.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    /// Source.
    pub ssrc: Ssrc,
    /// Sequence number.
    pub seq: SeqNo,
    /// Media time of the first sample.
    pub time: RtpTime,
    /// Marker bit: first packet of a talkspurt.
    pub marker: bool,
    /// Linear 8 kHz samples.
    pub samples: Vec<i16>,
}

/// What a popped frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Received audio.
    Audio,
    /// Made up to cover a missing frame or to grow the delay.
    Concealed,
    /// Nothing to play yet (before the first talkspurt starts).
    Silence,
}

/// 20 ms of 8 kHz audio for the line.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The samples.
    pub samples: [i16; FRAME_SAMPLES],
    /// Where they came from.
    pub kind: FrameKind,
}

/// Counters and gauges, for RTCP reports and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// The source being played.
    pub ssrc: Option<Ssrc>,
    /// Its highest extended sequence number received.
    pub highest_seq: Option<ExtSeq>,
    /// Distinct packets received (late ones included).
    pub received: u64,
    /// Packets never received (by sequence number).
    pub lost: u64,
    /// Packets that arrived after their frame was played (late loss).
    pub late: u64,
    /// Duplicate packets.
    pub duplicate: u64,
    /// Frames made up while playing.
    pub concealed: u64,
    /// Frames held to grow the delay.
    pub grown: u64,
    /// Frames skipped to shrink the delay.
    pub shrunk: u64,
    /// Re-anchors after an SSRC change or a timestamp jump.
    pub resets: u64,
    /// Audio buffered ahead of the playout point.
    pub depth: Duration,
    /// Delay added by the buffer to the fastest packets (`P - min transit`).
    pub added_delay: Duration,
    /// The delay the buffer is steering towards.
    pub target_delay: Duration,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
}

/// Sequence-number bookkeeping for one source.
#[derive(Debug, Clone)]
struct Stream {
    ssrc: Ssrc,
    seq: SeqExtender,
    time: TimeExtender,
    first: Option<u64>,
    received: u64,
    seen: [u64; (SEEN_WINDOW / 64) as usize],
}

enum Seen {
    New,
    Duplicate,
    TooOld,
}

impl Stream {
    fn new(ssrc: Ssrc) -> Self {
        Self {
            ssrc,
            seq: SeqExtender::default(),
            time: TimeExtender::default(),
            first: None,
            received: 0,
            seen: [0; (SEEN_WINDOW / 64) as usize],
        }
    }

    /// Records `seq` in the duplicate window.
    fn see(&mut self, seq: SeqNo) -> Seen {
        let before = self.seq.highest().map(|h| h.0);
        let ext = self.seq.extend(seq).0;
        let first = *self.first.get_or_insert(ext);
        self.first = Some(first.min(ext));
        if let Some(h) = before {
            if ext + SEEN_WINDOW <= h {
                return Seen::TooOld;
            }
            for cleared in (h + 1)..=ext.min(h + SEEN_WINDOW) {
                self.seen_bit(cleared, false);
            }
        }
        if self.seen_bit(ext, true) {
            return Seen::Duplicate;
        }
        self.received += 1;
        Seen::New
    }

    /// Sets or clears the bit for `ext`; returns its previous value.
    fn seen_bit(&mut self, ext: u64, set: bool) -> bool {
        let i = (ext % SEEN_WINDOW) as usize;
        let mask = 1u64 << (i % 64);
        let word = &mut self.seen[i / 64];
        let was = *word & mask != 0;
        if set {
            *word |= mask;
        } else {
            *word &= !mask;
        }
        was
    }

    fn lost(&self) -> u64 {
        match (self.first, self.seq.highest()) {
            (Some(first), Some(h)) => (h.0 - first + 1).saturating_sub(self.received),
            _ => 0,
        }
    }
}

/// The adaptive jitter buffer of one call leg.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    rate: ClockRate,
    origin: Option<Instant>,
    stream: Option<Stream>,
    lost_before: u64,
    /// Samples by extended media time.
    queued: BTreeMap<i64, Vec<i16>>,
    /// Media time of the next sample to play; `None` until (re-)anchored.
    play: Option<i64>,
    /// Whether audio has played since the last anchor (else missing frames are silence).
    talking: bool,
    last_frame: [i16; FRAME_SAMPLES],
    repeats: u32,
    /// RFC 3550 jitter, in ticks.
    jitter: f64,
    /// The same, averaged more slowly (1/128 gain) to steer by, in ticks.
    smooth_jitter: f64,
    /// The delay steered towards, in ticks.
    target: i64,
    last_transit: Option<i64>,
    /// (arrival, transit) in ticks, increasing transit: a sliding minimum.
    transits: VecDeque<(i64, i64)>,
    last_shrink: Option<Instant>,
    /// Arrival of the first of the packets in a row too late for the maximum delay.
    too_late_since: Option<i64>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty 8 kHz buffer.
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config,
            rate: ClockRate::NARROWBAND,
            origin: None,
            stream: None,
            lost_before: 0,
            queued: BTreeMap::new(),
            play: None,
            talking: false,
            last_frame: [0; FRAME_SAMPLES],
            repeats: 0,
            jitter: 0.0,
            smooth_jitter: 0.0,
            target: 0,
            last_transit: None,
            transits: VecDeque::new(),
            last_shrink: None,
            too_late_since: None,
            stats: JitterStats::default(),
        }
    }

    /// `now` in ticks of the media clock since the first call.
    fn ticks(&mut self, now: Instant) -> i64 {
        let origin = *self.origin.get_or_insert(now);
        self.rate.ticks_in(now.saturating_duration_since(origin)) as i64
    }

    fn duration(&self, ticks: i64) -> Duration {
        self.rate.duration_of(ticks.max(0) as u64)
    }

    fn delay_ticks(&self, d: Duration) -> i64 {
        self.rate.ticks_in(d) as i64
    }

    /// Drops everything queued and waits for a new anchor (new source or time jump).
    fn reanchor(&mut self) {
        self.queued.clear();
        self.play = None;
        self.talking = false;
        self.transits.clear();
        self.last_transit = None;
    }

    /// Takes in one packet that arrived at `now`.
    pub fn push(&mut self, now: Instant, packet: AudioPacket) {
        self.take(now, packet, false);
    }

    /// Takes in audio a decoder made up for a lost packet (FEC or PLC) when the
    /// next one arrived at `now`: played if its frame is still to come, and
    /// otherwise dropped without counting it late or growing the delay for it.
    pub fn push_concealment(&mut self, now: Instant, packet: AudioPacket) {
        self.take(now, packet, true);
    }

    fn take(&mut self, now: Instant, packet: AudioPacket, made_up: bool) {
        let arrival = self.ticks(now);
        if self.stream.as_ref().is_none_or(|s| s.ssrc != packet.ssrc) {
            if let Some(old) = self.stream.take() {
                self.lost_before += old.lost();
                self.reanchor();
                self.stats.resets += 1;
            }
            self.stream = Some(Stream::new(packet.ssrc));
        }
        // Set just above when missing.
        let stream = self.stream.as_mut().unwrap();
        match stream.see(packet.seq) {
            Seen::Duplicate => {
                self.stats.duplicate += 1;
                return;
            }
            Seen::TooOld => {
                self.stats.late += 1;
                return;
            }
            Seen::New => self.stats.received += 1,
        }
        let ts = stream.time.extend(packet.time).ticks as i64;
        let len = packet.samples.len() as i64;
        if let Some(play) = self.play {
            let jump = self.delay_ticks(self.config.max_jump);
            if ts + jump < play || ts > play + jump {
                self.reanchor();
                self.stats.resets += 1;
            } else if ts + len <= play && made_up {
                return;
            } else if ts + len <= play {
                self.stats.late += 1;
                self.observe_transit(arrival, arrival - ts);
                let min_transit = self.transits.front().map_or(0, |&(_, t)| t);
                let catch = arrival - ts - min_transit;
                if catch <= self.delay_ticks(self.config.max_delay) {
                    // Grow fast: steer at once towards a delay that would have caught
                    // it, one frame per late packet so a lone spike costs little.
                    self.target = self.target.max(catch.min(self.target + FRAME_TICKS));
                    self.too_late_since = None;
                    return;
                }
                let since = *self.too_late_since.get_or_insert(arrival);
                if arrival - since < STEP_TICKS {
                    return;
                }
                // A step in the delay (see the module comment): this packet anchors
                // the playout afresh, at the delay the jitter asks for.
                self.reanchor();
                self.stats.resets += 1;
                self.target = 0;
            } else if packet.marker && self.queued_end().is_none_or(|end| end <= play) {
                // A new talkspurt with nothing left to play: start it afresh.
                self.reanchor();
            }
        }
        self.too_late_since = None;
        self.observe_transit(arrival, arrival - ts);
        if len > 0 && len <= MAX_PACKET_TICKS && !self.queued.contains_key(&ts) {
            self.queued.insert(ts, packet.samples);
        }
        if self.play.is_none() {
            // Not playing yet: only what the anchor can still use is kept.
            let keep = self.delay_ticks(self.config.max_delay) + MAX_PACKET_TICKS;
            let end = self.queued_end().unwrap_or(ts);
            while self
                .queued
                .first_key_value()
                .is_some_and(|(&k, _)| k + keep < end)
            {
                self.queued.pop_first();
            }
        }
    }

    fn observe_transit(&mut self, arrival: i64, transit: i64) {
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
            self.smooth_jitter += (d - self.smooth_jitter) / SMOOTH_JITTER_GAIN;
        }
        self.last_transit = Some(transit);
        while self.transits.back().is_some_and(|&(_, t)| t >= transit) {
            self.transits.pop_back();
        }
        self.transits.push_back((arrival, transit));
        let window = self.delay_ticks(self.config.transit_window);
        while self.transits.front().is_some_and(|&(a, _)| a + window < arrival) {
            self.transits.pop_front();
        }
    }

    fn queued_end(&self) -> Option<i64> {
        self.queued.last_key_value().map(|(k, v)| k + v.len() as i64)
    }

    /// `k` x jitter, bounded; it follows a rise at once and a fall slowly, so
    /// noise in the jitter estimate does not make playout grow and shrink in turn.
    fn update_target(&mut self) -> i64 {
        let c = &self.config;
        let wanted = (c.jitter_factor * self.smooth_jitter) as i64;
        let relaxed = self.target - TARGET_FALL_PER_POP;
        self.target = wanted
            .max(relaxed)
            .clamp(self.delay_ticks(c.min_delay), self.delay_ticks(c.max_delay));
        self.target
    }

    /// The next 20 ms frame for the line; call once per playout tick.
    pub fn pop(&mut self, now: Instant) -> Frame {
        let t = self.ticks(now);
        let target = self.update_target();
        let Some(min_transit) = self.transits.front().map(|&(_, tr)| tr) else {
            return self.silence();
        };
        let play = match self.play {
            Some(p) => p,
            None => {
                // Anchor so the fastest packet waits `target`, on a frame boundary of
                // the first queued packet (leading silence rather than lost audio);
                // audio queued before playout began (a leg that hears the caller
                // before the answer) is older than that and skipped, not played late.
                let Some(&first) = self.queued.keys().next() else {
                    return self.silence();
                };
                let desired = t - min_transit - target;
                let frames = (first - desired + FRAME_TICKS - 1).div_euclid(FRAME_TICKS);
                first - frames * FRAME_TICKS
            }
        };
        let slack = t - play - min_transit;
        self.stats.added_delay = self.duration(slack);
        self.stats.target_delay = self.duration(target);
        self.stats.jitter = self.duration(self.jitter as i64);
        if self.play.is_some() && slack < target {
            self.stats.grown += 1;
            return self.conceal();
        }
        let mut play = play;
        if slack >= target + FRAME_TICKS {
            let silent = self.window(play).is_none_or(|w| peak(&w) < SILENCE_PEAK);
            let due = self
                .last_shrink
                .is_none_or(|s| now.saturating_duration_since(s) >= self.config.shrink_interval);
            if silent || due {
                self.consume(play);
                play += FRAME_TICKS;
                self.stats.shrunk += 1;
                self.last_shrink = Some(now);
            }
        }
        let window = self.window(play);
        self.consume(play);
        self.play = Some(play + FRAME_TICKS);
        self.stats.depth = self.duration(self.queued_end().map_or(0, |end| end - play - FRAME_TICKS));
        match window {
            Some(samples) => {
                self.last_frame = samples;
                self.repeats = 0;
                self.talking = true;
                Frame {
                    samples,
                    kind: FrameKind::Audio,
                }
            }
            None => self.conceal(),
        }
    }

    fn silence(&self) -> Frame {
        Frame {
            samples: [0; FRAME_SAMPLES],
            kind: FrameKind::Silence,
        }
    }

    /// The last frame repeated at half then quarter level, then silence; plain
    /// silence before the first audio of a talkspurt.
    fn conceal(&mut self) -> Frame {
        if !self.talking {
            return self.silence();
        }
        self.stats.concealed += 1;
        self.repeats = (self.repeats + 1).min(MAX_REPEATS + 1);
        if self.repeats > MAX_REPEATS {
            self.last_frame = [0; FRAME_SAMPLES];
        } else {
            for s in &mut self.last_frame {
                *s /= 2;
            }
        }
        Frame {
            samples: self.last_frame,
            kind: FrameKind::Concealed,
        }
    }

    /// Samples queued for `[play, play + 160)`, if any are there.
    fn window(&self, play: i64) -> Option<[i16; FRAME_SAMPLES]> {
        let mut out = [0; FRAME_SAMPLES];
        let mut any = false;
        for (&start, samples) in self.queued.range(play - MAX_PACKET_TICKS + 1..play + FRAME_TICKS) {
            let from = start.max(play);
            let to = (start + samples.len() as i64).min(play + FRAME_TICKS);
            if from < to {
                any = true;
                // from >= start and from >= play, both ranges in bounds by construction.
                let src = &samples[(from - start) as usize..(to - start) as usize];
                out[(from - play) as usize..(to - play) as usize].copy_from_slice(src);
            }
        }
        any.then_some(out)
    }

    /// Forgets packets that end within `[.., play + 160)`.
    fn consume(&mut self, play: i64) {
        let end = play + FRAME_TICKS;
        while let Some(entry) = self.queued.first_entry() {
            if *entry.key() + entry.get().len() as i64 > end {
                break;
            }
            entry.remove();
        }
    }

    /// Counters and gauges so far.
    pub fn stats(&self) -> JitterStats {
        let stream = self.stream.as_ref();
        JitterStats {
            ssrc: stream.map(|s| s.ssrc),
            highest_seq: stream.and_then(|s| s.seq.highest()),
            lost: self.lost_before + stream.map_or(0, Stream::lost),
            ..self.stats
        }
    }
}

fn peak(samples: &[i16]) -> i16 {
    samples.iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
}
