#!/bin/bash
set -euo pipefail
mkdir -p data
printf "a b\nc d e\n" > data/in.txt
wc -w < ./data/../data/in.txt
while read -r line; do echo "${#line}"; done < data/in.txt
for i in $(seq 1 3); do echo "$i"; done
