//! One answered call's audio, both ways, until either side hangs up: RTP from the
//! caller through the validating receiver into the jitter buffer, popped every
//! 20 ms as mu-law for the line; line audio through the paced sender back out as
//! RTP. The 200 OK is retransmitted until the caller's ACK (RFC 3261 s13.3.1.4).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use offhook_signaling::server::Ctx;
use offhook_signaling::sip::Response;
use offhook_signaling::transaction::ServerKey;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::call::InDialog;
use crate::modem::{LineCommand, LineEvent, LineHandle};
use crate::rtp::codec::{frame_to_line, line_to_payload, to_audio_packet};
use crate::rtp::jitter::{FRAME_PERIOD, JitterBuffer, JitterConfig};
use crate::rtp::packet::{PayloadMap, RtpReceiver};
use crate::rtp::sender::RtpSender;
use crate::sdp::Negotiated;

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
    pub negotiated: Negotiated,
    pub line: &'a mut LineHandle,
    pub dialog: &'a mut mpsc::UnboundedReceiver<InDialog>,
}

pub(crate) async fn run(call: AnsweredCall<'_>) -> Ended {
    let AnsweredCall {
        ctx,
        key,
        ok,
        socket,
        negotiated,
        line,
        dialog,
    } = call;
    let remote: SocketAddr = negotiated.remote;
    let mut receiver = RtpReceiver::new(PayloadMap::g711(negotiated.dtmf_payload_type));
    let mut jitter = JitterBuffer::new(JitterConfig::default());
    let mut sender = RtpSender::new(negotiated.codec.payload_type(), &mut rand::rng());
    let mut playout = tokio::time::interval(FRAME_PERIOD);
    let (mut acked, mut retransmit_in) = (false, Duration::from_millis(500));
    let mut retransmit_at = tokio::time::Instant::now() + retransmit_in;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(32);
    let mut buf = vec![0u8; 2048];
    let mut payload = Vec::with_capacity(160);
    loop {
        let send_at = sender.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, _)) = received
                    && let Ok(packet) = receiver.receive(&buf[..len])
                    && let Some(audio) = to_audio_packet(&packet)
                {
                    jitter.push(Instant::now(), audio);
                }
            }
            _ = playout.tick() => {
                let frame = jitter.pop(Instant::now());
                let _ = line.commands.try_send(LineCommand::Audio(frame_to_line(&frame).to_vec()));
            }
            event = line.events.recv() => match event {
                Some(LineEvent::Audio(audio)) => {
                    payload.clear();
                    line_to_payload(negotiated.codec, &audio, &mut payload);
                    sender.handle_input(Instant::now(), &payload);
                }
                Some(LineEvent::RemoteHangup(_) | LineEvent::Fault(_) | LineEvent::Idle) | None => {
                    return Ended::ByLine;
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(send_at.unwrap_or(far)) => sender.handle_timeout(Instant::now()),
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
        while let Some(packet) = sender.poll_output() {
            let _ = socket.send_to(&packet, remote).await;
        }
    }
}
