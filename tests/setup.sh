#!/usr/bin/env bash
# Installs what the test suite talks to, idempotently (run as root, or with sudo):
# sipp and baresip (SIP peers), coturn (TURN, for the ignored test internet), Debian chromium and firefox-esr (browser tests),
# iptables (the lossy network namespace of the call-quality test), python3 (the test internet's
# delay line, tests/tools/delay_line.py, where the kernel has no netem), pulseaudio (its
# null sink is the sound card of the sound-card test, libasound2-plugins its ALSA PCMs; libpulse-dev, libasound2-dev and pkg-config
# build the sound card edge: libpulse and cpal), openssl (test certificates), the npm tools in tests/browser
# (playwright-core, puppeteer-core, axe-core, JsSIP, esbuild),
# schemathesis (PyPI) for the admin API's OpenAPI check, SIPVicious (PyPI) for the attack tests,
# and a PostgreSQL server on 127.0.0.1:5432 with a `test` database that the
# `postgres` user reaches without a password (only configured when this script
# installed PostgreSQL itself; otherwise the running server is used as it is).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(sip-tester baresip socat sox chromium firefox-esr iptables iproute2 openssl nodejs npm pulseaudio libpulse-dev libasound2-dev libasound2-plugins pkg-config coturn python3)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! command -v pg_isready >/dev/null 2>&1; then missing+=(postgresql); fresh_postgres=1; fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --prefix tests/browser >/dev/null
# schemathesis (PyPI) checks the admin API against its OpenAPI document (tests/api_schema.sh).
command -v schemathesis >/dev/null 2>&1 || pip install --quiet --root-user-action=ignore "schemathesis>=4,<5"
# SIPVicious (PyPI): the attack tests guess passwords and enumerate accounts with it.
command -v sipvicious_svcrack >/dev/null 2>&1 || pip install --quiet --root-user-action=ignore "sipvicious>=0.3,<0.4"

if [ "${fresh_postgres:-0}" = 1 ]; then
  version=$(ls /etc/postgresql | head -n1)
  echo "host test postgres 127.0.0.1/32 trust" > /tmp/offhook-pg-hba
  cat "/etc/postgresql/$version/main/pg_hba.conf" >> /tmp/offhook-pg-hba
  cp /tmp/offhook-pg-hba "/etc/postgresql/$version/main/pg_hba.conf"
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
if [ "${fresh_postgres:-0}" = 1 ]; then
  su postgres -c "createdb test" 2>/dev/null || true
fi
