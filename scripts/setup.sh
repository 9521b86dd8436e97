#!/usr/bin/env bash
# Installs what warden and its tests need on a fresh Debian machine (run as root): every
# language's toolchain (the `packages` each languages/*.toml names), a C toolchain (the isolation
# tests compile a static probe), and cargo-nextest. The Rust toolchain that builds warden must
# already be installed (rustup).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC2207 # package names have no spaces
language_packages=($(sed -n 's/^packages = \[\(.*\)\]/\1/p' languages/*.toml | tr -d '",'))
# python3-venv: the venv of the compatible APIs' clients (below). nftables: the `nft` that
# installs a sandbox's transparent interception (crates/warden-net/src/interception.rs); curl:
# a real client in warden-net's proxy tests; python3-pip and npm: the package managers whose
# real downloads under limited_access are tested (crates/warden-cli/tests/network_registries.rs).
# e2fsprogs: the mkfs.ext4 that formats each volume's image (crates/warden-engine/src/volumes/).
packages=(build-essential coreutils procps util-linux e2fsprogs runsc python3-venv nftables curl
  python3-pip "${language_packages[@]}")
# A node.js from elsewhere (NodeSource's package) brings its own npm, which Debian's `npm`
# package would conflict with.
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

# The end-to-end tests' Python clients, at pinned versions: the compatible APIs' real clients,
# unchanged (crates/warden-cli/tests/compat_clients.rs: the official Judge0 Python SDK and a
# Piston client), schemathesis and openapi-spec-validator (tests/openapi.rs), websockets
# (tests/piston_connect.rs).
venv=/opt/warden-test-venv
# scripts/test-clients.txt pins them and everything they pull in (`pip freeze` of the venv).
if ! "$venv/bin/python3" -c 'import judge0, pistonapi, schemathesis, openapi_spec_validator, websockets' >/dev/null 2>&1; then
  echo "setup: installing the test clients into $venv" >&2
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r scripts/test-clients.txt
fi

# The official MCP Python SDK (tests/mcp.rs: its clients drive `warden mcp`, `/mcp` and
# `warden mcp wrap`, and a wrapped server is written with it), in a venv of its own: mcp 2.x's
# pins must not fight the compatible APIs' clients'.
mcp_venv=/opt/warden-mcp-venv
# scripts/mcp-clients.txt pins it and everything it pulls in (`pip freeze` of the venv).
if ! "$mcp_venv/bin/python3" -c 'import mcp' >/dev/null 2>&1; then
  echo "setup: installing the MCP SDK into $mcp_venv" >&2
  /usr/bin/python3 -m venv "$mcp_venv"
  "$mcp_venv/bin/pip" install -q -r scripts/mcp-clients.txt
fi
