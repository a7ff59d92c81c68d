#!/bin/sh
# The sound card line's latency and steadiness, two long calls on a private
# PulseAudio server: the card alone (a null sink looped to its monitor,
# media/tests/soundcard_bench.rs), then the whole port path (the real modem
# driver holding a call to the emulated modem's echo number, the card wired to
# the modem's mic-in and speaker-out, media/tests/soundcard_port_bench.rs).
# Each prints the round trip (p50/p95/max) and the card's underruns, overruns
# and dropped samples at steady state. OFFHOOK_BENCH_SECONDS sets each call's
# length (600).
set -eu
cd "$(dirname "$0")/.."
cargo test -p offhook-media --test soundcard_bench -- --ignored --nocapture "$@"
exec cargo test -p offhook-media --test soundcard_port_bench -- --ignored --nocapture "$@"
