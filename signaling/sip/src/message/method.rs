//! SIP methods (RFC 3261 s7.1 and the extension RFCs) as a type. Method names are
//! case-sensitive tokens: `INVITE` is [`Method::Invite`], `invite` is an unknown
//! method kept as written ([`Method::Other`]), so a proxy forwards it unchanged.

use std::fmt;

/// A request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// RFC 3261.
    Invite,
    /// RFC 3261.
    Ack,
    /// RFC 3261.
    Bye,
    /// RFC 3261.
    Cancel,
    /// RFC 3261.
    Register,
    /// RFC 3261.
    Options,
    /// RFC 6086.
    Info,
    /// RFC 3311.
    Update,
    /// RFC 3262.
    Prack,
    /// RFC 6665.
    Subscribe,
    /// RFC 6665.
    Notify,
    /// RFC 3515.
    Refer,
    /// RFC 3428.
    Message,
    /// RFC 3903.
    Publish,
    /// Any other token, as written.
    Other(String),
}

impl Method {
    /// The methods with a name of their own.
    const KNOWN: [(Self, &'static str); 14] = [
        (Self::Invite, "INVITE"),
        (Self::Ack, "ACK"),
        (Self::Bye, "BYE"),
        (Self::Cancel, "CANCEL"),
        (Self::Register, "REGISTER"),
        (Self::Options, "OPTIONS"),
        (Self::Info, "INFO"),
        (Self::Update, "UPDATE"),
        (Self::Prack, "PRACK"),
        (Self::Subscribe, "SUBSCRIBE"),
        (Self::Notify, "NOTIFY"),
        (Self::Refer, "REFER"),
        (Self::Message, "MESSAGE"),
        (Self::Publish, "PUBLISH"),
    ];

    /// The method named by a token (exact case).
    pub fn from_token(token: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(_, name)| *name == token)
            .map_or_else(|| Self::Other(token.to_owned()), |(m, _)| m.clone())
    }

    /// The method's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(token) => token,
            known => Self::KNOWN
                .iter()
                .find(|(m, _)| m == known)
                .map_or("", |(_, name)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_case_matters() {
        for (method, name) in Method::KNOWN {
            assert_eq!(Method::from_token(name), method);
            assert_eq!(method.as_str(), name);
        }
        assert_eq!(Method::from_token("invite"), Method::Other("invite".into()));
        assert_eq!(Method::from_token("invite").as_str(), "invite");
    }
}
