//! Answer supervision in whole calls (simulated time, see `offhook_tests::sim`):
//! on lines hearing each country's E.180 tones, a callee who greets is answered
//! by voice detection, the caller hears the line's own ringback as early media
//! (183 with SDP) before the 200, then the greeting; a call that rings out
//! ends no-answer, never billed; the directory says so afterwards.

use std::time::Duration;

use offhook_directory::{AnswerSource, HangupCause, LineState};
use offhook_media::dsp::cadence::Country;
use offhook_media::dsp::goertzel::exact_level;
use offhook_signaling::config::SignalingConfig;
use offhook_sip::ua::{Reply, UaEvent};
use offhook_tests::sim::World;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn per_country_a_greeting_is_answered_by_voice_and_ringing_out_is_no_answer() {
    for country in Country::ALL {
        let mut w = World::in_country(&["line-1"], SignalingConfig::default(), Some(country)).await;
        let session = w.click("greets").await;
        assert_eq!(w.wait_outcome(session, 40 * SECOND).await, 200, "{country:?}");
        // Early media: a 183 with SDP came, and the line's own ringback with it.
        assert!(
            w.events.iter().any(|e| matches!(
                e,
                UaEvent::Progress { response, .. } if response.status == 183 && !response.body.is_empty()
            )),
            "{country:?}: 183 with SDP"
        );
        let ringback = country.ringback();
        let early_ringback = w.media.heard.chunks(800).any(|block| {
            ringback
                .freqs
                .iter()
                .all(|&f| exact_level(block, f64::from(f), 8000.0) > 0.2)
        });
        assert!(
            early_ringback,
            "{country:?}: the caller heard the line's ringback before the 200"
        );
        w.run(SECOND).await;
        let heard: Vec<i16> = w.media.heard.iter().rev().take(4000).copied().collect();
        let level = heard.iter().map(|&s| i64::from(s).abs()).sum::<i64>() / heard.len().max(1) as i64;
        assert!(
            level > 300,
            "{country:?}: the caller hears the greeting (level {level})"
        );
        w.caller
            .bye(w.now, session, &Reply::default())
            .expect("in a dialog");
        w.run(2 * SECOND).await;
        let cdr = w.cdrs().await.remove(0);
        assert_eq!(
            cdr.answer_source,
            Some(AnswerSource::VoiceDetected),
            "{country:?}"
        );
        assert_eq!(cdr.hangup_cause, Some(HangupCause::Normal), "{country:?}");
        assert_eq!(w.line_state("line-1").await, LineState::Idle, "{country:?}");

        let session = w.click("silent").await;
        assert_eq!(w.wait_outcome(session, 120 * SECOND).await, 480, "{country:?}");
        w.run(SECOND).await;
        let cdr = w
            .cdrs()
            .await
            .into_iter()
            .find(|c| c.number == "5550103")
            .expect("cdr");
        assert_eq!(
            (cdr.answered_at, cdr.answer_source, cdr.hangup_cause),
            (None, None, Some(HangupCause::NoAnswer)),
            "{country:?}: rang out, never billed"
        );
        assert_eq!(w.line_state("line-1").await, LineState::Idle, "{country:?}");
    }
}
