//! Fuzz target: any datagram through the RTP parser, the validating receiver and
//! the RTCP compound parser. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offhook_media::rtp::packet::{parse, PayloadMap, RtpReceiver};
use offhook_media::rtp::rtcp::parse_compound;

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let mut receiver = RtpReceiver::new(PayloadMap::g711(Some(101)));
    let _ = receiver.receive(data);
    let _ = parse_compound(data);
});
