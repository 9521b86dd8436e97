"""What bench/server_bench.py and bench/server_ab.py share: the bare run, a client of
`POST /v1/executions?wait=true`, and the timing of one run and of two loops."""

import http.client
import json
import os
import subprocess
import threading
import time
import urllib.parse

BODY = json.dumps({"language": "python", "code": 'print("hello")'})


def bare_runner(py):
    """A function running python hello with the bare interpreter `py`."""
    def bare():
        out = subprocess.run([py, "-c", 'print("hello")'], capture_output=True, env={})
        assert out.stdout == b"hello\n", out

    return bare


def client(url, timings=None):
    """One keep-alive connection to the server at `url`; returns a function making one
    request. With a list `timings`, each answer's `Server-Timing` (docs/server.md) is appended
    to it as a dict of step to milliseconds."""
    conn = http.client.HTTPConnection(urllib.parse.urlparse(url).netloc, timeout=60)

    def once():
        conn.request("POST", "/v1/executions?wait=true", BODY, {"content-type": "application/json"})
        response = conn.getresponse()
        result = json.loads(response.read())
        assert response.status == 200 and result["stdout"] == "hello\n", result
        if timings is not None:
            timings.append(server_timing(response.getheader("server-timing", "")))

    return once


def server_timing(header):
    """`queue;dur=0.001, dispatch;dur=0.03, ...` as {"queue": 0.001, ...} (ms)."""
    steps = {}
    for entry in filter(None, header.split(", ")):
        name, _, ms = entry.partition(";dur=")
        steps[name] = float(ms)
    return steps


def machine_cpu():
    """The machine's busy and total cpu time so far (s), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def throughput(make, seconds, threads=2, cpu=None):
    """How many runs `threads` loops made in `seconds`, each loop with its own `make()`.
    With a list `cpu`, the machine's busy and total cpu time over the loops is added to its
    first two items."""
    count = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(i):
        run = make()
        while time.perf_counter() < stop:
            run()
            count[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    before = machine_cpu()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if cpu is not None:
        after = machine_cpu()
        cpu[0] += after[0] - before[0]
        cpu[1] += after[1] - before[1]
    return sum(count)
