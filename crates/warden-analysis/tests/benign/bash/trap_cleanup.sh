#!/usr/bin/env bash
# Start two workers, stop them when the script exits, and log when it finished.
set -euo pipefail
log=/tmp/run.log
sleep 100 &
sleep 200 &
trap "kill \$(jobs -p) 2>/dev/null" EXIT
trap "echo \"\$(date +%T) finished\" >> $log" TERM
trap "printf '%s\n' \"\`date\` interrupted\" >&2" INT
echo working
wait
