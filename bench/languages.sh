#!/usr/bin/env bash
# Per-language cost of warden, two tables (docs/BENCHMARKS.md):
#   1. hello world: the bare toolchain vs `warden run` (compiled languages with a warm compile
#      cache, so the run pays no compiler time), as ratios of median wall time;
#   2. compiled languages: compile+run cold (`--no-cache`) vs with a warm compile cache.
# Each table is one hyperfine invocation; every command starts through `env -i`.
#
# Usage:  bash bench/languages.sh
# Env:    RUNS=N       runs per command of table 1 (default 30)
#         COLD_RUNS=N  runs per command of table 2 (default 10)
set -euo pipefail

WARMUP=3
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$REPO/target/release/warden"
PY=/usr/bin/python3
NODE=/usr/bin/node
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

WORK="$(mktemp -d)"
CACHE="$WORK/cache"
trap 'rm -rf "$WORK"' EXIT

# hello world in each language: id|file name|code
HELLOS=(
    'python|hello.py|print("hello")'
    'javascript|hello.js|console.log("hello")'
    'bash|hello.sh|echo hello'
    'ruby|hello.rb|puts "hello"'
    'php|hello.php|<?php echo "hello\n";'
    'r|hello.R|cat("hello\n")'
    'c|hello.c|#include <stdio.h>
int main(void) { puts("hello"); return 0; }'
    'cpp|hello.cpp|#include <iostream>
int main() { std::cout << "hello" << std::endl; }'
    'rust|hello.rs|fn main() { println!("hello"); }'
    'go|hello.go|package main

import "fmt"

func main() { fmt.Println("hello") }'
    'java|Hello.java|public class Hello { public static void main(String[] a) { System.out.println("hello"); } }'
)

# The bare command for a language's hello file (compiled ones are built once, on the host).
bare() {
    local lang="$1" file="$2"
    case "$lang" in
    python) q env -i "$PY" "$file" ;;
    javascript) q env -i "$NODE" "$file" ;;
    bash) q env -i /bin/bash "$file" ;;
    ruby) q env -i /usr/bin/ruby "$file" ;;
    php) q env -i /usr/bin/php "$file" ;;
    r) q env -i /usr/bin/Rscript --no-save --no-restore "$file" ;;
    c) /usr/bin/gcc -O2 -o "$WORK/c.bin" "$file" -lm && q env -i "$WORK/c.bin" ;;
    cpp) /usr/bin/g++ -O2 -o "$WORK/cpp.bin" "$file" && q env -i "$WORK/cpp.bin" ;;
    rust) /usr/bin/rustc --edition 2021 -O -o "$WORK/rust.bin" "$file" && q env -i "$WORK/rust.bin" ;;
    go) (cd "$WORK" && GO111MODULE=off GOCACHE="$WORK/gocache" CGO_ENABLED=0 /usr/bin/go build -o go.bin "$file") &&
        q env -i "$WORK/go.bin" ;;
    java) mkdir -p "$WORK/classes" && /usr/bin/javac -d "$WORK/classes" "$file" &&
        q env -i /usr/bin/java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -cp "$WORK/classes" Hello ;;
    esac
}

warden_cmd() {
    q env -i WARDEN_CACHE_DIR="$CACHE" "$WARDEN" run "$@"
}

# Runs hyperfine over "name|command" entries and prints a table of medians, each row's ratio
# to the first row of its group ("group:name").
table() {
    local runs="$1" title="$2"
    shift 2
    local entry name cmd args=() json
    json="$WORK/$RANDOM.json"
    for entry in "$@"; do
        name="${entry%%|*}"
        cmd="${entry#*|}"
        eval "$cmd" >/dev/null 2>&1 || die "'$name' fails: $cmd"
        args+=(-n "$name" "$cmd")
    done
    wait_for_quiet
    hyperfine -N --warmup "$WARMUP" --runs "$runs" --style basic --export-json "$json" "${args[@]}" >&2
    echo
    echo "### $title ($runs runs per command)"
    echo
    "$PY" - "$json" <<'PYEOF'
import json, sys

results = json.load(open(sys.argv[1]))["results"]
first = {}
print("| Language | Command | Median (ms) | Mean ± σ (ms) | Ratio |")
print("|---|---|---:|---:|---:|")
for r in results:
    group, name = r["command"].split(":", 1)
    base = first.setdefault(group, r["median"])
    ratio = "1.00× (baseline)" if base == r["median"] and name.startswith("bare") else f"{r['median'] / base:.2f}×"
    print(f"| {group} | {name} | {r['median'] * 1000:.1f} | {r['mean'] * 1000:.1f} ± {r['stddev'] * 1000:.1f} | {ratio} |")
PYEOF
}

main() {
    ensure_tools hyperfine:hyperfine
    build_warden
    local entry lang file code hello=() cold=()
    for entry in "${HELLOS[@]}"; do
        lang="${entry%%|*}"
        entry="${entry#*|}"
        file="$WORK/${entry%%|*}"
        code="${entry#*|}"
        printf '%s\n' "$code" >"$file"
        hello+=("$lang:bare|$(bare "$lang" "$file")")
        hello+=("$lang:warden run|$(warden_cmd "$file")")
        if grep -q "^\[compile\]" "$REPO/languages/$lang.toml"; then
            cold+=("$lang:warden run, warm compile cache|$(warden_cmd "$file")")
            cold+=("$lang:warden run --no-cache (compile + run)|$(warden_cmd --no-cache "$file")")
        fi
    done
    echo "## Machine"
    echo
    machine_info
    echo "- Date: $(date -u +%Y-%m-%d)"
    table "${RUNS:-30}" "Hello world: bare vs warden run" "${hello[@]}"
    table "${COLD_RUNS:-10}" "Compiled languages: warm compile cache vs cold compile" "${cold[@]}"
}

main
