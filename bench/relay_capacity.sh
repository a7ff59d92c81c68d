#!/bin/sh
# The media relay's capacity: N concurrent RTP/AVP PCMU calls to the echo number
# through a real `offhook media` with N emulated lines, the load client
# (tests/tests/relay_capacity.rs) in signaling's place. The relay is pinned to
# core 0, the load client to core 1; each step runs ~20-30 s and prints one row
# (relay CPU per call, calls per core, RSS per call, loss, jitter, jitter-buffer
# late/lost, echo present). Usage: bench/relay_capacity.sh [rtp|webrtc] [N...]
set -eu
cd "$(dirname "$0")/.."
kind=${1:-rtp}
[ $# -gt 0 ] && shift
if [ "$kind" != rtp ]; then
    echo "relay_capacity: only 'rtp' is implemented (WebRTC legs: not yet)" >&2
    exit 2
fi
steps=${*:-50 100 200}
cargo build --release -p offhook --bin offhook
cargo test --release -p offhook-tests --test relay_capacity --no-run
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $steps; do
    OFFHOOK_BENCH_CALLS=$n OFFHOOK_BENCH_RELAY_CPU=0 taskset -c 1 \
        cargo test --release -q -p offhook-tests --test relay_capacity -- --ignored --nocapture 2>&1 \
        | grep '^RELAY-CAPACITY' || echo "N=$n: run failed"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
