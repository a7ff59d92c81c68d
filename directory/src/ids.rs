//! Application-generated object ids: a short type prefix and 16 random base-32
//! characters (`ten_…`, `icn_…`), the same on SQLite and PostgreSQL, and safe to
//! show in URLs and logs.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Fresh bytes from the OS-seeded generator, for secrets and ids: the one
/// place the directory draws randomness (it is an edge; cores get a seeded RNG).
#[allow(
    clippy::disallowed_methods,
    reason = "secrets and ids come from the OS generator"
)]
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    rand::rng().random()
}

/// A fresh random id with the given prefix, e.g. `new_id("icn")` -> `icn_k3…`.
pub(crate) fn new_id(prefix: &str) -> String {
    let bytes: [u8; 16] = random_bytes();
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    for byte in bytes {
        id.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
    }
    id
}

/// Milliseconds since the Unix epoch, the directory's time unit.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
