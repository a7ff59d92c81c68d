//! Codec glue between the network side and the line: PCMU/PCMA payloads to linear
//! samples for the jitter buffer and back, and to/from the mu-law byte stream the
//! modem line carries (PCMA from the network is transcoded to mu-law for the line,
//! and line mu-law to A-law for a PCMA peer). The G.711 tables are `dsp::g711`'s.

use super::jitter::{AudioPacket, FRAME_SAMPLES, Frame};
use super::packet::{PayloadKind, RtpPacket};
use crate::dsp::g711;
use crate::sdp::G711;

fn to_linear(codec: G711, byte: u8) -> i16 {
    match codec {
        G711::Pcmu => g711::ulaw_to_linear(byte),
        G711::Pcma => g711::alaw_to_linear(byte),
    }
}

fn from_linear(codec: G711, sample: i16) -> u8 {
    match codec {
        G711::Pcmu => g711::linear_to_ulaw(sample),
        G711::Pcma => g711::linear_to_alaw(sample),
    }
}

/// Appends the linear samples of a `codec` payload to `out`.
pub fn decode(codec: G711, payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| to_linear(codec, b)));
}

/// Appends the `codec` payload bytes of linear samples to `out`.
pub fn encode(codec: G711, samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| from_linear(codec, s)));
}

/// Appends a `codec` payload as mu-law line bytes (PCMU passes through).
pub fn payload_to_line(codec: G711, payload: &[u8], out: &mut Vec<u8>) {
    match codec {
        G711::Pcmu => out.extend_from_slice(payload),
        G711::Pcma => out.extend(
            payload
                .iter()
                .map(|&a| g711::linear_to_ulaw(g711::alaw_to_linear(a))),
        ),
    }
}

/// Appends mu-law line bytes as a `codec` payload (PCMU passes through).
pub fn line_to_payload(codec: G711, line: &[u8], out: &mut Vec<u8>) {
    match codec {
        G711::Pcmu => out.extend_from_slice(line),
        G711::Pcma => out.extend(
            line.iter()
                .map(|&u| g711::linear_to_alaw(g711::ulaw_to_linear(u))),
        ),
    }
}

/// A validated audio packet decoded for the jitter buffer; `None` for non-audio.
pub fn to_audio_packet(packet: &RtpPacket<'_>) -> Option<AudioPacket> {
    let PayloadKind::Audio(codec) = packet.kind else {
        return None;
    };
    let mut samples = Vec::with_capacity(packet.payload.len());
    decode(codec, packet.payload, &mut samples);
    Some(AudioPacket {
        ssrc: packet.ssrc,
        seq: packet.seq,
        time: packet.time,
        marker: packet.marker,
        samples,
    })
}

/// A popped frame as the line's 160 mu-law bytes.
pub fn frame_to_line(frame: &Frame) -> [u8; FRAME_SAMPLES] {
    frame.samples.map(g711::linear_to_ulaw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::jitter::FrameKind;

    #[test]
    fn pcmu_line_bytes_pass_through_and_round_trip_via_linear() {
        let line: Vec<u8> = (0..=255).collect();
        let mut payload = Vec::new();
        line_to_payload(G711::Pcmu, &line, &mut payload);
        assert_eq!(payload, line);
        let mut samples = Vec::new();
        decode(G711::Pcmu, &payload, &mut samples);
        let mut again = Vec::new();
        encode(G711::Pcmu, &samples, &mut again);
        // mu-law has two zeros (0x7f, 0xff); every other code survives exactly.
        let differ = line.iter().zip(&again).filter(|(a, b)| a != b).count();
        assert!(differ <= 1, "{differ} codes changed");
    }

    #[test]
    fn pcma_is_transcoded_for_the_line_within_a_step() {
        let line: Vec<u8> = (0..=255).collect();
        let mut alaw = Vec::new();
        line_to_payload(G711::Pcma, &line, &mut alaw);
        let mut back = Vec::new();
        payload_to_line(G711::Pcma, &alaw, &mut back);
        for (&u, &b) in line.iter().zip(&back) {
            let (x, y) = (
                i32::from(g711::ulaw_to_linear(u)),
                i32::from(g711::ulaw_to_linear(b)),
            );
            assert!(
                (x - y).abs() <= x.abs() / 8 + 64,
                "mu-law {u:#04x} came back as {b:#04x}"
            );
        }
    }

    #[test]
    fn frames_become_line_bytes() {
        let frame = Frame {
            samples: [0; FRAME_SAMPLES],
            kind: FrameKind::Silence,
        };
        let line = frame_to_line(&frame);
        assert!(line.iter().all(|&b| g711::ulaw_to_linear(b) == 0));
    }
}
