//! The emulator on a pseudo-terminal: openpty, the slave side in raw mode for the
//! driver to open by path (through tokio-serial, like a real modem), and a tokio
//! task that runs the sans-IO [`Emulator`] on the master side in real time; with
//! [`PortDevices`], its audio ports on PulseAudio ([`super::ports`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

use super::network::Exchange;
use super::ports::{PortDevices, Ports};
use super::{Emulator, Faults};

/// The clock the PTY's loop drives its sans-IO core by.
#[allow(clippy::disallowed_methods)] // the edge reads the clock for its core
fn now() -> Instant {
    Instant::now()
}

/// A running emulated modem.
#[derive(Debug)]
pub struct EmulatedModem {
    /// The serial device to open (e.g. `/dev/pts/7`).
    pub path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl EmulatedModem {
    /// Unplugs the modem: the emulator stops and the PTY closes.
    pub fn unplug(self) {
        self.task.abort();
    }
}

impl Drop for EmulatedModem {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an emulated modem with these quirks, on `exchange`, on a fresh PTY;
/// its audio ports wired to `ports`, if any.
pub fn spawn(
    faults: Faults,
    hangup_after: Duration,
    exchange: Exchange,
    ports: Option<&PortDevices>,
) -> std::io::Result<EmulatedModem> {
    let ports = ports
        .map(Ports::open)
        .transpose()
        .map_err(|e| std::io::Error::other(format!("audio ports: {e}")))?;
    let pty = nix::pty::openpty(None, None)?;
    let mut termios = tcgetattr(pty.slave.as_fd())?;
    cfmakeraw(&mut termios);
    tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &termios)?;
    let path = nix::unistd::ttyname(pty.slave.as_fd())?;
    let flags = OFlag::from_bits_truncate(fcntl(pty.master.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(pty.master.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: the master is an OwnedFd that the AsyncFd owns from here on: it stays
    // open and is the same descriptor for the AsyncFd's whole life.
    let master = unsafe { AsyncFd::register(pty.master) }.map_err(std::io::Error::from)?;
    let modem = Emulator::new(faults, hangup_after).with_exchange(exchange);
    // The slave stays open here, so the master never sees EIO between driver opens.
    let task = tokio::spawn(run(master, pty.slave, modem, ports));
    Ok(EmulatedModem { path, task })
}

async fn write_all(master: &AsyncFd<OwnedFd>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let Ok(mut guard) = master.writable().await else {
            return;
        };
        match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(std::io::Error::from)) {
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(_)) => return,
            Err(_would_block) => continue,
        }
    }
}

async fn run(master: AsyncFd<OwnedFd>, _slave: OwnedFd, mut modem: Emulator, mut ports: Option<Ports>) {
    let mut buf = [0u8; 4096];
    loop {
        let mic = async {
            match ports.as_mut() {
                Some(ports) => ports.mic.recv().await,
                None => std::future::pending().await,
            }
        };
        let deadline = modem.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::from_std(now() + Duration::from_secs(3600));
        tokio::select! {
            ready = master.readable() => {
                let Ok(mut guard) = ready else { return };
                match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from)) {
                    Ok(Ok(n)) if n > 0 => modem.handle_bytes(now(), &buf[..n]),
                    Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(_would_block) => {}
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => modem.handle_timeout(now()),
            Some(chunk) = mic => modem.mic_in(&chunk),
        }
        if let Some(ports) = &ports {
            ports.speak(modem.speaker_out());
        }
        while let Some(bytes) = modem.poll_transmit() {
            write_all(&master, &bytes).await;
        }
    }
}
