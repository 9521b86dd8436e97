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

# The linker writes the binary in scattered pieces, and while those pages stay in the page cache
# every `warden` process maps them that way: a copy written in one sequential pass started with
# 277 page faults instead of 309 (`warden --version`), and a one-shot `warden run` took about
# 1.5 ms less (docs/BENCHMARKS.md, "The binary as the linker wrote it"). The copy replaces the
# linked file, so the quick start and the tests run the faster one.
bin=target/release/warden
cp "$bin" "$bin.copy"
mv -f "$bin.copy" "$bin"
