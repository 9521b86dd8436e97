"""The measurements of bench/server.sh: run with the URL of a running `warden serve`, the bare
interpreter, the number of latency runs and the seconds of each throughput measurement."""

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

URL, PY, RUNS, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
HOST = urllib.parse.urlparse(URL).netloc
BODY = json.dumps({"language": "python", "code": 'print("hello")'})


def bare():
    out = subprocess.run([PY, "-c", 'print("hello")'], capture_output=True, env={})
    assert out.stdout == b"hello\n", out


def client():
    """One keep-alive connection; returns a function making one request."""
    conn = http.client.HTTPConnection(HOST, timeout=60)

    def once():
        conn.request("POST", "/v1/executions?wait=true", BODY, {"content-type": "application/json"})
        response = conn.getresponse()
        result = json.loads(response.read())
        assert response.status == 200 and result["stdout"] == "hello\n", result

    return once


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


def latency(run, warmup=10):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def throughput(make, threads=2):
    count = [0] * threads
    stop = time.perf_counter() + SECONDS

    def loop(i):
        run = make()
        while time.perf_counter() < stop:
            run()
            count[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(count) / SECONDS


bare_latency = latency(bare)
server_latency = latency(client())
bare_rate = throughput(lambda: bare)
server_rate = throughput(client)
try:
    judge0_rate = throughput(judge0_client)
except Exception as e:  # the SDK's API moves; say so rather than hide the row
    judge0_rate = None
    print(f"(Judge0 SDK row skipped: {e!r})", file=sys.stderr)

print("| Measurement | bare python3 | warden serve | ratio |")
print("|---|---:|---:|---:|")
print(f"| latency, one client, median of {RUNS} (ms) | {bare_latency:.1f} | {server_latency:.1f}"
      f" | {server_latency / bare_latency:.2f}× |")
print(f"| throughput, 2 clients, {SECONDS:.0f} s (runs/s) | {bare_rate:.1f} | {server_rate:.1f}"
      f" | {server_rate / bare_rate:.2f}× |")
if judge0_rate is not None:
    print(f"| throughput through the Judge0 SDK, 2 clients (runs/s) | {bare_rate:.1f}"
          f" | {judge0_rate:.1f} | {judge0_rate / bare_rate:.2f}× |")
