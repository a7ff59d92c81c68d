//! One answered call's audio, both ways, until either side hangs up: the network
//! leg ([`MediaLeg`]: RTP/AVP or WebRTC) gives the line 20 ms of mu-law every 20 ms
//! and takes the line's audio back out. The 200 OK is retransmitted until the
//! caller's ACK (RFC 3261 s13.3.1.4).

use std::time::{Duration, Instant};

use offhook_signaling::server::Ctx;
use offhook_signaling::sip::Response;
use offhook_signaling::transaction::ServerKey;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::call::InDialog;
use super::legs::MediaLeg;
use crate::modem::{LineCommand, LineEvent, LineHandle};
use crate::rtp::jitter::FRAME_PERIOD;

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
    pub leg: Box<dyn MediaLeg>,
    pub line: &'a mut LineHandle,
    pub dialog: &'a mut mpsc::UnboundedReceiver<InDialog>,
}

pub(crate) async fn run(call: AnsweredCall<'_>) -> Ended {
    let AnsweredCall {
        ctx,
        key,
        ok,
        socket,
        mut leg,
        line,
        dialog,
    } = call;
    let mut playout = tokio::time::interval(FRAME_PERIOD);
    let (mut acked, mut retransmit_in) = (false, Duration::from_millis(500));
    let mut retransmit_at = tokio::time::Instant::now() + retransmit_in;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(32);
    let mut buf = vec![0u8; 2048];
    loop {
        let leg_at = leg.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = received {
                    leg.on_datagram(Instant::now(), from, &buf[..len]);
                }
            }
            _ = playout.tick() => {
                let frame = leg.next_line_frame(Instant::now());
                let _ = line.commands.try_send(LineCommand::Audio(frame.to_vec()));
                if leg.is_closed() {
                    return Ended::ByLine;
                }
            }
            event = line.events.recv() => match event {
                Some(LineEvent::Audio(audio)) => leg.on_line_audio(Instant::now(), &audio),
                Some(LineEvent::RemoteHangup(_) | LineEvent::Fault(_) | LineEvent::Idle) | None => {
                    return Ended::ByLine;
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(leg_at.unwrap_or(far)) => leg.handle_timeout(Instant::now()),
            request = dialog.recv() => match request {
                Some(InDialog { request, .. }) if request.method == "ACK" => acked = true,
                Some(InDialog { key: Some(bye_key), request }) if request.method == "BYE" => {
                    ctx.respond(&bye_key, request.response(200, "OK", None));
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
        while let Some((to, packet)) = leg.poll_datagram() {
            let _ = socket.send_to(&packet, to).await;
        }
    }
}
