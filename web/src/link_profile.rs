//! Which media profile the widget asks for (`[web] link_profile`), handed to it
//! with each click grant. `wide` is the browser's own Opus (20 ms packets, its
//! default rate); `narrow` is for visitors on links of a few tens of kbit/s (a
//! dial-up modem): the widget's offer asks for Opus at 16 kbit/s at most in
//! 60 ms packets, and the relay answers and sends the same. `auto` (the
//! default) lets the widget choose narrow when it measures a slow link.

use serde::{Deserialize, Serialize};

/// The widget's media profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkProfile {
    /// The widget measures the link and picks narrow when it is slow.
    #[default]
    Auto,
    /// Always the low-bandwidth profile.
    Narrow,
    /// Never the low-bandwidth profile.
    Wide,
}

#[cfg(test)]
mod tests {
    use super::LinkProfile;

    #[test]
    fn profiles_read_and_write_as_lowercase_words() {
        let read: LinkProfile = serde_json::from_str("\"narrow\"").unwrap();
        assert_eq!(read, LinkProfile::Narrow);
        assert_eq!(
            serde_json::to_string(&LinkProfile::default()).unwrap(),
            "\"auto\""
        );
        assert!(serde_json::from_str::<LinkProfile>("\"fast\"").is_err());
    }
}
