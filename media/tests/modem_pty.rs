//! The real modem driver over a real pseudo-terminal, through tokio-serial, against
//! the emulator running in real time: an echoed tone, a key sent by `+VTS` and
//! heard back, busy, an invalid number, the Conexant `+VTR` quirk, a half-duplex
//! line turning round (`+VTX` while the caller talks, `+VRX` to hear the parrot
//! repeat it), and an unplugged modem. Bounded: every wait has a timeout.

use std::time::Duration;

use offhook_media::dsp::g711::{linear_to_ulaw, ulaw_to_linear};
use offhook_media::dsp::goertzel::{relative_level, some_block_has};
use offhook_media::dsp::tone::Tone;
use offhook_media::emulator::network::{BUSY, ECHO, Exchange, INVALID, PARROT};
use offhook_media::emulator::{Faults, pty};
use offhook_media::modem::{DriverConfig, LineCommand, LineEvent, LineHandle, open_modem};
use offhook_media::testing::next_line_event;

async fn ready_line(faults: Faults) -> (pty::EmulatedModem, LineHandle) {
    let modem = pty::spawn(faults, Duration::from_secs(3), Exchange::default(), None).unwrap();
    let mut line = open_modem(&modem.path, DriverConfig::default()).unwrap();
    assert_eq!(next_line_event(&mut line, |_| true).await, LineEvent::Ready);
    (modem, line)
}

async fn hang_up(line: &mut LineHandle) {
    line.commands.send(LineCommand::HangUp).await.unwrap();
    next_line_event(line, |e| *e == LineEvent::Idle).await;
}

/// Plays `frames` of 20 ms into the line, paced in real time, each made by
/// `frame(n)`; collects the audio that comes back meanwhile.
async fn talk(line: &mut LineHandle, frames: usize, mut frame: impl FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    let mut heard = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for n in 0..frames {
        tick.tick().await;
        line.commands.send(LineCommand::Audio(frame(n))).await.unwrap();
        while let Ok(event) = line.events.try_recv() {
            if let LineEvent::Audio(audio) = event {
                heard.extend(audio);
            }
        }
    }
    heard
}

/// 20 ms of a continuing 1 kHz tone.
fn tone_frame(tone: &mut Tone) -> Vec<u8> {
    (0..160).map(|_| linear_to_ulaw(tone.next_sample())).collect()
}

/// Whether some 100 ms of `heard` carries each of `freqs` (Goertzel share above `min`).
fn has_tone(heard: &[u8], freqs: &[f64], min: f64) -> bool {
    let samples: Vec<i16> = heard.iter().map(|&c| ulaw_to_linear(c)).collect();
    some_block_has(&samples, 800, freqs, min)
}

#[tokio::test]
async fn echo_over_a_real_pty() {
    let (_modem, mut line) = ready_line(Faults::default()).await;
    line.commands.send(LineCommand::Dial(ECHO.into())).await.unwrap();
    let answered = next_line_event(&mut line, |e| matches!(e, LineEvent::Answered(_))).await;
    assert!(matches!(answered, LineEvent::Answered(_)));
    // 1.5 s of a 1 kHz tone into the line, paced at 20 ms; collect what comes back.
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let heard = talk(&mut line, 75, |_| tone_frame(&mut tone)).await;
    let last: Vec<i16> = heard
        .iter()
        .rev()
        .take(2400)
        .map(|&c| ulaw_to_linear(c))
        .collect();
    assert!(
        relative_level(&last, 1000.0, 8000.0) > 0.5,
        "the echo returns the tone"
    );
    // A key by AT+VTS (the stream is left and entered again): '9' is 852 + 1477 Hz.
    line.commands.send(LineCommand::Dtmf('9')).await.unwrap();
    let heard = talk(&mut line, 40, |_| vec![0xFF; 160]).await;
    assert!(
        has_tone(&heard, &[852.0, 1477.0], 0.2),
        "the key comes back through the echo"
    );
    hang_up(&mut line).await;
}

#[tokio::test]
async fn half_duplex_line_turns_round_for_the_caller_and_back() {
    let (_modem, mut line) = ready_line(Faults {
        no_vtr: true,
        ..Faults::default()
    })
    .await;
    line.commands
        .send(LineCommand::Dial(PARROT.into()))
        .await
        .unwrap();
    next_line_event(&mut line, |e| matches!(e, LineEvent::Answered(_))).await;
    // 1 s of tone (+VTX), then quiet: after the hangover the line receives again
    // (+VRX) and hears the parrot repeat the tone, 0.6 s after it ended.
    let mut tone = Tone::new(1000.0, 8000.0, 8000.0);
    let heard = talk(&mut line, 150, |n| match n < 50 {
        true => tone_frame(&mut tone),
        false => vec![0xFF; 160],
    })
    .await;
    assert!(
        has_tone(&heard, &[1000.0], 0.5),
        "the parrot heard on the half-duplex line"
    );
    hang_up(&mut line).await;
}

#[tokio::test]
async fn busy_and_invalid_end_back_at_idle() {
    let (_modem, mut line) = ready_line(Faults {
        vtr_query_error: true,
        vendor_vsm: true,
        ..Faults::default()
    })
    .await;
    for (number, outcome) in [(BUSY, LineEvent::Busy), (INVALID, LineEvent::Invalid)] {
        line.commands
            .send(LineCommand::Dial(number.into()))
            .await
            .unwrap();
        let got = next_line_event(&mut line, |e| {
            !matches!(
                e,
                LineEvent::Dialing | LineEvent::Audio(_) | LineEvent::EarlyAudio(_)
            )
        })
        .await;
        assert_eq!(got, outcome, "{number}");
        next_line_event(&mut line, |e| *e == LineEvent::Idle).await;
    }
}

#[tokio::test]
async fn unplugged_modem_is_a_fault() {
    let (modem, mut line) = ready_line(Faults::default()).await;
    modem.unplug();
    line.commands.send(LineCommand::Dial(ECHO.into())).await.unwrap();
    let fault = next_line_event(&mut line, |e| matches!(e, LineEvent::Fault(_))).await;
    assert!(matches!(fault, LineEvent::Fault(_)));
}
