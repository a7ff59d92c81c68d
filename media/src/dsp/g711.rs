//! ITU-T G.711 mu-law and A-law, bit-exact with the reference arithmetic (no
//! tables): 16-bit linear samples to 8-bit codes and back. The line side of the
//! relay is mu-law; A-law peers are transcoded through linear.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// Linear sample to mu-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = (7 - (pcm.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    // The code fits in a byte: sign bit, 3 exponent bits, 4 mantissa bits.
    !(sign | (exponent << 4) | mantissa) as u8
}

/// mu-law to linear sample.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    // |magnitude| <= 32124, within i16.
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let pcm = i32::from(sample) >> 3;
    let (magnitude, sign) = if pcm >= 0 { (pcm, 0xD5) } else { (-pcm - 1, 0x55) };
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let exponent = (31 - magnitude.leading_zeros() as i32 - 4).clamp(1, 7);
        if exponent > 7 || magnitude >= 4096 {
            0x7F
        } else {
            (exponent << 4) | ((magnitude >> exponent) & 0x0F)
        }
    };
    // Fits in a byte by construction.
    (code.min(0x7F) ^ sign) as u8
}

/// A-law to linear sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // |magnitude| <= 32256, within i16.
    (if code & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_codes_and_round_trip() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        for code in 0..=255u8 {
            let again = linear_to_ulaw(ulaw_to_linear(code));
            // 0x7F and 0xFF both decode to 0 (negative and positive zero).
            assert!(again == code || ulaw_to_linear(code) == 0, "{code:#x}");
        }
    }

    #[test]
    fn alaw_known_codes_and_round_trip() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "{code:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_small() {
        for sample in (-32_000i32..32_000).step_by(97) {
            let s = sample as i16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let bound = (sample.abs() / 16).max(16);
            assert!((u - sample).abs() <= bound, "mu-law {sample} -> {u}");
            assert!((a - sample).abs() <= bound, "A-law {sample} -> {a}");
        }
    }
}
