//! Bytes to [`Message`]: start line, folded header lines, Content-Length and body,
//! then the checks every message must pass before a transaction or proxy sees it
//! (RFC 3261 s8.1.1 mandatory headers, CSeq agreeing with the method, a parsable
//! top Via). Every failure is a [`ParseError`] whose text fits a 400 reason phrase.

use super::headers::Headers;
use super::views::{CSeq, NameAddr, Via};
use super::{Message, Method, Request, Response};

/// Why bytes are not an acceptable SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No blank line ends the headers.
    #[error("Missing end of headers")]
    Incomplete,
    /// The header section is not UTF-8.
    #[error("Bad encoding")]
    Encoding,
    /// The first line is neither a request line nor a status line.
    #[error("Bad start line")]
    StartLine,
    /// Not SIP/2.0.
    #[error("Unsupported SIP version")]
    Version,
    /// A header line without a valid name and colon.
    #[error("Bad header line")]
    HeaderLine,
    /// A mandatory header is missing.
    #[error("Missing {0}")]
    Missing(&'static str),
    /// A header that must parse does not.
    #[error("Bad {0}")]
    BadHeader(&'static str),
    /// CSeq names another method than the request line.
    #[error("CSeq method mismatch")]
    CSeqMismatch,
    /// The body is shorter than Content-Length says.
    #[error("Content-Length mismatch")]
    ContentLength,
    /// A header that may appear once appears several times (RFC 4475 s3.3.9, s3.3.10).
    #[error("Duplicate {0}")]
    Duplicate(&'static str),
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, at + 4));
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|at| (at, at + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn start(line: &str) -> Result<Message, ParseError> {
    let mut parts = line.splitn(3, ' ');
    let (first, second, third) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    // `get`, not `[..4]`: byte 4 may fall inside a multi-byte character (fuzz crash).
    if first.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        if !first.eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::Version);
        }
        let status: u16 = second
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..700).contains(s))
            .ok_or(ParseError::StartLine)?;
        return Ok(Message::Response(Response {
            status,
            reason: third.unwrap_or("").to_owned(),
            headers: Headers::default(),
            body: Vec::new(),
        }));
    }
    let (Some(uri), Some(version)) = (second, third) else {
        return Err(ParseError::StartLine);
    };
    if !is_token(first) || uri.contains(char::is_whitespace) || !has_scheme(uri) {
        return Err(ParseError::StartLine);
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(if version.contains(' ') {
            ParseError::StartLine
        } else {
            ParseError::Version
        });
    }
    Ok(Message::Request(Request::new(Method::from_token(first), uri)))
}

/// Whether `uri` starts with `scheme ":"` (RFC 3986 s3.1), so `<sip:a@b>` is refused.
fn has_scheme(uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}

/// Parses one message; never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    let skip = bytes.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
    let bytes = bytes.get(skip..).unwrap_or_default();
    let (head_len, body_at) = header_end(bytes).ok_or(ParseError::Incomplete)?;
    let head =
        std::str::from_utf8(bytes.get(..head_len).unwrap_or_default()).map_err(|_| ParseError::Encoding)?;
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // RFC 3261 s7.3.1: a line starting with white space continues the previous
        // header line (never the start line).
        let continues = raw.starts_with([' ', '\t']);
        match (continues, lines.len()) {
            (false, _) => lines.push(raw.to_owned()),
            (true, 0 | 1) => return Err(ParseError::HeaderLine),
            (true, _) => {
                if let Some(previous) = lines.last_mut() {
                    previous.push(' ');
                    previous.push_str(raw.trim());
                }
            }
        }
    }
    let mut message = start(lines.first().map(String::as_str).unwrap_or(""))?;
    let mut headers = Headers::default();
    for line in lines.iter().skip(1) {
        let (name, value) = line.split_once(':').ok_or(ParseError::HeaderLine)?;
        let name = name.trim_end();
        if !is_token(name) {
            return Err(ParseError::HeaderLine);
        }
        headers.push(name, value.trim());
    }
    if headers.get_all("Content-Length").len() > 1 {
        return Err(ParseError::Duplicate("Content-Length"));
    }
    let mut body = bytes.get(body_at..).unwrap_or_default().to_vec();
    if let Some(declared) = headers.get("Content-Length") {
        let declared: usize = declared
            .trim()
            .parse()
            .map_err(|_| ParseError::BadHeader("Content-Length"))?;
        if declared > body.len() {
            return Err(ParseError::ContentLength);
        }
        // Extra bytes after the declared body (UDP padding) are discarded (s18.3).
        body.truncate(declared);
    }
    match &mut message {
        Message::Request(r) => {
            r.headers = headers;
            r.body = body;
            validate(&r.headers, Some(&r.method))?;
        }
        Message::Response(r) => {
            r.headers = headers;
            r.body = body;
            validate(&r.headers, None)?;
        }
    }
    Ok(message)
}

/// RFC 3261 s8.1.1: what every message must carry, in a form we can use.
fn validate(headers: &Headers, method: Option<&Method>) -> Result<(), ParseError> {
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !headers.contains(name) {
            return Err(ParseError::Missing(name));
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
        if headers.get_all(name).len() > 1 {
            return Err(ParseError::Duplicate(name));
        }
    }
    let cseq = CSeq::parse(headers.get("CSeq").unwrap_or("")).map_err(|_| ParseError::BadHeader("CSeq"))?;
    if let Some(method) = method
        && cseq.method != *method
    {
        return Err(ParseError::CSeqMismatch);
    }
    for via in headers.get_all("Via") {
        Via::parse(via).map_err(|_| ParseError::BadHeader("Via"))?;
    }
    for name in ["From", "To"] {
        NameAddr::parse_strict(headers.get(name).unwrap_or("")).map_err(|_| ParseError::BadHeader(name))?;
    }
    if let Some(mf) = headers.get("Max-Forwards")
        && mf.trim().parse::<u8>().is_err()
    {
        return Err(ParseError::BadHeader("Max-Forwards"));
    }
    if headers.get("Call-ID").is_some_and(|id| id.trim().is_empty()) {
        return Err(ParseError::BadHeader("Call-ID"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/TCP p2.example;branch=z9hG4bKx\r\n\
        Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        i: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\
        Subject: folded\r\n  header\r\nl: 4\r\n\r\nbodyEXTRA";

    #[test]
    fn parses_and_prints() {
        let Message::Request(r) = parse(INVITE.as_bytes()).unwrap() else {
            panic!("a request")
        };
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("INVITE", "sip:bob@biloxi.example.com")
        );
        assert_eq!(r.headers.get_all("Via").len(), 2);
        assert_eq!(r.headers.get("Subject"), Some("folded header"));
        assert_eq!(r.body, b"body");
        assert_eq!(r.call_id(), "a84b4c76e66710@pc33.atlanta.example.com");
        let again = parse(&r.to_bytes()).unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn refuses_with_reasons() {
        let cases = [
            ("", ParseError::Incomplete),
            ("INVITE sip:a@b SIP/3.0\r\n\r\n", ParseError::Version),
            (
                "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
                ParseError::Missing("From"),
            ),
            ("INVITE  SIP/2.0\r\n\r\n", ParseError::StartLine),
            ("SIP/2.0 99 Odd\r\n\r\n", ParseError::StartLine),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text.as_bytes()), Err(want), "{text:?}");
        }
        let mismatch = INVITE.replace("314159 INVITE", "314159 BYE");
        assert_eq!(parse(mismatch.as_bytes()), Err(ParseError::CSeqMismatch));
        let short = INVITE.replace("l: 4", "l: 400");
        assert_eq!(parse(short.as_bytes()), Err(ParseError::ContentLength));
    }

    #[test]
    fn max_forwards_counts_down_to_483() {
        let Ok(Message::Request(mut r)) = parse(INVITE.as_bytes()) else {
            panic!("a request")
        };
        assert_eq!(r.decrement_max_forwards(), Some(69));
        r.headers.set("Max-Forwards", "0");
        assert_eq!((r.decrement_max_forwards(), r.max_forwards()), (None, Some(0)));
        r.headers.remove("Max-Forwards");
        assert_eq!(r.decrement_max_forwards(), Some(70));
    }

    #[test]
    fn fuzz_crash_multibyte_start_line() {
        // cargo-fuzz artifact crash-69328723: a 2-byte character across byte 4.
        let crash = b"\xda\xa6\x0f\xda\xa6\n\n\n";
        assert_eq!(parse(crash), Err(ParseError::StartLine));
    }

    #[test]
    fn never_panics_on_noise() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let base = INVITE.as_bytes();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = base.to_vec();
            for k in 0..(state % 8) {
                let at = ((state >> (k * 7)) as usize) % bytes.len();
                bytes[at] = (state >> (k * 5)) as u8;
            }
            bytes.truncate(((state >> 20) as usize) % (bytes.len() + 1));
            let _ = parse(&bytes);
        }
    }
}
