//! One INVITE to the relay: pick the line signaling named, check the number
//! (only digits, `*`, `#` reach the modem), negotiate the SDP, dial, report call
//! progress as SIP responses, bridge the audio once answered, and end the call
//! from either side, leaving the line idle for the next one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use offhook_sip::legacy::ClientEvent;
use offhook_sip::message::{Method, Request, Response};
use offhook_sip::transaction::ServerKey;
use offhook_sip::transport::Flow;
use offhook_vocab::headers;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::bridge::{self, AnsweredCall, Ended};
use super::legs::{MediaLeg, RtpLeg};
use super::{Shared, lock};
use crate::modem::{LineCommand, LineEvent, LineHandle};
use crate::rtp::report::PeerReports;
use crate::sdp;
use crate::webrtc::{WebRtcPeer, is_webrtc_offer};

/// A request inside a call's dialog (ACK has no transaction).
#[derive(Debug)]
pub(crate) struct InDialog {
    pub key: Option<ServerKey>,
    pub request: Request,
}

fn number_for_modem(shared: &Shared, number: &str) -> Option<String> {
    let number = match number.strip_prefix('+') {
        Some(rest) => format!("{}{rest}", shared.config.international_prefix),
        None => number.to_owned(),
    };
    let ok = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    ok.then_some(number)
}

/// The SIP answer to a line outcome that ends the call before it is answered.
fn failure(event: &LineEvent) -> Option<(u16, &'static str)> {
    match event {
        LineEvent::Busy => Some((486, "Busy Here")),
        LineEvent::NoAnswer => Some((480, "No Answer")),
        LineEvent::Invalid => Some((404, "Number Not Reachable")),
        LineEvent::NoDialTone => Some((503, "No Dial Tone")),
        LineEvent::Fault(_) => Some((503, "Line Fault")),
        LineEvent::RemoteHangup(_) | LineEvent::Idle => Some((480, "Temporarily Unavailable")),
        _ => None,
    }
}

pub(crate) async fn answer(shared: Arc<Shared>, key: ServerKey, invite: Request, flow: Flow) {
    let tag = format!("{:08x}", rand::rng().random::<u32>());
    let respond = |status: u16, reason: &str| {
        shared
            .ctx
            .respond(&key, invite.response(status, reason, Some(&tag)))
    };
    let line_name = invite
        .headers
        .get(headers::LINE)
        .map(str::to_owned)
        .or_else(|| invite.request_uri().and_then(|u| u.user))
        .unwrap_or_default();
    let Some(slot) = shared.lines.get(&line_name).cloned() else {
        return respond(404, "No such line");
    };
    let Some(number) = invite
        .headers
        .get(headers::NUMBER)
        .and_then(|n| number_for_modem(&shared, n.trim()))
    else {
        return respond(484, "Address Incomplete");
    };
    let Ok(socket) = UdpSocket::bind((shared.rtp_ip, 0)).await else {
        return respond(503, "No media port");
    };
    let Ok(media_addr) = socket.local_addr() else {
        return respond(503, "No media port");
    };
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    let mut rtcp_socket = None;
    let (leg, answer_sdp): (Box<dyn MediaLeg>, String) = if is_webrtc_offer(&offer) {
        match WebRtcPeer::accept(std::time::Instant::now(), &offer, media_addr) {
            Ok((peer, answer)) => (Box::new(peer), answer),
            Err(err) => return respond(488, &err.to_string()),
        }
    } else {
        match sdp::negotiate(&offer) {
            Ok(n) => {
                let rtcp_port = if n.rtcp_mux {
                    media_addr.port()
                } else {
                    let Some((socket, port)) = bind_rtcp(media_addr).await else {
                        return respond(503, "No media port");
                    };
                    rtcp_socket = Some(socket);
                    port
                };
                let session: u64 = rand::rng().random_range(1..1_000_000_000);
                let interval = Duration::from_millis(shared.config.rtcp_interval_ms.max(1));
                let leg = RtpLeg::new(
                    &n,
                    std::time::Instant::now(),
                    std::time::SystemTime::now(),
                    interval,
                );
                (Box::new(leg), sdp::answer(&n, media_addr, rtcp_port, session))
            }
            Err(err) => return respond(488, &err.to_string()),
        }
    };
    let Some(mut line) = lock(&slot).take() else {
        // Not the callee being busy: signaling tries another line.
        return respond(503, "Line in use");
    };
    let (dialog_tx, mut dialog) = mpsc::unbounded_channel();
    lock(&shared.dialogs).insert(invite.call_id().to_owned(), dialog_tx);
    let mut cancelled = shared.ctx.cancelled(&key);
    let _ = line.commands.send(LineCommand::Dial(number)).await;
    let answered = loop {
        tokio::select! {
            event = line.events.recv() => match event {
                Some(LineEvent::Ringing) => respond(180, "Ringing"),
                Some(LineEvent::Answered(how)) => break Some(how),
                Some(other) => if let Some((status, reason)) = failure(&other) {
                    respond(status, reason);
                    break None;
                },
                None => {
                    respond(503, "Line Fault");
                    break None;
                }
            },
            _ = &mut cancelled => {
                respond(487, "Request Terminated");
                let _ = line.commands.send(LineCommand::HangUp).await;
                break None;
            }
        }
    };
    if let Some(how) = answered {
        let mut ok: Response = invite.response(200, "OK", Some(&tag));
        ok.headers
            .push("Contact", &format!("<sip:{line_name}@{}>", shared.local));
        ok.headers.push(headers::ANSWER, how.as_str());
        ok.headers.push("Content-Type", "application/sdp");
        ok.body = answer_sdp.into_bytes();
        for rr in invite.headers.get_all("Record-Route") {
            ok.headers.push("Record-Route", rr);
        }
        shared.ctx.respond(&key, ok.clone());
        let call = AnsweredCall {
            ctx: &shared.ctx,
            key: &key,
            ok,
            socket,
            rtcp_socket,
            leg,
            line: &mut line,
            dialog: &mut dialog,
            stats: &shared.stats,
            line_name: &line_name,
        };
        let (ended, reports) = bridge::run(call).await;
        if ended == Ended::ByLine {
            bye(&shared, &invite, &tag, flow, reports).await;
        }
        let _ = line.commands.send(LineCommand::HangUp).await;
    }
    lock(&shared.dialogs).remove(invite.call_id());
    settle(&mut line).await;
    *lock(&slot) = Some(line);
}

/// The RTCP socket next to the RTP one: its port + 1 where free (RFC 3550
/// s11), else any port (announced with `a=rtcp`, RFC 3605); with its port.
async fn bind_rtcp(rtp: SocketAddr) -> Option<(UdpSocket, u16)> {
    let next = SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?);
    let socket = match UdpSocket::bind(next).await {
        Ok(socket) => socket,
        Err(_) => UdpSocket::bind(SocketAddr::new(rtp.ip(), 0)).await.ok()?,
    };
    let port = socket.local_addr().ok()?.port();
    Some((socket, port))
}

/// Waits (bounded) for the line to be on hook again, draining what it says.
async fn settle(line: &mut LineHandle) {
    let idle = async {
        while let Some(event) = line.events.recv().await {
            if event == LineEvent::Idle {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), idle).await;
}

/// The far end hung up: BYE to the caller along the dialog's route set.
async fn bye(shared: &Shared, invite: &Request, tag: &str, flow: Flow, reports: Option<PeerReports>) {
    let target = invite
        .headers
        .get("Contact")
        .and_then(|c| offhook_sip::message::NameAddr::parse(c).ok())
        .map_or_else(|| invite.uri.clone(), |c| c.uri);
    let mut bye = Request::new(Method::Bye, &target);
    let branch: u64 = rand::rng().random();
    bye.headers.push(
        "Via",
        &format!("SIP/2.0/UDP {};branch=z9hG4bK{branch:x}", shared.local),
    );
    bye.headers.push("Max-Forwards", "70");
    for route in invite.headers.get_all("Record-Route") {
        bye.headers.push("Route", route);
    }
    bye.headers.push(
        "From",
        &format!("{};tag={tag}", invite.headers.get("To").unwrap_or("")),
    );
    bye.headers.push("To", invite.headers.get("From").unwrap_or(""));
    bye.headers.push("Call-ID", invite.call_id());
    let cseq = invite.cseq().map_or(1, |c| c.number) + 1;
    bye.headers.push("CSeq", &format!("{cseq} BYE"));
    if let Some(reports) = reports {
        bye.headers.push(bridge::RTCP_HEADER, &reports.to_header());
    }
    if let Some((_, mut events)) = shared.ctx.send(bye, flow).await {
        while let Some(ClientEvent::Response(r)) = events.recv().await {
            if r.status >= 200 {
                break;
            }
        }
    }
}
