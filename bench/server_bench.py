"""The measurements of bench/server.sh: run with the URL of a running `warden serve`, the bare
interpreter, the number of latency runs and the seconds of each throughput measurement.

Paired: this machine's speed drifts by a third from one minute to the next, so bare and server
runs are interleaved (latency: one of each in turn, the order alternating; throughput: four
rounds of each in turn), and a ratio compares runs made side by side."""

import http.client
import statistics
import sys
import time
import urllib.parse

from server_common import bare_runner, client as client_of, throughput, timed

URL, PY, RUNS, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
bare = bare_runner(PY)


def client(timings=None):
    """One keep-alive connection; returns a function making one request (its Server-Timing
    appended to `timings` if given)."""
    return client_of(URL, timings)


def judge0_client():
    """The official SDK, unchanged, as tests/clients/judge0_client.py uses it."""
    import judge0
    from judge0 import Client, LanguageAlias
    from judge0.retry import MaxWaitTime

    server = Client(URL, retry_strategy=MaxWaitTime(max_wait_time_sec=60))

    def once():
        result = judge0.run(client=server, source_code='print("hello")',
                            language=LanguageAlias.PYTHON)
        assert result.stdout.strip() == "hello", result

    return once


def paired_latency(bare_run, server_run, warmup=10):
    """Medians (ms) of each, and the median of the ratios of the pairs."""
    for _ in range(warmup):
        bare_run()
        server_run()
    pairs = []
    for i in range(RUNS):
        if i % 2:
            s = timed(server_run)
            b = timed(bare_run)
        else:
            b = timed(bare_run)
            s = timed(server_run)
        pairs.append((b, s))
    return (statistics.median(b for b, _ in pairs) * 1000,
            statistics.median(s for _, s in pairs) * 1000,
            statistics.median(s / b for b, s in pairs))


ROUNDS = 4


def paired_throughput(bare_make, server_make, cpu=None):
    """Runs per second of each over ROUNDS rounds, the two taking turns. With `cpu`, a pair
    of [busy, total] lists, the machine's cpu time of each side is added to its list."""
    runs_of = [0, 0]
    for i in range(ROUNDS):
        order = [(0, bare_make), (1, server_make)]
        for which, make in order if i % 2 == 0 else reversed(order):
            runs_of[which] += throughput(make, SECONDS / ROUNDS,
                                         cpu=None if cpu is None else cpu[which])
    if cpu is not None:
        for which in (0, 1):
            cpu[which].append(runs_of[which])
    return runs_of[0] / SECONDS, runs_of[1] / SECONDS


def cpu_row(name, side):
    busy, total, runs = side
    return (f"| {name} | {busy * 1000 / runs:.2f} | {100 * (1 - busy / total):.1f}% |")


timings = []
bare_latency, server_latency, latency_ratio = paired_latency(bare, client(timings))
cpu = ([0.0, 0.0], [0.0, 0.0])
bare_rate, server_rate = paired_throughput(lambda: bare, client, cpu)
try:
    judge0_bare, judge0_rate = paired_throughput(lambda: bare, judge0_client)
except Exception as e:  # the SDK's API moves; say so rather than hide the row
    judge0_rate = None
    print(f"(Judge0 SDK row skipped: {e!r})", file=sys.stderr)

print("| Measurement (paired) | bare python3 | warden serve | ratio |")
print("|---|---:|---:|---:|")
print(f"| latency, one client, median of {RUNS} pairs (ms) | {bare_latency:.1f}"
      f" | {server_latency:.1f} | {latency_ratio:.2f}× |")
print(f"| throughput, 2 clients, {ROUNDS} rounds of {SECONDS / ROUNDS:.0f} s each (runs/s)"
      f" | {bare_rate:.1f} | {server_rate:.1f} | {server_rate / bare_rate:.2f}× |")
if judge0_rate is not None:
    print(f"| throughput through the Judge0 SDK, 2 clients (runs/s) | {judge0_bare:.1f}"
          f" | {judge0_rate:.1f} | {judge0_rate / judge0_bare:.2f}× |")

# Where the server's requests of the latency measurement went (their Server-Timing), and the
# cpu the machine spent per run in the throughput rounds: what the ratios above are made of.
timings = timings[10:]  # the warm-up
print()
print(f"| Where a request's time went, one client (medians of {len(timings)}, ms) | |")
print("|---|---:|")
for step in timings[-1]:
    print(f"| {step} | {statistics.median(t[step] for t in timings):.3f} |")
print(f"| median latency − median `total` (HTTP, the client) |"
      f" {server_latency - statistics.median(t['total'] for t in timings):.3f} |")
print()
print("| 2 clients: the machine's cpu per run (/proc/stat) | ms | idle |")
print("|---|---:|---:|")
print(cpu_row("bare python3", cpu[0]))
print(cpu_row("warden serve", cpu[1]))

# The same trivial request (GET /v1/health) after the client has paused: a thread that slept
# as long as a python hello runs wakes slowly on this VM, and a request through the server
# wakes several (the connection's task, the blocking thread, the client).
print()
print("| `GET /v1/health` after a pause of | median of 150 (ms) |")
print("|---|---:|")
health = http.client.HTTPConnection(urllib.parse.urlparse(URL).netloc, timeout=60)
for pause in (0.0, 0.002, 0.017):
    took = []
    for _ in range(150):
        time.sleep(pause)
        start = time.perf_counter()
        health.request("GET", "/v1/health")
        health.getresponse().read()
        took.append(time.perf_counter() - start)
    print(f"| {pause * 1000:.0f} ms | {statistics.median(took) * 1000:.3f} |")
