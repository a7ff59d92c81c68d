//! SDP offer/answer (RFC 3264) for the relay's plain RTP/AVP calls from softphones:
//! parse the offer with `webrtc-sdp`, pick the first offered codec we carry to the
//! line (PCMU, else PCMA) and RFC 4733 `telephone-event/8000`, and print our answer.
//! WebRTC offers (`UDP/TLS/RTP/SAVPF`) are not for this module: they are refused
//! here with 488 and handled by the WebRTC termination.

use std::net::{IpAddr, SocketAddr};

use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::{SdpAttribute, SdpAttributeType};
use webrtc_sdp::media_type::{SdpFormatList, SdpMedia, SdpMediaValue, SdpProtocolValue};

/// An audio codec the relay carries to the line (8 kHz G.711).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// mu-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl G711 {
    /// The RTP/AVP static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }
}

/// Why an offer cannot be answered; each maps to 488 Not Acceptable Here
/// (or 400 when the SDP does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not SDP.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No audio stream on a profile we terminate here.
    #[error("no RTP/AVP audio stream in the offer")]
    NoAudio,
    /// Audio offered, but neither PCMU nor PCMA at 8 kHz.
    #[error("no common codec: offer PCMU or PCMA")]
    NoCommonCodec,
    /// No usable connection address for the audio stream.
    #[error("no connection address for the audio stream")]
    NoAddress,
}

/// Which way an offer's audio flows, from the offerer's side (RFC 3264 s6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The offerer sends only: hold, we must not send.
    SendOnly,
    /// The offerer receives only.
    RecvOnly,
    /// Neither way (also the old `c=0.0.0.0` hold).
    Inactive,
}

impl Direction {
    /// The answer's direction to an offer of this one.
    pub fn mirrored(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    /// Whether the offerer sends audio.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the offerer takes audio.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The SDP attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// The result of negotiation: what we send and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Voice codec (its payload type is the static one).
    pub codec: G711,
    /// Payload type of telephone-event/8000, if the offerer supports it.
    pub dtmf_payload_type: Option<u8>,
    /// Where the offerer receives RTP.
    pub remote: SocketAddr,
    /// Packet time asked for (ms), default 20.
    pub ptime_ms: u32,
    /// The offer's direction (`inactive` for a zero address).
    pub direction: Direction,
    /// RTCP shares the RTP port (`a=rtcp-mux`, RFC 5761): we accept it when offered.
    pub rtcp_mux: bool,
    /// Where the offerer receives RTCP: the RTP address with `rtcp-mux`, else
    /// `a=rtcp` (RFC 3605) or the RTP port + 1.
    pub remote_rtcp: SocketAddr,
}

fn rtpmaps(media: &SdpMedia) -> impl Iterator<Item = (u8, &str, u32)> {
    media.get_attributes().iter().filter_map(|attr| match attr {
        SdpAttribute::Rtpmap(map) => Some((map.payload_type, map.codec_name.as_str(), map.frequency)),
        _ => None,
    })
}

/// Parses an SDP offer and negotiates one audio stream.
pub fn negotiate(offer: &str) -> Result<Negotiated, SdpError> {
    let session = webrtc_sdp::parse_sdp(offer, false).map_err(|e| SdpError::Malformed(e.to_string()))?;
    let media = session
        .media
        .iter()
        .find(|m| {
            *m.get_type() == SdpMediaValue::Audio
                && matches!(
                    m.get_proto(),
                    SdpProtocolValue::RtpAvp | SdpProtocolValue::RtpAvpf
                )
                && m.get_port() != 0
        })
        .ok_or(SdpError::NoAudio)?;
    let SdpFormatList::Integers(formats) = media.get_formats() else {
        return Err(SdpError::NoAudio);
    };
    let maps: Vec<_> = rtpmaps(media).collect();
    let named = |pt: u32| {
        maps.iter()
            .find(|(p, _, _)| u32::from(*p) == pt)
            .map(|(_, n, r)| (*n, *r))
    };
    let codec = formats
        .iter()
        .find_map(|&pt| match (pt, named(pt)) {
            (0, None) => Some(G711::Pcmu),
            (8, None) => Some(G711::Pcma),
            (_, Some((name, 8000))) if name.eq_ignore_ascii_case("PCMU") => Some(G711::Pcmu),
            (_, Some((name, 8000))) if name.eq_ignore_ascii_case("PCMA") => Some(G711::Pcma),
            _ => None,
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf_payload_type = maps
        .iter()
        .find(|(pt, name, rate)| {
            name.eq_ignore_ascii_case("telephone-event") && *rate == 8000 && formats.contains(&u32::from(*pt))
        })
        .map(|(pt, _, _)| *pt);
    let connection = media
        .get_connection()
        .as_ref()
        .or(session.get_connection().as_ref());
    let ip: IpAddr = match connection.map(|c| &c.address) {
        Some(ExplicitlyTypedAddress::Ip(ip)) => *ip,
        _ => return Err(SdpError::NoAddress),
    };
    let port = u16::try_from(media.get_port()).map_err(|_| SdpError::NoAddress)?;
    let ptime_ms = match media.get_attribute(SdpAttributeType::Ptime) {
        Some(SdpAttribute::Ptime(ms)) => u32::try_from(*ms).unwrap_or(20).clamp(10, 60),
        _ => 20,
    };
    let has = |attr| media.get_attribute(attr).is_some();
    let direction = if ip.is_unspecified() || has(SdpAttributeType::Inactive) {
        Direction::Inactive
    } else if has(SdpAttributeType::Sendonly) {
        Direction::SendOnly
    } else if has(SdpAttributeType::Recvonly) {
        Direction::RecvOnly
    } else {
        Direction::SendRecv
    };
    let remote = SocketAddr::new(ip, port);
    let rtcp_mux = media.get_attribute(SdpAttributeType::RtcpMux).is_some();
    let remote_rtcp = match media.get_attribute(SdpAttributeType::Rtcp) {
        _ if rtcp_mux => remote,
        Some(SdpAttribute::Rtcp(rtcp)) => match &rtcp.unicast_addr {
            Some(ExplicitlyTypedAddress::Ip(other)) => SocketAddr::new(*other, rtcp.port),
            _ => SocketAddr::new(ip, rtcp.port),
        },
        _ => SocketAddr::new(ip, port.wrapping_add(1)),
    };
    Ok(Negotiated {
        codec,
        dtmf_payload_type,
        remote,
        ptime_ms,
        direction,
        rtcp_mux,
        remote_rtcp,
    })
}

/// Our SDP answer: one audio stream at `local`, the negotiated codec, and
/// telephone-event when offered; `a=rtcp-mux` when offered, else `a=rtcp` when our
/// RTCP port `local_rtcp` is not the RTP port + 1. `session_id` must be fresh per call.
pub fn answer(negotiated: &Negotiated, local: SocketAddr, local_rtcp: u16, session_id: u64) -> String {
    answer_version(negotiated, local, local_rtcp, session_id, session_id)
}

/// [`answer`] at `o=` session version `version` (bumped at each new answer
/// in the dialog, RFC 3264 s8).
pub fn answer_version(
    negotiated: &Negotiated,
    local: SocketAddr,
    local_rtcp: u16,
    session_id: u64,
    version: u64,
) -> String {
    let family = if local.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.ip();
    let codec = negotiated.codec;
    let mut formats = codec.payload_type().to_string();
    let mut attributes = format!("a=rtpmap:{} {}/8000\r\n", codec.payload_type(), codec.name());
    if let Some(pt) = negotiated.dtmf_payload_type {
        formats.push_str(&format!(" {pt}"));
        attributes.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
        ));
    }
    if negotiated.rtcp_mux {
        attributes.push_str("a=rtcp-mux\r\n");
    } else if local_rtcp != local.port().wrapping_add(1) {
        attributes.push_str(&format!("a=rtcp:{local_rtcp}\r\n"));
    }
    let direction = negotiated.direction.mirrored().as_str();
    format!(
        "v=0\r\no=offhook {session_id} {version} IN {family} {ip}\r\ns=offhook\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\n{attributes}a=ptime:{ptime}\r\na={direction}\r\n",
        port = local.port(),
        ptime = negotiated.ptime_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
        t=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n";

    #[test]
    fn picks_the_first_offered_g711_and_telephone_event() {
        let n = negotiate(SIPP_OFFER).unwrap();
        assert_eq!(n.codec, G711::Pcma);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        assert!(!n.rtcp_mux);
        assert_eq!(
            n.remote_rtcp,
            "127.0.0.1:6001".parse().unwrap(),
            "RTCP on RTP + 1"
        );
        let text = answer(&n, "127.0.0.1:7000".parse().unwrap(), 7001, 42);
        assert!(text.contains("m=audio 7000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(!text.contains("a=rtcp"), "{text}");
        let again = negotiate(&text).unwrap();
        assert_eq!((again.codec, again.dtmf_payload_type), (G711::Pcma, Some(101)));
        assert_eq!(again.remote_rtcp, "127.0.0.1:7001".parse().unwrap());
    }

    #[test]
    fn rtcp_mux_and_a_separate_rtcp_port() {
        let mux = negotiate(&format!("{SIPP_OFFER}a=rtcp-mux\r\n")).unwrap();
        assert!(mux.rtcp_mux);
        assert_eq!(mux.remote_rtcp, mux.remote);
        let text = answer(&mux, "127.0.0.1:7000".parse().unwrap(), 7000, 1);
        assert!(text.contains("a=rtcp-mux\r\n"), "{text}");
        let elsewhere = negotiate(&format!("{SIPP_OFFER}a=rtcp:6100 IN IP4 127.0.0.2\r\n")).unwrap();
        assert_eq!(elsewhere.remote_rtcp, "127.0.0.2:6100".parse().unwrap());
        let ours = answer(&elsewhere, "127.0.0.1:7000".parse().unwrap(), 7300, 1);
        assert!(ours.contains("a=rtcp:7300\r\n"), "{ours}");
        assert_eq!(
            negotiate(&ours).unwrap().remote_rtcp,
            "127.0.0.1:7300".parse().unwrap()
        );
    }

    #[test]
    fn refuses_what_cannot_reach_the_line() {
        let opus_only = SIPP_OFFER
            .replace("RTP/AVP 8 0 101", "RTP/AVP 111")
            .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:111 opus/48000/2");
        assert_eq!(negotiate(&opus_only), Err(SdpError::NoCommonCodec));
        let webrtc = SIPP_OFFER.replace("RTP/AVP", "UDP/TLS/RTP/SAVPF");
        assert_eq!(negotiate(&webrtc), Err(SdpError::NoAudio));
        assert!(matches!(negotiate("not sdp at all"), Err(SdpError::Malformed(_))));
        assert!(matches!(negotiate(""), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn hold_is_recognised_and_the_answer_mirrors_it() {
        let old_style = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(negotiate(&old_style).unwrap().direction, Direction::Inactive);
        let local: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        for (offer, answer) in [
            ("sendonly", "recvonly"),
            ("recvonly", "sendonly"),
            ("inactive", "inactive"),
            ("sendrecv", "sendrecv"),
        ] {
            let n = negotiate(&format!("{SIPP_OFFER}a={offer}\r\n")).unwrap();
            assert_eq!(n.direction.as_str(), offer);
            let sdp = answer_version(&n, local, 4001, 7, 8);
            assert!(sdp.contains(&format!("a={answer}\r\n")), "{sdp}");
            assert!(sdp.contains("o=offhook 7 8 IN IP4"), "{sdp}");
        }
    }
}
