//! Fuzz target: any bytes from a modem, in command and streaming mode, through the
//! V.253 stream parser and the driver. Neither may panic.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use offhook_media::modem::stream::StreamParser;
use offhook_media::modem::{DriverConfig, ModemDriver};

fuzz_target!(|data: &[u8]| {
    let mut parser = StreamParser::default();
    let mut out = Vec::new();
    parser.push(data, &mut out);
    parser.set_streaming(true);
    parser.push(data, &mut out);
    let now = Instant::now();
    let mut driver = ModemDriver::new(DriverConfig::default(), now);
    driver.handle_bytes(now, data);
    while driver.poll_output().is_some() {}
});
