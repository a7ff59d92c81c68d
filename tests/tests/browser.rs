//! Click-to-call in a real browser: Debian's headless Chromium with a fake
//! microphone playing a 1 kHz tone opens the `offhook demo` page, clicks the echo
//! icon, and must hear the tone back (WebAudio analyser) over WebRTC with Opus, the
//! relay dialing the emulated modem; a key pressed in the widget is played into
//! the line and heard back; hang-up ends the call and completes the CDR.
//! Refusals (origin not allowed, disabled icon, rate limit) show their reason in
//! the widget. JsSIP, a second real SIP client, calls with a token too. A tab
//! closed mid-call (no hang-up, its WebSocket just goes) ends the call: the line
//! is idle and the CDR ended `caller-gone` within 30 s. A browser whose audio
//! stalls for a second mid-call (a loaded machine) is heard again at once.

use std::time::Duration;

use offhook_directory::testing::Backend;
use offhook_directory::{HangupCause, LineState, Scope};
use offhook_tests::browser::{node, npm_ci, strings};
use offhook_tests::{ANY_PORTS, Offhook, Running, scratch_dir, write_tone_wav};
use serde_json::Value;

/// A fresh directory, `offhook demo` on it, its page's URL, and a 1 kHz tone WAV
/// for the fake microphone (in scratch dir `name`).
async fn demo_and_tone(name: &str) -> (Offhook, Running, String, String) {
    npm_ci();
    let offhook = Offhook::new(Backend::Sqlite).await;
    let wav = scratch_dir(name).join("tone.wav");
    write_tone_wav(&wav, 1000.0, 30).unwrap();
    let mut demo = offhook.spawn(&["demo"], ANY_PORTS);
    let url = format!("http://{}/", demo.wait_for_web_address().await);
    (offhook, demo, url, wav.to_str().unwrap().to_owned())
}

/// The far end's audio in `report` is the echoed 1 kHz tone, loud enough.
fn assert_echo_heard(report: &Value) {
    let peak = report["audio"]["peakHz"].as_f64().unwrap_or_default();
    assert!(
        (950.0..1050.0).contains(&peak),
        "the echoed tone is the loudest: {report}"
    );
    assert!(
        report["audio"]["peakDb"].as_f64().is_some_and(|db| db > -60.0),
        "{report}"
    );
}

#[tokio::test]
async fn browser_calls_the_echo_and_sees_refusals() {
    let (offhook, demo, url, wav) = demo_and_tone("browser").await;
    let wav = wav.as_str();

    // The echo: ringing, in call, the tone back, hang-up, over Opus.
    let report = node("call.mjs", &[&url, wav, "demo-echo"]).await;
    assert!(report["error"].is_null(), "{report}");
    let states = strings(&report, "states");
    for state in ["connecting", "ringing", "in-call", "ended"] {
        assert!(states.contains(&state), "{state} in {states:?}");
    }
    assert_echo_heard(&report);
    assert_eq!(
        report["codecs"]["outbound-rtp"], "audio/opus",
        "Opus from the browser"
    );
    assert_eq!(
        report["codecs"]["inbound-rtp"], "audio/opus",
        "Opus to the browser"
    );

    // The keypad: an RFC 4733 event (the answer offers telephone-event), shown in
    // the widget; the line played it, its tone comes back through the echo.
    let dtmf = &report["dtmf"];
    assert_eq!(dtmf["sent"], true, "canInsertDTMF: {report}");
    assert_eq!(dtmf["shown"], "5", "{report}");
    let (before, during) = (dtmf["before"].as_f64().unwrap(), dtmf["during"].as_f64().unwrap());
    assert!(
        during > before + 20.0,
        "the key's tone came back from the line: {report}"
    );

    // Refusals, each shown in the widget.
    let change = |args: &'static [&'static str]| offhook.run(args);
    assert!(
        change(&[
            "directory",
            "icon",
            "update",
            "demo-invalid",
            "--origin",
            "https://elsewhere.example"
        ])
        .await
        .status
        .success()
    );
    assert!(
        change(&["directory", "icon", "update", "demo-no-answer", "--disable"])
            .await
            .status
            .success()
    );
    assert!(
        change(&["directory", "icon", "update", "demo-busy", "--per-minute", "1"])
            .await
            .status
            .success()
    );
    for (icon, shown) in [
        ("demo-invalid", "not allowed from this page"),
        ("demo-no-answer", "switched off"),
        ("demo-busy", "busy"),
        ("demo-busy", "Too many calls"),
    ] {
        let report = node("call.mjs", &[&url, wav, icon, "failed"]).await;
        let text = report["statusText"].as_str().unwrap_or_default();
        assert!(text.contains(shown), "{icon}: '{shown}' in {report}");
    }

    // JsSIP calls the echo with a token from the click API.
    let report = node("jssip.mjs", &[&url, "demo-echo", wav]).await;
    assert!(report["error"].is_null(), "{report}");
    let events = strings(&report, "events");
    assert!(
        events.contains(&"confirmed") && events.contains(&"ended"),
        "{events:?}"
    );

    assert!(demo.stop().await.success());
    let cdrs = offhook.run(&["directory", "cdr", "list", "--json"]).await;
    let cdrs: Value = serde_json::from_slice(&cdrs.stdout).unwrap();
    let echo_calls: Vec<&Value> = cdrs
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["number"] == "5550100")
        .collect();
    assert_eq!(echo_calls.len(), 2, "the widget's call and JsSIP's");
    for cdr in echo_calls {
        assert_eq!(cdr["answer_source"], "ringback-stopped");
        assert_eq!(cdr["hangup_cause"], "normal", "{cdr}");
    }
    offhook.db.finish().await;
}

#[tokio::test]
async fn a_tab_closed_mid_call_frees_the_line_and_ends_the_cdr() {
    let (offhook, demo, url, wav) = demo_and_tone("browser-close").await;
    let report = node(
        "call.mjs",
        &[&url, &wav, "demo-echo", "in-call", "chromium", "close-tab"],
    )
    .await;
    assert!(report["error"].is_null(), "{report}");
    assert!(strings(&report, "states").contains(&"in-call"), "{report}");
    let closed = tokio::time::Instant::now();
    let d = &offhook.db.directory;
    let limit = Duration::from_secs(30);
    let ended = loop {
        let cdrs = d.list_cdrs(&Scope::Operator, &Default::default()).await.unwrap();
        let line = d.line("demo-line-1").await.unwrap();
        if let [cdr] = &cdrs[..]
            && cdr.ended_at.is_some()
            && line.state == LineState::Idle
        {
            break cdr.clone();
        }
        assert!(
            closed.elapsed() < limit,
            "call ended within {limit:?}: {cdrs:?} {line:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The CDR's end against the moment the tab closed (both Unix ms).
    let closed_at = report["closedAtMs"].as_i64().expect("when the tab closed");
    let took = ended.ended_at.unwrap() - closed_at;
    eprintln!(
        "tab closed mid-call: CDR ended {:?} {took} ms after the tab closed; line idle {:?} after the browser exited",
        ended.hangup_cause,
        closed.elapsed()
    );
    assert!((0..30_000).contains(&took), "{took} ms");
    assert_eq!(ended.hangup_cause, Some(HangupCause::CallerGone), "{ended:?}");
    assert!(ended.answered_at.is_some(), "{ended:?}");
    assert!(demo.stop().await.success());
    offhook.db.finish().await;
}

#[tokio::test]
async fn the_echo_is_heard_again_right_after_the_browser_audio_stalls() {
    // Chromium's audio service stopped for 1 s once the call is up: its capture
    // then goes on where it was, every packet a second later than before. The
    // relay's jitter buffer takes up the new delay within ~100 ms (it used to
    // drop everything for 4 s), so the echo is measured right after.
    let (offhook, demo, url, wav) = demo_and_tone("browser-stall").await;
    let report = node(
        "call.mjs",
        &[
            &url,
            &wav,
            "demo-echo",
            "in-call",
            "chromium",
            "hang-up",
            "auto",
            "1000",
        ],
    )
    .await;
    assert!(report["error"].is_null(), "{report}");
    assert_eq!(report["stalledMs"], 1000, "{report}");
    assert_echo_heard(&report);
    assert!(demo.stop().await.success());
    offhook.db.finish().await;
}
