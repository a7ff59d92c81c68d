//! The sound card of the modem + sound card line (DESIGN "Lines"): the modem
//! dials and holds the line while the audio goes through a sound card wired to
//! its audio ports. Here is the real-time edge: a cpal output stream plays line
//! audio (8 kHz, mono, 16-bit) and an input stream captures what the line sends,
//! each callback touching only a lock-free SPSC ring (rtrb). An output underrun
//! plays silence and is counted; a full input ring drops the sample and counts it.
//! The relay side writes and reads the rings without ever blocking the callbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, HostId, StreamConfig};

/// The line's sample rate.
pub const RATE: u32 = 8000;
/// Ring capacity each way: 1 s of line audio.
const RING: usize = RATE as usize;

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
    /// Output samples played as silence for lack of line audio.
    pub underruns: AtomicU64,
    /// Input samples dropped because the relay did not read them in time.
    pub overruns: AtomicU64,
    /// Samples played from line audio.
    pub played: AtomicU64,
    /// Samples captured.
    pub captured: AtomicU64,
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
    let devices = match output {
        true => host.output_devices(),
        false => host.input_devices(),
    }
    .map_err(|e| SoundCardError::Host(host.id(), e.to_string()))?;
    let mut devices = devices;
    devices
        .find(|d| d.id().is_ok_and(|id| id.id() == name))
        .ok_or_else(|| SoundCardError::NoDevice {
            direction: if output { "output" } else { "input" },
            name: name.to_owned(),
        })
}

/// Opens `output` (played into the line) and `input` (captured from it) of `host`.
pub fn open(host: HostId, output: &str, input: &str) -> Result<SoundCard, SoundCardError> {
    let host = cpal::host_from_id(host).map_err(|e| SoundCardError::Host(host, e.to_string()))?;
    let config = StreamConfig {
        channels: 1,
        sample_rate: RATE,
        buffer_size: BufferSize::Default,
    };
    let counters = Arc::new(CardCounters::default());
    let (to_line, mut playing) = rtrb::RingBuffer::<i16>::new(RING);
    let (mut capturing, from_line) = rtrb::RingBuffer::<i16>::new(RING);

    let out_device = find(&host, true, output)?;
    let played = counters.clone();
    let out_stream = out_device
        .build_output_stream::<i16, _, _>(
            config,
            move |data: &mut [i16], _| {
                // Real time: only the ring and atomics, never a lock or the allocator.
                for sample in data.iter_mut() {
                    *sample = match playing.pop() {
                        Ok(s) => {
                            played.played.fetch_add(1, Ordering::Relaxed);
                            s
                        }
                        Err(_) => {
                            played.underruns.fetch_add(1, Ordering::Relaxed);
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
