"""What bench/server_bench.py and bench/server_ab.py share: the bare run, a client of
`POST /v1/executions?wait=true`, and the timing of one run and of two loops."""

import http.client
import json
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


def client(url):
    """One keep-alive connection to the server at `url`; returns a function making one
    request."""
    conn = http.client.HTTPConnection(urllib.parse.urlparse(url).netloc, timeout=60)

    def once():
        conn.request("POST", "/v1/executions?wait=true", BODY, {"content-type": "application/json"})
        response = conn.getresponse()
        result = json.loads(response.read())
        assert response.status == 200 and result["stdout"] == "hello\n", result

    return once


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def throughput(make, seconds, threads=2):
    """How many runs `threads` loops made in `seconds`, each loop with its own `make()`."""
    count = [0] * threads
    stop = time.perf_counter() + seconds

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
    return sum(count)
