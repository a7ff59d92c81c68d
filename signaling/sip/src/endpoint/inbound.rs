//! What an endpoint answers by itself, before anything reaches its user: bytes
//! that do not parse get 400 with the parser's reason (505 for another SIP
//! version) when enough headers survive to route a reply; a request that parses
//! but must be refused gets the status [`validate_request`] names (416, 400); an
//! option tag we do not support in `Require` (a user agent) or `Proxy-Require` (a
//! proxy) gets 420 with `Unsupported` (RFC 3261 s8.2.2.3, s16.3). An ACK is never
//! answered. What passes is stamped with where it really came from (`received`,
//! `rport`: RFC 3261 s18.2.1, RFC 3581).

use super::ids::Ids;
use crate::message::headers::{canonical_name, split_values};
use crate::message::{Message, Method, ParseError, Request, Response, parse, validate_request};
use crate::transport::Flow;

/// Whether the endpoint is a proxy or a user agent (which option-tag header it
/// must understand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A proxy: checks `Proxy-Require`, passes `Require` on.
    Proxy,
    /// A user agent: checks `Require`.
    UserAgent,
}

/// What to do with an arrived message.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Hand it to the transaction layer.
    Deliver(Message),
    /// Send this reply on the flow it came from; nothing else.
    Reply(Response),
    /// Nothing can be done with it (no routable reply, or an ACK).
    Drop(ParseError),
}

const ROUTING: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

/// A reply to bytes that look like a request with a Via to route it by (RFC
/// 4475 s3.3.1: even a request missing From, To and Call-ID gets its 400, with
/// the headers it has).
fn reply_to_unparsable(bytes: &[u8], err: &ParseError) -> Option<Response> {
    let text = String::from_utf8_lossy(bytes);
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    if first.starts_with("SIP/") || first.split(' ').next()? == "ACK" {
        return None;
    }
    let (status, reason) = match err {
        ParseError::Version => (505, "Version Not Supported".to_owned()),
        other => (400, other.to_string()),
    };
    let mut response = Response {
        status,
        reason,
        headers: Default::default(),
        body: Vec::new(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = canonical_name(name.trim());
        let once = name != "Via" && response.headers.contains(&name);
        if ROUTING.contains(&name.as_str()) && !once {
            response.headers.push(&name, value.trim());
        }
    }
    response.headers.contains("Via").then_some(response)
}

/// The option tags of `header` that are not in `supported`.
fn unsupported<'a>(request: &'a Request, header: &str, supported: &[String]) -> Vec<&'a str> {
    request
        .headers
        .get_all(header)
        .into_iter()
        .flat_map(split_values)
        .map(str::trim)
        .filter(|tag| !tag.is_empty() && !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect()
}

/// RFC 3261 s18.2.1 and RFC 3581: note where a request really came from.
fn stamp_received(request: &mut Request, flow: &Flow) {
    let Some(mut via) = request.top_via() else { return };
    let remote_ip = flow.remote.ip().to_string();
    if via.param("rport").is_some() {
        via.set_param("rport", Some(&flow.remote.port().to_string()));
        via.set_param("received", Some(&remote_ip));
    } else if via.host.trim_matches(['[', ']']) != remote_ip {
        via.set_param("received", Some(&remote_ip));
    }
    request.headers.replace_first("Via", &via.to_string());
}

/// Judges the bytes that arrived on `flow`.
pub(crate) fn judge(bytes: &[u8], flow: &Flow, role: Role, supported: &[String], ids: &mut Ids) -> Verdict {
    let mut request = match parse(bytes) {
        Ok(Message::Request(request)) => request,
        Ok(response @ Message::Response(_)) => return Verdict::Deliver(response),
        Err(err) => {
            return match reply_to_unparsable(bytes, &err) {
                Some(reply) => Verdict::Reply(reply),
                None => Verdict::Drop(err),
            };
        }
    };
    if request.method == Method::Ack {
        return match validate_request(&request) {
            Ok(()) => {
                stamp_received(&mut request, flow);
                Verdict::Deliver(Message::Request(request))
            }
            Err(_) => Verdict::Drop(ParseError::StartLine),
        };
    }
    if let Err(rejection) = validate_request(&request) {
        let tag = ids.tag();
        return Verdict::Reply(request.response(rejection.status, rejection.reason, Some(&tag)));
    }
    let header = match role {
        Role::Proxy => "Proxy-Require",
        Role::UserAgent => "Require",
    };
    let unknown = unsupported(&request, header, supported);
    if !unknown.is_empty() && request.method != Method::Cancel {
        let tag = ids.tag();
        let mut reply = request.response(420, "Bad Extension", Some(&tag));
        reply.headers.push("Unsupported", &unknown.join(", "));
        return Verdict::Reply(reply);
    }
    stamp_received(&mut request, flow);
    Verdict::Deliver(Message::Request(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportKind;

    fn flow() -> Flow {
        Flow {
            kind: TransportKind::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "192.0.2.7:5062".parse().unwrap(),
            conn: None,
        }
    }

    const HEADERS: &str = "Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1;rport\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n";

    fn judged(start: &str, extra: &str, role: Role) -> Verdict {
        let bytes = format!("{start}\r\n{HEADERS}{extra}Content-Length: 0\r\n\r\n");
        judge(bytes.as_bytes(), &flow(), role, &[], &mut Ids::seeded(1))
    }

    fn status(verdict: Verdict) -> Option<(u16, Response)> {
        match verdict {
            Verdict::Reply(r) => Some((r.status, r)),
            _ => None,
        }
    }

    #[test]
    fn refusals_answer_with_the_rfc_status() {
        let (s, _) = status(judged("OPTIONS sip:b@x SIP/7.0", "", Role::Proxy)).unwrap();
        assert_eq!(s, 505);
        let (s, _) = status(judged("OPTIONS http://b SIP/2.0", "", Role::Proxy)).unwrap();
        assert_eq!(s, 416);
        let (s, r) = status(judged(
            "OPTIONS sip:b@x SIP/2.0",
            "Proxy-Require: foo, bar\r\nRequire: baz\r\n",
            Role::Proxy,
        ))
        .unwrap();
        assert_eq!(
            (s, r.headers.get_all("Unsupported").join(", ")),
            (420, "foo, bar".into())
        );
        let (_, r) = status(judged(
            "OPTIONS sip:b@x SIP/2.0",
            "Require: baz\r\n",
            Role::UserAgent,
        ))
        .unwrap();
        assert_eq!(r.headers.get("Unsupported"), Some("baz"));
        assert!(r.to().unwrap().tag().is_some(), "a refusal carries a To tag");
    }

    #[test]
    fn passing_requests_are_stamped_and_acks_never_answered() {
        match judged("OPTIONS sip:b@x SIP/2.0", "Require: baz\r\n", Role::Proxy) {
            Verdict::Deliver(Message::Request(r)) => {
                let via = r.top_via().unwrap();
                assert_eq!(via.param("received"), Some("192.0.2.7"));
                assert_eq!(via.param("rport"), Some("5062"));
            }
            other => panic!("{other:?}"),
        }
        let ack = "ACK sip:b@x SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        assert!(matches!(
            judge(ack.as_bytes(), &flow(), Role::Proxy, &[], &mut Ids::seeded(1)),
            Verdict::Drop(_)
        ));
    }
}
