//! offhook's shared vocabulary: the words that signaling, the media relay, the
//! directory, the web server and the widget all use for the same things, defined
//! once. Each word list is an enum with one spelling (stored in the directory,
//! sent in private SIP headers, shown by the admin UI and the widget, which get
//! them from [`javascript`]); ids are newtypes so that a line id is never passed
//! where a CDR id belongs; and how a digest HA1 is computed (the directory
//! stores it, the SIP stack checks and answers with it). No I/O.

mod words;

pub mod headers;
pub mod ids;
mod secret;

pub use secret::Secret;

pub use words::{AnswerSource, DigestAlgorithm, HangupCause, LineKind, LineState, UnknownWord};

/// A phone number as logs show it (numbers are personal data): all but the
/// last two digits masked, the length kept: `+4930123456` -> `+*******56`.
pub fn mask_number(number: &str) -> String {
    let keep = number
        .chars()
        .filter(char::is_ascii_digit)
        .count()
        .saturating_sub(2);
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= keep { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// The word lists as one JavaScript object literal, for the widget and the admin
/// UI (`web` serves it as `window.OffhookVocab`): each list by name, with the
/// private header names and the one cause a widget states itself.
pub fn javascript() -> String {
    fn list(words: impl Iterator<Item = &'static str>) -> String {
        let quoted: Vec<String> = words.map(|w| format!("\"{w}\"")).collect();
        format!("[{}]", quoted.join(","))
    }
    format!(
        "{{\"lineStates\":{},\"hangupCauses\":{},\"answerSources\":{},\"lineKinds\":{},\"headers\":{{\"token\":\"{}\",\"cause\":\"{}\"}},\"noAudioPath\":\"{}\"}}",
        list(LineState::ALL.iter().map(|w| w.as_str())),
        list(HangupCause::NAMED.iter().map(|w| w.as_str())),
        list(AnswerSource::ALL.iter().map(|w| w.as_str())),
        list(LineKind::ALL.iter().map(|w| w.as_str())),
        headers::TOKEN,
        headers::CAUSE,
        HangupCause::NoAudioPath.as_str(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_masked_but_the_last_two_digits() {
        assert_eq!(super::mask_number("+4930123456"), "+********56");
        assert_eq!(super::mask_number("5550100"), "*****00");
        assert_eq!(super::mask_number("7"), "7");
    }

    #[test]
    fn javascript_is_json_with_every_list() {
        let value: serde_json::Value = serde_json::from_str(&super::javascript()).unwrap();
        assert_eq!(value["lineStates"][2], "in-call");
        assert_eq!(value["headers"]["token"], "X-Offhook-Token");
        assert_eq!(value["headers"]["cause"], "X-Offhook-Cause");
        assert_eq!(value["noAudioPath"], "no-audio-path");
        assert!(
            value["hangupCauses"]
                .as_array()
                .unwrap()
                .contains(&"node-lost".into())
        );
    }
}
