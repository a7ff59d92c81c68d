#!/usr/bin/env bash
# Instructions per call in offhook's signaling, free of machine noise: runs
# `offhook signaling` (SQLite) under valgrind's callgrind, places CALLS calls
# with sipp (INVITE, 407, authenticated INVITE, 180, 200, ACK, BYE), stops it and
# prints the instructions per call (the idle start-up run subtracted) and the top
# functions. Before/after figures for optimisations of the call path.
# usage: bench/callgrind_calls.sh   env: CALLS (default 300), CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-300}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/offhook-target}"
cargo build --release -q -p offhook
bin="$CARGO_TARGET_DIR/release/offhook"
scen="$PWD/signaling/tests/sipp"
work=$(mktemp -d -p /dev/shm)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export RUST_LOG=error OFFHOOK_DATABASE_URL="sqlite://$work/offhook.db"
export OFFHOOK_SIGNALING__UDP=127.0.0.1:38060 OFFHOOK_SIGNALING__TCP=127.0.0.1:38060 OFFHOOK_SIGNALING__WS=127.0.0.1:38066
export OFFHOOK_SIGNALING__CALLS_PER_SOURCE_PER_MINUTE=100000000
"$bin" directory tenant create bench --domain bench.test >/dev/null
# The tenant's policy defaults (10 calls at once, 1,000 a day and 20,000 a month,
# 200 a day and 4,000 a month per icon or account) would refuse most calls with 503.
"$bin" directory tenant policy set bench --max-concurrent 1000 --tenant-daily 1000000 --daily 1000000 \
  --tenant-monthly 10000000 --monthly 10000000 >/dev/null
"$bin" directory account create --tenant bench caller --password caller-secret >/dev/null
"$bin" directory account create --tenant bench relay-b --kind relay --password relay-secret >/dev/null
"$bin" directory line create line-1 --relay relay-b --device emulated --kind emulated >/dev/null
# The default policy allows 200 calls a day per icon: spread the calls over icons.
echo SEQUENTIAL > "$work/icons.csv"
for n in $(seq 1 $(((calls + 199) / 200))); do
  "$bin" directory icon create --tenant bench --number 5550100 --public-id "echo-$n" --per-minute 10000 >/dev/null
  echo "echo-$n;" >> "$work/icons.csv"
done
sed 's/\[callee\]/[field0]/g' "$scen/uac.xml" > "$work/uac_icons.xml"
run() { # calls -> total instructions of one signaling run
  local n=$1 out="$work/cg.$1"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" signaling > "$work/vg.$n.log" 2>&1 &
  local vg=$!
  (cd "$work" && exec sipp -sf "$scen/uas.xml" -p 38070 -aa -nostdin >/dev/null 2>&1) &
  local uas=$!
  for _ in $(seq 1 60); do
    (cd "$work" && sipp -sf "$scen/register.xml" 127.0.0.1:38060 -p 38071 -m 1 -nostdin \
      -key domain bench.test -key user relay-b -key contact_user line-1 -key contact_port 38070 \
      -key expires 3600 -au relay-b -ap relay-secret -timeout 2 -timeout_error >/dev/null 2>&1) && break
  done
  if [ "$n" -gt 0 ]; then
    (cd "$work" && timeout 300 sipp -sf "$work/uac_icons.xml" -inf "$work/icons.csv" 127.0.0.1:38060 -p 38080 \
      -key domain bench.test -key user caller -d 0 -au caller -ap caller-secret -r 20 -l 1 -m "$n" \
      -timeout 250 -nostdin -trace_stat -fd 1 >/dev/null 2>&1) || echo "sipp: some calls failed" >&2
  fi
  kill -TERM "$vg"; wait "$vg" || true
  kill "$uas"; wait "$uas" 2>/dev/null || true
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
idle=$(run 0)
busy=$(run "$calls")
echo "instructions: idle run $idle, with $calls calls $busy: $(((busy - idle) / calls)) per call"
callgrind_annotate --inclusive=no "$work/cg.$calls" 2>/dev/null | sed -n '/file:function/,$p' | head -n 40 | cut -c1-180
