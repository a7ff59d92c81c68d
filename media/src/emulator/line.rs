//! The emulated modem's analogue side: its sample clock, `clock_ppm` off 8000 Hz
//! (it plays and records (1 + ppm·1e-6)·8000 samples a second, in 20 ms chunks
//! of 160 ± 1), its playout buffer for what the DTE sends (started once
//! [`PREBUFFER`] is in, [`PORT_PREBUFFER`] from the microphone port; short of samples it plays silence and counts an
//! underrun; full, it drops and counts an overrun), and the 2-wire hybrid, which
//! returns what the line plays `delay_ms` later, `erl_db` down, through a short
//! impulse response.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};

/// Samples the playout buffer holds before it starts playing (40 ms).
pub const PREBUFFER: usize = 320;
/// Samples the playout buffer holds before it plays audio from the microphone
/// port (10 ms, one of the port's chunks): what stands in the buffer after the
/// start is the port path's latency for the whole call, and once playing it
/// never buffers again (short of samples it plays silence), so the level only
/// settles lower when the sound server's pace jitters.
pub const PORT_PREBUFFER: usize = 80;
/// Samples the playout buffer holds at most (1 s).
const MAX_BUFFER: usize = 8000;
/// The hybrid's impulse response after its delay (unit energy).
const IMPULSE: [f32; 3] = [0.85, 0.45, -0.27];

/// A hybrid's echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hybrid {
    /// Delay of the echo, ms.
    pub delay_ms: u32,
    /// Echo return loss, dB.
    pub erl_db: u32,
}

/// The line's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineModel {
    /// The modem's sample clock error, parts per million (+: fast).
    #[serde(default)]
    pub clock_ppm: i32,
    /// The hybrid's echo, if any.
    #[serde(default)]
    pub hybrid: Option<Hybrid>,
}

impl LineModel {
    /// No clock error, no echo.
    pub fn is_ideal(&self) -> bool {
        *self == Self::default()
    }
}

/// The analogue side of one stream (see the module comment).
#[derive(Debug, Default)]
pub struct Analogue {
    model: LineModel,
    ticks: u64,
    samples: u64,
    buffer: VecDeque<u8>,
    /// What the buffer holds before it plays, if not [`PREBUFFER`].
    start: Option<usize>,
    playing: bool,
    /// What the line played, linear, newest last (the hybrid's memory).
    played: VecDeque<f32>,
    /// Ticks that played silence for want of samples, once playing.
    pub underruns: u64,
    /// Samples dropped because the buffer was full.
    pub overruns: u64,
}

impl Analogue {
    /// An idle side with `model`.
    pub fn new(model: LineModel) -> Self {
        Self {
            model,
            ..Self::default()
        }
    }

    /// The playout buffer plays once it holds `start` samples ([`PREBUFFER`] if none).
    pub fn set_start(&mut self, start: Option<usize>) {
        self.start = start;
    }

    /// Samples in the playout buffer: what the DTE sent that is not played yet.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// A stream starts or ends: the buffer is emptied, the count goes on.
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.playing = false;
    }

    /// Audio from the DTE; false if some of it was dropped (buffer full).
    pub fn queue(&mut self, audio: &[u8]) -> bool {
        let room = MAX_BUFFER - self.buffer.len();
        self.buffer.extend(&audio[..audio.len().min(room)]);
        self.overruns += audio.len().saturating_sub(room) as u64;
        audio.len() <= room
    }

    /// The samples of the next 20 ms tick by the modem's clock (160 ± 1).
    pub fn tick(&mut self) -> usize {
        self.ticks += 1;
        let rate = 1_000_000 + i64::from(self.model.clock_ppm);
        let due = (i128::from(self.ticks) * 160 * i128::from(rate) / 1_000_000) as u64;
        let count = due.saturating_sub(self.samples) as usize;
        self.samples = due;
        count
    }

    /// Plays `count` samples from the buffer (silence before it started, or
    /// short of samples: an underrun, true).
    pub fn play(&mut self, count: usize) -> (Vec<u8>, bool) {
        if !self.playing && self.buffer.len() >= self.start.unwrap_or(PREBUFFER) {
            self.playing = true;
        }
        let take = if self.playing {
            count.min(self.buffer.len())
        } else {
            0
        };
        let mut out: Vec<u8> = self.buffer.drain(..take).collect();
        let short = self.playing && take < count;
        self.underruns += u64::from(short);
        out.resize(count, 0xFF);
        self.remember(&out);
        (out, short)
    }

    /// What the line played without the buffer (`+VTS` tones, the flushed rest).
    pub fn remember(&mut self, audio: &[u8]) {
        let Some(hybrid) = self.model.hybrid else { return };
        self.played
            .extend(audio.iter().map(|&c| f32::from(ulaw_to_linear(c))));
        let keep = hybrid.delay_ms as usize * 8 + IMPULSE.len() + 2 * 160;
        let excess = self.played.len().saturating_sub(keep);
        self.played.drain(..excess);
    }

    /// The rest of the buffer, for a stream that ends (it is played out).
    pub fn flush(&mut self) -> Vec<u8> {
        let rest: Vec<u8> = self.buffer.drain(..).collect();
        self.playing = false;
        rest
    }

    /// Adds the hybrid's echo of the last `far.len()` played samples to `far`
    /// (mu-law), what the line sends back this tick.
    pub fn add_echo(&self, far: &mut [u8]) {
        let Some(hybrid) = self.model.hybrid else { return };
        let gain = 10f32.powf(-(hybrid.erl_db as f32) / 20.0);
        let delay = hybrid.delay_ms as usize * 8;
        let len = self.played.len();
        let count = far.len();
        for (i, sample) in far.iter_mut().enumerate() {
            // The played sample simultaneous with `far[i]`.
            let Some(now) = (len + i).checked_sub(count) else {
                continue;
            };
            let echo: f32 = IMPULSE
                .iter()
                .enumerate()
                .filter_map(|(k, h)| Some(h * self.played.get(now.checked_sub(delay + k)?)?))
                .sum();
            let mixed = f32::from(ulaw_to_linear(*sample)) + gain * echo;
            *sample = linear_to_ulaw(mixed.clamp(-32768.0, 32767.0) as i16);
        }
    }
}
