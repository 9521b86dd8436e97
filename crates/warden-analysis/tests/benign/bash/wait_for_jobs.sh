#!/bin/bash
# Starts at most three background jobs, then waits for them.
n=0
while true; do
  sleep 0.1 &
  n=$((n + 1))
  if [ "$n" -ge 3 ]; then
    break
  fi
done
wait
echo "started $n jobs"
