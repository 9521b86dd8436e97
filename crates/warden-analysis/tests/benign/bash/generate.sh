#!/usr/bin/env bash
# Runs a model binary on each prompt file with a token budget, and makes a random file name.
set -euo pipefail
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
NUM_TOKENS=$((MAX_NEW_TOKENS * 2))
PASSWORD_LENGTH=${1:-16}
for prompt in /work/prompts/*.txt; do
  ./llama-cli --max-new-tokens "$MAX_NEW_TOKENS" --limit "$NUM_TOKENS" "$prompt"
done
name=$(tr -dc "a-z0-9" </dev/urandom | head -c "$PASSWORD_LENGTH")
echo "run-$name"
