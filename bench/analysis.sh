#!/usr/bin/env bash
# Cost of static analysis per language: a ~200-line program per language (the benign corpus
# repeated) analysed many times; prints a markdown table of the median and p90 microseconds
# per analysis and the one-time cost of compiling a language's rules (docs/analysis.md#cost).
#
# Usage:  bash bench/analysis.sh [ITERATIONS]     (default 2000)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
cargo build --release --quiet -p warden-analysis --example analyze_bench
echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) cores"
echo "- Load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$REPO/target/release/examples/analyze_bench" "${1:-2000}"
