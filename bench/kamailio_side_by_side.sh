#!/usr/bin/env bash
# offhook's signaling and Kamailio side by side, doing the same work per call:
# stateful proxy with Record-Route, digest auth against the database, the callee
# from a registration, an accounting row per call (bench/kamailio/kamailio.cfg).
#
#   sipp uac (core 1) -> offhook signaling | kamailio (both on core 0) -> sipp uas (core 1)
#
# For each backend (SQLite, then PostgreSQL) and each rate, one short round for
# offhook then one for Kamailio (interleaved, so both see the same machine
# noise), with bench/invite_probe.py timing INVITE->180 beside the load. Prints
# per system: calls ok/failed, CPU ms per call (utime+stime of all its
# processes), INVITE->180 p50/p99, then REGISTERs/s, memory (PSS) and the
# offhook/Kamailio ratios. sipp UAC -> sipp UAS directly first: sipp's ceiling.
# Not part of CI; takes about 10-15 minutes.
# usage: bench/kamailio_side_by_side.sh [rates...]   (default: 250 500 1000 1500)
# env: ROUND_S (seconds per round, 8), BACKENDS ("sqlite pg"), REG_RATES
#      ("500 1000 2000"), PROBE_RATE (probe calls/s, 20), BUILD=0 (use the
#      release binary as it is), CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
rates=(250 500 1000 1500)
[ "$#" -eq 0 ] || rates=("$@")
round_s=${ROUND_S:-8}
probe_rate=${PROBE_RATE:-20}
read -ra reg_rates <<< "${REG_RATES:-500 1000 2000}"
read -ra backends <<< "${BACKENDS:-sqlite pg}"
if ! command -v kamailio >/dev/null; then
  apt-get install -y -q kamailio kamailio-sqlite-modules kamailio-postgres-modules >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/offhook-target}"
[ "${BUILD:-1}" = 0 ] || cargo build --release -q -p offhook
bin="$CARGO_TARGET_DIR/release/offhook"
scen="$PWD/signaling/tests/sipp"
bench="$PWD/bench"
pg=postgres://postgres@127.0.0.1:5432
# Both databases on tmpfs: no fsync cost for either (Kamailio's db_sqlite has no
# synchronous knob; offhook runs SQLite in WAL with synchronous=NORMAL).
work=$(mktemp -d -p /dev/shm)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() {
  stop_all
  psql -q "$pg/test" -c "DROP SCHEMA IF EXISTS bench_$$ CASCADE" 2>/dev/null || true
  psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS kamailio_bench_$$" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export RUST_LOG=error
# Everything measured runs at nice -10: on a machine where other jobs compile,
# a proxy with one worker process would otherwise lose its core to them (the
# scheduler shares a core per thread, so a many-threaded one loses less).
pri() { nice -n -10 "$@"; }
on_load() { pri taskset -c 1 "$@"; }  # sipp's and the probe's core
oh_port=35060 oh_uas=35070 km_port=36060 km_uas=36070

cpu_ticks() { # pids... -> utime+stime in clock ticks, summed
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
pss_kb() { # pids... -> proportional set size in kB, summed (shared memory counted once)
  local k=0 p
  for p in "$@"; do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    k=$((k + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$k"
}
kam_pids() { echo "$kam_main" $(pgrep -P "$kam_main" || true); }
oh_pids() { echo "$oh_sig"; }
hz=$(getconf CLK_TCK)

# One sipp round: label rate seconds pids-function sipp-args... -> "ok failed cpu_ms_per_call"
sipp_round() {
  local label=$1 rate=$2 secs=$3 pidsf=$4; shift 4
  local calls=$((rate * secs)) dir="$work/$label-$rate-$RANDOM"
  mkdir -p "$dir"
  local before; before=$(cpu_ticks $($pidsf))
  (cd "$dir" && on_load timeout -s INT $((secs + 40)) sipp "$@" -buff_size 4194304 -r "$rate" -m "$calls" \
      -l 20000 -trace_stat -fd 1 -timeout 60 -nostdin >/dev/null 2>&1 || true)
  local after; after=$(cpu_ticks $($pidsf))
  local stat; stat=$(ls "$dir"/*.csv 2>/dev/null | head -n1 || true)
  python3 - "$stat" "$((after - before))" "$hz" <<'PY'
import sys, csv
path, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.reader(open(path), delimiter=';')) if path else []
if len(rows) < 2:
    print("0 -1 n/a"); sys.exit()
head, last = rows[0], rows[-1]
ok, failed = int(last[head.index('SuccessfulCall(C)')]), int(last[head.index('FailedCall(C)')])
cpu = ticks * 1000 / hz / ok if ok else float('nan')
print(ok, failed, f"{cpu:.3f}")
PY
}

declare -A res  # key "system backend rate" -> "ok failed cpu p50 p99"
call_round() { # system backend rate
  local sys=$1 be=$2 rate=$3 port pidsf
  if [ "$sys" = offhook ]; then port=$oh_port pidsf=oh_pids; else port=$km_port pidsf=kam_pids; fi
  on_load python3 "$bench/invite_probe.py" --port "$port" --rate "$probe_rate" --duration "$round_s" \
    --callee echo-1 > "$work/probe" &
  local probe=$!
  local r; r=$(sipp_round "$sys" "$rate" "$round_s" "$pidsf" -sf "$work/uac_icons.xml" -inf "$work/icons.csv" \
    127.0.0.1:"$port" -p 35080 -key domain bench.test -key user caller -d 0 -au caller -ap caller-secret)
  wait "$probe" || true
  read -r p50 p99 samples lost < "$work/probe"
  res["$sys $be $rate"]="$r $p50 $p99"
  read -r ok failed cpu <<< "$r"
  printf '%-8s %-6s %5s/s  ok=%6s failed=%5s  cpu=%7s ms/call  INVITE->180 p50=%7s p99=%7s ms (%s probes, %s lost)\n' \
    "$sys" "$be" "$rate" "$ok" "$failed" "$cpu" "$p50" "$p99" "$samples" "$lost"
}

reg_round() { # system backend rate -> highest rate with zero failed, cpu per REGISTER
  local sys=$1 be=$2 rate=$3 port pidsf
  if [ "$sys" = offhook ]; then port=$oh_port pidsf=oh_pids; else port=$km_port pidsf=kam_pids; fi
  local r; r=$(sipp_round "reg-$sys" "$rate" 5 "$pidsf" -sf "$scen/register.xml" 127.0.0.1:"$port" -p 35081 \
    -key domain bench.test -key user reg -key contact_user reg -key contact_port 35099 -key expires 600 \
    -au reg -ap reg-secret)
  read -r ok failed cpu <<< "$r"
  res["reg $sys $be $rate"]="$r"
  printf '%-8s %-6s REGISTER %5s/s  ok=%6s failed=%5s  cpu=%7s ms/REGISTER\n' "$sys" "$be" "$rate" "$ok" "$failed" "$cpu"
}

setup_offhook() { # backend
  export OFFHOOK_DATABASE_URL="sqlite://$work/offhook.db"
  if [ "$1" = pg ]; then
    psql -q "$pg/test" -c "DROP SCHEMA IF EXISTS bench_$$ CASCADE; CREATE SCHEMA bench_$$"
    export OFFHOOK_DATABASE_URL="$pg/test?options=-c%20search_path%3Dbench_$$"
  else
    rm -f "$work"/offhook.db*
  fi
  export OFFHOOK_SIGNALING__UDP=127.0.0.1:$oh_port OFFHOOK_SIGNALING__TCP=127.0.0.1:$oh_port
  export OFFHOOK_SIGNALING__WS=127.0.0.1:35066 OFFHOOK_WEB__LISTEN=127.0.0.1:35088
  export OFFHOOK_SIGNALING__CALLS_PER_SOURCE_PER_MINUTE=100000000
  "$bin" directory tenant create bench --domain bench.test >/dev/null
  "$bin" directory account create --tenant bench caller --password caller-secret >/dev/null
  "$bin" directory account create --tenant bench reg --password reg-secret >/dev/null
  "$bin" directory account create --tenant bench relay-b --kind relay --password relay-secret >/dev/null
  echo SEQUENTIAL > "$work/icons.csv"
  for n in $(seq 1 20); do
    "$bin" directory icon create --tenant bench --number 5550100 --public-id "echo-$n" \
      --max-concurrent 1000 --per-minute 10000 >/dev/null
    echo "echo-$n;" >> "$work/icons.csv"
  done
  for n in $(seq 1 200); do
    "$bin" directory line create "line-$n" --relay relay-b --device emulated --kind emulated >/dev/null
  done
  # The tenant's policy defaults (10 calls at once, 1,000 a day and 20,000 a month,
  # 200 a day and 4,000 a month per icon or account) would throttle the bench.
  "$bin" directory tenant policy set bench --max-concurrent 1000 --tenant-daily 1000000 --daily 1000000 \
    --tenant-monthly 10000000 --monthly 10000000 >/dev/null
  nice -n -10 taskset -c 0 "$bin" signaling > "$work/signaling.log" 2>&1 &
  oh_sig=$!; pids+=("$oh_sig")
  (cd "$work" && exec nice -n -10 taskset -c 1 sipp -sf "$scen/uas.xml" -p $oh_uas -buff_size 4194304 -aa -nostdin >/dev/null 2>&1) &
  pids+=($!)
  sleep 1
  kill -0 "$oh_sig" || { echo "offhook signaling did not start"; cat "$work/signaling.log"; exit 1; }
  for n in $(seq 1 200); do
    (cd "$work" && on_load sipp -sf "$scen/register.xml" 127.0.0.1:$oh_port -p 35071 -m 1 -nostdin \
       -key domain bench.test -key user relay-b -key contact_user "line-$n" -key contact_port $oh_uas \
       -key expires 3600 -au relay-b -ap relay-secret -timeout 10 -timeout_error >/dev/null 2>&1)
  done
}

setup_kamailio() { # backend
  local sql ha1 dburl defs=()
  ha1() { printf '%s' "$1:bench.test:$2" | md5sum | cut -d' ' -f1; }
  sql="INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES
    ('caller', 'bench.test', '', '$(ha1 caller caller-secret)', ''),
    ('reg', 'bench.test', '', '$(ha1 reg reg-secret)', ''),
    ('lines', 'bench.test', '', '$(ha1 lines lines-secret)', '');"
  if [ "$1" = pg ]; then
    local db="kamailio_bench_$$"
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    for t in standard auth_db usrloc acc; do psql -q "$pg/$db" -f "/usr/share/kamailio/postgres/$t-create.sql" >/dev/null; done
    psql -q "$pg/$db" -c "$sql"
    dburl="$pg/$db" defs=(-A WITH_PG)
  else
    rm -f "$work/kamailio.db"
    sqlite3 "$work/kamailio.db" 'PRAGMA journal_mode = WAL' >/dev/null
    for t in standard auth_db usrloc acc; do sqlite3 "$work/kamailio.db" < "/usr/share/kamailio/db_sqlite/$t-create.sql"; done
    sqlite3 "$work/kamailio.db" "$sql"
    dburl="sqlite://$work/kamailio.db"
  fi
  # One UDP worker (-n 1): offhook runs on one core too.
  nice -n -10 taskset -c 0 kamailio -DD -E -n 1 -l udp:127.0.0.1:$km_port -f "$bench/kamailio/kamailio.cfg" \
    "${defs[@]}" -A "DBURL=\"$dburl\"" -P "$work/kamailio.pid" > "$work/kamailio.log" 2>&1 &
  kam_main=$!; pids+=("$kam_main")
  (cd "$work" && exec nice -n -10 taskset -c 1 sipp -sf "$scen/uas.xml" -p $km_uas -buff_size 4194304 -aa -nostdin >/dev/null 2>&1) &
  pids+=($!)
  sleep 1
  kill -0 "$kam_main" || { echo "kamailio did not start"; cat "$work/kamailio.log"; exit 1; }
  (cd "$work" && on_load sipp -sf "$scen/register.xml" 127.0.0.1:$km_port -p 36071 -m 1 -nostdin \
     -key domain bench.test -key user lines -key contact_user line-1 -key contact_port $km_uas \
     -key expires 3600 -au lines -ap lines-secret -timeout 10 -timeout_error >/dev/null 2>&1) \
    || { echo "kamailio: the line did not register"; tail "$work/kamailio.log"; exit 1; }
}

sed 's/\[callee\]/[field0]/g' "$scen/uac.xml" > "$work/uac_icons.xml"
echo "== $(date -u +%FT%TZ)  $(uptime)"

# sipp's own ceiling: UAC straight to UAS, no proxy and no 407 round trip.
(cd "$work" && exec nice -n -10 taskset -c 0 sipp -sf "$scen/uas.xml" -p 37070 -buff_size 4194304 -nostdin >/dev/null 2>&1) &
direct_uas=$!
for rate in "${rates[@]}" 2000 3000; do
  r=$(sipp_round direct "$rate" "$round_s" true -sf "$scen/uac_direct.xml" 127.0.0.1:37070 -p 37080 \
    -key domain bench.test -key user caller -key callee echo -d 0)
  read -r ok failed _ <<< "$r"
  printf 'sipp direct        %5s/s  ok=%6s failed=%5s\n' "$rate" "$ok" "$failed"
done
kill "$direct_uas"; wait "$direct_uas" 2>/dev/null || true

for be in "${backends[@]}"; do
  setup_offhook "$be"
  setup_kamailio "$be"
  idle_oh=$(pss_kb $(oh_pids)) idle_km=$(pss_kb $(kam_pids))
  for rate in "${reg_rates[@]}"; do
    reg_round offhook "$be" "$rate"
    reg_round kamailio "$be" "$rate"
  done
  for rate in "${rates[@]}"; do
    call_round offhook "$be" "$rate"
    call_round kamailio "$be" "$rate"
  done
  busy_oh=$(pss_kb $(oh_pids)) busy_km=$(pss_kb $(kam_pids))
  echo "memory $be: offhook PSS ${idle_oh} kB idle, ${busy_oh} kB after the rounds; kamailio (all $(kam_pids | wc -w) processes) ${idle_km} kB idle, ${busy_km} kB after"
  # Summary: highest rate with zero failed calls, CPU and latency ratios.
  python3 - "$be" "${rates[*]}" "${reg_rates[*]}" <<PY
import sys
be, rates, reg_rates = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
res = {$(for k in "${!res[@]}"; do printf '"%s": "%s", ' "$k" "${res[$k]}"; done)}
def best(prefix, rs):
    ok = [int(r) for r in rs if (v := res.get(f"{prefix} {r}")) and int(v.split()[1]) == 0 and int(v.split()[0]) > 0]
    return max(ok) if ok else 0
f = lambda x: float(x) if x not in ("n/a", "nan") else float("nan")
for s in ("offhook", "kamailio"):
    print(f"{s:8} {be}: highest rate with zero failed calls {best(f'{s} {be}', rates)}/s, "
          f"REGISTERs/s with zero failed {best(f'reg {s} {be}', reg_rates)}")
for r in rates:
    o, k = res.get(f"offhook {be} {r}"), res.get(f"kamailio {be} {r}")
    if not (o and k): continue
    o, k = o.split(), k.split()
    r_ = lambda a, b: f"{f(a)/f(b):.2f}" if f(b) else "n/a"
    print(f"ratio offhook/kamailio {be} {r:>5}/s: cpu/call {r_(o[2], k[2])}  "
          f"INVITE->180 p50 {r_(o[3], k[3])}  p99 {r_(o[4], k[4])}")
PY
  stop_all
done
echo "== done $(date -u +%FT%TZ)  $(uptime)"
