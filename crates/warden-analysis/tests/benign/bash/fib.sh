#!/bin/bash
fib() {
  local n=$1 a=0 b=1 i
  for ((i = 0; i < n; i++)); do
    local t=$((a + b))
    a=$b
    b=$t
  done
  echo "$a"
}

read -r n
sleep 0 &
wait
for ((k = 0; k <= n; k++)); do
  echo "fib($k) = $(fib "$k")"
done
