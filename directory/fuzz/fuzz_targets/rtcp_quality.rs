//! Fuzz target: any text as the relay's `X-Offhook-RTCP` header value through
//! `CallQuality::parse_rtcp_header` (signaling reads it from the network). It may
//! not panic, and what it keeps stays in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offhook_directory::CallQuality;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(q) = CallQuality::parse_rtcp_header(&text) {
        assert!(q.loss_permille.is_none_or(|p| (0..=1000).contains(&p)));
        assert!(q.jitter_ms.is_none_or(|j| j >= 0) && q.rtt_ms.is_none_or(|r| r >= 0));
    }
});
