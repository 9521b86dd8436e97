#!/usr/bin/env bash
# Shared by the benchmark scripts: tool installation, the release build, machine facts, and
# waiting for a quiet machine. Sourced, not run. Expects REPO, WARDEN, PY, NODE to be set.

die() {
    echo "error: $*" >&2
    exit 1
}

# Installs the Debian packages whose command is missing: ensure_tools cmd:package ...
ensure_tools() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

# The release binary as users build it (scripts/build.sh: statically linked on linux-gnu).
build_warden() {
    echo "building warden (release)..." >&2
    bash "$REPO/scripts/build.sh" --quiet
    [[ -x "$WARDEN" ]] || die "$WARDEN was not built"
}

machine_info() {
    echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) cores"
    echo "- Kernel: $(uname -sr)"
    echo "- OS: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
    echo "- cgroups: $(if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; else echo v1; fi)"
    echo "- Versions: $("$PY" --version 2>&1), node $("$NODE" --version)," \
        "bash ${BASH_VERSION%%(*}, $(bwrap --version 2>/dev/null || echo "no bwrap"), $(hyperfine --version)"
}

# --- measure --------------------------------------------------------------------------------

# Share of the last 10 s in which some task waited for a CPU (PSI), in percent; "n/a" if the
# kernel does not expose it.
cpu_pressure() {
    awk '/^some/ { split($2, kv, "="); print kv[2] }' /proc/pressure/cpu 2>/dev/null || echo n/a
}

# Other work on the machine skews every row: wait (up to 2 minutes) until the CPUs are quiet.
wait_for_quiet() {
    local i p
    for ((i = 0; i < 24; i++)); do
        p="$(cpu_pressure)"
        [[ "$p" == n/a ]] && return
        awk -v p="$p" 'BEGIN { exit !(p < 5) }' && return
        echo "waiting for a quiet machine (cpu pressure ${p}%)..." >&2
        sleep 5
    done
    echo "warning: the machine is busy (cpu pressure ${p}%); the numbers will be noisy" >&2
}

# Quotes an argv for hyperfine's shell-words splitting (-N).
q() { printf '%q ' "$@"; }

# --- a server -------------------------------------------------------------------------------

# Starts `warden serve` on a free loopback port with workers = 2, a queue of 64 and the given
# pool_reuse, its files in a new temporary directory; sets ADDR (host:port). Every server
# started is stopped, and its directory removed, on exit. The binary is $WARDEN unless a second
# argument names another (an older build, to compare).
SERVER_PIDS=()
SERVER_WORKS=()
start_server() {
    local work pid binary="${2:-$WARDEN}"
    work="$(mktemp -d)"
    SERVER_WORKS+=("$work")
    trap stop_server EXIT
    printf '[server]\nworkers = 2\nqueue_size = 64\npool_reuse = %s\n' "$1" >"$work/warden.toml"
    WARDEN_CONFIG="$work/warden.toml" WARDEN_DB="$work/history.sqlite3" \
        WARDEN_CACHE_DIR="$work/cache" "$binary" serve --listen 127.0.0.1:0 2>"$work/log" &
    pid=$!
    SERVER_PIDS+=("$pid")
    ADDR="$(listened_on "$work/log" 'warden: listening on http://')" ||
        die "warden serve did not start: $(cat "$work/log")"
}

# Prints the host:port that a server wrote to FILE after PREFIX (at the start of a line),
# waiting up to 10 s for it; fails if it never comes.
listened_on() {
    local file="$1" prefix="$2" line
    for _ in $(seq 100); do
        line="$(grep -m1 -F "$prefix" "$file" 2>/dev/null || true)"
        if [[ "$line" == "$prefix"* ]]; then
            echo "${line#"$prefix"}"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

stop_server() {
    local pid work
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
    done
    for work in "${SERVER_WORKS[@]}"; do
        rm -rf "$work"
    done
    SERVER_PIDS=()
    SERVER_WORKS=()
}
