#!/bin/sh
# The media relay's network-side benchmark: RTP relay throughput on one core and
# the jitter buffer's added latency and late loss (see media/benches/relay.rs).
set -eu
cd "$(dirname "$0")/.."
exec cargo bench -p offhook-media --bench relay "$@"
