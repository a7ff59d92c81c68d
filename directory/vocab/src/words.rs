//! The word lists: each enum has one spelling per value ([`LineState::as_str`]
//! and its siblings), parses it back (`FromStr`, exact spelling only), and is
//! (de)serialised as that spelling.

use std::fmt;
use std::str::FromStr;

/// A word that is not in the list it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    /// The list (`line state`, `hang-up cause`, ...).
    pub list: &'static str,
    /// What was given.
    pub word: String,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a {}", self.word, self.list)
    }
}

impl std::error::Error for UnknownWord {}

macro_rules! words {
    ($(#[$doc:meta])* $name:ident, $list:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the order of the list.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The one spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(text: &str) -> Result<Self, UnknownWord> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownWord { list: $list, word: other.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        spelled_serde!($name);
        spelled_schema!($name, $list, [$($text),+]);
    };
}

/// The OpenAPI schema of a word list: a string, one of its spellings.
#[cfg(feature = "openapi")]
macro_rules! spelled_schema {
    ($name:ident, $list:literal, [$($text:expr),+]) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $list, ".")))
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

#[cfg(not(feature = "openapi"))]
macro_rules! spelled_schema {
    ($($any:tt)*) => {};
}

/// (De)serialises a word list as its spelling.
macro_rules! spelled_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

words!(
    /// What a line is doing, as the directory records it.
    LineState, "line state", {
        /// On hook, ready for a call.
        Idle = "idle",
        /// Claimed by a call: off hook, dialing or ringing.
        Dialing = "dialing",
        /// The call on it was answered.
        InCall = "in-call",
        /// Its modem failed (the relay re-opens it with backoff).
        Fault = "fault",
        /// Its relay is not running or not registered.
        Offline = "offline",
    }
);

words!(
    /// How a line reaches the telephone network.
    LineKind, "line kind", {
        /// A V.253 voice modem carrying the audio itself.
        Modem = "modem",
        /// A modem that dials and holds the line, audio through a sound card.
        ModemSoundcard = "modem+soundcard",
        /// The modem emulator on a pseudo-terminal.
        Emulated = "emulated",
    }
);

words!(
    /// How the answer of a call was known (the CDR keeps it: it decides billing).
    AnswerSource, "answer source", {
        /// Presumed: ringback was heard, then stayed away longer than its cadence's silence.
        RingbackStopped = "ringback-stopped",
        /// Presumed: ringback never started (V.253 `+VRN`).
        NoRingback = "no-ringback",
        /// Presumed: a voice was heard on the line.
        VoiceDetected = "voice-detected",
        /// Signalled by the exchange: line polarity reversal (`<DLE>L`).
        PolarityReversal = "polarity-reversal",
        /// A SIP 200 OK from a registered user agent (account-to-account calls).
        Sip = "sip",
    }
);

words!(
    /// A digest algorithm (RFC 7616, RFC 8760), spelled as in the `algorithm` parameter.
    DigestAlgorithm, "digest algorithm", {
        /// `MD5`, what most SIP phones still send.
        Md5 = "MD5",
        /// `SHA-256`, RFC 8760.
        Sha256 = "SHA-256",
    }
);

impl DigestAlgorithm {
    /// H(text) in lowercase hex.
    pub fn hash(self, text: &str) -> String {
        use md5::Digest as _;
        match self {
            Self::Md5 => hex::encode(md5::Md5::digest(text.as_bytes())),
            Self::Sha256 => hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    }

    /// HA1 = H(username ":" realm ":" password), what an account stores instead
    /// of its password.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash(&format!("{username}:{realm}:{password}"))
    }
}

/// Why a call ended (the CDR's hang-up cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HangupCause {
    /// The caller hung up.
    Normal,
    /// The called party (the line's far end) hung up.
    RemoteHangup,
    /// The line or the callee was busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// The network said the number does not exist (special information tone).
    InvalidNumber,
    /// The caller gave up before the answer (CANCEL).
    Cancelled,
    /// The line failed (modem error, no dial tone, unplugged).
    LineFault,
    /// The call was refused (policy, authentication).
    Rejected,
    /// The process that owned the call died; closed by another node or a restart.
    NodeLost,
    /// The relay holding the call's line died: it stopped answering its health
    /// checks, or registered again as a new process (a new REGISTER Call-ID).
    RelayLost,
    /// A leg's media stopped (RTP inactivity, ICE consent lost).
    MediaTimeout,
    /// The browser's media never connected (no ICE candidate pair worked).
    NoAudioPath,
    /// The caller's connection closed without a BYE (a browser tab closed).
    CallerGone,
    /// The call reached its maximum duration.
    MaxDuration,
    /// The call used up the minutes its tenant, icon or account had left.
    BudgetExhausted,
    /// An operator hung it up.
    OperatorHangup,
    /// The process shut down and ended its calls.
    Shutdown,
    /// Any other final SIP status (`sip-NNN`).
    Sip(u16),
}

impl HangupCause {
    /// The named causes (every value but [`HangupCause::Sip`]).
    pub const NAMED: &'static [Self] = &[
        Self::Normal,
        Self::RemoteHangup,
        Self::Busy,
        Self::NoAnswer,
        Self::InvalidNumber,
        Self::Cancelled,
        Self::LineFault,
        Self::Rejected,
        Self::NodeLost,
        Self::RelayLost,
        Self::MediaTimeout,
        Self::NoAudioPath,
        Self::CallerGone,
        Self::MaxDuration,
        Self::BudgetExhausted,
        Self::OperatorHangup,
        Self::Shutdown,
    ];

    /// The spelling of a named cause (`None` for [`HangupCause::Sip`]).
    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::Normal => "normal",
            Self::RemoteHangup => "remote-hangup",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::InvalidNumber => "invalid-number",
            Self::Cancelled => "cancelled",
            Self::LineFault => "line-fault",
            Self::Rejected => "rejected",
            Self::NodeLost => "node-lost",
            Self::RelayLost => "relay-lost",
            Self::MediaTimeout => "media-timeout",
            Self::NoAudioPath => "no-audio-path",
            Self::CallerGone => "caller-gone",
            Self::MaxDuration => "max-duration",
            Self::BudgetExhausted => "budget-exhausted",
            Self::OperatorHangup => "operator-hangup",
            Self::Shutdown => "shutdown",
            Self::Sip(_) => return None,
        })
    }

    /// The spelling of a named cause; `sip` for the others (use `Display` for `sip-NNN`).
    pub fn as_str(self) -> &'static str {
        self.name().unwrap_or("sip")
    }

    /// The cause of a call that ended with this final SIP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            486 | 600 => Self::Busy,
            408 | 480 => Self::NoAnswer,
            404 | 484 | 604 => Self::InvalidNumber,
            487 => Self::Cancelled,
            500 | 502 | 503 => Self::LineFault,
            403 => Self::Rejected,
            other => Self::Sip(other),
        }
    }
}

impl fmt::Display for HangupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Self::Sip(status)) => write!(f, "sip-{status}"),
            (None, _) => f.write_str("sip"),
        }
    }
}

impl FromStr for HangupCause {
    type Err = UnknownWord;

    fn from_str(text: &str) -> Result<Self, UnknownWord> {
        if let Some(named) = Self::NAMED.iter().find(|c| c.as_str() == text) {
            return Ok(*named);
        }
        text.strip_prefix("sip-")
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (300..700).contains(s))
            .map(Self::Sip)
            .ok_or_else(|| UnknownWord {
                list: "hang-up cause",
                word: text.to_owned(),
            })
    }
}

spelled_serde!(HangupCause);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for HangupCause {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let named: Vec<&str> = Self::NAMED.iter().map(|c| c.as_str()).collect();
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "A hang-up cause: {}, or sip-NNN for another final SIP status.",
                named.join(", ")
            )))
            .pattern(Some(format!("^({}|sip-[3-6][0-9][0-9])$", named.join("|"))))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for HangupCause {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back() {
        for state in LineState::ALL {
            assert_eq!(state.as_str().parse::<LineState>(), Ok(*state));
        }
        for cause in HangupCause::NAMED {
            assert_eq!(cause.to_string().parse::<HangupCause>(), Ok(*cause));
        }
        assert_eq!("sip-415".parse::<HangupCause>(), Ok(HangupCause::Sip(415)));
        assert!("sip-99".parse::<HangupCause>().is_err());
        assert!("Idle".parse::<LineState>().is_err(), "one spelling only");
        assert_eq!(
            serde_json::to_string(&AnswerSource::PolarityReversal).unwrap(),
            "\"polarity-reversal\""
        );
        assert_eq!(
            serde_json::from_str::<LineKind>("\"modem+soundcard\"").unwrap(),
            LineKind::ModemSoundcard
        );
    }

    #[test]
    fn ha1_known_answer() {
        // RFC 2617 s3.5.
        assert_eq!(
            DigestAlgorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn statuses_map_to_causes() {
        assert_eq!(HangupCause::of_status(486), HangupCause::Busy);
        assert_eq!(HangupCause::of_status(487), HangupCause::Cancelled);
        assert_eq!(HangupCause::of_status(415).to_string(), "sip-415");
    }
}
