//! The sound card on ALSA directly (`hw:…`, `plughw:…`: the usual choice on a
//! headless server with USB sound cards), through cpal's ALSA host with a fixed
//! 20 ms period (cpal then buffers two periods: 40 ms in the card). A card that
//! cannot run at 8 kHz (a `hw:` USB card at 48 kHz) runs at 48 kHz, or else its
//! highest rate, and [`Resampler`] converts each way inside the callbacks; a card
//! with only stereo plays the line on every channel and captures its first.
//! The latency recorded is cpal's timestamp difference (callback to playback,
//! capture to callback). A stream error that ends the stream (the device
//! gone, the stream invalidated) marks the card failed; an xrun only logs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, ErrorKind, HostId, SampleFormat, StreamConfig, SupportedStreamConfigRange};

use super::{CardCounters, DEFAULT_DEVICE, Player, RATE, Recorder, SoundCardError};
use crate::dsp::resample::Resampler;

/// The rate tried when the card has no 8 kHz.
const USUAL_RATE: u32 = 48_000;

/// The cpal streams; dropping them stops the callbacks.
struct Streams {
    _playing: [cpal::Stream; 2],
}

/// The error callback of `device`'s stream: what ends the stream fails the card.
fn on_error(
    counters: Arc<CardCounters>,
    kind: &'static str,
    device: &str,
) -> impl FnMut(cpal::Error) + Send + 'static {
    let device = device.to_owned();
    move |err| {
        tracing::warn!(%err, %device, "sound card {kind}");
        if matches!(
            err.kind(),
            ErrorKind::DeviceNotAvailable | ErrorKind::StreamInvalidated | ErrorKind::HostUnavailable
        ) {
            counters.fail(format!("{kind} device '{device}' stopped: {err}"));
        }
    }
}

fn find(host: &cpal::Host, output: bool, name: &str) -> Result<cpal::Device, SoundCardError> {
    let direction = if output { "output" } else { "input" };
    let missing = || SoundCardError::NoDevice {
        direction,
        name: name.to_owned(),
    };
    if name == DEFAULT_DEVICE {
        let device = match output {
            true => host.default_output_device(),
            false => host.default_input_device(),
        };
        return device.ok_or_else(missing);
    }
    let devices = match output {
        true => host.output_devices(),
        false => host.input_devices(),
    }
    .map_err(|e| SoundCardError::Host(host.id(), e.to_string()))?;
    let mut devices = devices;
    devices
        .find(|d| d.id().is_ok_and(|id| id.id() == name))
        .ok_or_else(missing)
}

/// The stream to ask of a device with these 16-bit configurations: 8 kHz if it
/// has it, else 48 kHz, else its highest rate; the fewest channels; 20 ms periods.
fn choose(configs: &[SupportedStreamConfigRange]) -> Option<StreamConfig> {
    let has = |rate: u32| {
        configs
            .iter()
            .filter(|c| (c.min_sample_rate()..=c.max_sample_rate()).contains(&rate))
            .min_by_key(|c| c.channels())
    };
    let (config, rate) = match (has(RATE), has(USUAL_RATE)) {
        (Some(c), _) => (c, RATE),
        (None, Some(c)) => (c, USUAL_RATE),
        (None, None) => {
            let c = configs.iter().max_by_key(|c| c.max_sample_rate())?;
            (c, c.max_sample_rate())
        }
    };
    Some(StreamConfig {
        channels: config.channels(),
        sample_rate: rate,
        buffer_size: BufferSize::Fixed(rate / 50),
    })
}

fn config_of(device: &cpal::Device, name: &str, output: bool) -> Result<StreamConfig, SoundCardError> {
    let refused = |why: String| SoundCardError::Stream(name.to_owned(), why);
    let configs: Vec<_> = match output {
        true => device.supported_output_configs().map(|c| c.collect()),
        false => device.supported_input_configs().map(|c| c.collect()),
    }
    .map_err(|e| refused(e.to_string()))?;
    let configs: Vec<_> = configs
        .into_iter()
        .filter(|c| c.sample_format() == SampleFormat::I16 && c.channels() > 0)
        .collect();
    choose(&configs).ok_or_else(|| refused("no 16-bit configuration".into()))
}

/// Opens `output` and `input` of `host` and starts their streams.
pub(super) fn open(
    host: HostId,
    output: &str,
    input: &str,
    mut player: Player,
    mut recorder: Recorder,
) -> Result<Box<dyn Send>, SoundCardError> {
    let host = cpal::host_from_id(host).map_err(|e| SoundCardError::Host(host, e.to_string()))?;
    let out_device = find(&host, true, output)?;
    let in_device = find(&host, false, input)?;
    let play_config = config_of(&out_device, output, true)?;
    let capture_config = config_of(&in_device, input, false)?;
    player
        .counters
        .rate
        .store(play_config.sample_rate, Ordering::Relaxed);

    let play_failed = on_error(player.counters.clone(), "playback", output);
    let capture_failed = on_error(recorder.counters.clone(), "capture", input);
    let channels = usize::from(play_config.channels);
    let mut up = (play_config.sample_rate != RATE).then(|| Resampler::new(RATE, play_config.sample_rate));
    let out_stream = out_device
        .build_output_stream::<i16, _, _>(
            play_config,
            move |data: &mut [i16], info| {
                // Real time: only the ring, the resampler's state and atomics.
                for frame in data.chunks_mut(channels) {
                    let sample = match up.as_mut() {
                        Some(up) => up.pull(|| player.next()),
                        None => player.next(),
                    };
                    frame.fill(sample);
                }
                player.period_done();
                let t = info.timestamp();
                let latency = t.playback.duration_since(t.callback).as_micros() as u64;
                player
                    .counters
                    .playback_latency_us
                    .store(latency, Ordering::Relaxed);
            },
            play_failed,
            None,
        )
        .map_err(|e| SoundCardError::Stream(output.to_owned(), e.to_string()))?;

    let channels = usize::from(capture_config.channels);
    let mut down =
        (capture_config.sample_rate != RATE).then(|| Resampler::new(capture_config.sample_rate, RATE));
    let in_stream = in_device
        .build_input_stream::<i16, _, _>(
            capture_config,
            move |data: &[i16], info| {
                for frame in data.chunks(channels) {
                    let sample = frame.first().copied().unwrap_or(0);
                    match down.as_mut() {
                        Some(down) => {
                            down.push(sample);
                            while down.ready() {
                                recorder.put(down.output());
                            }
                        }
                        None => recorder.put(sample),
                    }
                }
                recorder.period_done();
                let t = info.timestamp();
                let latency = t.callback.duration_since(t.capture).as_micros() as u64;
                recorder
                    .counters
                    .capture_latency_us
                    .store(latency, Ordering::Relaxed);
            },
            capture_failed,
            None,
        )
        .map_err(|e| SoundCardError::Stream(input.to_owned(), e.to_string()))?;
    out_stream
        .play()
        .map_err(|e| SoundCardError::Stream(output.to_owned(), e.to_string()))?;
    in_stream
        .play()
        .map_err(|e| SoundCardError::Stream(input.to_owned(), e.to_string()))?;
    Ok(Box::new(Streams {
        _playing: [out_stream, in_stream],
    }))
}

#[cfg(test)]
mod tests {
    use cpal::{BufferSize, SampleFormat, SupportedBufferSize, SupportedStreamConfigRange};

    use super::choose;

    fn range(channels: u16, min: u32, max: u32) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            min,
            max,
            SupportedBufferSize::Unknown,
            SampleFormat::I16,
        )
    }

    #[test]
    fn eight_khz_when_the_card_has_it_else_48_else_its_best_with_20_ms_periods() {
        let plug = choose(&[range(2, 4000, 192_000), range(1, 4000, 192_000)]).unwrap();
        assert_eq!((plug.sample_rate, plug.channels), (8000, 1));
        assert_eq!(plug.buffer_size, BufferSize::Fixed(160));
        let usb = choose(&[range(2, 44_100, 48_000)]).unwrap();
        assert_eq!((usb.sample_rate, usb.channels), (48_000, 2));
        assert_eq!(usb.buffer_size, BufferSize::Fixed(960));
        let odd = choose(&[range(2, 44_100, 44_100)]).unwrap();
        assert_eq!(odd.sample_rate, 44_100);
        assert!(choose(&[]).is_none());
    }
}
