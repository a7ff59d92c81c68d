//! Requests between offhook's own elements: signaling signs every request it
//! sends to a media relay (`X-Offhook-Auth`), and the relay executes only
//! requests whose signature it can check, so that nobody else who reaches the
//! relay's port can make it dial. The key is one both sides already hold and
//! nobody else does: the SHA-256 HA1 of the relay's account (signaling has it in
//! the directory, the relay computes it from its password). The signature covers
//! what the relay acts on (method, Request-URI, Call-ID, CSeq, From tag, the
//! number and line headers) and the time it was made; a relay refuses one older
//! than its window, and a replay within the window (the same Call-ID, CSeq and
//! method again) is its to refuse.
//!
//! Value: `v1 <unix ms> <hex HMAC-SHA256>`.

use hmac::{Hmac, Mac};
use offhook_vocab::headers;
use sha2::Sha256;

use crate::message::Request;

/// Why a request's signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// No signature header.
    #[error("request not signed by signaling")]
    Missing,
    /// The header does not parse.
    #[error("malformed signature")]
    Malformed,
    /// Signed too long ago (or in the future).
    #[error("signature outside its time window")]
    Expired,
    /// Not signed with our key.
    #[error("signature does not match")]
    Mismatch,
}

fn mac(key: &[u8], request: &Request, at_ms: i64) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    let cseq = request.headers.get("CSeq").unwrap_or_default();
    let from_tag = request
        .from()
        .and_then(|f| f.tag().map(str::to_owned))
        .unwrap_or_default();
    for part in [
        request.method.as_str(),
        &request.uri,
        request.call_id(),
        cseq.trim(),
        &from_tag,
        request.headers.get(headers::NUMBER).unwrap_or_default().trim(),
        request.headers.get(headers::LINE).unwrap_or_default().trim(),
        &at_ms.to_string(),
    ] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Signs `request` with `key` at `at_ms` (Unix ms): adds the header, replacing
/// any the request carried.
pub fn sign(key: &[u8], request: &mut Request, at_ms: i64) {
    let value = format!("v1 {at_ms} {}", mac(key, request, at_ms));
    request.headers.set(headers::AUTH, &value);
}

/// Checks a request's signature: made with `key`, within `window_ms` of `now_ms`.
pub fn verify(key: &[u8], request: &Request, now_ms: i64, window_ms: i64) -> Result<(), TrustError> {
    let value = request.headers.get(headers::AUTH).ok_or(TrustError::Missing)?;
    let mut words = value.split_whitespace();
    let (Some("v1"), Some(at), Some(sig), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(TrustError::Malformed);
    };
    let at: i64 = at.parse().map_err(|_| TrustError::Malformed)?;
    if now_ms.abs_diff(at) > window_ms.unsigned_abs() {
        return Err(TrustError::Expired);
    }
    // Compared in full either way: the time taken says nothing about the key.
    let expected = mac(key, request, at);
    let same = expected.len() == sig.len()
        && expected
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same { Ok(()) } else { Err(TrustError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Method;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, "sip:line-1@192.0.2.9:5070");
        r.headers.push("From", "<sip:v@x>;tag=f1");
        r.headers.push("To", "<sip:line-1@x>");
        r.headers.push("Call-ID", "c1");
        r.headers.push("CSeq", "1 INVITE");
        r.headers.push(headers::NUMBER, "5550100");
        r.headers.push(headers::LINE, "line-1");
        r
    }

    #[test]
    fn a_signature_holds_only_for_what_it_signed() {
        let key = b"relay-ha1";
        let mut r = invite();
        sign(key, &mut r, 1_000);
        assert_eq!(verify(key, &r, 1_500, 30_000), Ok(()));
        assert_eq!(verify(b"other", &r, 1_500, 30_000), Err(TrustError::Mismatch));
        assert_eq!(verify(key, &r, 40_000, 30_000), Err(TrustError::Expired));
        let mut changed = r.clone();
        changed.headers.set(headers::NUMBER, "+882123");
        assert_eq!(
            verify(key, &changed, 1_500, 30_000),
            Err(TrustError::Mismatch),
            "another number"
        );
        let mut changed = r.clone();
        changed.uri = "sip:line-2@192.0.2.9:5070".into();
        assert_eq!(
            verify(key, &changed, 1_500, 30_000),
            Err(TrustError::Mismatch),
            "another line"
        );
        assert_eq!(verify(key, &invite(), 1_500, 30_000), Err(TrustError::Missing));
        let mut garbled = r.clone();
        garbled.headers.set(headers::AUTH, "v1 soon xyz");
        assert_eq!(verify(key, &garbled, 1_500, 30_000), Err(TrustError::Malformed));
    }
}
