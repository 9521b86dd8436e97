#!/usr/bin/env bash
# `warden serve` next to the bare interpreter: the latency of python hello through
# `POST /v1/executions?wait=true` with one client, the throughput of two clients against two
# bare `python3` loops, and the same program through Judge0's Python SDK. One run, ratios;
# then what they are made of: the latency requests' `Server-Timing` medians, the machine's cpu
# per run and idle share under two clients, and a trivial request's round trip after pauses.
#
# Usage:  bash bench/server.sh
# Env:    RUNS=N      requests (and bare runs) for the latency, default 200
#         SECONDS_=S  seconds of each throughput measurement, default 20
#         POOL_REUSE=N  [server] pool_reuse, default 100 (the server's own default is 1)
#         BEFORE=PATH  another warden binary (an older build): both servers run, and the rows
#                    compare them side by side with bare (bench/server_ab.py) instead
# Needs root (warden creates cgroups), and the venv that scripts/setup.sh installs for the
# Judge0 client. docs/BENCHMARKS.md has the reading.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$REPO/target/release/warden"
PY=/usr/bin/python3 # never the `python3` on PATH: it may be a pyenv shim
NODE=/usr/bin/node
VENV_PY=/opt/warden-test-venv/bin/python3

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

[[ -x "$VENV_PY" ]] || die "run scripts/setup.sh first (it installs the Judge0 client)"
ensure_tools hyperfine:hyperfine bwrap:bubblewrap
build_warden

if [[ -n "${BEFORE:-}" ]]; then
    [[ -x "$BEFORE" ]] || die "BEFORE=$BEFORE is not an executable"
    start_server "${POOL_REUSE:-100}" "$BEFORE"
    BEFORE_ADDR="$ADDR"
fi
start_server "${POOL_REUSE:-100}"

wait_for_quiet
echo "## Machine"
echo
machine_info
echo "- $(date -u +%Y-%m-%d), warden serve with workers = 2, pool_reuse = ${POOL_REUSE:-100}, one server for every row${BEFORE:+ (two servers: before and after)}"
echo
if [[ -n "${BEFORE:-}" ]]; then
    echo "- before: $BEFORE; after: $WARDEN"
    echo
    "$VENV_PY" "$REPO/bench/server_ab.py" "http://$BEFORE_ADDR" "http://$ADDR" "$PY" \
        "${RUNS:-200}" "${SECONDS_:-20}"
else
    "$VENV_PY" "$REPO/bench/server_bench.py" "http://$ADDR" "$PY" "${RUNS:-200}" "${SECONDS_:-20}"
fi
