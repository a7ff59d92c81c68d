//! One answered call's audio, both ways, until either side hangs up: the network
//! leg ([`MediaLeg`]: RTP/AVP or WebRTC) gives the line 20 ms of mu-law every 20 ms
//! and takes the line's audio back out; RTCP goes over the RTP socket or the
//! call's RTCP socket, as the leg says. The 200 OK is retransmitted until the
//! caller's ACK (RFC 3261 s13.3.1.4). The peer's RTCP view of the call ends up in
//! an `X-Offhook-RTCP` header of the 200 OK to its BYE (or of our BYE).

use std::time::{Duration, Instant};

use offhook_sip::legacy::Ctx;
use offhook_sip::message::{Method, Response};
use offhook_sip::transaction::ServerKey;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::call::InDialog;
use super::legs::{MediaLeg, Port};
use super::stats::{LegCounts, RelayStats};
use crate::modem::{LineCommand, LineEvent, LineHandle};
use crate::rtp::jitter::FRAME_PERIOD;
use crate::rtp::report::PeerReports;

/// The header carrying the peer's RTCP reports of the call ([`PeerReports::to_header`]).
pub(crate) const RTCP_HEADER: &str = offhook_vocab::headers::RTCP;

/// How the call ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The caller sent BYE (answered here).
    ByCaller,
    /// The line's far end hung up (or the line failed): the caller gets a BYE.
    ByLine,
}

/// The answered call: its signaling side and media side.
pub(crate) struct AnsweredCall<'a> {
    pub ctx: &'a Ctx,
    pub key: &'a ServerKey,
    pub ok: Response,
    pub socket: UdpSocket,
    /// The RTCP socket of an RTP/AVP call without `rtcp-mux`.
    pub rtcp_socket: Option<UdpSocket>,
    pub leg: Box<dyn MediaLeg>,
    pub line: &'a mut LineHandle,
    pub dialog: &'a mut mpsc::UnboundedReceiver<InDialog>,
    /// The relay's counters, and the line's name in them.
    pub stats: &'a RelayStats,
    pub line_name: &'a str,
}

/// Receives on `socket`, or never when there is none.
async fn recv_on(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::net::SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Runs the call until either side ends it; how, and the peer's RTCP reports.
pub(crate) async fn run(mut call: AnsweredCall<'_>) -> (Ended, Option<PeerReports>) {
    call.stats.call_started();
    let ended = run_media(&mut call).await;
    call.stats.call_ended(call.line_name);
    let reports = call.leg.peer_reports();
    if let Some(reports) = reports {
        tracing::info!(rtcp = %reports.to_header(), "call media ended");
    }
    (ended, reports)
}

async fn run_media(call: &mut AnsweredCall<'_>) -> Ended {
    let (ctx, key, ok) = (call.ctx, call.key, &call.ok);
    let (socket, rtcp_socket) = (&call.socket, call.rtcp_socket.as_ref());
    let leg = &mut *call.leg;
    let line = &mut *call.line;
    let dialog = &mut *call.dialog;
    let (stats, line_name) = (call.stats, call.line_name);
    let mut playout = tokio::time::interval(FRAME_PERIOD);
    let (mut acked, mut retransmit_in) = (false, Duration::from_millis(500));
    let mut retransmit_at = tokio::time::Instant::now() + retransmit_in;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(32);
    let mut buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut counted = LegCounts::default();
    loop {
        let leg_at = leg.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = received {
                    leg.on_datagram(Instant::now(), Port::Rtp, from, &buf[..len]);
                }
            }
            received = recv_on(rtcp_socket, &mut rtcp_buf) => {
                if let Ok((len, from)) = received {
                    leg.on_datagram(Instant::now(), Port::Rtcp, from, &rtcp_buf[..len]);
                }
            }
            _ = playout.tick() => {
                if let Some(key) = leg.poll_dtmf() {
                    // The line plays it: +VTS, or its dual tone in place of our audio.
                    let _ = line.commands.try_send(LineCommand::Dtmf(key));
                }
                let frame = leg.next_line_frame(Instant::now());
                let _ = line.commands.try_send(LineCommand::Audio(frame.to_vec()));
                let counts = leg.counts();
                stats.add(line_name, &counted, &counts);
                counted = counts;
                if leg.is_closed() {
                    return Ended::ByLine;
                }
            }
            event = line.events.recv() => match event {
                Some(LineEvent::Audio(audio)) => leg.on_line_audio(Instant::now(), &audio),
                Some(LineEvent::Dtmf(key)) => leg.send_dtmf(key),
                Some(LineEvent::RemoteHangup(_) | LineEvent::Fault(_) | LineEvent::Idle) | None => {
                    return Ended::ByLine;
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(leg_at.unwrap_or(far)) => leg.handle_timeout(Instant::now()),
            request = dialog.recv() => match request {
                Some(InDialog { request, .. }) if request.method == Method::Ack => acked = true,
                Some(InDialog { key: Some(bye_key), request }) if request.method == Method::Bye => {
                    let mut ok = request.response(200, "OK", None);
                    if let Some(reports) = leg.peer_reports() {
                        ok.headers.push(RTCP_HEADER, &reports.to_header());
                    }
                    ctx.respond(&bye_key, ok);
                    return Ended::ByCaller;
                }
                Some(InDialog { key: Some(other), request }) => {
                    ctx.respond(&other, request.response(488, "Not Acceptable Here", None));
                }
                _ => {}
            },
            () = tokio::time::sleep_until(retransmit_at), if !acked => {
                if tokio::time::Instant::now() >= give_up {
                    return Ended::ByLine;
                }
                ctx.respond(key, ok.clone());
                retransmit_in = (retransmit_in * 2).min(Duration::from_secs(4));
                retransmit_at = tokio::time::Instant::now() + retransmit_in;
            }
        }
        while let Some((port, to, packet)) = leg.poll_datagram() {
            let from = match port {
                Port::Rtcp => rtcp_socket.unwrap_or(socket),
                Port::Rtp => socket,
            };
            let _ = from.send_to(&packet, to).await;
        }
    }
}
