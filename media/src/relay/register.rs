//! Keeps one line registered with signaling: REGISTER its contact
//! (`sip:<line>@<relay address>`) under the relay account, answer the digest
//! challenge, and refresh before the binding expires (retry soon after a failure).

use std::sync::Arc;
use std::time::Duration;

use offhook_sip::auth::answer_challenge;
use offhook_sip::legacy::ClientEvent;
use offhook_sip::message::{Method, Request};
use offhook_sip::transport::{Flow, TransportKind};
use rand::Rng;

use super::Shared;

/// Binding lifetime asked for.
const EXPIRES: u64 = 300;

fn branch() -> String {
    format!("z9hG4bK{}", hex_string())
}

fn hex_string() -> String {
    let bytes: [u8; 8] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn register_request(shared: &Shared, line: &str, call_id: &str, cseq: u32, auth: Option<&str>) -> Request {
    let c = &shared.config;
    let mut r = Request::new(Method::Register, &format!("sip:{}", c.domain));
    r.headers.push(
        "Via",
        &format!("SIP/2.0/UDP {};branch={};rport", shared.local, branch()),
    );
    r.headers.push("Max-Forwards", "70");
    r.headers.push(
        "From",
        &format!("<sip:{}@{}>;tag={}", c.name, c.domain, &call_id[..8]),
    );
    r.headers.push("To", &format!("<sip:{}@{}>", c.name, c.domain));
    r.headers.push("Call-ID", call_id);
    r.headers.push("CSeq", &format!("{cseq} REGISTER"));
    r.headers
        .push("Contact", &format!("<sip:{line}@{}>", shared.local));
    r.headers.push("Expires", &EXPIRES.to_string());
    if let Some(auth) = auth {
        r.headers.push("Authorization", auth);
    }
    r
}

/// One REGISTER exchange; the final status.
async fn exchange(shared: &Shared, request: Request) -> Option<offhook_sip::message::Response> {
    let flow = Flow {
        kind: TransportKind::Udp,
        local: shared.local,
        remote: shared.config.signaling,
        conn: None,
    };
    let (_, mut events) = shared.ctx.send(request, flow).await?;
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::Response(r) if r.status >= 200 => return Some(r),
            ClientEvent::Response(_) => continue,
            ClientEvent::Timeout => return None,
        }
    }
    None
}

/// Registers `line` and keeps it registered; `first` hears how the first attempt went.
pub(crate) async fn keep_registered(
    shared: Arc<Shared>,
    line: String,
    first: tokio::sync::oneshot::Sender<bool>,
) {
    let mut first = Some(first);
    let call_id = format!("{}-{line}", hex_string());
    let mut cseq = 1;
    loop {
        let mut response = exchange(&shared, register_request(&shared, &line, &call_id, cseq, None)).await;
        cseq += 1;
        if let Some(challenge) = response.as_ref().filter(|r| r.status == 401) {
            let auth = challenge.headers.get("WWW-Authenticate").and_then(|c| {
                let uri = format!("sip:{}", shared.config.domain);
                answer_challenge(
                    c,
                    "REGISTER",
                    &uri,
                    &shared.config.name,
                    &shared.config.password,
                    &hex_string(),
                )
            });
            let request = register_request(&shared, &line, &call_id, cseq, auth.as_deref());
            response = exchange(&shared, request).await;
            cseq += 1;
        }
        let registered = response.as_ref().is_some_and(|r| r.status == 200);
        if let Some(first) = first.take() {
            let _ = first.send(registered);
        }
        let wait = match response.map(|r| r.status) {
            Some(200) => {
                tracing::info!(%line, "line registered");
                Duration::from_secs(EXPIRES * 4 / 5)
            }
            status => {
                tracing::warn!(%line, ?status, "line registration failed; retrying");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(wait).await;
    }
}
