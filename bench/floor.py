"""The measurements of bench/floor.sh: two clients of python hello against the bare
interpreter, the floor server (bench/floor.c) and `warden serve`, in rotating rounds.

Usage: floor.py FLOOR_URL WARDEN_URL PYTHON ROUNDS SECONDS"""

import statistics
import sys

from server_common import bare_runner, client, throughput

FLOOR, WARDEN, PY, ROUNDS, SECONDS = (sys.argv[1], sys.argv[2], sys.argv[3],
                                      int(sys.argv[4]), float(sys.argv[5]))

WAYS = [
    ("bare python3", lambda: bare_runner(PY)),
    ("floor server (no isolation)", lambda: client(FLOOR)),
    ("warden serve", lambda: client(WARDEN)),
]


def main():
    for _, make in WAYS:
        run = make()
        for _ in range(10):
            run()
    runs = {name: [] for name, _ in WAYS}
    cpu = {name: [0.0, 0.0] for name, _ in WAYS}
    for r in range(ROUNDS):
        for name, make in WAYS[r % len(WAYS):] + WAYS[:r % len(WAYS)]:
            runs[name].append(throughput(make, SECONDS, cpu=cpu[name]))
    bare = runs[WAYS[0][0]]
    print(f"| 2 clients, {ROUNDS} rotating rounds of {SECONDS:g} s | runs/s | ratio to bare, "
          "median of the rounds | the rounds | machine cpu per run (ms) | idle |")
    print("|---|---:|---:|---|---:|---:|")
    for name, _ in WAYS:
        ratios = [n / b for n, b in zip(runs[name], bare)]
        busy, total = cpu[name]
        count = sum(runs[name])
        print(f"| {name} | {count / (ROUNDS * SECONDS):.1f} | {statistics.median(ratios):.3f}× | "
              f"{' '.join(f'{x:.2f}' for x in ratios)} | {busy / count * 1000:.2f} | "
              f"{max(0.0, 100 * (1 - busy / total)):.1f}% |")


main()
