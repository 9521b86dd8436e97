#!/usr/bin/env bash
# Sizes a worker pool from the cgroup's CPU quota when there is one (cgroup v2), else nproc.
set -eu
workers=$(nproc)
if [ -r /sys/fs/cgroup/cpu.max ]; then
  quota=$(awk '{print $1}' /sys/fs/cgroup/cpu.max)
  period=$(cut -d' ' -f2 /sys/fs/cgroup/cpu.max)
  if [ "$quota" != max ]; then
    workers=$(( (quota + period - 1) / period ))
  fi
fi
if [[ -f /sys/fs/cgroup/memory.max ]] && test -r /sys/fs/cgroup/memory.max; then
  echo "memory limited"
fi
echo "using $workers workers"
