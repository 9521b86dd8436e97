#!/usr/bin/env bash
# The project's test command (README): sets up the machine, then checks formatting, lints,
# docs, and runs every test tier with nextest. Must run as root: the sandbox tests create
# namespaces and cgroups.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The tests run warden linked as scripts/build.sh links it: statically on a linux-gnu host. With
# `--target`, the flag reaches the target's crates only, not the proc-macros, which cannot be
# built statically.
host="$(rustc -vV | sed -n 's/^host: //p')"
if [[ "$host" == *-linux-gnu ]]; then
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo nextest run --workspace --profile ci --target "$host"
else
  cargo nextest run --workspace --profile ci
fi
