//! SIP messages (RFC 3261 s7, s20, s25): a tolerant, never-panicking parser, typed
//! views of the headers the proxy reasons about, and a printer. Our own because
//! rsip 0.4 mis-parses real browser traffic (see DEPENDENCIES.md): quoted Contact
//! parameters, comma-joined Via values, compact header names.
//!
//! Headers are kept as text in wire order (names canonicalised, compact forms
//! expanded); typed views (`Via`, `NameAddr`, `CSeq`, `Uri`) are parsed on demand,
//! so a proxy forwards what it does not understand unchanged.

mod framer;
pub(crate) mod headers;
mod method;
mod parse;
mod uri;
mod validate;
mod views;

pub use framer::{FramingError, StreamFramer};
pub use headers::Headers;
pub use method::Method;
pub use parse::{ParseError, parse};
pub use uri::Uri;
pub use validate::{Rejection, validate_request};
pub use views::{CSeq, NameAddr, Via};

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method (case-sensitive per RFC 3261 s7.1).
    pub method: Method,
    /// Request-URI, as text.
    pub uri: String,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100-699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Message {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }

    /// Wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(r) => r.to_bytes(),
            Self::Response(r) => r.to_bytes(),
        }
    }
}

fn print(start_line: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start_line.len() + 64 * headers.len() + body.len() + 32);
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        if name != "Content-Length" {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: &str) -> Self {
        Self {
            method,
            uri: uri.to_owned(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Wire bytes, with a Content-Length that matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        print(
            &format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }

    /// The Request-URI, parsed.
    pub fn request_uri(&self) -> Option<Uri> {
        Uri::parse(&self.uri).ok()
    }

    /// Max-Forwards, parsed; `None` when absent.
    pub fn max_forwards(&self) -> Option<u8> {
        self.headers
            .get("Max-Forwards")
            .and_then(|v| v.trim().parse().ok())
    }

    /// Lowers Max-Forwards by one before forwarding (RFC 3261 s16.6 step 3: a
    /// request without one gets 70) and returns what is left; `None`, with the
    /// request unchanged, when it was already 0 (the proxy answers 483).
    pub fn decrement_max_forwards(&mut self) -> Option<u8> {
        let left = self.max_forwards().unwrap_or(71).checked_sub(1)?;
        self.headers.set("Max-Forwards", &left.to_string());
        Some(left)
    }

    /// A response to this request per RFC 3261 s8.2.6: Via, From, To (with
    /// `to_tag` added when it has none), Call-ID and CSeq copied.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for via in self.headers.get_all("Via") {
            headers.push("Via", via);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(value) = self.headers.get(name) {
                let value = match (name, to_tag) {
                    ("To", Some(tag)) if NameAddr::parse(value).is_ok_and(|to| to.tag().is_none()) => {
                        format!("{value};tag={tag}")
                    }
                    _ => value.to_owned(),
                };
                headers.push(name, &value);
            }
        }
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    /// Wire bytes, with a Content-Length that matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        print(
            &format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }
}

/// The parsed views of the headers both requests and responses carry, written
/// once for both types.
macro_rules! header_views {
    ($($message:ty),+) => {$(
        impl $message {
            /// The top Via, parsed.
            pub fn top_via(&self) -> Option<Via> {
                self.headers.get("Via").and_then(|v| Via::parse(v).ok())
            }

            /// CSeq, parsed.
            pub fn cseq(&self) -> Option<CSeq> {
                self.headers.get("CSeq").and_then(|v| CSeq::parse(v).ok())
            }

            /// The Call-ID.
            pub fn call_id(&self) -> &str {
                self.headers.get("Call-ID").unwrap_or("")
            }

            /// From, parsed.
            pub fn from(&self) -> Option<NameAddr> {
                self.headers.get("From").and_then(|v| NameAddr::parse(v).ok())
            }

            /// To, parsed.
            pub fn to(&self) -> Option<NameAddr> {
                self.headers.get("To").and_then(|v| NameAddr::parse(v).ok())
            }
        }
    )+};
}

header_views!(Request, Response);
