#!/usr/bin/env bash
# Calls per second through the offhook proxy, measured with sipp, next to sipp
# calling sipp directly on the same machine.
#
#   uac (sipp, digest auth) -> offhook signaling (UDP) -> uas (sipp, registered as a relay line)
#
# The relay has $LINES lines (default 200), all contacts of one sipp UAS, so that
# calls run concurrently. Calls go round $ICONS icons (default 20): one icon takes
# at most 10,000 calls a minute, fewer than a run of rates makes. For each rate it runs a fixed number of calls and reports the rate reached, failed
# calls, and INVITE->180 latency p50/p99 (sipp -trace_rtt, the second INVITE after
# the 407 challenge). The highest rate with no failed call is the result.
# usage: bench/sip_cps.sh [rates...]   (default: 500 1000 1500 2000)
# env: LINES, ICONS, DIRECT=0 (no direct baseline), PG=1 (PostgreSQL directory), KEEP=1 (keep the
# work directory: logs, sipp statistics and error logs), CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-500 1000 1500 2000}")
[ "$#" -gt 0 ] || rates=(500 1000 1500 2000)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/offhook-target}"
cargo build --release -q -p offhook
bin="$CARGO_TARGET_DIR/release/offhook"
scen=signaling/tests/sipp
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
export OFFHOOK_DATABASE_URL="sqlite://$work/bench.db"
if [ "${PG:-0}" = 1 ]; then # PostgreSQL instead: a fresh schema of the test database
  pg=postgres://postgres@127.0.0.1:5432/test schema="bench_$$"
  psql -q "$pg" -c "CREATE SCHEMA $schema"
  trap 'cleanup; psql -q "$pg" -c "DROP SCHEMA $schema CASCADE"' EXIT
  export OFFHOOK_DATABASE_URL="$pg?options=-c%20search_path%3D$schema"
fi
export RUST_LOG=error
proxy_port=15060
uas_port=15070
export OFFHOOK_SIGNALING__UDP=127.0.0.1:$proxy_port OFFHOOK_SIGNALING__TCP=127.0.0.1:$proxy_port
export OFFHOOK_SIGNALING__WS=127.0.0.1:15066
export OFFHOOK_SIGNALING__CALLS_PER_SOURCE_PER_MINUTE=100000000
lines=${LINES:-200}
icons=${ICONS:-20}
"$bin" directory tenant create bench --domain bench.test >/dev/null
# The tenant's policy above its safe defaults (10 calls at once, 1,000 a day and
# 20,000 a month, 200 a day and 4,000 a month per icon or account).
"$bin" directory tenant policy set bench --max-concurrent 1000 --tenant-daily 1000000 --daily 1000000 \
  --tenant-monthly 10000000 --monthly 10000000 >/dev/null
"$bin" directory account create --tenant bench caller --password caller-secret >/dev/null
"$bin" directory account create --tenant bench relay-b --kind relay --password relay-secret >/dev/null
echo SEQUENTIAL > "$work/icons.csv"
for n in $(seq 1 "$icons"); do
  "$bin" directory icon create --tenant bench --number 5550100 --public-id "echo-$n" \
    --max-concurrent 1000 --per-minute 10000 >/dev/null
  echo "echo-$n;" >> "$work/icons.csv"
done
# uac.xml calling the icon of the injection file's line instead of -key callee.
sed 's/\[callee\]/[field0]/g' "$scen/uac.xml" > "$work/uac_icons.xml"
for n in $(seq 1 "$lines"); do
  "$bin" directory line create "line-$n" --relay relay-b --device emulated --kind emulated >/dev/null
done
"$bin" signaling > "$work/signaling.log" 2>&1 &
signaling=$!
sleep 1

percentiles() { # file of "time;value" lines from -trace_rtt -> p50 p99 in ms
  python3 - "$@" <<'PY'
import sys, glob
vals = []
for f in glob.glob(sys.argv[1]):
    for line in open(f):
        parts = line.strip().split(';')
        if len(parts) >= 2:
            try: vals.append(float(parts[1]))
            except ValueError: pass
vals.sort()
if not vals: print("n/a n/a"); sys.exit()
q = lambda p: vals[min(len(vals)-1, int(p*len(vals)))]
print(f"{q(0.50):.2f} {q(0.99):.2f}")
PY
}

cpu_ms() { # CPU time (user + system) of process $1 so far, in ms
  awk -v tck="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / tck }' "/proc/$1/stat" 2>/dev/null || echo 0
}

run() { # label rate uac-args... -> prints a result row (and offhook's CPU per call)
  local label=$1 rate=$2; shift 2
  local calls=$((rate * 10)) dir="$work/$label-$rate"
  mkdir -p "$dir"
  local cpu_before; cpu_before=$(cpu_ms "$signaling")
  # sipp's own -timeout does not stop a run with calls stuck: timeout(1) does.
  (cd "$dir" && timeout -s INT $((calls / rate + 40)) sipp "$@" -buff_size 4194304 -r "$rate" -m "$calls" -l 20000 \
      -trace_rtt -rtt_freq 1 -trace_stat -trace_err -fd 1 -timeout 60 -nostdin >/dev/null 2>&1 || true)
  local stat; stat=$(ls "$dir"/*_.csv "$dir"/*[0-9].csv 2>/dev/null | grep -v rtt | head -n1 || true)
  python3 - "$stat" "$label" "$rate" "$(percentiles "$dir/*rtt.csv")" <<'PY'
import sys, csv
path, label, rate, pct = sys.argv[1:5]
rows = list(csv.reader(open(path), delimiter=';')) if path else []
if len(rows) < 2:
    print(f"{label:8} rate={rate:>5}  no statistics"); sys.exit()
head, last = rows[0], rows[-1]
get = lambda k: last[head.index(k)] if k in head else "?"
p50, p99 = pct.split()
print(f"{label:8} target={rate:>5}/s  reached={get('CallRate(C)'):>8}/s  ok={get('SuccessfulCall(C)'):>6}  "
      f"failed={get('FailedCall(C)'):>4}  INVITE->180 p50={p50} ms p99={p99} ms")
PY
  [ "$label" = direct ] || awk -v a="$cpu_before" -v b="$(cpu_ms "$signaling")" -v n="$calls" \
    'BEGIN { printf "           offhook signaling CPU: %.3f ms per call\n", (b - a) / n }'
  why_failed "$dir"
}

why_failed() { # sipp's error log of a run -> the failed calls counted by what went wrong
  python3 - "$1" <<'PY'
import collections, glob, re, sys
reasons = collections.Counter()
for path in glob.glob(f"{sys.argv[1]}/*_errors.log"):
    for line in open(path, errors="replace"):
        if "unexpected message" in line or "timed out" in line or "timeout" in line.lower():
            got = re.search(r"received '(SIP/2.0 \d{3}[^\r\n']*)", line)
            wanted = re.search(r"while expecting '([^']*)'", line)
            reasons[(got.group(1).strip() if got else line.strip()[:80],
                     wanted.group(1) if wanted else "")] += 1
for (what, wanted), n in reasons.most_common(5):
    print(f"           {n:>6} x {what}" + (f" (expecting {wanted})" if wanted else ""))
PY
}

# Direct baseline: the same call and UAS without the proxy (and its 407 round trip).
(cd "$work" && exec sipp -sf "$OLDPWD/$scen/uas.xml" -p 16070 -buff_size 4194304 -nostdin >/dev/null 2>&1) &
[ "${DIRECT:-1}" = 0 ] || for rate in "${rates[@]}"; do
  run direct "$rate" -sf "$PWD/$scen/uac_direct.xml" 127.0.0.1:16070 -p 16080 \
    -key domain bench.test -key user caller -key callee echo -d 0
done

# Through offhook: register the uas as line-1 of relay-b, then call the icon. -aa:
# the uas answers signaling's health checks (OPTIONS).
(cd "$work" && exec sipp -sf "$OLDPWD/$scen/uas.xml" -p $uas_port -buff_size 4194304 -aa -nostdin >/dev/null 2>&1) &
# Every line of the relay is a contact on the same sipp UAS.
for n in $(seq 1 "$lines"); do
  (cd "$work" && sipp -sf "$OLDPWD/$scen/register.xml" 127.0.0.1:$proxy_port -p 15071 -m 1 -nostdin \
     -key domain bench.test -key user relay-b -key contact_user "line-$n" -key contact_port $uas_port \
     -key expires 3600 -au relay-b -ap relay-secret -timeout 10 -timeout_error >/dev/null 2>&1)
done
placed=0
for rate in "${rates[@]}"; do
  placed=$((placed + rate * 10))
  run offhook "$rate" -sf "$work/uac_icons.xml" -inf "$work/icons.csv" 127.0.0.1:$proxy_port -p 15080 \
    -key domain bench.test -key user caller -d 0 -au caller -ap caller-secret
done

# Nothing is lost: signaling stops (writing what it still has queued), then every
# call placed has its CDR, ended.
kill -TERM "$signaling" && wait "$signaling" || true
if [ "${PG:-0}" = 1 ]; then
  cdrs=$(psql -qtA "$pg" -c "SELECT count(*), count(hangup_cause) FROM $schema.cdrs" | tr '|' ' ')
else
  cdrs=$(python3 -c "import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(
    'SELECT count(*), count(hangup_cause) FROM cdrs').fetchone())" "$work/bench.db")
fi
read -r written ended <<< "$cdrs"
echo "CDRs: $written written, $ended ended, for $placed calls placed through offhook"
