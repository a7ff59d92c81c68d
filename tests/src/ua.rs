//! The end-to-end tests' SIP user agent: [`offhook_sip::ua::UserAgent`] on a
//! UDP socket of its own, run by a small tokio driver ([`TestUa`]) that keeps
//! its timers and retransmissions going while a test does something else (sends
//! RTP, say). A test calls into the UA ([`TestUa::with`]) and awaits its events;
//! [`TestUa::call`] clicks through to a final answer (the ACK of a 2xx is the
//! UA layer's), [`TestUa::hang_up`] sends BYE and returns its answer. BYEs from
//! the other side are answered 200 by the driver ([`TestUa::bye_from_far_side`]
//! waits for one).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use offhook_sip::driver::{Listen, SipSockets};
use offhook_sip::endpoint::{Endpoint, EndpointConfig};
use offhook_sip::message::{Method, Request, Response};
use offhook_sip::ua::{Body, End, Outgoing, Reply, SessionId, UaConfig, UaEvent, UserAgent};
use offhook_vocab::headers;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::STEP_TIMEOUT;

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

/// A PCMU and telephone-event offer on `rtp` with `rtcp-mux`.
fn offer(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n",
        rtp.port()
    )
}

/// Something for the driver to run on the UA, at the time it runs it.
type Command = Box<dyn FnOnce(&mut UserAgent, Instant) + Send>;

/// A call placed by [`TestUa::call`] and its final answer.
#[derive(Debug)]
pub struct Placed {
    /// Its session.
    pub session: SessionId,
    /// Its Call-ID (CDRs are found by it).
    pub call_id: String,
    /// The final status: the response's, or 408/503 without one.
    pub status: u16,
    /// The final response, when one came.
    pub response: Option<Response>,
}

/// The tests' user agent (see the module comment).
#[derive(Debug)]
pub struct TestUa {
    /// Our SIP address.
    pub local: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<UaEvent>,
    task: JoinHandle<()>,
}

impl Drop for TestUa {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh seed per user agent.
#[allow(clippy::disallowed_methods)] // the test's edge seeds its core
fn seed() -> u64 {
    rand::random()
}

impl TestUa {
    /// A user agent on 127.0.0.1, on a port of its own.
    ///
    /// # Panics
    /// When no UDP socket can be bound.
    pub async fn bind() -> Self {
        let listen = Listen {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            max_message: 64 * 1024,
            ..Listen::default()
        };
        let sockets = SipSockets::bind(&listen).await.expect("a UDP socket for the UA");
        let mut endpoint = Endpoint::new(EndpointConfig::user_agent("127.0.0.1", seed()));
        sockets.bind_endpoint(&mut endpoint);
        let local = endpoint
            .bound(offhook_sip::transport::TransportKind::Udp)
            .expect("bound just above");
        let ua = UserAgent::new(endpoint, UaConfig::default());
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(sockets, ua, command_rx, event_tx));
        Self {
            local,
            commands,
            events,
            task,
        }
    }

    /// Runs `f` on the user agent (in its driver, at its time); what it returns.
    ///
    /// # Panics
    /// When the driver is gone.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UserAgent, Instant) -> R + Send + 'static,
    ) -> R {
        let (reply, result) = oneshot::channel();
        let command: Command = Box::new(move |ua, now| {
            let _ = reply.send(f(ua, now));
        });
        self.commands.send(command).expect("the UA's driver runs");
        result.await.expect("the UA's driver runs")
    }

    /// The next event.
    ///
    /// # Panics
    /// When none comes within [`STEP_TIMEOUT`].
    pub async fn event(&mut self) -> UaEvent {
        tokio::time::timeout(STEP_TIMEOUT, self.events.recv())
            .await
            .expect("a UA event in time")
            .expect("the UA's driver runs")
    }

    /// INVITEs the target of a click's `grant` through `proxy` with its token and
    /// a PCMU offer on `rtp`; waits for the final answer.
    ///
    /// # Panics
    /// When the grant has no target or token, or no answer comes in time.
    pub async fn call(&mut self, proxy: SocketAddr, grant: &Value, rtp: SocketAddr) -> Placed {
        let (session, call_id) = self.dial(proxy, grant, rtp).await;
        self.final_answer(session, call_id).await
    }

    /// Sends the INVITE of [`TestUa::call`] and returns at once: its session
    /// and Call-ID.
    ///
    /// # Panics
    /// When the grant has no target or token.
    pub async fn dial(&mut self, proxy: SocketAddr, grant: &Value, rtp: SocketAddr) -> (SessionId, String) {
        let target = grant["target"].as_str().expect("the grant's target").to_owned();
        let token = grant["token"].as_str().expect("the grant's token").to_owned();
        let local = self.local;
        let extra = Reply::default()
            .header(headers::TOKEN, &token)
            .body(Body::sdp(offer(rtp)));
        self.with(move |ua, now| {
            let flow = ua.endpoint().udp_flow(proxy).expect("the UA's UDP socket");
            let call = Outgoing {
                to: target.clone(),
                target,
                from: format!("sip:visitor@{local}"),
                contact_user: Some("visitor".into()),
                flow,
                extra,
            };
            let session = ua.invite(now, call);
            let call_id = ua.call_id(session).unwrap_or_default().to_owned();
            (session, call_id)
        })
        .await
    }

    /// Waits for the final answer to the INVITE of `session` (its `call_id`).
    ///
    /// # Panics
    /// When none comes in time.
    pub async fn final_answer(&mut self, session: SessionId, call_id: String) -> Placed {
        loop {
            let (status, response) = match self.event().await {
                UaEvent::Answered { session: s, response } if s == session => {
                    (response.status, Some(response))
                }
                UaEvent::Terminated {
                    session: s,
                    end: End::Failed { status, response },
                } if s == session => (status, response),
                _ => continue,
            };
            return Placed {
                session,
                call_id,
                status,
                response,
            };
        }
    }

    /// Ends an answered call with a BYE; the BYE's answer.
    ///
    /// # Panics
    /// When the session is not established or the BYE gets no answer in time.
    pub async fn hang_up(&mut self, session: SessionId) -> Response {
        self.with(move |ua, now| ua.bye(now, session, &Reply::default()))
            .await
            .expect("an established session");
        loop {
            match self.event().await {
                UaEvent::Terminated {
                    session: s,
                    end: End::ByeSent(answer),
                } if s == session => return answer.expect("the BYE answered"),
                _ => continue,
            }
        }
    }

    /// The BYE of the far side in `session`'s dialog (the driver answers it
    /// 200), once the session has ended by it.
    ///
    /// # Panics
    /// When the session ends otherwise, or nothing happens for [`STEP_TIMEOUT`].
    pub async fn bye_from_far_side(&mut self, session: SessionId) -> Request {
        let mut bye = None;
        loop {
            match self.event().await {
                UaEvent::InDialog {
                    session: s, request, ..
                } if s == session && request.method == Method::Bye => {
                    bye = Some(request);
                }
                UaEvent::Terminated { session: s, end } if s == session => {
                    assert!(matches!(end, End::ByeReceived), "{end:?}");
                    return bye.expect("the BYE came before the end");
                }
                _ => {}
            }
        }
    }
}

/// The driver: the UA's datagrams, the test's commands and the UA's timers,
/// one at a time; events to the test.
async fn run(
    mut sockets: SipSockets,
    mut ua: UserAgent,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<UaEvent>,
) {
    loop {
        sockets.flush(&mut ua, SipSockets::now()).await;
        while let Some(event) = ua.poll_event() {
            if let UaEvent::InDialog { key, request, .. } = &event
                && request.method == Method::Bye
            {
                let ok = request.response(200, "OK", None);
                let _ = ua.respond(SipSockets::now(), key, ok);
            }
            if events.send(event).is_err() {
                return;
            }
        }
        sockets.flush(&mut ua, SipSockets::now()).await;
        let now = SipSockets::now();
        let deadline = ua.poll_timeout().unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            inbound = sockets.recv() => match inbound {
                Some(inbound) => SipSockets::feed(&mut ua, SipSockets::now(), inbound),
                None => return,
            },
            command = commands.recv() => match command {
                Some(command) => command(&mut ua, SipSockets::now()),
                None => return,
            },
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                ua.handle_timeout(SipSockets::now());
            }
        }
    }
}
