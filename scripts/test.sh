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
cargo nextest run --workspace --profile ci
