//! Fuzz target: any bytes through the SIP parser, and whatever parses through the
//! printer and the parser again. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = offhook_sip::message::parse(data) {
        let printed = message.to_bytes();
        let _ = offhook_sip::message::parse(&printed);
    }
});
