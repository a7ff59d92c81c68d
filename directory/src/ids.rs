//! Application-generated object ids: a short type prefix and 16 random base-32
//! characters (`ten_…`, `icn_…`), the same on SQLite and PostgreSQL, and safe to
//! show in URLs and logs.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// A fresh random id with the given prefix, e.g. `new_id("icn")` -> `icn_k3…`.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..16 {
        id.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    id
}

/// Milliseconds since the Unix epoch, the directory's time unit.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
