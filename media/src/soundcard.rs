//! The sound card of the modem + sound card line (DESIGN "Lines"): the modem
//! dials and holds the line while the audio goes through a sound card wired to
//! its audio ports. Here is the real-time edge: a cpal output stream plays line
//! audio (8 kHz, mono, 16-bit) and an input stream captures what the line sends,
//! each callback touching only a lock-free SPSC ring (rtrb). An output underrun
//! plays silence and is counted; a full input ring drops the sample and counts it.
//! The relay side writes and reads the rings without ever blocking the callbacks:
//! 20 ms mu-law frames in ([`SoundCard::play_ulaw`]) and out
//! ([`SoundCard::captured_frame`]); G.711 conversion happens there, not in the
//! callbacks. Underruns are counted while a call is on the line
//! ([`CardCounters::in_call`]): between calls silence is what the card should play.
//! Device names are the host's (PulseAudio sink and source names, e.g.
//! `alsa_output.usb-….analog-mono` and its `….monitor`); `default` is the host's
//! default device.

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, HostId, StreamConfig};

use crate::dsp::g711::{linear_to_ulaw, ulaw_to_linear};

/// The line's sample rate.
pub const RATE: u32 = 8000;
/// Ring capacity each way: 1 s of line audio.
const RING: usize = RATE as usize;
/// One 20 ms frame of line audio.
pub const FRAME: usize = 160;
/// The capture period (20 ms): the card hands over each frame as it comes.
/// Playback keeps the host's default buffering: with cpal 0.18.2 a fixed
/// playback period on PulseAudio plays at a fraction of real time (measured on a
/// null sink: 1,760 samples in 20 s at 20 ms, 9,600 in 9.6 s at 200 ms), while the
/// default plays in real time behind PulseAudio's 2 s target buffer.
const PERIOD_FRAMES: u32 = FRAME as u32;

/// The name that picks the host's default device.
pub const DEFAULT_DEVICE: &str = "default";

/// Why the sound card could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SoundCardError {
    /// No such sound server (e.g. PulseAudio not running).
    #[error("sound host {0:?} unavailable: {1}")]
    Host(HostId, String),
    /// No device of that name.
    #[error("no {direction} device named '{name}'")]
    NoDevice {
        /// `output` or `input`.
        direction: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The device refused the stream.
    #[error("device '{0}' refused an 8 kHz mono 16-bit stream: {1}")]
    Stream(String, String),
}

/// Counters the callbacks keep.
#[derive(Debug, Default)]
pub struct CardCounters {
    /// A call is on the line: missing audio is an underrun (set by the line's edge).
    pub in_call: AtomicBool,
    /// Output samples played as silence for lack of line audio during a call.
    pub underruns: AtomicU64,
    /// Input samples dropped because the relay did not read them in time.
    pub overruns: AtomicU64,
    /// Samples played from line audio.
    pub played: AtomicU64,
    /// Samples captured.
    pub captured: AtomicU64,
    /// Samples the relay gave while the play ring was full (1 s waiting).
    pub dropped: AtomicU64,
}

/// A reading of [`CardCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardCounts {
    /// See [`CardCounters::underruns`].
    pub underruns: u64,
    /// See [`CardCounters::overruns`].
    pub overruns: u64,
    /// See [`CardCounters::played`].
    pub played: u64,
    /// See [`CardCounters::captured`].
    pub captured: u64,
    /// See [`CardCounters::dropped`].
    pub dropped: u64,
}

impl CardCounters {
    /// The counters now.
    pub fn read(&self) -> CardCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CardCounts {
            underruns: get(&self.underruns),
            overruns: get(&self.overruns),
            played: get(&self.played),
            captured: get(&self.captured),
            dropped: get(&self.dropped),
        }
    }
}

impl CardCounts {
    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            underruns: self.underruns.saturating_sub(earlier.underruns),
            overruns: self.overruns.saturating_sub(earlier.overruns),
            played: self.played.saturating_sub(earlier.played),
            captured: self.captured.saturating_sub(earlier.captured),
            dropped: self.dropped.saturating_sub(earlier.dropped),
        }
    }
}

impl std::fmt::Display for CardCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "played={};underruns={};captured={};overruns={};dropped={}",
            self.played, self.underruns, self.captured, self.overruns, self.dropped
        )
    }
}

/// An open sound card: write line audio to `to_line`, read it from `from_line`.
pub struct SoundCard {
    /// Samples to play (what goes into the phone line).
    pub to_line: rtrb::Producer<i16>,
    /// Samples captured (what comes from the phone line).
    pub from_line: rtrb::Consumer<i16>,
    /// What the callbacks counted.
    pub counters: Arc<CardCounters>,
    _output: cpal::Stream,
    _input: cpal::Stream,
}

impl std::fmt::Debug for SoundCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoundCard")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn find(host: &cpal::Host, output: bool, name: &str) -> Result<cpal::Device, SoundCardError> {
    let direction = if output { "output" } else { "input" };
    if name == DEFAULT_DEVICE {
        let device = match output {
            true => host.default_output_device(),
            false => host.default_input_device(),
        };
        return device.ok_or_else(|| SoundCardError::NoDevice {
            direction,
            name: name.to_owned(),
        });
    }
    let devices = match output {
        true => host.output_devices(),
        false => host.input_devices(),
    }
    .map_err(|e| SoundCardError::Host(host.id(), e.to_string()))?;
    let mut devices = devices;
    devices
        .find(|d| d.id().is_ok_and(|id| id.id() == name))
        .ok_or_else(|| SoundCardError::NoDevice {
            direction,
            name: name.to_owned(),
        })
}

/// Opens `output` (played into the line) and `input` (captured from it) of `host`.
pub fn open(host: HostId, output: &str, input: &str) -> Result<SoundCard, SoundCardError> {
    let host = cpal::host_from_id(host).map_err(|e| SoundCardError::Host(host, e.to_string()))?;
    let config = StreamConfig {
        channels: 1,
        sample_rate: RATE,
        buffer_size: BufferSize::Fixed(PERIOD_FRAMES),
    };
    let play_config = StreamConfig {
        buffer_size: BufferSize::Default,
        ..config
    };
    let counters = Arc::new(CardCounters::default());
    let (to_line, mut playing) = rtrb::RingBuffer::<i16>::new(RING);
    let (mut capturing, from_line) = rtrb::RingBuffer::<i16>::new(RING);

    let out_device = find(&host, true, output)?;
    let played = counters.clone();
    let out_stream = out_device
        .build_output_stream::<i16, _, _>(
            play_config,
            move |data: &mut [i16], _| {
                // Real time: only the ring and atomics, never a lock or the allocator.
                for sample in data.iter_mut() {
                    *sample = match playing.pop() {
                        Ok(s) => {
                            played.played.fetch_add(1, Ordering::Relaxed);
                            s
                        }
                        Err(_) => {
                            if played.in_call.load(Ordering::Relaxed) {
                                played.underruns.fetch_add(1, Ordering::Relaxed);
                            }
                            0
                        }
                    };
                }
            },
            |err| tracing::warn!(%err, "sound card output"),
            None,
        )
        .map_err(|e| SoundCardError::Stream(output.to_owned(), e.to_string()))?;
    let in_device = find(&host, false, input)?;
    let captured = counters.clone();
    let in_stream = in_device
        .build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], _| {
                for &sample in data {
                    match capturing.push(sample) {
                        Ok(()) => captured.captured.fetch_add(1, Ordering::Relaxed),
                        Err(_) => captured.overruns.fetch_add(1, Ordering::Relaxed),
                    };
                }
            },
            |err| tracing::warn!(%err, "sound card input"),
            None,
        )
        .map_err(|e| SoundCardError::Stream(input.to_owned(), e.to_string()))?;
    out_stream
        .play()
        .map_err(|e| SoundCardError::Stream(output.to_owned(), e.to_string()))?;
    in_stream
        .play()
        .map_err(|e| SoundCardError::Stream(input.to_owned(), e.to_string()))?;
    Ok(SoundCard {
        to_line,
        from_line,
        counters,
        _output: out_stream,
        _input: in_stream,
    })
}

impl SoundCard {
    /// Queues 8 kHz mu-law to play into the line; what finds the ring full (the
    /// card plays slower than the relay feeds it) is dropped and counted.
    pub fn play_ulaw(&mut self, mulaw: &[u8]) {
        let room = self.to_line.slots().min(mulaw.len());
        let dropped = mulaw.len() - room;
        for &code in &mulaw[..room] {
            // The ring has room for `room` samples: checked above, and only we push.
            let _ = self.to_line.push(ulaw_to_linear(code));
        }
        if dropped > 0 {
            self.counters.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
    }

    /// The next whole 20 ms frame captured from the line, as mu-law.
    pub fn captured_frame(&mut self) -> Option<[u8; FRAME]> {
        let chunk = self.from_line.read_chunk(FRAME).ok()?;
        let mut frame = [0xFF; FRAME];
        let (a, b) = chunk.as_slices();
        for (code, &sample) in frame.iter_mut().zip(a.iter().chain(b)) {
            *code = linear_to_ulaw(sample);
        }
        chunk.commit_all();
        Some(frame)
    }
}
