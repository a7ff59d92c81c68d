//! The private `X-Offhook-*` SIP headers between the widget, signaling and the
//! media relay. Only offhook sets them: the proxy strips every one of
//! [`PRIVATE`] from what it forwards and adds its own.

/// The call token a browser got from the click API (widget -> signaling).
pub const TOKEN: &str = "X-Offhook-Token";
/// The number to dial, from the directory (signaling -> relay).
pub const NUMBER: &str = "X-Offhook-Number";
/// The line to dial on (signaling -> relay).
pub const LINE: &str = "X-Offhook-Line";
/// How the answer was known, an [`crate::AnswerSource`] (relay -> signaling).
pub const ANSWER: &str = "X-Offhook-Answer";
/// The peer's RTCP view of the call (relay -> signaling, on BYE and its 200).
pub const RTCP: &str = "X-Offhook-RTCP";
/// Why the relay ended a call, a [`crate::HangupCause`] word (relay -> signaling,
/// on its BYE); signaling records it and tells the caller in a `Reason`.
pub const CAUSE: &str = "X-Offhook-Cause";
/// Signaling's signature on a request it sends to a relay (see `offhook_sip::trust`).
pub const AUTH: &str = "X-Offhook-Auth";

/// Every private header: never taken from a caller, never passed on unchecked.
pub const PRIVATE: [&str; 7] = [TOKEN, NUMBER, LINE, ANSWER, RTCP, CAUSE, AUTH];
