"""Paired timing of commands, for bench/startup.sh (PAIRED=1): every round runs each command once,
in an order that rotates from round to round, so that the machine's drift (its speed moves by a
third from one minute to the next) falls on all of them alike. Each group's first command is its
baseline; a ratio is the median, over the rounds, of the command's time over its baseline's in
the same round.

Usage: python3 paired.py WARMUP RUNS 'name|group|command' ...   (command: shell words, no shell)
A command may start with NAME=value words, as in a shell: they are set in its environment rather
than through `env`, whose own exec (about 1 ms here) would be counted against the command.
Prints a markdown table."""

import os

import re
import shlex
import statistics
import subprocess
import sys
import time

warmup, runs = int(sys.argv[1]), int(sys.argv[2])
entries = [line.split("|", 2) for line in sys.argv[3:]]
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def parsed(cmd):
    words = shlex.split(cmd)
    env = dict(os.environ)
    while words and ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not words:
        sys.exit(f"error: {cmd!r} has no command")
    return words, env


commands = [(name, group, parsed(cmd)) for name, group, cmd in entries]


def timed(command):
    argv, env = command
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {shlex.join(argv)} exited {done.returncode}")
    return elapsed


for _ in range(warmup):
    for _, _, argv in commands:
        timed(argv)

times = {name: [] for name, _, _ in commands}
for round_ in range(runs):
    shift = round_ % len(commands)
    for name, _, argv in commands[shift:] + commands[:shift]:
        times[name].append(timed(argv))

baseline = {}
for name, group, _ in commands:
    baseline.setdefault(group, name)

ms = lambda seconds: seconds * 1000.0
print("| Command | Median (ms) | Mean ± σ (ms) | Min (ms) | × bare, paired |")
print("|---|---:|---:|---:|---:|")
for name, group, _ in commands:
    t = times[name]
    base = times[baseline[group]]
    ratio = statistics.median(a / b for a, b in zip(t, base))
    print(f"| {name} | {ms(statistics.median(t)):.1f} | {ms(statistics.mean(t)):.1f} ± "
          f"{ms(statistics.stdev(t)):.1f} | {ms(min(t)):.1f} | {ratio:.2f}× |")
