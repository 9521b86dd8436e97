"""bench/server.sh with BEFORE=: two builds of `warden serve` side by side with the bare
interpreter. Run with the URLs of the two servers (before, after), the bare interpreter, the
number of latency runs and the seconds of each throughput measurement.

This machine's speed drifts by a third from one minute to the next, so each row compares runs
made side by side: latency in triples (bare, before, after; the order rotating), throughput in
rounds of the three in turn, each server's rate taken as a ratio to the bare rounds around it."""

import statistics
import sys

from server_common import bare_runner, client, throughput, timed

BEFORE, AFTER, PY = sys.argv[1], sys.argv[2], sys.argv[3]
RUNS, SECONDS = int(sys.argv[4]), float(sys.argv[5])
ROUNDS = 6
bare = bare_runner(PY)


def rate(make, seconds):
    """Runs per second of two loops, each with its own `make()`."""
    return throughput(make, seconds) / seconds


runs = {"bare": bare, "before": client(BEFORE), "after": client(AFTER)}
for run in runs.values():
    for _ in range(10):
        run()
times = {name: [] for name in runs}
names = list(runs)
for i in range(RUNS):
    for name in names[i % 3:] + names[:i % 3]:
        times[name].append(timed(runs[name]))
latency = {name: statistics.median(t) * 1000 for name, t in times.items()}
ratio = {name: statistics.median(s / b for s, b in zip(times[name], times["bare"]))
         for name in ("before", "after")}

makers = {"before": lambda: client(BEFORE), "after": lambda: client(AFTER)}
ratios = {name: [] for name in makers}
slice_ = SECONDS / ROUNDS
for i in range(ROUNDS):
    first = rate(lambda: bare, slice_ / 2)
    order = list(makers) if i % 2 == 0 else list(makers)[::-1]
    measured = {name: rate(makers[name], slice_) for name in order}
    last = rate(lambda: bare, slice_ / 2)
    for name, r in measured.items():
        ratios[name].append(r / ((first + last) / 2))

print("| Measurement (side by side) | bare python3 | before | after |")
print("|---|---:|---:|---:|")
print(f"| latency, one client, median of {RUNS} (ms) | {latency['bare']:.1f}"
      f" | {latency['before']:.1f} | {latency['after']:.1f} |")
print(f"| latency ratio to bare, median of the {RUNS} triples | 1 | {ratio['before']:.3f}×"
      f" | {ratio['after']:.3f}× |")
print(f"| throughput ratio to bare, 2 clients, median of {ROUNDS} rounds | 1"
      f" | {statistics.median(ratios['before']):.3f}× | {statistics.median(ratios['after']):.3f}× |")
print(f"| the rounds | | {' '.join(f'{r:.2f}' for r in ratios['before'])}"
      f" | {' '.join(f'{r:.2f}' for r in ratios['after'])} |")
