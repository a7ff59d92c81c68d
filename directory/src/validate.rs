//! Input checks shared by every writer of the directory (CLI, admin API, demo seed):
//! phone numbers, tenant names, SIP domains and user names, web origins, webhook URLs
//! (and which addresses are internal networks), limits. A
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

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`), for
/// updates that can clear a field (`#[serde(default, deserialize_with = "present")]`).
pub(crate) fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Longest webhook URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Whether `ip` is an address of the server's own networks, or none a webhook may
/// be sent to: loopback, private (RFC 1918, RFC 4193), carrier-grade NAT,
/// link-local, unspecified, multicast, broadcast, benchmarking, reserved, and
/// IPv6 forms of such IPv4 addresses (mapped, NAT64, 6to4).
pub fn is_internal_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded_v4 = |high: u16, low: u16| {
                let [h1, h2] = high.to_be_bytes();
                let [l1, l2] = low.to_be_bytes();
                is_internal_address(IpAddr::from([h1, h2, l1, l2]))
            };
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal_address(IpAddr::V4(v4)))
                || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && embedded_v4(segments[6], segments[7]))
                || (segments[0] == 0x2002 && embedded_v4(segments[1], segments[2]))
        }
    }
}

/// A webhook URL: `http(s)://host[:port]/path?query`, no credentials, no
/// fragment. A host that is `localhost` or an internal address literal (see
/// [`is_internal_address`]) is refused unless `allow_internal`. Returned as
/// normalised by the URL standard.
pub(crate) fn webhook_url(value: &str, allow_internal: bool) -> Result<String> {
    let bad = |reason: String| DirectoryError::invalid("url", reason);
    if value.len() > MAX_URL_LEN {
        return Err(bad(format!("longer than {MAX_URL_LEN} characters")));
    }
    let url = url::Url::parse(value).map_err(|err| bad(format!("'{value}' is not a URL: {err}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad(format!("'{value}' must start with https:// (or http://)")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials: deliveries are signed instead".to_owned()
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment".to_owned()));
    }
    let internal = match url.host() {
        None => return Err(bad(format!("'{value}' has no host"))),
        Some(url::Host::Ipv4(ip)) => is_internal_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal_address(ip.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if internal && !allow_internal {
        return Err(bad(format!(
            "'{value}' points into the server's own network (loopback, private or link-local); \
             the operator can allow that with web.webhooks.allow_internal_targets"
        )));
    }
    Ok(url.to_string())
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
    fn webhook_urls_stay_out_of_internal_networks() {
        for internal in [
            "http://127.0.0.1:9000/hook",
            "http://10.1.2.3/",
            "https://192.168.0.10/x",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://2130706433/",
        ] {
            assert!(webhook_url(internal, false).is_err(), "{internal} accepted");
            assert!(
                webhook_url(internal, true).is_ok(),
                "{internal} refused when allowed"
            );
        }
        assert_eq!(
            webhook_url("https://Billing.Example.com/offhook?x=1", false).unwrap(),
            "https://billing.example.com/offhook?x=1"
        );
        assert!(webhook_url("http://93.184.216.34/", false).is_ok());
        for bad in [
            "ftp://billing.example/",
            "https://user:pw@billing.example/",
            "https://billing.example/#x",
            "billing.example/hook",
            "https://",
        ] {
            assert!(webhook_url(bad, true).is_err(), "{bad} accepted");
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
