#!/usr/bin/env bash
# Startup overhead of `warden run` next to the bare interpreter and next to bubblewrap, and of
# `warden run --server` (the same run in a running `warden serve`).
#
# All commands are measured side by side in ONE hyperfine invocation, each started through
# `env -i` (a clean, empty environment) and without a shell (`-N`). The table reports medians and
# their ratios to the bare interpreter. docs/BENCHMARKS.md has the reading of the results.
#
# Usage:  bash bench/startup.sh              measure, print machine info and a markdown table
#         bash bench/startup.sh --profile    trace `warden run` with perf and print where the
#                                            time goes, phase by phase (no hyperfine)
# Env:    RUNS=N         timed runs per command (default 100), after 10 warmup runs;
#                        with --profile: traced runs per language (default 30)
#         JSON_OUT=path  keep hyperfine's raw JSON there instead of a deleted temp file
#         POOL_REUSE=N   [server] pool_reuse of the server behind the `warden run --server`
#                        rows, default 100 (the server's own default is 1)
#         WARDEN_BEFORE=path  also measure this other warden binary (say, a build of the
#                        previous commit) in the same run, as "(warden before)" rows
#         PAIRED=1       paired rounds instead of hyperfine (bench/paired.py): each round runs
#                        every command once, in a rotating order, and a ratio is the median of
#                        the rounds' ratios, so the machine's drift falls on all commands alike
# Needs root: apt-get for missing tools, and warden itself needs it for cgroups.
set -euo pipefail

WARMUP=10
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WARDEN="$REPO/target/release/warden"
PY=/usr/bin/python3 # never the `python3` on PATH: it may be a pyenv shim
NODE=/usr/bin/node
BASH_BIN=/bin/bash

# bubblewrap "with an equivalent setup": every namespace, a read-only /usr, fresh /dev, /proc,
# tmpfs /tmp and /work, cleared environment. bwrap sets up no cgroup, no seccomp filter, no
# rlimits and no output cap; warden does all of those on every run.
BWRAP=(bwrap --unshare-all --die-with-parent --new-session
    --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib
    --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin
    --ro-bind /etc/ld.so.cache /etc/ld.so.cache
    --dev /dev --proc /proc --tmpfs /tmp --tmpfs /work --chdir /work
    --clearenv --setenv PATH /usr/bin)

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

measure() {
    local runs="${RUNS:-100}"
    # Each warden its own history database: one of an older schema does not record into a
    # newer one (it warns and skips the write), which would make it look faster.
    DBS="$(mktemp -d)"
    trap 'rm -rf "$DBS"' EXIT
    local now=(env -i "WARDEN_DB=$DBS/now.sqlite3" "$WARDEN")
    # The same runs through a running `warden serve` (`warden run --server`, docs/cli.md):
    # its warm engine and pool (workers = 2, pool_reuse = POOL_REUSE, as bench/server.sh).
    start_server "${POOL_REUSE:-100}"
    trap 'stop_server; rm -rf "$DBS"' EXIT
    local through=(env -i "$WARDEN" run --server "http://$ADDR")
    local before=(env -i "WARDEN_DB=$DBS/before.sqlite3" "${WARDEN_BEFORE:-}")
    # Each entry: "name|group|command". A group's first entry is its bare baseline.
    local bench=(
        "python -c pass (bare)|pass|$(q env -i "$PY" -c pass)"
        "python hello (bare)|python|$(q env -i "$PY" -c 'print("hello")')"
        "python hello (warden run)|python|$(q "${now[@]}" run -l python -c 'print("hello")')"
        "python hello (bwrap)|python|$(q env -i "${BWRAP[@]}" "$PY" -c 'print("hello")')"
        "python hello (warden run --server)|python|$(q "${through[@]}" -l python -c 'print("hello")')"
        ${WARDEN_BEFORE:+"python hello (warden before)|python|$(q "${before[@]}" run -l python -c 'print("hello")')"}
        "bash echo (bare)|bash|$(q env -i "$BASH_BIN" -c 'echo hello')"
        "bash echo (warden run)|bash|$(q "${now[@]}" run -l bash -c 'echo hello')"
        "bash echo (bwrap)|bash|$(q env -i "${BWRAP[@]}" "$BASH_BIN" -c 'echo hello')"
        "bash echo (warden run --server)|bash|$(q "${through[@]}" -l bash -c 'echo hello')"
        ${WARDEN_BEFORE:+"bash echo (warden before)|bash|$(q "${before[@]}" run -l bash -c 'echo hello')"}
        "node console.log (bare)|node|$(q env -i "$NODE" -e 'console.log(1)')"
        "node console.log (warden run)|node|$(q "${now[@]}" run -l javascript -c 'console.log(1)')"
        "node console.log (bwrap)|node|$(q env -i "${BWRAP[@]}" "$NODE" -e 'console.log(1)')"
        "node console.log (warden run --server)|node|$(q "${through[@]}" -l javascript -c 'console.log(1)')"
    )
    local entry name group cmd out args=() groups=""
    # Fail early, with the command's own error, if one of them does not run.
    for entry in "${bench[@]}"; do
        IFS='|' read -r name group cmd <<<"$entry"
        if ! out="$(eval "$cmd" 2>&1)"; then
            echo "error: '$name' fails: $cmd" >&2
            printf '  %s\n' "$out" >&2
            exit 1
        fi
        args+=(-n "$name" "$cmd")
        groups+="$name|$group"$'\n'
    done

    local json="${JSON_OUT:-}"
    if [[ -z "$json" ]]; then
        json="$(mktemp --suffix=.json)"
        JSON_TMP="$json"
        trap 'stop_server; rm -f "$JSON_TMP"; rm -rf "$DBS"' EXIT
    fi
    wait_for_quiet
    local pressure_before pressure_after
    pressure_before="$(cpu_pressure)"
    if [[ -n "${PAIRED:-}" ]]; then
        echo "measuring ${#bench[@]} commands in $runs paired rounds after $WARMUP..." >&2
        local table
        table="$("$PY" "$REPO/bench/paired.py" "$WARMUP" "$runs" "${bench[@]}")"
        pressure_after="$(cpu_pressure)"
        echo
        echo "## Machine"
        echo
        machine_info
        echo "- Runs: $runs paired rounds after $WARMUP warmup rounds (bench/paired.py), $(date -u +%Y-%m-%d)"
        echo "- CPU pressure (PSI some avg10) before / after: ${pressure_before}% / ${pressure_after}%"
        echo
        echo "$table"
        return
    fi
    echo "measuring ${#bench[@]} commands, $WARMUP warmup + $runs runs each..." >&2
    hyperfine -N --warmup "$WARMUP" --runs "$runs" --style basic --export-json "$json" \
        "${args[@]}" >&2
    pressure_after="$(cpu_pressure)"

    echo
    echo "## Machine"
    echo
    machine_info
    echo "- Runs: $runs per command after $WARMUP warmup runs, one hyperfine invocation, $(date -u +%Y-%m-%d)"
    echo "- CPU pressure (PSI some avg10) before / after: ${pressure_before}% / ${pressure_after}%"
    echo
    "$PY" - "$json" "$groups" <<'EOF'
import json, sys

results = json.load(open(sys.argv[1]))["results"]
group_of = dict(line.split("|", 1) for line in sys.argv[2].splitlines() if line)
ms = lambda seconds: seconds * 1000.0

baseline = {}  # group -> median of its first (bare) command
for r in results:
    baseline.setdefault(group_of[r["command"]], r["median"])

print("| Command | Median (ms) | Mean ± σ (ms) | Min (ms) | × bare, same program | × `python3 -c pass` |")
print("|---|---:|---:|---:|---:|---:|")
for r in results:
    group = group_of[r["command"]]
    same = "—" if group == "pass" else f"{r['median'] / baseline[group]:.2f}×"
    vs_pass = f"{r['median'] / baseline['pass']:.2f}×" if group in ("pass", "python") else "—"
    print(f"| {r['command']} | {ms(r['median']):.1f} | {ms(r['mean']):.1f} ± {ms(r['stddev']):.1f}"
          f" | {ms(r['min']):.1f} | {same} | {vs_pass} |")
EOF
}

# --- profile --------------------------------------------------------------------------------

# Traces RUNS runs of one `warden run` with `perf trace` (a handful of syscalls only, to keep
# the tracer's own cost low) and prints the median duration of each setup phase.
profile() {
    local runs="${RUNS:-30}" lang code i
    TRACES="$(mktemp -d)"
    trap 'rm -rf "$TRACES"' EXIT
    local dir="$TRACES"
    for lang in python bash; do
        case "$lang" in
        python) code='print("hello")' ;;
        bash) code='echo hello' ;;
        esac
        echo "tracing $runs runs of: warden run -l $lang -c '$code'..." >&2
        for ((i = 0; i < runs; i++)); do
            perf trace -e 'execve,clone,clone3,write,exit_group,setsid,chdir,seccomp' \
                -o "$dir/$lang-$i.txt" -- env -i "$WARDEN" run -l "$lang" -c "$code" >/dev/null
        done
        echo
        echo "### warden run -l $lang -c '$code'"
        echo
        "$PY" - "$dir/$lang"-*.txt <<'EOF'
import re, statistics, sys

# `perf trace` lines: "TIME ( DUR ms): COMM/PID syscall(args) = ret", or split in two when
# another task's event comes in between ("... [continued]: syscall()) = ret").
LINE = re.compile(r"^\s*([\d.]+|\?) \(\s*(?:([\d.]+) ms)?\s*\): (.*?)/(\d+) +(.*)$")
CONT = "... [continued]: "

def events(path):
    seen = {}
    for line in open(path):
        m = LINE.match(line)
        if not m or m.group(1) == "?":
            continue
        t, dur, comm, pid, rest = float(m[1]), m[2], m[3], int(m[4]), m[5]
        cont = rest.startswith(CONT)
        rest = rest[len(CONT):] if cont else rest
        name = rest.split("(", 1)[0]
        ret = rest.rsplit("= ", 1)[1].strip() if "= " in rest else ""
        ev = seen.setdefault((pid, name, t), {"t": t, "dur": 0.0, "pid": pid, "comm": comm,
                                              "name": name, "args": rest, "ret": ret})
        if dur is not None and float(dur) < 1e6:
            ev["dur"] = float(dur)
        ev["ret"] = ret or ev["ret"]
        if not cont:
            ev["args"] = rest
    return sorted(seen.values(), key=lambda e: e["t"])

def phases(path):
    ev = events(path)
    def first(**kw):
        return next(e for e in ev if all(kw[k](e[k]) if callable(kw[k]) else e[k] == kw[k] for k in kw))
    end = lambda e: e["t"] + e["dur"]
    parent = first(name="execve", comm="warden")
    P = parent["pid"]
    spawn = first(pid=P, name="clone")
    H = int(spawn["ret"].split()[0])  # the helper
    clone_ns = first(pid=H, name="clone", args=lambda a: "NEWUSER" in a)
    I = int(clone_ns["ret"].split()[0])  # the sandbox init
    started = first(pid=I, name="write", args=lambda a: "count: 20)" in a)
    writes = [e for e in ev if e["pid"] == H and e["name"] == "write"]
    # On cgroup v1 the helper writes "0" into the run cgroup's `tasks` of each hierarchy before
    # the clone (it steps in, so the init is born inside), and into the parent's after it.
    joins = [e for e in writes if e["t"] < clone_ns["t"]][-3:]
    release = [e for e in writes if e["t"] < started["t"] and "count: 1)" in e["args"]][-1]
    X = first(name="seccomp")["pid"]  # the payload
    setsid = first(pid=X, name="setsid")
    after_setsid = first(pid=X, t=lambda t: t > setsid["t"])
    exec_ = first(pid=X, name="execve")
    exit_ = first(pid=X, name="exit_group")
    done = first(pid=P, name="exit_group")
    return {
        "warden CLI start: exec, config, catalog, host checks, analysis, uid slot, cgroup mkdir": spawn["t"] - parent["t"],
        "spawn the helper: fork (the CLI is single-threaded; exec'd otherwise)": joins[0]["t"] - spawn["t"],
        "the helper joins the cgroup: 0 into 3 v1 `tasks`": end(joins[-1]) - joins[0]["t"],
        "clone into new user/pid/mount/net/uts/ipc namespaces": clone_ns["dur"],
        "leave the cgroup, id maps, release the init": end(release) - end(clone_ns),
        "init: mounts, pivot_root, workspace, loopback": started["t"] - end(release),
        "payload: fork, signals, setsid, rlimits, caps, seccomp": exec_["t"] - started["t"],
        "  of which setsid() until the next syscall": after_setsid["t"] - setsid["t"],
        "the program itself (execve to exit_group)": exit_["t"] - exec_["t"],
        "teardown: init exits, helper exits, stats, rmdir, history record, output": done["t"] - exit_["t"],
        "total, warden execve to exit": done["t"] - parent["t"],
    }

rows, n = {}, 0
for path in sys.argv[1:]:
    try:
        for phase, value in phases(path).items():
            rows.setdefault(phase, []).append(value)
        n += 1
    except (StopIteration, IndexError, ValueError) as e:
        print(f"skipping {path}: cannot find a phase ({e!r})", file=sys.stderr)
print(f"| Phase ({n} traced runs) | Median (ms) | Min (ms) | Max (ms) |")
print("|---|---:|---:|---:|")
for phase, values in rows.items():
    print(f"| {phase} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
EOF
    done
}

# --- main -----------------------------------------------------------------------------------
mode="${1:-measure}"
for bin in "$PY" "$NODE" "$BASH_BIN"; do
    [[ -x "$bin" ]] || die "$bin not found"
done
case "$mode" in
measure)
    ensure_tools bwrap:bubblewrap hyperfine:hyperfine
    build_warden
    measure
    ;;
--profile)
    ensure_tools perf:linux-perf
    build_warden
    profile
    ;;
*) die "unknown argument '$mode' (expected nothing or --profile)" ;;
esac
