//! Typed views of the headers the transaction layer and the proxy decide on: Via
//! (RFC 3261 s20.42, with RFC 3581 `rport`), name-addr headers (From, To, Contact,
//! Route) and CSeq. Each parses from a header value and prints back.

use std::fmt;

use super::Method;
use super::uri::Uri;

/// Why a header value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad header value")]
pub struct ViewError;

fn params(text: &str) -> Vec<(String, Option<String>)> {
    super::headers::split_values(&text.replace(';', ","))
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
            None => (p.trim().to_ascii_lowercase(), None),
        })
        .collect()
}

fn print_params(f: &mut fmt::Formatter<'_>, params: &[(String, Option<String>)]) -> fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, uppercase (`UDP`, `TCP`, `WS`, ...).
    pub transport: String,
    /// Sent-by host.
    pub host: String,
    /// Sent-by port.
    pub port: Option<u16>,
    /// Parameters in order (`branch`, `received`, `rport`, ...).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses `SIP/2.0/UDP host[:port];params`.
    pub fn parse(text: &str) -> Result<Self, ViewError> {
        // LWS may surround the slashes: `SIP / 2.0 / UDP host` (RFC 4475 s3.1.1.1).
        let (name, rest) = text.split_once('/').ok_or(ViewError)?;
        let (version, rest) = rest.split_once('/').ok_or(ViewError)?;
        let (transport, rest) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or(ViewError)?;
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" || transport.is_empty() {
            return Err(ViewError);
        }
        let rest = rest.trim();
        let (sent_by, param_text) = rest.split_once(';').unwrap_or((rest, ""));
        let uri = Uri::parse(&format!("sip:{}", sent_by.trim())).map_err(|_| ViewError)?;
        Ok(Self {
            transport: transport.to_ascii_uppercase(),
            host: uri.host,
            port: uri.port,
            params: params(param_text),
        })
    }

    /// A parameter's value (`Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        match self.params.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.map(str::to_owned),
            None => self.params.push((name.to_owned(), value.map(str::to_owned))),
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        print_params(f, &self.params)
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quotes kept), possibly empty.
    pub display: String,
    /// The URI text.
    pub uri: String,
    /// Header parameters after the URI (`tag`, `expires`, `+sip.instance`, ...).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses `["Display"] <uri>;params` or `uri;params`.
    pub fn parse(text: &str) -> Result<Self, ViewError> {
        let text = text.trim();
        if text == "*" {
            return Ok(Self {
                display: String::new(),
                uri: "*".to_owned(),
                params: Vec::new(),
            });
        }
        let (display, uri, rest) = match find_unquoted(text, '<') {
            Some(open) => {
                let close = text[open..].find('>').ok_or(ViewError)? + open;
                (text[..open].trim(), &text[open + 1..close], &text[close + 1..])
            }
            None => {
                let (uri, rest) = text.split_once(';').unwrap_or((text, ""));
                ("", uri, rest)
            }
        };
        if uri.trim().is_empty() || !uri.contains(':') {
            return Err(ViewError);
        }
        let rest = rest.trim();
        let rest = rest.strip_prefix(';').unwrap_or(rest);
        Ok(Self {
            display: display.to_owned(),
            uri: uri.trim().to_owned(),
            params: params(rest),
        })
    }

    /// Like [`NameAddr::parse`], but also refuses what RFC 3261's grammar refuses
    /// and a lenient reading would guess at: an unbalanced quote, an unquoted
    /// display name with non-token characters, white space inside the URI
    /// (RFC 4475 s3.1.2.6, s3.1.2.15, s3.1.2.16). Used on From and To.
    pub fn parse_strict(text: &str) -> Result<Self, ViewError> {
        let parsed = Self::parse(text)?;
        let display = parsed.display.as_str();
        let display_ok = match display.strip_prefix('"') {
            Some(quoted) => closing_quote(quoted).is_some_and(|at| at + 1 == quoted.len()),
            None => display.split_whitespace().all(|word| {
                word.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
            }),
        };
        // `parse` trims the URI: look at the raw text between the brackets.
        let raw_uri = find_unquoted(text, '<')
            .and_then(|open| text.get(open + 1..))
            .and_then(|inner| inner.split_once('>'))
            .map_or(parsed.uri.as_str(), |(raw, _)| raw);
        let uri_ok = !raw_uri.contains(char::is_whitespace) && !raw_uri.contains('"');
        if display_ok && uri_ok {
            Ok(parsed)
        } else {
            Err(ViewError)
        }
    }

    /// A parameter's value (`Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").filter(|t| !t.is_empty())
    }

    /// The URI, parsed.
    pub fn parsed_uri(&self) -> Option<Uri> {
        Uri::parse(&self.uri).ok()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.display.is_empty() {
            write!(f, "{} ", self.display)?;
        }
        write!(f, "<{}>", self.uri)?;
        print_params(f, &self.params)
    }
}

/// The byte index of the quote closing a quoted string whose opening quote was
/// just before `text`, honouring `\` escapes.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn find_unquoted(text: &str, wanted: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2**31 per RFC 3261 s8.1.1.5).
    pub number: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `number METHOD`.
    pub fn parse(text: &str) -> Result<Self, ViewError> {
        let mut parts = text.split_whitespace();
        let (Some(number), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ViewError);
        };
        let number: u32 = number.parse().map_err(|_| ViewError)?;
        if number >= 1 << 31 {
            return Err(ViewError);
        }
        Ok(Self {
            number,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_rport_and_ipv6() {
        let mut via = Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74b;rport").unwrap();
        assert_eq!((via.branch(), via.param("rport")), (Some("z9hG4bK74b"), Some("")));
        via.set_param("rport", Some("40000"));
        via.set_param("received", Some("198.51.100.7"));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74b;rport=40000;received=198.51.100.7"
        );
        let v6 = Via::parse("SIP/2.0/WSS [2001:db8::9];branch=z9hG4bKx").unwrap();
        assert_eq!(v6.host, "[2001:db8::9]");
        assert!(Via::parse("SIP/2.0 host").is_err());
    }

    #[test]
    fn jssip_contact_with_quoted_instance() {
        let c = NameAddr::parse(
            "<sip:k5i0@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:a-b>\";expires=600",
        )
        .unwrap();
        assert_eq!(c.uri, "sip:k5i0@df7jal23ls0d.invalid;transport=ws");
        assert_eq!(c.param("+sip.instance"), Some("\"<urn:uuid:a-b>\""));
        assert_eq!(c.param("expires"), Some("600"));
        let from = NameAddr::parse("\"Alice, A.\" <sip:alice@a.example>;tag=88").unwrap();
        assert_eq!((from.display.as_str(), from.tag()), ("\"Alice, A.\"", Some("88")));
        let bare = NameAddr::parse("sip:bob@b.example;tag=1").unwrap();
        assert_eq!((bare.uri.as_str(), bare.tag()), ("sip:bob@b.example", Some("1")));
        assert_eq!(CSeq::parse("4711 INVITE").unwrap().to_string(), "4711 INVITE");
        assert!(CSeq::parse("-1 INVITE").is_err());
    }
}
