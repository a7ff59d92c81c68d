//! Input checks shared by every writer of the directory (CLI, admin API, demo seed):
//! phone numbers, tenant names, SIP domains and user names, web origins, limits. A
//! value that passes here is safe to put in a SIP header or a modem dial string.

use crate::error::{DirectoryError, Result};

/// Longest phone number accepted (E.164 allows 15 digits; extensions and
/// access codes need a little more).
const MAX_NUMBER_LEN: usize = 32;

/// A dialable number: digits, `*` and `#`, with an optional leading `+`.
pub(crate) fn number(value: &str) -> Result<String> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() {
        return Err(DirectoryError::invalid("number", "must not be empty"));
    }
    if value.len() > MAX_NUMBER_LEN {
        return Err(DirectoryError::invalid(
            "number",
            format!("longer than {MAX_NUMBER_LEN} characters"),
        ));
    }
    if let Some(bad) = digits
        .chars()
        .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
    {
        return Err(DirectoryError::invalid(
            "number",
            format!("'{bad}' is not allowed: only digits, '*', '#' and a leading '+'"),
        ));
    }
    Ok(value.to_owned())
}

/// A tenant or relay or line name: 1-63 of lowercase letters, digits, `-`.
pub(crate) fn name(field: &'static str, value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(DirectoryError::invalid(
            field,
            format!("'{value}' must be 1-63 lowercase letters, digits or '-'"),
        ))
    }
}

/// A SIP domain (DNS host name), stored lowercase.
pub(crate) fn domain(value: &str) -> Result<String> {
    let lower = value.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if lower.len() <= 253 && lower.split('.').all(label_ok) {
        Ok(lower)
    } else {
        Err(DirectoryError::invalid(
            "domain",
            format!("'{value}' is not a valid DNS name"),
        ))
    }
}

/// A SIP user name: RFC 3261 `user` unreserved characters, 1-64 of them.
pub(crate) fn username(value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(DirectoryError::invalid(
            "username",
            format!("'{value}' must be 1-64 letters, digits or -_.!~*'()&=+$,;?/"),
        ))
    }
}

/// A web origin as browsers send it: `http(s)://host[:port]`, no path.
pub(crate) fn origin(value: &str) -> Result<String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| {
            DirectoryError::invalid("origin", format!("'{value}' must start with https:// or http://"))
        })?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
    if port_ok && host_ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(DirectoryError::invalid(
            "origin",
            format!("'{value}' is not an origin like https://shop.example:8443 (no path)"),
        ))
    }
}

/// A whole number within `min..=max`.
pub(crate) fn bounded(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DirectoryError::invalid(
            field,
            format!("{value} is outside {min}..={max}"),
        ))
    }
}

/// A free-text label named `field`: non-empty, at most 200 characters, no
/// control characters.
pub(crate) fn label(field: &'static str, value: &str) -> Result<String> {
    let ok = !value.trim().is_empty() && value.chars().count() <= 200 && !value.chars().any(char::is_control);
    if ok {
        Ok(value.to_owned())
    } else {
        Err(DirectoryError::invalid(
            field,
            "must be 1-200 characters without control characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(number("5550100").is_ok());
        assert!(number("+4930123*#").is_ok());
        for bad in ["", "+", "555 0100", "555-0100", "12;ATH", "1+2", "abc"] {
            assert!(number(bad).is_err(), "{bad} accepted");
        }
        assert!(number(&"1".repeat(33)).is_err());
    }

    #[test]
    fn origins() {
        assert!(origin("https://shop.example").is_ok());
        assert!(origin("http://127.0.0.1:8080").is_ok());
        for bad in [
            "shop.example",
            "https://",
            "https://a/b",
            "https://a:0",
            "ftp://a",
        ] {
            assert!(origin(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn domains_and_names() {
        assert_eq!(domain("Demo.Example").unwrap(), "demo.example");
        assert!(domain("bad..example").is_err());
        assert!(name("tenant", "acme-1").is_ok());
        assert!(name("tenant", "Acme").is_err());
        assert!(username("alice.b").is_ok());
        assert!(username("al ice").is_err());
    }
}
