//! The signature of a delivery: `Offhook-Signature: t=<unix seconds>,v1=<hex>`
//! where the hex is HMAC-SHA256, keyed by the webhook's secret, over
//! `"<t>.<body>"` (the exact bytes posted). A receiver recomputes it, compares in
//! constant time, and refuses a `t` older than a few minutes (a replay):
//! [`verify`] is that check, for receivers written in Rust (and our tests).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The header's name.
pub const HEADER: &str = "offhook-signature";

/// Signatures older (or newer) than this are refused by [`verify`]: a replay.
pub const TOLERANCE_S: i64 = 300;

fn mac(secret: &str, unix_seconds: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(unix_seconds.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header's value for `body` signed at `unix_seconds` with `secret`.
pub fn sign(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mac = mac(secret, &unix_seconds.to_string(), body);
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A receiver's check: whether `header` (the `Offhook-Signature` value) signs
/// `body` with `secret` at a time within [`TOLERANCE_S`] of `now_unix_seconds`;
/// compared in constant time. Never panics on what a sender wrote.
pub fn verify(secret: &str, header: &str, body: &[u8], now_unix_seconds: i64) -> bool {
    let field = |name: &str| {
        header
            .split(',')
            .find_map(|part| part.trim().strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(t), Some(v1)) = (field("t"), field("v1")) else {
        return false;
    };
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| now_unix_seconds.abs_diff(t) <= TOLERANCE_S.unsigned_abs());
    fresh && hex::decode(v1).is_ok_and(|sig| mac(secret, t, body).verify_slice(&sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_what_it_signs_and_nothing_else() {
        let header = sign("whsec_a", 1_000, b"{}");
        assert!(verify("whsec_a", &header, b"{}", 1_000 + TOLERANCE_S));
        assert!(!verify("whsec_b", &header, b"{}", 1_000), "another secret");
        assert!(!verify("whsec_a", &header, b"{ }", 1_000), "another body");
        assert!(!verify("whsec_a", &header, b"{}", 1_001 + TOLERANCE_S), "too old");
        let moved = header.replace("t=1000", "t=1001");
        assert!(!verify("whsec_a", &moved, b"{}", 1_001), "the time is signed too");
        for junk in ["", "t=", "v1=00", "t=x,v1=zz", "t=1000,v1=", "\u{0}"] {
            assert!(!verify("whsec_a", junk, b"{}", 1_000), "{junk:?}");
        }
    }

    #[test]
    fn known_answer() {
        // printf '1764547200.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign("whsec_test", 1_764_547_200, br#"{"a":1}"#),
            "t=1764547200,v1=b6f2143a1a033b1cc7ccfdd67886f1bf023858b48bf2d18ef7d9cb2ddacabe0e"
        );
    }
}
