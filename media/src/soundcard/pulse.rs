//! The sound card on PulseAudio (or PipeWire's PulseAudio server), through
//! libpulse's simple API with explicit buffer attributes: playback targets 40 ms
//! in the server (two 20 ms requests), capture delivers 20 ms fragments, and
//! `pa_simple` asks for ADJUST_LATENCY so the sink and source run at that latency
//! too. One thread per direction moves 20 ms between the server and our rings
//! (a blocking write paces playback at the card's clock; a blocking read paces
//! capture) and records the latency the server reports. A stream the server
//! ends (its sink or source gone) ends its thread and marks the card failed
//! ([`super::CardCounters::fail`]).
//!
//! Why not cpal's PulseAudio host: with cpal 0.18.2 (the pure-Rust `pulseaudio`
//! 0.3.2 client) the default buffer plays ~2 s behind (PulseAudio's default
//! target), and a fixed buffer size gets no further data requests after the
//! first fill (measured on a null sink: the output callback never ran again in
//! 5 s). libpulse's own client with the same attributes plays in real time.
//! The server resamples: our streams are 8 kHz whatever the card runs at.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cpal::HostId;
use libpulse_binding::def::BufferAttr;
use libpulse_binding::error::{Code, PAErr};
use libpulse_binding::sample::{Format, Spec};
use libpulse_binding::stream::Direction;
use libpulse_simple_binding::Simple;

use super::{DEFAULT_DEVICE, FRAME, Player, RATE, Recorder, SoundCardError};

/// Bytes of the card's 20 ms period (16-bit mono).
const PERIOD_BYTES: u32 = 2 * FRAME as u32;
/// libpulse's "server's choice" for a buffer attribute.
const ANY: u32 = u32::MAX;

/// Stops both threads when dropped; each ends within a period.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Connects a stream to `device` with `period_bytes` periods: playback targets
/// two periods in the server and asks for one at a time, capture delivers one
/// period per fragment and the server holds four at most.
pub(crate) fn connect(
    direction: Direction,
    device: &str,
    period_bytes: u32,
) -> Result<Simple, SoundCardError> {
    let (kind, attr) = match direction {
        Direction::Playback => (
            "output",
            BufferAttr {
                maxlength: 2 * period_bytes,
                tlength: 2 * period_bytes,
                prebuf: period_bytes,
                minreq: period_bytes,
                fragsize: ANY,
            },
        ),
        _ => (
            "input",
            BufferAttr {
                maxlength: 4 * period_bytes,
                tlength: ANY,
                prebuf: ANY,
                minreq: ANY,
                fragsize: period_bytes,
            },
        ),
    };
    // libpulse takes C strings: a name with a NUL in it names no device.
    if device.contains('\0') {
        return Err(SoundCardError::NoDevice {
            direction: kind,
            name: device.escape_debug().to_string(),
        });
    }
    let spec = Spec {
        format: Format::S16le,
        channels: 1,
        rate: RATE,
    };
    let dev = (device != DEFAULT_DEVICE).then_some(device);
    Simple::new(
        None,
        "offhook",
        direction,
        dev,
        "phone line",
        &spec,
        None,
        Some(&attr),
    )
    .map_err(|err: PAErr| {
        // pa_simple reports the error code positive, the binding's `Code` negative.
        if err.0.abs() == (Code::NoEntity as i32).abs() {
            SoundCardError::NoDevice {
                direction: kind,
                name: device.to_owned(),
            }
        } else {
            SoundCardError::Host(
                HostId::PulseAudio,
                err.to_string().unwrap_or_else(|| format!("error {}", err.0)),
            )
        }
    })
}

/// Opens `output` and `input` and starts their threads.
pub(super) fn open(
    output: &str,
    input: &str,
    mut player: Player,
    mut recorder: Recorder,
) -> Result<Box<dyn Send>, SoundCardError> {
    let sink = connect(Direction::Playback, output, PERIOD_BYTES)?;
    let source = connect(Direction::Record, input, PERIOD_BYTES)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let name = output.to_owned();
    std::thread::Builder::new()
        .name("card-play".into())
        .spawn(move || {
            let mut bytes = [0u8; 2 * FRAME];
            while !stopped.load(Ordering::Relaxed) {
                for pair in bytes.chunks_exact_mut(2) {
                    pair.copy_from_slice(&player.next().to_le_bytes());
                }
                player.period_done();
                // Blocks until the server has room: the card's clock paces us.
                if let Err(err) = sink.write(&bytes) {
                    tracing::warn!(device = %name, %err, "sound card playback stopped");
                    player
                        .counters
                        .fail(format!("playback device '{name}' stopped: {err}"));
                    return;
                }
                if let Ok(latency) = sink.get_latency() {
                    let c = &player.counters;
                    c.playback_latency_us.store(latency.0, Ordering::Relaxed);
                }
            }
        })
        .map_err(|e| SoundCardError::Stream(output.to_owned(), e.to_string()))?;
    let stopped = stop.clone();
    let name = input.to_owned();
    std::thread::Builder::new()
        .name("card-capture".into())
        .spawn(move || {
            let mut bytes = [0u8; 2 * FRAME];
            while !stopped.load(Ordering::Relaxed) {
                if let Err(err) = source.read(&mut bytes) {
                    tracing::warn!(device = %name, %err, "sound card capture stopped");
                    recorder
                        .counters
                        .fail(format!("capture device '{name}' stopped: {err}"));
                    return;
                }
                for pair in bytes.chunks_exact(2) {
                    recorder.put(i16::from_le_bytes([pair[0], pair[1]]));
                }
                recorder.period_done();
                if let Ok(latency) = source.get_latency() {
                    let c = &recorder.counters;
                    c.capture_latency_us.store(latency.0, Ordering::Relaxed);
                }
            }
        })
        .map_err(|e| SoundCardError::Stream(input.to_owned(), e.to_string()))?;
    Ok(Box::new(Running(stop)))
}
