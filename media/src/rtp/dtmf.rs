//! RFC 4733 telephone-events, the DTMF of the network side: the 4-byte payload
//! codec, the digit <-> event code map, and a receiver that turns the packet series
//! of each key press (repeated updates, retransmitted end packets, possibly lost
//! ones) into exactly one [`DigitEvent`] for the line. The sending side lives in
//! `sender` (`RtpSender::send_digit`), which uses [`TelephoneEvent::to_bytes`].

use std::time::Duration;

use super::packet::{PayloadKind, RtpPacket};
use super::units::RtpTime;

/// Volume we send: -10 dBm0, as RFC 4733 suggests for DTMF.
pub const SEND_VOLUME: u8 = 10;

/// The digits on a DTMF keypad, in event-code order (RFC 4733 3.2: 0-9, *, #, A-D).
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";

/// The event code of a DTMF digit (`0-9 * # A-D`, letters in either case).
pub fn event_code(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    // Positions are below 16, so the cast cannot truncate.
    DIGITS.iter().position(|&c| char::from(c) == d).map(|p| p as u8)
}

/// The DTMF digit of an event code, if it is one.
pub fn digit(event: u8) -> Option<char> {
    DIGITS.get(usize::from(event)).map(|&c| char::from(c))
}

/// One telephone-event payload (RFC 4733 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 are DTMF).
    pub event: u8,
    /// E bit: the event has ended.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in ticks of the 8 kHz clock.
    pub duration: u16,
}

/// A telephone-event payload that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer sent a {0}-byte telephone-event payload, expected at least 4")]
pub struct ShortEventPayload(pub usize);

impl TelephoneEvent {
    /// Reads the first event of a payload (redundant older events are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, ShortEventPayload> {
        match *payload {
            [event, flags, hi, lo, ..] => Ok(Self {
                event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([hi, lo]),
            }),
            _ => Err(ShortEventPayload(payload.len())),
        }
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        [self.event, u8::from(self.end) << 7 | (self.volume & 0x3f), hi, lo]
    }
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    /// The digit.
    pub digit: char,
    /// How long it was held.
    pub duration: Duration,
    /// Media time of its start (the event's RTP timestamp).
    pub start: RtpTime,
}

/// Turns telephone-event packets into one [`DigitEvent`] per key press.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// The event in progress: its start time and latest payload.
    current: Option<(RtpTime, TelephoneEvent)>,
    /// Start time of the last event reported, to ignore its retransmitted ends.
    reported: Option<RtpTime>,
}

impl DtmfReceiver {
    /// Takes one validated packet; returns a digit when a key press is complete.
    /// Non-DTMF events and non-event packets are ignored. A new event whose
    /// predecessor's end packets were all lost completes that predecessor.
    pub fn handle(&mut self, packet: &RtpPacket<'_>) -> Option<DigitEvent> {
        if packet.kind != PayloadKind::TelephoneEvent {
            return None;
        }
        let event = TelephoneEvent::parse(packet.payload).ok()?;
        digit(event.event)?;
        let start = packet.time;
        if self.reported == Some(start) {
            return None;
        }
        let unfinished = match self.current {
            Some((s, _)) if s == start => None,
            other => other,
        };
        if event.end {
            self.current = None;
            self.reported = Some(start);
            Some(Self::report(start, event))
        } else {
            self.current = Some((start, event));
            unfinished.map(|(s, e)| {
                self.reported = Some(s);
                Self::report(s, e)
            })
        }
    }

    fn report(start: RtpTime, e: TelephoneEvent) -> DigitEvent {
        DigitEvent {
            // Only DTMF codes are kept, checked in `handle`.
            digit: digit(e.event).unwrap(),
            duration: start.rate.duration_of(u64::from(e.duration)),
            start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::units::{ClockRate, SeqNo, Ssrc};

    fn pkt(ts: u32, payload: &[u8; 4]) -> RtpPacket<'_> {
        RtpPacket {
            ssrc: Ssrc(1),
            seq: SeqNo(0),
            time: RtpTime {
                ticks: ts,
                rate: ClockRate::NARROWBAND,
            },
            marker: false,
            kind: PayloadKind::TelephoneEvent,
            payload,
        }
    }

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: SEND_VOLUME,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn payload_round_trips_and_short_ones_fail() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 1600,
        };
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Ok(e));
        assert_eq!(e.to_bytes(), [11, 0xbf, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(ShortEventPayload(3)));
    }

    #[test]
    fn digit_map_covers_the_keypad() {
        assert_eq!(event_code('5'), Some(5));
        assert_eq!(event_code('*'), Some(10));
        assert_eq!(event_code('#'), Some(11));
        assert_eq!(event_code('d'), Some(15));
        assert_eq!(event_code('x'), None);
        assert_eq!(digit(12), Some('A'));
        assert_eq!(digit(16), None);
    }

    #[test]
    fn one_digit_per_press_despite_retransmitted_ends() {
        let mut rx = DtmfReceiver::default();
        let (a, b, c, e1, e2, e3) = (
            ev(7, false, 160),
            ev(7, false, 320),
            ev(7, false, 480),
            ev(7, true, 800),
            ev(7, true, 800),
            ev(7, true, 800),
        );
        let series = [
            pkt(1000, &a),
            pkt(1000, &b),
            pkt(1000, &c),
            pkt(1000, &e1),
            pkt(1000, &e2),
            pkt(1000, &e3),
        ];
        let digits: Vec<_> = series.iter().filter_map(|p| rx.handle(p)).collect();
        assert_eq!(digits.len(), 1);
        assert_eq!(digits[0].digit, '7');
        assert_eq!(digits[0].duration, Duration::from_millis(100));
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_next_press() {
        let mut rx = DtmfReceiver::default();
        let (first, second, end) = (ev(1, false, 320), ev(2, false, 160), ev(2, true, 640));
        assert_eq!(rx.handle(&pkt(0, &first)), None);
        let d = rx.handle(&pkt(4000, &second)).expect("first press completed");
        assert_eq!((d.digit, d.start.ticks), ('1', 0));
        assert_eq!(rx.handle(&pkt(4000, &end)).map(|d| d.digit), Some('2'));
        assert_eq!(rx.handle(&pkt(4000, &end)), None);
    }
}
