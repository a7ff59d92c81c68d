//! Fuzz target: any text as a browser's WebRTC offer through `WebRtcPeer::accept`
//! (str0m's SDP parser and our reading of its Opus packing: `maxaveragebitrate`,
//! `a=ptime`, `a=maxptime`). It may be refused; it may not panic.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use offhook_media::webrtc::WebRtcPeer;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = std::str::from_utf8(data) else { return };
    let local = "127.0.0.1:40000".parse().unwrap();
    let _ = WebRtcPeer::accept(Instant::now(), offer, local, &[]);
});
