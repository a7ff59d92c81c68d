//! What the application puts into the messages the layer builds: a [`Reply`]
//! (status, reason, extra headers, a [`Body`]) for responses and in-dialog
//! requests, and an [`Outgoing`] call to place.

use crate::message::Headers;
use crate::transport::Flow;

/// A message body with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Body {
    /// An SDP body.
    pub fn sdp(sdp: impl Into<String>) -> Self {
        Self {
            content_type: "application/sdp".into(),
            bytes: sdp.into().into_bytes(),
        }
    }
}

/// What the application puts into a response or request the layer builds:
/// status and reason (responses), extra headers, a body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Status code (responses only).
    pub status: u16,
    /// Reason phrase (responses only).
    pub reason: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// A body.
    pub body: Option<Body>,
}

impl Reply {
    /// A response with this status and reason.
    pub fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            ..Self::default()
        }
    }

    /// With one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds the headers and body to `headers`/`body` of a message.
    pub(super) fn apply(&self, headers: &mut Headers, body: &mut Vec<u8>) {
        for (name, value) in &self.headers {
            headers.push(name, value);
        }
        if let Some(b) = &self.body {
            headers.push("Content-Type", &b.content_type);
            body.clone_from(&b.bytes);
        }
    }
}

/// A call to place ([`super::UserAgent::invite`]).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The Request-URI.
    pub target: String,
    /// Our address of record (From, without tag).
    pub from: String,
    /// The callee's (To).
    pub to: String,
    /// The user part of our Contact.
    pub contact_user: Option<String>,
    /// Where the INVITE goes first (an outbound proxy).
    pub flow: Flow,
    /// Extra headers and the offer (no status).
    pub extra: Reply,
}
