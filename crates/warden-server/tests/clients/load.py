"""A bounded flood against `warden serve` (issue 9), run by crates/warden-cli/tests/load.rs.

Usage: load.py BASE_URL TOKEN [TOTAL] [CONNECTIONS] [TIME_BOUND_S]

TOTAL requests (default 2000) over CONNECTIONS keep-alive connections (default 50), at most
TIME_BOUND_S seconds of sending (default 40): synchronous and `wait=false` executions of the
own API and Judge0 submissions, each a bash `echo`. Loopback only: BASE_URL must be
http://127.0.0.1:PORT. Checks that:

- every answer is 200/201/202, or the documented refusal (429 own API, 503 `queue is full`
  Judge0) with a Retry-After header;
- /v1/health answers 200 throughout;
- every accepted execution finishes, with the output of its own program;
- the history holds every accepted execution exactly once, and nothing else.

Only the standard library. Prints a summary; exits 1 on the first broken check.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

BASE, TOKEN = sys.argv[1], sys.argv[2]
TOTAL = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
CONNECTIONS = int(sys.argv[4]) if len(sys.argv) > 4 else 50
TIME_BOUND = float(sys.argv[5]) if len(sys.argv) > 5 else 40.0

URL = urllib.parse.urlsplit(BASE)
assert URL.hostname == "127.0.0.1", "the flood only targets loopback"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Tally:
    """Everything the senders saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next = 0
        self.codes = {}
        self.sync_ids = []  # result ids of synchronous executions answered 200
        self.jobs = []  # (job id, expected stdout) of 202s
        self.submissions = []  # (Judge0 token, expected stdout) of 201s
        self.problems = []

    def take(self):
        with self.lock:
            if self.next >= TOTAL:
                return None
            self.next += 1
            return self.next - 1

    def count(self, kind, code):
        with self.lock:
            key = f"{kind} {code}"
            self.codes[key] = self.codes.get(key, 0) + 1

    def problem(self, text):
        with self.lock:
            self.problems.append(text)


def connect():
    return http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)


def request(conn, method, path, body=None):
    """One request on `conn`; returns (status, headers, parsed body or text)."""
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=HEADERS)
    response = conn.getresponse()
    raw = response.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return response.status, response.headers, parsed


def check_refusal(tally, kind, status, headers, body):
    """429 (own API) or 503 (Judge0) with Retry-After: the documented answers of a full queue."""
    if not headers.get("Retry-After"):
        tally.problem(f"{kind}: {status} without Retry-After: {body}")
    if kind == "judge0" and status == 503 and body != {"error": "queue is full"}:
        tally.problem(f"judge0: 503 with an unexpected body: {body}")


def send_one(conn, tally, i):
    marker = f"flood-{i}"
    program = {"language": "bash", "code": f"echo {marker}"}
    kind = ("sync", "sync", "sync", "async", "sync", "async", "sync", "judge0", "sync", "async")[i % 10]
    if kind == "sync":
        status, headers, body = request(conn, "POST", "/v1/executions", program)
        ok = (200,)
    elif kind == "async":
        status, headers, body = request(conn, "POST", "/v1/executions?wait=false", program)
        ok = (202,)
    else:
        submission = {"language_id": 46, "source_code": f"echo {marker}"}
        status, headers, body = request(conn, "POST", "/submissions", submission)
        ok = (201,)
    tally.count(kind, status)
    refused = (503,) if kind == "judge0" else (429, 503)
    if status in refused:
        check_refusal(tally, kind, status, headers, body)
        # A well-behaved client would wait Retry-After seconds; a short pause keeps the flood
        # going long enough for many executions to be accepted among the refusals.
        time.sleep(0.05)
    elif status not in ok:
        tally.problem(f"{kind} #{i}: unexpected {status}: {body}")
    elif kind == "sync":
        if body.get("stdout") != marker + "\n":
            tally.problem(f"sync #{i}: wrong output {body.get('stdout')!r} ({body.get('outcome')})")
        with tally.lock:
            tally.sync_ids.append(body["id"])
    elif kind == "async":
        with tally.lock:
            tally.jobs.append((body["id"], marker + "\n"))
    else:
        with tally.lock:
            tally.submissions.append((body["token"], marker + "\n"))
    return headers.get("Connection", "").lower() == "close"


def sender(tally, deadline):
    conn = connect()
    while time.monotonic() < deadline:
        i = tally.take()
        if i is None:
            break
        try:
            if send_one(conn, tally, i):
                conn.close()
                conn = connect()
        except (OSError, http.client.HTTPException) as e:
            tally.problem(f"request #{i}: {type(e).__name__}: {e}")
            conn.close()
            conn = connect()
    conn.close()


def health_watch(stop, results):
    """GET /v1/health every 100 ms on a fresh connection while the flood lasts."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            conn = connect()
            conn.timeout = 10
            status, _, _ = request(conn, "GET", "/v1/health")
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            status = f"{type(e).__name__}: {e}"
        results.append((status, time.monotonic() - started))
        stop.wait(0.1)


def await_finished(tally):
    """Polls every accepted asynchronous execution until it is finished (bounded)."""
    conn = connect()
    deadline = time.monotonic() + 90
    pending = [("job", *job) for job in tally.jobs] + [("sub", *s) for s in tally.submissions]
    result_ids = []
    while pending and time.monotonic() < deadline:
        still = []
        for what, ident, expected in pending:
            if what == "job":
                status, _, body = request(conn, "GET", f"/v1/executions/{ident}")
                if status != 200:
                    tally.problem(f"job {ident}: {status} {body}")
                elif body["state"] != "finished":
                    still.append((what, ident, expected))
                elif (body.get("result") or {}).get("stdout") != expected:
                    tally.problem(f"job {ident}: {body}")
                else:
                    result_ids.append(body["result"]["id"])
            else:
                status, _, body = request(conn, "GET", f"/submissions/{ident}?fields=*")
                if status != 200:
                    tally.problem(f"submission {ident}: {status} {body}")
                elif body["status"]["id"] in (1, 2):
                    still.append((what, ident, expected))
                elif body["status"]["id"] != 3 or body["stdout"] != expected:
                    tally.problem(f"submission {ident}: {body}")
        pending = still
        if pending:
            time.sleep(0.2)
    if pending:
        tally.problem(f"{len(pending)} accepted executions never finished: {pending[:5]}")
    conn.close()
    return result_ids


def check_history(tally, v1_ids):
    conn = connect()
    entries, before = [], ""
    while True:
        status, _, page = request(conn, "GET", f"/v1/history?limit=1000{before}")
        if status != 200:
            tally.problem(f"history: {status} {page}")
            conn.close()
            return
        if not page:
            break
        entries += page
        before = f"&before={page[-1]['id']}"
    conn.close()
    ids = [e["id"] for e in entries]
    by_api = {}
    for e in entries:
        by_api[e.get("api")] = by_api.get(e.get("api"), 0) + 1
    if len(ids) != len(set(ids)):
        tally.problem("an execution is recorded twice")
    missing = set(v1_ids) - set(ids)
    if missing:
        tally.problem(f"{len(missing)} finished /v1 executions are not in the history: {list(missing)[:5]}")
    expected = {"v1": len(v1_ids), "judge0": len(tally.submissions)}
    expected = {k: v for k, v in expected.items() if v}
    if by_api != expected:
        tally.problem(f"history by api {by_api}, accepted {expected}")


def main():
    tally = Tally()
    stop = threading.Event()
    health = []
    watcher = threading.Thread(target=health_watch, args=(stop, health))
    watcher.start()
    started = time.monotonic()
    deadline = started + TIME_BOUND
    senders = [threading.Thread(target=sender, args=(tally, deadline)) for _ in range(CONNECTIONS)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    flood = time.monotonic() - started
    v1_ids = tally.sync_ids + await_finished(tally)
    stop.set()
    watcher.join()
    check_history(tally, v1_ids)

    bad_health = [h for h in health if h[0] != 200]
    if not health or bad_health:
        tally.problem(f"/v1/health failed {len(bad_health)} of {len(health)} times: {bad_health[:5]}")
    slowest = max((h[1] for h in health), default=0)
    print(f"{tally.next} requests in {flood:.1f}s over {CONNECTIONS} connections")
    print(f"answers: {dict(sorted(tally.codes.items()))}")
    print(f"accepted: {len(tally.sync_ids)} sync, {len(tally.jobs)} async, {len(tally.submissions)} judge0")
    print(f"health: {len(health)} answers, slowest {slowest:.3f}s")
    if tally.next < TOTAL:
        print(f"note: the time bound stopped the flood after {tally.next} of {TOTAL} requests")
    if tally.problems:
        print(f"{len(tally.problems)} problems:")
        for p in tally.problems[:20]:
            print(f"  {p}")
        sys.exit(1)
    accepted = len(tally.sync_ids) + len(tally.jobs) + len(tally.submissions)
    if accepted == 0:
        print("no execution was accepted: the flood checked nothing")
        sys.exit(1)


main()
