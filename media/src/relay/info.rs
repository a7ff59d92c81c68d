//! Keys a caller sends in SIP INFO within the dialog (no RFC, but what
//! softphones send): `application/dtmf-relay` (`Signal=5` and `Duration=160`
//! lines) and `application/dtmf` (the key alone). Parsing never panics; any
//! other body is not ours to take.

/// The content types of key INFO bodies.
const DTMF_RELAY: &str = "application/dtmf-relay";
const DTMF: &str = "application/dtmf";

/// What an INFO body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InfoBody {
    /// A key press.
    Key(char),
    /// A key body with no usable key in it.
    BadKey,
    /// Not a key body (415).
    Unsupported,
}

/// The key in an INFO of `content_type` (parameters allowed) with `body`.
pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> InfoBody {
    let kind = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    let text = String::from_utf8_lossy(body);
    let signal = match kind.as_deref() {
        Some(DTMF_RELAY) => text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim().eq_ignore_ascii_case("signal").then(|| value.trim())
        }),
        Some(DTMF) => Some(text.trim()),
        _ => return InfoBody::Unsupported,
    };
    let mut chars = signal.unwrap_or_default().chars();
    match (chars.next().map(|c| c.to_ascii_uppercase()), chars.next()) {
        (Some(key), None) if key.is_ascii_digit() || "*#ABCD".contains(key) => InfoBody::Key(key),
        _ => InfoBody::BadKey,
    }
}

#[cfg(test)]
mod tests {
    use super::{InfoBody, parse};

    #[test]
    fn dtmf_relay_and_dtmf_bodies_give_their_key() {
        let relay = b"Signal=5\r\nDuration=160\r\n";
        assert_eq!(parse(Some("application/dtmf-relay"), relay), InfoBody::Key('5'));
        assert_eq!(
            parse(Some("Application/DTMF-Relay; x=1"), b"signal= #\r\n"),
            InfoBody::Key('#')
        );
        assert_eq!(parse(Some("application/dtmf"), b"a\r\n"), InfoBody::Key('A'));
    }

    #[test]
    fn other_bodies_are_refused_and_garbage_is_no_key() {
        assert_eq!(parse(Some("application/json"), b"{}"), InfoBody::Unsupported);
        assert_eq!(parse(None, b"Signal=5"), InfoBody::Unsupported);
        for body in [
            &b"Signal=55"[..],
            b"Signal=x",
            b"",
            b"Duration=100",
            &[0xFF, 0xFE, b'='][..],
        ] {
            assert_eq!(
                parse(Some("application/dtmf-relay"), body),
                InfoBody::BadKey,
                "{body:?}"
            );
        }
        assert_eq!(parse(Some("application/dtmf"), b"12"), InfoBody::BadKey);
    }
}
