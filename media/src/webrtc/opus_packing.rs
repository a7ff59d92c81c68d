//! How the relay packs the Opus it sends a browser, and tells the browser how to
//! pack its own. A browser on a narrow link (the widget's low-bandwidth profile,
//! e.g. a visitor dialled in on a 33.6 kbit/s modem) offers Opus with
//! `maxaveragebitrate` in its fmtp (RFC 7587 s6.1) and `a=ptime`/`a=maxptime`
//! (RFC 4566 s6); we encode at that bitrate in packets of that length, and our
//! answer carries the same three, which is what makes the browser's own encoder
//! use them (Chromium reads `ptime` and `maxaveragebitrate` from the remote
//! description). An offer without them gets 20 ms packets at the encoder's own
//! rate and an answer with none of them, as before. Parsing reads text only and
//! never panics; out-of-range values are clamped, not refused.

use std::time::Duration;

use crate::rtp::jitter::JitterConfig;

/// Packet times we send, in ms: whole line frames (20 ms) that Opus can encode as one packet.
const PTIMES_MS: [u32; 3] = [20, 40, 60];
/// The bitrates RFC 7587 allows for `maxaveragebitrate`.
const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;

/// The Opus packing of one WebRTC session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpusPacking {
    /// The browser's `maxaveragebitrate` (bit/s), clamped to RFC 7587's range.
    pub(crate) bitrate: Option<u32>,
    /// Packet time in ms, one of [`PTIMES_MS`].
    pub(crate) ptime_ms: u32,
}

impl Default for OpusPacking {
    fn default() -> Self {
        Self {
            bitrate: None,
            ptime_ms: PTIMES_MS[0],
        }
    }
}

impl OpusPacking {
    /// What the offer's audio section asks for: the longest of our packet times
    /// within its `a=ptime` (and `a=maxptime`), its Opus `maxaveragebitrate`.
    pub(crate) fn from_offer(offer: &str) -> Self {
        let audio = audio_section(offer);
        let Some(pt) = opus_payload_type(&audio) else {
            return Self::default();
        };
        let number = |name: &str| {
            audio
                .iter()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<u32>().ok())
        };
        let wanted = match (number("a=ptime:"), number("a=maxptime:")) {
            (Some(ptime), Some(max)) => ptime.min(max),
            (ptime, _) => ptime.unwrap_or(PTIMES_MS[0]),
        };
        let ptime_ms = PTIMES_MS
            .iter()
            .copied()
            .filter(|&p| p <= wanted)
            .max()
            .unwrap_or(PTIMES_MS[0]);
        let bitrate = fmtp_params(&audio, &pt)
            .and_then(|params| {
                params.split(';').find_map(|param| {
                    let (key, value) = param.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("maxaveragebitrate")
                        .then(|| value.trim().parse::<u32>().ok())?
                })
            })
            .map(|b| b.clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end()));
        Self { bitrate, ptime_ms }
    }

    /// Line samples (8 kHz) in one packet we send.
    pub(crate) fn packet_samples(self) -> usize {
        self.ptime_ms as usize * 8
    }

    /// The jitter buffer for the browser's packets. With packets longer than a
    /// line frame it keeps at least one packet time more than the default: the
    /// audio the decoder makes up for a lost packet comes with the next packet,
    /// one packet time later, and is played only if its frames are still to come.
    pub(crate) fn jitter_config(self) -> JitterConfig {
        let default = JitterConfig::default();
        match self.ptime_ms > PTIMES_MS[0] {
            true => JitterConfig {
                min_delay: default.min_delay + Duration::from_millis(self.ptime_ms.into()),
                ..default
            },
            false => default,
        }
    }

    /// Whether this is the default packing (nothing to add to the answer).
    pub(crate) fn is_default(self) -> bool {
        self == Self::default()
    }

    /// `answer` with our packing in it: `maxaveragebitrate` in the Opus fmtp,
    /// `a=ptime` and `a=maxptime` after it. Unchanged for the default packing or
    /// an answer without Opus.
    pub(crate) fn annotate_answer(self, answer: &str) -> String {
        let lines: Vec<&str> = answer.lines().collect();
        let Some(pt) = opus_payload_type(&lines).filter(|_| !self.is_default()) else {
            return answer.to_string();
        };
        let fmtp = format!("a=fmtp:{pt} ");
        let rtpmap = format!("a=rtpmap:{pt} ");
        let has_fmtp = lines.iter().any(|l| l.starts_with(&fmtp));
        let mut out = String::with_capacity(answer.len() + 80);
        for line in lines {
            let ours = line.starts_with(&fmtp) || (!has_fmtp && line.starts_with(&rtpmap));
            out.push_str(line);
            if !ours {
                out.push_str("\r\n");
                continue;
            }
            if let Some(bitrate) = self.bitrate {
                match line.starts_with(&fmtp) {
                    true => out.push_str(&format!(";maxaveragebitrate={bitrate}")),
                    false => out.push_str(&format!("\r\n{fmtp}maxaveragebitrate={bitrate}")),
                }
            }
            let ptime = self.ptime_ms;
            out.push_str(&format!("\r\na=ptime:{ptime}\r\na=maxptime:{ptime}\r\n"));
        }
        out
    }
}

/// The lines of the first `m=audio` section.
fn audio_section(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .map(str::trim_end)
        .skip_while(|l| !l.starts_with("m=audio"))
        .enumerate()
        .take_while(|(n, l)| *n == 0 || !l.starts_with("m="))
        .map(|(_, l)| l)
        .collect()
}

/// The payload type of `opus/48000` in `lines`.
fn opus_payload_type(lines: &[&str]) -> Option<String> {
    lines.iter().find_map(|line| {
        let (pt, encoding) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        let name = encoding.split('/').next()?;
        name.eq_ignore_ascii_case("opus").then(|| pt.trim().to_string())
    })
}

/// The fmtp parameters of payload type `pt`.
fn fmtp_params<'a>(lines: &[&'a str], pt: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| {
        let (key, params) = line.strip_prefix("a=fmtp:")?.split_once(' ')?;
        (key == pt).then_some(params)
    })
}

#[cfg(test)]
mod tests {
    use super::OpusPacking;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\n\
        a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1{FMTP}\r\n\
        a=rtpmap:0 PCMU/8000\r\n{ATTRS}";

    fn offer(fmtp: &str, attrs: &str) -> String {
        OFFER.replace("{FMTP}", fmtp).replace("{ATTRS}", attrs)
    }

    #[test]
    fn a_plain_offer_gets_twenty_ms_and_an_answer_left_alone() {
        let packing = OpusPacking::from_offer(&offer("", ""));
        assert_eq!(packing, OpusPacking::default());
        assert_eq!(packing.packet_samples(), 160);
        let answer = offer("", "");
        assert_eq!(packing.annotate_answer(&answer), answer);
    }

    #[test]
    fn a_narrow_offer_is_read_and_echoed_in_the_answer() {
        let narrow = offer("; maxaveragebitrate=16000", "a=ptime:60\r\na=maxptime:60\r\n");
        let packing = OpusPacking::from_offer(&narrow);
        assert_eq!(packing.bitrate, Some(16_000));
        assert_eq!(packing.ptime_ms, 60);
        assert_eq!(packing.packet_samples(), 480);
        let answer = packing.annotate_answer(&offer("", ""));
        assert!(
            answer.contains("a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=16000\r\na=ptime:60\r\na=maxptime:60\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:0 PCMU/8000\r\n"), "{answer}");
    }

    #[test]
    fn ptime_rounds_down_to_whole_line_frames_within_maxptime() {
        let cases = [
            ("a=ptime:50\r\n", 40),
            ("a=ptime:60\r\na=maxptime:40\r\n", 40),
            ("a=ptime:10\r\n", 20),
            ("a=ptime:120\r\n", 60),
            ("a=ptime:junk\r\n", 20),
            ("a=maxptime:60\r\n", 20),
        ];
        for (attrs, ptime) in cases {
            assert_eq!(
                OpusPacking::from_offer(&offer("", attrs)).ptime_ms,
                ptime,
                "{attrs}"
            );
        }
    }

    #[test]
    fn bitrates_are_clamped_to_rfc_7587_and_junk_ignored() {
        let cases = [
            (";maxaveragebitrate=1000", Some(6_000)),
            (";maxaveragebitrate=999999999", Some(510_000)),
            (";maxaveragebitrate=-5", None),
            (";maxaveragebitrate", None),
            (";MaxAverageBitrate=12000", Some(12_000)),
        ];
        for (fmtp, bitrate) in cases {
            assert_eq!(
                OpusPacking::from_offer(&offer(fmtp, "")).bitrate,
                bitrate,
                "{fmtp}"
            );
        }
    }

    #[test]
    fn an_answer_without_opus_fmtp_gets_one() {
        let packing = OpusPacking {
            bitrate: Some(16_000),
            ptime_ms: 40,
        };
        let answer = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";
        assert_eq!(
            packing.annotate_answer(answer),
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 maxaveragebitrate=16000\r\na=ptime:40\r\na=maxptime:40\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn an_offer_without_audio_or_opus_is_the_default() {
        assert_eq!(
            OpusPacking::from_offer("v=0\r\nm=video 9 RTP/AVP 96\r\na=ptime:60\r\n"),
            OpusPacking::default()
        );
        assert_eq!(
            OpusPacking::from_offer("m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:60\r\n"),
            OpusPacking::default()
        );
    }
}
