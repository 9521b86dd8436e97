#!/usr/bin/env bash
# A calculator's tokenizer, and a generated password it prints: the script's own variables.
set -eu
for TOKEN in $(cat /work/input.txt); do
  case "$TOKEN" in
    +|-|\*|/) echo "op $TOKEN" ;;
    *) echo "num $TOKEN" ;;
  esac
done
PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 16)
echo "generated a password of ${#PASSWORD} characters: $PASSWORD"
