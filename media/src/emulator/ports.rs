//! The emulated modem's audio ports on PulseAudio (an edge): its microphone-in
//! records a source (e.g. the monitor of the sink the line's sound card plays
//! into) and its speaker-out plays into a sink (whose monitor the card captures).
//! One thread per port through libpulse's simple API (the sound card's own
//! connection, [`crate::soundcard::pulse::connect`], with 10 ms periods: the
//! microphone delivers 10 ms chunks, the speaker plays the loop's 20 ms ticks);
//! each ends when the modem's loop goes away.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use libpulse_binding::stream::Direction;
use serde::{Deserialize, Serialize};

use crate::soundcard::pulse::connect;
use crate::soundcard::{FRAME, SoundCardError};

/// 10 ms chunks from the microphone queued at most (0.5 s) for the modem's loop,
/// which takes each as it comes: a stalled loop drops, never grows.
const QUEUE: usize = 50;
/// 20 ms chunks of the speaker queued at most (40 ms). The loop makes them at
/// the modem's clock and the sink plays them at the sound server's: whatever
/// queue a start or a stall leaves stands for the rest of the call (measured:
/// with 1 s allowed, ~0.9 s stood), so it is kept to what an analogue port
/// adds, next to nothing; a chunk that finds it full is lost.
const SPEAKER_QUEUE: usize = 2;
/// The ports' period on the sound server (10 ms, 16-bit mono): half the card's,
/// as an analogue port adds next to no delay.
const PORT_PERIOD_BYTES: u32 = (2 * FRAME / 2) as u32;

/// Where an emulated modem's audio ports are wired (PulseAudio names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortDevices {
    /// The source its microphone-in records (e.g. `card_out.monitor`).
    pub mic_in: String,
    /// The sink its speaker-out plays into (e.g. `modem_spk`).
    pub speaker_out: String,
}

/// The running ports: audio recorded by the microphone port, and the speaker's queue.
#[derive(Debug)]
pub struct Ports {
    /// 10 ms chunks from the microphone port.
    pub mic: tokio::sync::mpsc::Receiver<Vec<i16>>,
    speaker: SyncSender<Vec<i16>>,
}

impl Ports {
    /// Connects both ports and starts their threads.
    ///
    /// # Errors
    /// A device that is not there, or the sound server's refusal.
    pub fn open(devices: &PortDevices) -> Result<Self, SoundCardError> {
        let source = connect(Direction::Record, &devices.mic_in, PORT_PERIOD_BYTES)?;
        let sink = connect(Direction::Playback, &devices.speaker_out, PORT_PERIOD_BYTES)?;
        let (mic_tx, mic) = tokio::sync::mpsc::channel(QUEUE);
        let name = devices.mic_in.clone();
        std::thread::Builder::new()
            .name("modem-mic".into())
            .spawn(move || {
                let mut bytes = [0u8; PORT_PERIOD_BYTES as usize];
                while !mic_tx.is_closed() {
                    if let Err(err) = source.read(&mut bytes) {
                        tracing::warn!(device = %name, %err, "emulated modem microphone stopped");
                        return;
                    }
                    let chunk = bytes
                        .chunks_exact(2)
                        .map(|p| i16::from_le_bytes([p[0], p[1]]))
                        .collect();
                    // Full: the modem's loop is behind, this chunk is lost.
                    let _ = mic_tx.try_send(chunk);
                }
            })
            .map_err(|e| SoundCardError::Stream(devices.mic_in.clone(), e.to_string()))?;
        let (speaker, rx) = sync_channel(SPEAKER_QUEUE);
        let name = devices.speaker_out.clone();
        std::thread::Builder::new()
            .name("modem-speaker".into())
            .spawn(move || play(&sink, &rx, &name))
            .map_err(|e| SoundCardError::Stream(devices.speaker_out.clone(), e.to_string()))?;
        Ok(Self { mic, speaker })
    }

    /// Queues the speaker port's audio (dropped when the queue is full).
    pub fn speak(&self, audio: Vec<i16>) {
        if !audio.is_empty() {
            let _ = self.speaker.try_send(audio);
        }
    }
}

fn play(sink: &libpulse_simple_binding::Simple, rx: &Receiver<Vec<i16>>, name: &str) {
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(audio) => {
                let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
                if let Err(err) = sink.write(&bytes) {
                    tracing::warn!(device = %name, %err, "emulated modem speaker stopped");
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
