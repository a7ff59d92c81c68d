//! Checks on a request that parses but that a server must still refuse (RFC 3261
//! s8.2.2, s16.3; RFC 4475 s3.1.2 and s3.3): an unsupported Request-URI scheme
//! (416), headers escaped into a SIP Request-URI, a Contact with URI headers
//! outside angle brackets. Each refusal carries the status and reason to answer
//! with. What only a proxy or a UA can judge (Max-Forwards 0, Require, unknown
//! body types) is theirs.

use super::views::NameAddr;
use super::{Method, Request};

/// Why a well-formed request is refused, and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct Rejection {
    /// The response status (400, 416, ...).
    pub status: u16,
    /// The reason phrase naming the culprit.
    pub reason: &'static str,
}

const UNSUPPORTED_SCHEME: Rejection = Rejection {
    status: 416,
    reason: "Unsupported URI Scheme",
};

fn scheme(uri: &str) -> String {
    uri.trim()
        .split_once(':')
        .map_or(String::new(), |(s, _)| s.to_ascii_lowercase())
}

fn is_sip(uri: &str) -> bool {
    matches!(scheme(uri).as_str(), "sip" | "sips")
}

/// Refuses what a SIP server must not process even though it parses.
pub fn validate_request(request: &Request) -> Result<(), Rejection> {
    if !is_sip(&request.uri) && scheme(&request.uri) != "tel" {
        return Err(UNSUPPORTED_SCHEME);
    }
    // `?` after the host starts URI headers, which a Request-URI must not carry
    // (RFC 3261 s19.1.5); the user part may legally hold a `?`.
    let after_user = request.uri.rsplit('@').next().unwrap_or_default();
    if is_sip(&request.uri) && (after_user.contains('?') || request.request_uri().is_none()) {
        return Err(Rejection {
            status: 400,
            reason: "Bad Request-URI",
        });
    }
    if request.method == Method::Register
        && !request
            .headers
            .get("To")
            .is_some_and(|to| NameAddr::parse(to).is_ok_and(|to| is_sip(&to.uri)))
    {
        return Err(UNSUPPORTED_SCHEME);
    }
    let contacts = request.headers.get_all("Contact");
    let contact_ok = |text: &&str| {
        // An addr-spec cannot carry URI headers: they would read as header parameters.
        let bare = !text.contains('<');
        NameAddr::parse(text)
            .is_ok_and(|c| !(bare && c.uri.contains('?')) && (c.uri != "*" || contacts.len() == 1))
    };
    if !contacts.iter().all(contact_ok) {
        return Err(Rejection {
            status: 400,
            reason: "Bad Contact",
        });
    }
    Ok(())
}
