//! The tokio edge of the modem driver: opens the serial port by path with
//! tokio-serial, feeds the sans-IO [`ModemDriver`] with bytes, commands and its
//! deadlines, writes what it asks, and hands line events to the relay. The relay
//! talks to a line only through [`LineHandle`]'s channels: nothing it does can
//! block the port. A modem + sound card line ([`open_modem_with_card`]) also moves
//! the audio between the driver and the card's rings: what the driver plays goes
//! into the play ring, and every 20 ms the whole frames captured are handed to it;
//! a card that stopped (its device gone) faults the line and ends the port's task.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt as _;

use super::driver::{DriverConfig, DriverOutput, LineAudio, LineCommand, LineEvent, ModemDriver};
use crate::soundcard::{CardCounters, CardCounts, SoundCard};

/// The clock the port's loop drives its sans-IO core by.
#[allow(clippy::disallowed_methods)] // the edge reads the clock for its core
fn now() -> Instant {
    Instant::now()
}

/// The relay's handle on one modem line.
#[derive(Debug)]
pub struct LineHandle {
    /// Commands to the line (dial, hang up, audio).
    pub commands: mpsc::Sender<LineCommand>,
    /// What the line reports (progress, audio, DTMF, faults).
    pub events: mpsc::Receiver<LineEvent>,
}

/// Opens the modem at `path` and starts driving it; the audio goes over the serial port.
pub fn open_modem(path: &Path, config: DriverConfig) -> std::io::Result<LineHandle> {
    let config = DriverConfig {
        audio: LineAudio::Serial,
        ..config
    };
    spawn(path, config, None)
}

/// Opens the modem at `path`, whose audio ports are wired to `card`, and starts
/// driving it: the modem dials and holds the line, the card carries the audio.
pub fn open_modem_with_card(
    path: &Path,
    config: DriverConfig,
    card: SoundCard,
) -> std::io::Result<LineHandle> {
    let config = DriverConfig {
        audio: LineAudio::SoundCard,
        ..config
    };
    spawn(path, config, Some(card))
}

fn spawn(path: &Path, config: DriverConfig, card: Option<SoundCard>) -> std::io::Result<LineHandle> {
    let port = tokio_serial::new(path.to_string_lossy(), 115_200).open_native_async()?;
    let (commands, command_rx) = mpsc::channel(256);
    let (event_tx, events) = mpsc::channel(256);
    let card = card.map(|card| Card {
        card,
        call_start: None,
    });
    tokio::spawn(run(
        port,
        ModemDriver::new(config, now()),
        card,
        command_rx,
        event_tx,
    ));
    Ok(LineHandle { commands, events })
}

/// The sound card of a line, and its counters when the current call was answered.
struct Card {
    card: SoundCard,
    call_start: Option<CardCounts>,
}

impl Card {
    /// Follows the driver's call state: underruns count while a call is up, and
    /// what the card counted during a call is logged at its end.
    fn follow(&mut self, driver: &ModemDriver) {
        let in_call = driver.is_answered();
        if in_call == self.call_start.is_some() {
            return;
        }
        if in_call {
            self.card.call_started();
        }
        let counters = &self.card.counters;
        counters
            .in_call
            .store(in_call, std::sync::atomic::Ordering::Relaxed);
        match self.call_start.take() {
            None => self.call_start = Some(counters.read()),
            Some(start) => {
                let during = counters.read().since(&start);
                tracing::info!(card = %during, "sound card during the call");
            }
        }
    }
}

/// Returns when the card has captured audio (or failed); never without a card.
async fn captured(card: Option<&CardCounters>) {
    match card {
        Some(counters) => counters.capture_ready.notified().await,
        None => std::future::pending().await,
    }
}

async fn run(
    mut port: tokio_serial::SerialStream,
    mut driver: ModemDriver,
    mut card: Option<Card>,
    mut commands: mpsc::Receiver<LineCommand>,
    events: mpsc::Sender<LineEvent>,
) {
    let mut buf = [0u8; 4096];
    let card_counters = card.as_ref().map(|card| card.card.counters.clone());
    loop {
        while let Some(output) = driver.poll_output() {
            match output {
                DriverOutput::Write(bytes) => {
                    if port.write_all(&bytes).await.is_err() {
                        let _ = events
                            .send(LineEvent::Fault("the serial port is gone".into()))
                            .await;
                        return;
                    }
                }
                // A relay that stopped listening only loses audio, never blocks us.
                DriverOutput::Event(event) => {
                    if events.try_send(event).is_err() && events.is_closed() {
                        return;
                    }
                }
                DriverOutput::Play(audio) => {
                    if let Some(card) = card.as_mut() {
                        card.card.play_ulaw(&audio);
                    }
                }
            }
        }
        if let Some(card) = card.as_mut() {
            card.follow(&driver);
        }
        let deadline = driver.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::from_std(now() + Duration::from_secs(3600));
        tokio::select! {
            read = port.read(&mut buf) => match read {
                Ok(n) if n > 0 => driver.handle_bytes(now(), &buf[..n]),
                _ => {
                    let _ = events.send(LineEvent::Fault("the modem was unplugged".into())).await;
                    return;
                }
            },
            command = commands.recv() => match command {
                Some(command) => driver.handle_command(now(), command),
                None => return,
            },
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => driver.handle_timeout(now()),
            () = captured(card_counters.as_deref()) => {
                // Everything captured since we last looked (the card delivers
                // in bursts): the capture ring never fills, no delay builds up.
                if let Some(card) = card.as_mut() {
                    if let Some(why) = card.card.counters.failed.get() {
                        // The card is gone: the line is faulty (a call on it
                        // ends), and the relay opens it again with its backoff.
                        let _ = events.send(LineEvent::Fault(format!("sound card: {why}"))).await;
                        return;
                    }
                    while let Some(frame) = card.card.captured_frame() {
                        driver.handle_card_audio(now(), &frame);
                    }
                }
            }
        }
    }
}
