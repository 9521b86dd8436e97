#!/usr/bin/env bash
# Builds the release binary, target/release/warden. On a linux-gnu host it is linked statically
# against glibc (a static PIE): a `warden` process then starts without the dynamic loader
# loading libc, libm and libgcc_s and binding their symbols, about 1 ms of cpu less at every
# start, and a forked sandbox process has fewer mappings to copy and tear down
# (docs/BENCHMARKS.md, "A static binary"). `cargo build --release -p warden-cli` builds the same
# program linked dynamically. Arguments go to cargo (e.g. --quiet).
#
# Only the binary's own crate gets the flag (`cargo rustc`): given to every crate, it would
# also reach the proc-macro crates, which cannot be built statically.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(rustc -vV | sed -n 's/^host: //p')"
case "$host" in
  *-linux-gnu)
    cargo rustc --release -p warden-cli --bin warden "$@" -- -C target-feature=+crt-static
    ;;
  *)
    cargo build --release -p warden-cli "$@"
    ;;
esac
