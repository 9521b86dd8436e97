#!/bin/sh
# Bubble sort of the arguments, then the same with sort(1).
nums="5 3 8 1 9 2"
set -- $nums
arr=("$@")
n=${#arr[@]}
for ((i = 0; i < n; i++)); do
  for ((j = 0; j < n - i - 1; j++)); do
    if [ "${arr[j]}" -gt "${arr[j+1]}" ]; then
      tmp=${arr[j]}; arr[j]=${arr[j+1]}; arr[j+1]=$tmp
    fi
  done
done
echo "${arr[*]}"
printf '%s\n' $nums | sort -n | tr '\n' ' '
echo
upper=$(echo "hello" | tr 'a-z' 'A-Z')
echo "$upper" | rev
case "$upper" in
  HELLO) echo matched ;;
  *) echo other ;;
esac
