//! A minimal SIP user agent for the end-to-end tests, on our own SIP stack: a
//! click on an icon (the call token), the INVITE with a PCMU offer, its final
//! response, in-dialog requests (ACK, BYE) along the route set, and the port of
//! the answer's audio.

use std::net::SocketAddr;
use std::time::Duration;

use offhook_sip::legacy::{ClientEvent, Endpoint};
use offhook_sip::message::{Method, NameAddr, Request, Response};
use offhook_sip::transport::{Flow, TransportKind};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `POST /api/v1/icons/{icon}/calls` from the demo page's origin; the JSON grant.
///
/// # Panics
/// When the web server cannot be reached or answers no JSON.
pub async fn click(web: &str, icon: &str) -> Value {
    let mut stream = tokio::net::TcpStream::connect(web).await.unwrap();
    let port = web.rsplit(':').next().unwrap();
    let request = format!(
        "POST /api/v1/icons/{icon}/calls HTTP/1.0\r\nHost: {web}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("grant JSON: {response}"))
}

/// An INVITE for `grant` (from [`click`]) offering PCMU and telephone-event on
/// `rtp` with `rtcp-mux`.
///
/// # Panics
/// When the grant has no target or token.
pub fn invite(grant: &Value, local: SocketAddr, rtp: SocketAddr, call_id: &str) -> Request {
    let target = grant["target"].as_str().unwrap();
    let mut r = Request::new(Method::Invite, target);
    r.headers.push(
        "Via",
        &format!("SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport"),
    );
    r.headers.push("Max-Forwards", "70");
    r.headers
        .push("From", &format!("<sip:visitor@{local}>;tag=t{call_id}"));
    r.headers.push("To", &format!("<{target}>"));
    r.headers.push("Call-ID", call_id);
    r.headers.push("CSeq", "1 INVITE");
    r.headers.push("Contact", &format!("<sip:visitor@{local}>"));
    r.headers
        .push("X-Offhook-Token", grant["token"].as_str().unwrap());
    r.headers.push("Content-Type", "application/sdp");
    r.body = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n",
        rtp.port()
    )
    .into_bytes();
    r
}

/// Sends a request and returns its final response.
///
/// # Panics
/// When none comes within 30 s.
pub async fn final_response(ua: &Endpoint, request: Request, proxy: SocketAddr) -> Response {
    let flow = Flow {
        kind: TransportKind::Udp,
        local: ua.local,
        remote: proxy,
        conn: None,
    };
    let (_, mut events) = ua.ctx.send(request, flow).await.unwrap();
    let wait = async {
        loop {
            match events.recv().await {
                Some(ClientEvent::Response(r)) if r.status >= 200 => return r,
                Some(ClientEvent::Response(_)) => continue,
                other => panic!("no final response: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("final response in time")
}

/// A request `method` inside the dialog of `invite` answered by `ok`.
///
/// # Panics
/// When the answer has no Contact.
pub fn in_dialog(method: Method, ok: &Response, invite: &Request, local: SocketAddr, cseq: u32) -> Request {
    let contact = ok
        .headers
        .get("Contact")
        .and_then(|c| NameAddr::parse(c).ok())
        .unwrap();
    let mut r = Request::new(method.clone(), &contact.uri);
    r.headers.push(
        "Via",
        &format!("SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}"),
    );
    r.headers.push("Max-Forwards", "70");
    for route in ok.headers.get_all("Record-Route").into_iter().rev() {
        r.headers.push("Route", route);
    }
    r.headers.push("From", invite.headers.get("From").unwrap());
    r.headers.push("To", ok.headers.get("To").unwrap());
    r.headers.push("Call-ID", invite.call_id());
    r.headers.push("CSeq", &format!("{cseq} {method}"));
    r
}

/// The audio port of an SDP body.
///
/// # Panics
/// When it has no `m=audio` line.
pub fn sdp_port(body: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("m=audio in the answer");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The ACK of a 2xx `ok` to `invite`, sent through `proxy` (no transaction).
///
/// # Panics
/// When the answer has no Contact.
pub fn ack(ua: &Endpoint, ok: &Response, invite: &Request, proxy: SocketAddr) {
    let flow = Flow {
        kind: TransportKind::Udp,
        local: ua.local,
        remote: proxy,
        conn: None,
    };
    let request = in_dialog(Method::Ack, ok, invite, ua.local, 1);
    ua.ctx
        .send_stateless(offhook_sip::message::Message::Request(request), flow);
}
