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

pub use words::{AnswerSource, DigestAlgorithm, HangupCause, LineKind, LineState, UnknownWord};

/// The word lists as one JavaScript object literal, for the widget and the admin
/// UI (`web` serves it as `window.OffhookVocab`): each list by name, with the
/// private header names.
pub fn javascript() -> String {
    fn list(words: impl Iterator<Item = &'static str>) -> String {
        let quoted: Vec<String> = words.map(|w| format!("\"{w}\"")).collect();
        format!("[{}]", quoted.join(","))
    }
    format!(
        "{{\"lineStates\":{},\"hangupCauses\":{},\"answerSources\":{},\"lineKinds\":{},\"headers\":{{\"token\":\"{}\"}}}}",
        list(LineState::ALL.iter().map(|w| w.as_str())),
        list(HangupCause::NAMED.iter().map(|w| w.as_str())),
        list(AnswerSource::ALL.iter().map(|w| w.as_str())),
        list(LineKind::ALL.iter().map(|w| w.as_str())),
        headers::TOKEN,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn javascript_is_json_with_every_list() {
        let value: serde_json::Value = serde_json::from_str(&super::javascript()).unwrap();
        assert_eq!(value["lineStates"][2], "in-call");
        assert_eq!(value["headers"]["token"], "X-Offhook-Token");
        assert!(
            value["hangupCauses"]
                .as_array()
                .unwrap()
                .contains(&"node-lost".into())
        );
    }
}
