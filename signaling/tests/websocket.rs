//! SIP over WebSocket (RFC 7118) the way JsSIP does it, with a real WebSocket
//! client (tokio-tungstenite) against the real server: the `sip` subprotocol,
//! `.invalid` Via/Contact hosts, a quoted `+sip.instance`, REGISTER with a digest
//! challenge, then an INVITE with a call token through the proxy to a sipp relay
//! line, and in-dialog ACK and BYE that come back down the same socket's route.

mod common;

use std::time::Duration;

use common::{Setup, Site, free_port, test_config, uas};
use futures_util::{SinkExt as _, StreamExt as _};
use offhook_directory::call_tokens::SECRET_NAME as CALL_TOKEN_SECRET;
use offhook_directory::testing::Backend;
use offhook_directory::{CdrFilter, Scope, call_tokens};
use offhook_sip::auth::answer_challenge;
use offhook_sip::message::{Message, Response, parse};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(addr: std::net::SocketAddr) -> Ws {
    let mut request = format!("ws://{addr}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "sip");
    ws
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text.replace('\n', "\r\n")))
        .await
        .unwrap();
}

/// The next response whose status is not 100.
async fn response(ws: &mut Ws) -> Response {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a response in time");
        let WsMessage::Text(text) = next.unwrap().unwrap() else {
            continue;
        };
        match parse(text.as_bytes()).unwrap() {
            Message::Response(r) if r.status == 100 => continue,
            Message::Response(r) => return r,
            Message::Request(r) => panic!("unexpected request {}", r.method),
        }
    }
}

fn register(cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:ws.test SIP/2.0
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK{cseq}reg
Max-Forwards: 69
To: <sip:alice@ws.test>
From: <sip:alice@ws.test>;tag=oqqs2
Call-ID: 2bd8r9vg0u4ifmblp3pn
CSeq: {cseq} REGISTER
Contact: <sip:k5i0@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:a4c7b8b4-2f45>\";expires=600
Expires: 600
{auth}Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY
Supported: path,gruu,outbound
User-Agent: JsSIP 3.10.0
Content-Length: 0

"
    )
}

#[tokio::test]
async fn jssip_like_register_and_token_call_over_websocket() {
    let site = Site {
        tenant: "ws",
        domain: "ws.test",
        icon: "echo",
    };
    let s = Setup::new(Backend::Sqlite, site, &[("relay-1", "line-1")], test_config(true)).await;
    let d = &s.db.directory;
    let mut ws = connect(s.server.bound.ws.unwrap()).await;

    // REGISTER, challenged, then accepted with the quoted instance stored.
    send(&mut ws, &register(1, "")).await;
    let challenge = response(&mut ws).await;
    assert_eq!(challenge.status, 401);
    let www = challenge.headers.get("WWW-Authenticate").unwrap();
    let auth = answer_challenge(www, "REGISTER", "sip:ws.test", "alice", "alice-secret", "c0ffee").unwrap();
    send(&mut ws, &register(2, &format!("Authorization: {auth}\n"))).await;
    let ok = response(&mut ws).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let tenant = d.tenant("ws").await.unwrap();
    let bindings = d.registrations(&tenant.id, "alice", 0).await.unwrap();
    assert_eq!(bindings[0].transport, "ws");
    assert_eq!(bindings[0].instance, "<urn:uuid:a4c7b8b4-2f45>");

    // A relay line answered by sipp (UDP), registered by sipp.
    let uas_port = free_port();
    let mut uas = uas("uas.xml", uas_port, 1, &[]);
    assert!(s.register("relay-1", "relay-1-secret", "line-1", uas_port).await);

    // INVITE with a call token, as the widget and JsSIP send it.
    let secret = d.shared_secret(CALL_TOKEN_SECRET).await.unwrap();
    let token = call_tokens::sign(&secret, "echo", i64::MAX / 2);
    let sdp = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n"
        .replace('\n', "\r\n");
    let invite = format!(
        "INVITE sip:echo@ws.test SIP/2.0
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKinv1
Max-Forwards: 69
To: <sip:echo@ws.test>
From: <sip:visitor@df7jal23ls0d.invalid>;tag=vis1
Call-ID: ws-call-1
CSeq: 1 INVITE
Contact: <sip:k5i0@df7jal23ls0d.invalid;transport=ws>
X-Offhook-Token: {token}
X-Offhook-Number: 999
Content-Type: application/sdp
Content-Length: {}

{sdp}",
        sdp.len()
    );
    send(&mut ws, &invite).await;
    let mut answer = response(&mut ws).await;
    while answer.status < 200 {
        answer = response(&mut ws).await;
    }
    assert_eq!(answer.status, 200, "{answer:?}");
    let routes: Vec<String> = answer
        .headers
        .get_all("Record-Route")
        .into_iter()
        .rev()
        .map(str::to_owned)
        .collect();
    assert_eq!(routes.len(), 2, "double Record-Route (WS side and UDP side)");
    let to = answer.headers.get("To").unwrap().to_owned();
    let remote_target = answer
        .headers
        .get("Contact")
        .and_then(|c| offhook_sip::message::NameAddr::parse(c).ok())
        .map(|c| c.uri)
        .unwrap();
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} {remote_target} SIP/2.0\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch={branch}\n\
             Route: {}\nMax-Forwards: 69\nTo: {to}\nFrom: <sip:visitor@df7jal23ls0d.invalid>;tag=vis1\n\
             Call-ID: ws-call-1\nCSeq: {cseq} {method}\nContent-Length: 0\n\n",
            routes.join(", ")
        )
    };
    send(&mut ws, &in_dialog("ACK", 1, "z9hG4bKack1")).await;
    send(&mut ws, &in_dialog("BYE", 2, "z9hG4bKbye1")).await;
    assert_eq!(
        response(&mut ws).await.status,
        200,
        "BYE answered through the proxy"
    );
    let status = tokio::time::timeout(Duration::from_secs(20), uas.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the relay saw INVITE, ACK and BYE");

    let cdrs = d
        .list_cdrs(&Scope::Operator, &CdrFilter::default())
        .await
        .unwrap();
    assert_eq!(
        cdrs[0].number, "5550100",
        "the icon's number, not the caller's X-Offhook-Number"
    );
    assert_eq!(cdrs[0].hangup_cause, Some(offhook_directory::HangupCause::Normal));
    s.db.finish().await;
}
