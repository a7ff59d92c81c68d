#!/bin/sh
# Mouth-to-ear latency and speech quality, run as a user would: `offhook demo`
# (its emulated line with a clock offset and a hybrid echo, so the line echo
# canceller is on as on a real modem) and Debian's headless Chromium calling the
# demo page's echo and parrot icons through the widget over WebRTC, its fake
# microphone playing a WAV file (tests/browser/mouth2ear.mjs).
#
# Latency: the microphone plays a 100 ms chirp every 2 s; the browser records its
# own microphone and what comes back in one WebAudio graph (one clock); the round
# trip of each burst minus the far end's own delay (the echo's 300 ms; the
# parrot's 100 ms burst + 600 ms of quiet it waits for) is the path's added delay
# both ways together (browser -> relay -> line and back); p50/p95 per minute, on a
# clean loopback and with jitter and loss.
# Quality: an espeak-ng sentence through the echo under 0 / 3 / 10 % loss per leg
# with 30 ms jitter, PESQ (narrowband, 8 kHz) against the sentence, and the same
# loss rate applied offline as zero-filled 20 ms frames (no concealment).
# Loss: the demo and Chromium run in a network namespace of their own whose
# loopback drops that share of UDP (iptables, as tests/tests/widget_quality.rs),
# so each leg loses it. Jitter: WebRTC's simulated network in Chromium (field
# trial WebRTC-FakeNetworkSendConfig: the packets Chromium sends are delayed by a
# random spread), so only the browser -> relay leg has it.
#
# Usage: bench/mouth_to_ear.sh [minutes per latency call, 1] [ppm, 100] [quality seconds, 40]
# Needs root (network namespaces); installs espeak-ng (apt), numpy/scipy/pesq (pip), the
# widget tests' node modules (npm ci).
set -eu
cd "$(dirname "$0")/.."
MINUTES="${1:-1}"
PPM="${2:-100}"
QUALITY_S="${3:-40}"
ROOT="$(pwd)"
OUT="$(mktemp -d /tmp/mouth2ear.XXXXXX)"

# What the bench needs that the tests do not.
command -v espeak-ng >/dev/null || apt-get install -y espeak-ng >/dev/null
python3 -c 'import numpy, scipy, pesq' 2>/dev/null || pip install --quiet numpy scipy pesq
[ -d tests/browser/node_modules ] || npm ci --no-audit --no-fund --prefix tests/browser >/dev/null
cargo build --quiet --bin offhook
BIN="${CARGO_TARGET_DIR:-target}/debug/offhook"
# The demo and the browser start from an empty HOME, as on a fresh machine.
export HOME="$OUT/home"
mkdir -p "$HOME"

echo "load before: $(cat /proc/loadavg) on $(nproc) cores; results in $OUT"
python3 bench/mouth_to_ear/audio.py bursts "$OUT/bursts.wav"
python3 bench/mouth_to_ear/audio.py speech "$OUT/speech.wav" \
  "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. It is easy to tell the depth of a well."

cat >"$OUT/offhook.toml" <<EOF
[media]
lines = [{ name = "demo-line-1", device = "emulated", emulated = { clock_ppm = $PPM, hybrid = { delay_ms = 20, erl_db = 10 } } }]
EOF

DEMO_PID=""
NS=""
RUN=""
STARTS=0
stop_demo() {
  [ -z "$DEMO_PID" ] || { kill "$DEMO_PID" 2>/dev/null; wait "$DEMO_PID" 2>/dev/null || true; DEMO_PID=""; }
  [ -z "$NS" ] || { ip netns del "$NS"; NS=""; RUN=""; }
}
trap stop_demo EXIT
start_demo() { # loss %
  if [ "$1" != 0 ]; then
    NS="ohk-m2e-$$-$1"
    ip netns add "$NS"
    RUN="ip netns exec $NS"
    $RUN ip link set lo up
    $RUN iptables -A INPUT -i lo -p udp -m statistic --mode random \
      --probability "$(awk "BEGIN { print $1 / 100 }")" -j DROP
  fi
  # A fresh directory each start: the demo's page (and so the icons' origin) is on a new port.
  STARTS=$((STARTS + 1))
  export OFFHOOK_DATABASE_URL="sqlite://$OUT/offhook-$STARTS.db"
  OFFHOOK_WEB__LISTEN=127.0.0.1:0 OFFHOOK_SIGNALING__UDP=127.0.0.1:0 OFFHOOK_SIGNALING__TCP=127.0.0.1:0 \
    OFFHOOK_SIGNALING__WS=127.0.0.1:0 RUST_LOG=warn $RUN "$BIN" --config "$OUT/offhook.toml" demo >"$OUT/demo.log" 2>&1 &
  DEMO_PID=$!
  for _ in $(seq 600); do
    URL="$(sed -n 's|.*web serving \(http://[^ /]*\).*|\1/|p' "$OUT/demo.log" | head -n 1)"
    [ -n "$URL" ] && break
    sleep 0.1
  done
  [ -n "$URL" ] || { cat "$OUT/demo.log"; exit 1; }
  # The parrot has no icon on the demo page: one for the bench, allowed from it.
  "$BIN" --config "$OUT/offhook.toml" directory icon create --tenant demo --number 5550107 \
    --public-id demo-parrot --origin "${URL%/}" >/dev/null 2>&1 || true
}

# Chromium's simulated network on what it sends: `jitter` ms of delay spread
# on a `jitter` ms queue delay; nothing for 0.
jitter() {
  [ "$1" = 0 ] || echo "--force-fieldtrials=WebRTC-FakeNetworkSendConfig/queue_delay_ms:$1,delay_std_dev_ms:$1/"
}

call() { # icon mic.wav seconds out.wav jitter
  # shellcheck disable=SC2046
  $RUN node tests/browser/mouth2ear.mjs "$URL" "$2" "$1" "$3" "$4" $(jitter "$5") 2>>"$OUT/browser.log"
}

echo "== latency: round trip minus the far end's delay, ${MINUTES} min per call, line clock ${PPM} ppm, canceller on"
for net in "0 0" "3 30"; do
  set -- $net
  start_demo "$1"
  for far in "demo-echo 300" "demo-parrot 700"; do
    icon="${far% *}"
    delay="${far#* }"
    rec="$OUT/latency-$icon-loss$1-jitter$2.wav"
    stats="$(call "$icon" "$OUT/bursts.wav" "$(awk "BEGIN { print int($MINUTES * 60) }")" "$rec" "$2")" || echo "call failed: $stats"
    echo "$icon loss $1% jitter $2 ms: $(python3 bench/mouth_to_ear/audio.py latency "$rec" "$delay") browser: $stats"
  done
  stop_demo
done

echo "== speech quality (PESQ nb) through the echo, 30 ms jitter"
for loss in 0 3 10; do
  start_demo "$loss"
  rec="$OUT/quality-loss$loss.wav"
  stats="$(call demo-echo "$OUT/speech.wav" "$QUALITY_S" "$rec" 30)" || echo "call failed: $stats"
  echo "loss $loss%: $(python3 bench/mouth_to_ear/audio.py quality "$rec" "$OUT/speech.wav" "$loss") browser: $stats"
  stop_demo
done
echo "load after: $(cat /proc/loadavg)"
