//! A second third-party softphone through the whole gateway: Debian's baresip
//! (libre's SIP stack) registers an account made with `offhook directory account
//! create` (digest MD5: libre gives up on a challenge whose algorithm it does not
//! know, so signaling challenges it with MD5 alone, by its User-Agent), calls the
//! demo echo 5550100 through the real `offhook demo` (proxy, relay, the modem
//! driver on a PTY, the emulated network) playing a 1 kHz tone from a WAV file
//! (`aufile`), and records what it hears (`sndfile`): the echo of the tone must be
//! in the recording (Goertzel). Then a busy line: baresip hears 486. CDRs record
//! both calls with the account and their causes.

use std::path::Path;
use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_media::dsp::goertzel::relative_level;
use offhook_tests::{Offhook, STEP_TIMEOUT, read_wav_samples, scratch_dir, write_tone_wav_at};
use serde_json::Value;

const PASSWORD: &str = "alice-baresip-secret";
/// 250 ms windows of the recording at 8 kHz.
const WINDOW: usize = 2000;

/// Writes baresip's configuration for the account, playing `tone`, recording
/// into `dump`, sending to signaling at `proxy`.
fn configure(dir: &Path, tone: &Path, dump: &Path, proxy: std::net::SocketAddr) {
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:0\nnet_interface 127.0.0.1\n\
         audio_source aufile,{tone}\naudio_player aubridge,nowhere\naudio_alert aubridge,nowhere\n\
         module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule aufile.so\n\
         module aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n\
         snd_path {dump}\n",
        tone = tone.display(),
        dump = dump.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let account = format!(
        "<sip:alice@demo.offhook.test>;auth_pass={PASSWORD};outbound=\"sip:{proxy};transport=udp\";\
         audio_codecs=PCMU;regint=600\n"
    );
    std::fs::write(dir.join("accounts"), account).unwrap();
}

/// Runs baresip with `dir`, dialing `number`, for `seconds`; what it printed.
async fn dial(dir: &Path, number: &str, seconds: u32) -> String {
    let run = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .args([
            "-e",
            &format!("/dial sip:{number}@demo.offhook.test"),
            "-t",
            &seconds.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(STEP_TIMEOUT * 2, run)
        .await
        .expect("baresip ends after -t seconds")
        .expect("baresip is installed (Debian package baresip)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// What baresip heard (sndfile's `*-dec.wav` recordings, in order) in `dump`.
fn heard(dump: &Path) -> Vec<i16> {
    // sndfile records the early media (our 183) and the call in files of their own.
    let mut files: Vec<_> = std::fs::read_dir(dump)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    assert!(
        !files.is_empty(),
        "sndfile's recording of the call in {}",
        dump.display()
    );
    files.sort();
    files
        .iter()
        .flat_map(|file| read_wav_samples(file).unwrap())
        .collect()
}

#[tokio::test]
async fn baresip_registers_calls_the_echo_and_hears_it_then_a_busy_line() {
    let offhook = Offhook::new(Backend::Sqlite).await;
    let demo = offhook.demo(&[]).await;
    offhook.create_demo_account("alice", PASSWORD, "201").await;

    let dir = scratch_dir("baresip");
    let dump = dir.join("dump");
    std::fs::create_dir_all(&dump).unwrap();
    let tone = dir.join("tone.wav");
    write_tone_wav_at(&tone, 1000.0, 30, 8000).unwrap();
    configure(&dir, &tone, &dump, demo.sip_udp);

    // The echo answers after two rings (~5.5 s); 16 s leave ~10 s of call.
    let log = dial(&dir, "5550100", 16).await;
    assert!(
        log.contains("200 OK () [1 binding]"),
        "registered with digest:\n{log}"
    );
    assert!(log.contains("Call established"), "answered:\n{log}");
    let samples = heard(&dump);
    let windows: Vec<f64> = samples
        .chunks_exact(WINDOW)
        .map(|w| relative_level(w, 1000.0, 8000.0))
        .collect();
    let with_tone = windows.iter().filter(|level| **level > 0.5).count();
    eprintln!(
        "baresip heard {} samples; {with_tone} of {} windows of 250 ms carry the 1 kHz echo",
        samples.len(),
        windows.len()
    );
    assert!(
        with_tone >= 12,
        "the echo of the tone for 3 s or more: {windows:?}"
    );

    // A busy line: baresip hears 486 (after a call the line may still be going on
    // hook, which signaling answers 503: try again then).
    let mut busy = String::new();
    for _ in 0..10 {
        busy = dial(&dir, "5550102", 6).await;
        if !busy.contains("503") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(busy.contains("486 Busy"), "busy line:\n{busy}");

    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let cause = |number: &str| {
        cdrs.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["number"] == number && !c["account_id"].is_null())
            .map(|c| c["hangup_cause"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(cause("5550100"), ["normal"], "{cdrs}");
    assert!(cause("5550102").contains(&"busy".to_owned()), "{cdrs}");
    assert!(demo.running.stop().await.success());
    offhook.db.finish().await;
}
