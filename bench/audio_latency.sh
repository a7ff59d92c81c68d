#!/bin/sh
# The audio path's latency bench: a long call to the echo number through
# signaling, the relay and the emulated modem with its clock off, in simulated
# time (see tests/tests/audio_latency.rs). Usage:
#   bench/audio_latency.sh [ppm] [minutes]     (defaults: +100 ppm, 10 minutes)
set -eu
cd "$(dirname "$0")/.."
OFFHOOK_BENCH_PPM="${1:-100}" OFFHOOK_BENCH_MINUTES="${2:-10}" \
  exec cargo test -p offhook-tests --test audio_latency -- --ignored --nocapture
