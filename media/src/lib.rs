//! The media relay's building blocks: G.711 codecs and tone analysis, RTP and the
//! jitter buffer (network side), the V.253 voice-modem driver (line side), and the
//! modem emulator with its simulated telephone network that `offhook demo` and the
//! tests dial through, and the sound card edge of the modem + sound card line.

pub mod dsp;
pub mod emulator;
pub mod modem;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod soundcard;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webrtc;
