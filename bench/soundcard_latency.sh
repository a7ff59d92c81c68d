#!/bin/sh
# The sound card line's latency and steadiness: a long call through a private
# PulseAudio null sink (media/tests/soundcard_bench.rs). Prints the round trip
# through the card (p50/p95/max), the device latencies PulseAudio reports and the
# underruns at steady state. OFFHOOK_BENCH_SECONDS sets the call's length (600).
set -eu
cd "$(dirname "$0")/.."
exec cargo test -p offhook-media --test soundcard_bench -- --ignored --nocapture "$@"
