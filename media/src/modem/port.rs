//! The tokio edge of the modem driver: opens the serial port by path with
//! tokio-serial, feeds the sans-IO [`ModemDriver`] with bytes, commands and its
//! deadlines, writes what it asks, and hands line events to the relay. The relay
//! talks to a line only through [`LineHandle`]'s channels: nothing it does can
//! block the port.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt as _;

use super::driver::{DriverConfig, DriverOutput, LineCommand, LineEvent, ModemDriver};

/// The relay's handle on one modem line.
#[derive(Debug)]
pub struct LineHandle {
    /// Commands to the line (dial, hang up, audio).
    pub commands: mpsc::Sender<LineCommand>,
    /// What the line reports (progress, audio, DTMF, faults).
    pub events: mpsc::Receiver<LineEvent>,
}

/// Opens the modem at `path` and starts driving it.
pub fn open_modem(path: &Path, config: DriverConfig) -> std::io::Result<LineHandle> {
    let port = tokio_serial::new(path.to_string_lossy(), 115_200).open_native_async()?;
    let (commands, command_rx) = mpsc::channel(256);
    let (event_tx, events) = mpsc::channel(256);
    tokio::spawn(run(
        port,
        ModemDriver::new(config, Instant::now()),
        command_rx,
        event_tx,
    ));
    Ok(LineHandle { commands, events })
}

async fn run(
    mut port: tokio_serial::SerialStream,
    mut driver: ModemDriver,
    mut commands: mpsc::Receiver<LineCommand>,
    events: mpsc::Sender<LineEvent>,
) {
    let mut buf = [0u8; 4096];
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
            }
        }
        let deadline = driver.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            read = port.read(&mut buf) => match read {
                Ok(n) if n > 0 => driver.handle_bytes(Instant::now(), &buf[..n]),
                _ => {
                    let _ = events.send(LineEvent::Fault("the modem was unplugged".into())).await;
                    return;
                }
            },
            command = commands.recv() => match command {
                Some(command) => driver.handle_command(Instant::now(), command),
                None => return,
            },
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => driver.handle_timeout(Instant::now()),
        }
    }
}
