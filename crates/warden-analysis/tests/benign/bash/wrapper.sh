#!/bin/sh
# Runs each check given as arguments and counts the failures; an ordinary wrapper script.
fail=0
run() {
  printf '== %s\n' "$*"
  "$@" || fail=$((fail + 1))
}
if command -v python3 >/dev/null 2>&1; then
  echo "python3 is here"
fi
sorter=sort
printf '3\n1\n2\n' | $sorter -n
run test 1 -lt 2
run \test 2 -gt 1
name='wor'"ld"
echo "hello $name, $fail failures"
