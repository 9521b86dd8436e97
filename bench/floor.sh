#!/usr/bin/env bash
# The floor under `warden serve`'s two-client throughput: a server that does nothing but spawn
# the program (bench/floor.c, no isolation at all), next to the bare interpreter and warden
# serve, two clients of python hello each, in rotating rounds; with the machine's cpu per run
# and idle share for each. What warden costs above the floor is what its isolation, its
# accounting and its history cost, and how its chain of processes hands a run along.
#
# Usage:  bash bench/floor.sh
# Env:    ROUNDS=N    rounds (each way once per round), default 10
#         SECONDS_=S  seconds of each way in a round, default 5
#         POOL_REUSE=N  [server] pool_reuse, default 100
# Needs root (warden creates cgroups) and gcc. docs/BENCHMARKS.md has the reading.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$REPO/target/release/warden"
PY=/usr/bin/python3 # never the `python3` on PATH: it may be a pyenv shim
NODE=/usr/bin/node

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

ensure_tools gcc:gcc
build_warden

FLOOR_DIR="$(mktemp -d)"
FLOOR_PID=""
stop_floor() {
    if [[ -n "$FLOOR_PID" ]]; then
        kill "$FLOOR_PID" 2>/dev/null || true
        wait "$FLOOR_PID" 2>/dev/null || true
    fi
    rm -rf "$FLOOR_DIR"
    stop_server
}
trap stop_floor EXIT
gcc -O2 -pthread -o "$FLOOR_DIR/floor" "$REPO/bench/floor.c"
"$FLOOR_DIR/floor" "$PY" >"$FLOOR_DIR/out" &
FLOOR_PID=$!
start_server "${POOL_REUSE:-100}"
trap stop_floor EXIT # start_server set its own
FLOOR_ADDR="$(listened_on "$FLOOR_DIR/out" 'listening on ')" || die "the floor server did not start"

wait_for_quiet
echo "## Machine"
echo
machine_info
echo "- $(date -u +%Y-%m-%d), warden serve with workers = 2, pool_reuse = ${POOL_REUSE:-100}"
echo
"$PY" "$REPO/bench/floor.py" "http://$FLOOR_ADDR" "http://$ADDR" "$PY" "${ROUNDS:-10}" "${SECONDS_:-5}"
