"""The mouth-to-ear bench's audio side: makes the fake microphone's WAV files and
scores what the browser recorded (bench/mouth_to_ear.sh runs it).

  audio.py bursts OUT.wav                 a 2 s loop: a 100 ms chirp burst, then quiet
  audio.py speech OUT.wav TEXT            espeak-ng speech at 16 kHz, padded, for PESQ
  audio.py latency REC.wav DELAY_MS       round trip of each burst: the browser's
                                          own microphone (channel 0) against what came
                                          back (channel 1), minus the far end's own
                                          DELAY_MS; p50/p95 per minute
  audio.py quality REC.wav REF.wav LOSS%  PESQ (narrowband, 8 kHz) of what came back
                                          against the speech, and of a zero-fill
                                          baseline of the same speech with LOSS% of its
                                          20 ms frames zeroed on each of the two legs

The recording is two channels at the AudioContext's rate, both taken in one
WebAudio graph, so the two share one clock: the round trip is measured without
any clock but the browser's.
"""

import json
import subprocess
import sys
import wave

import numpy as np
from scipy.signal import correlate, find_peaks, hilbert, resample_poly

BURST_PERIOD_S = 2.0
BURST_S = 0.1
RATE = 16000


def write_wav(path, samples, rate, channels=1):
    data = np.clip(samples, -1.0, 1.0)
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((data * 32767).astype("<i2").tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float) / 32767
    return rate, data.reshape(-1, channels)


def chirp():
    """A 100 ms chirp from 500 to 2500 Hz (inside the telephone band), 3 ms ramps."""
    t = np.arange(int(BURST_S * RATE)) / RATE
    wave_ = 0.5 * np.sin(2 * np.pi * (500 * t + 0.5 * (2000 / BURST_S) * t * t))
    return wave_ * np.minimum(1.0, np.minimum(t, BURST_S - t) / 0.003)


def bursts(out):
    loop = np.zeros(int(BURST_PERIOD_S * RATE))
    burst = chirp()
    loop[: len(burst)] = burst
    write_wav(out, loop, RATE)


def speech(out, text):
    raw = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text], check=True, capture_output=True
    ).stdout
    tmp = out + ".espeak.wav"
    with open(tmp, "wb") as f:
        f.write(raw)
    rate, data = read_wav(tmp)
    voice = data[:, 0]
    voice = resample_poly(voice, RATE, rate) if rate != RATE else voice
    voice *= 0.5 / max(1e-9, np.max(np.abs(voice)))
    pad = np.zeros(RATE)  # 1 s quiet each side: the loop's seam is silence
    write_wav(out, np.concatenate([pad, voice, pad]), RATE)


def matched(x, rate):
    """The envelope of `x` through a filter matched to the chirp: a peak where one starts."""
    template = resample_poly(chirp(), rate, RATE) if rate != RATE else chirp()
    return np.abs(hilbert(correlate(x, template, mode="full", method="fft")[len(template) - 1 :]))


def latency(rec, far_delay_ms):
    """Each burst the microphone sent (a matched-filter peak on channel 0) against the
    strongest return within the next period on channel 1 (the far end's copy; the
    line's cancelled hybrid echo is at least 35 dB weaker)."""
    rate, data = read_wav(rec)
    mouth, ear = matched(data[:, 0], rate), matched(data[:, 1], rate)
    period = int(BURST_PERIOD_S * rate)
    sent, _ = find_peaks(mouth, height=0.3 * np.max(mouth), distance=period // 2)
    rows = []
    for t in sent[sent < len(ear) - period]:
        window = ear[t + rate // 50 : t + period - rate // 20]
        back = t + rate // 50 + int(np.argmax(window))
        rows.append((t / rate, (back - t) * 1000 / rate - far_delay_ms, float(window.max())))
    levels = [r[2] for r in rows]
    minutes = {}
    for t, ms, level in rows:
        if level > 0.2 * np.median(levels):  # a return, not noise where one was missing
            minutes.setdefault(int(t // 60), []).append(ms)
    report = {
        "bursts_sent": len(rows),
        "bursts_heard": sum(len(v) for v in minutes.values()),
        "per_minute": [
            {
                "minute": m + 1,
                "n": len(v),
                "p50_ms": round(float(np.percentile(v, 50)), 1),
                "p95_ms": round(float(np.percentile(v, 95)), 1),
            }
            for m, v in sorted(minutes.items())
        ],
    }
    print(json.dumps(report))


def align(received, reference):
    """`received` cut to the stretch that best matches `reference` (cross-correlation)."""
    lag = int(np.argmax(correlate(received, reference, mode="valid", method="fft")))
    return received[lag : lag + len(reference)], lag


def zero_fill(reference, rate, loss, seed):
    """The reference with each 20 ms frame zeroed with probability `loss` per leg, two legs."""
    rng = np.random.default_rng(seed)
    frame = rate // 50
    out = reference.copy()
    for start in range(0, len(out), frame):
        if rng.random() < loss or rng.random() < loss:
            out[start : start + frame] = 0.0
    return out


def quality(rec, ref, loss_percent):
    from pesq import pesq

    rate, data = read_wav(rec)
    ref_rate, ref_data = read_wav(ref)
    reference = resample_poly(ref_data[:, 0], 8000, ref_rate)
    received = resample_poly(data[:, 1], 8000, rate)
    # Skip the first loop (the call settling), score the next whole one.
    received = received[len(reference) :]
    aligned, lag = align(received, reference)
    loss = float(loss_percent) / 100
    scores = {
        "loss_percent": float(loss_percent),
        "aligned_at_s": round((lag + len(reference)) / 8000, 3),
        "mos_received": round(float(pesq(8000, reference, aligned, "nb")), 3),
    }
    baselines = [pesq(8000, reference, zero_fill(reference, 8000, loss, seed), "nb") for seed in range(5)]
    scores["mos_zero_fill"] = round(float(np.mean(baselines)), 3)
    scores["mos_gain"] = round(scores["mos_received"] - scores["mos_zero_fill"], 3)
    print(json.dumps(scores))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"bursts": bursts, "speech": speech, "latency": lambda r, d: latency(r, float(d)), "quality": quality}[
        command
    ](*args)
