"""A program that closes its stdin on the own interactive WebSocket (`/v1/executions/connect`),
with a real WebSocket client, the `websockets` package (pinned in scripts/test-clients.txt); run
by crates/warden-cli/tests/v1_connect.rs.

Usage: closed_stdin.py BASE_URL TOKEN

Bug hunt: the sandbox's init kept a copy of the stdin pipe's read end, so a program's
`close(0)` was never seen by the server's writer: what the client sent after it filled the
16 MiB of unread stdin and ended the session ("not read by the program"), killing a program
that had no stdin any more. What comes after the close is now dropped, and the program ends
on its own. Exits 1 at the first broken expectation.
"""

import json
import sys

from websockets.sync.client import connect

from wsclient import expect, rest

BASE, TOKEN = sys.argv[1], sys.argv[2]
URL = BASE.replace("http://", "ws://", 1) + "/v1/executions/connect"
assert URL.startswith("ws://127.0.0.1:"), "loopback only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

program = ("import os, sys, time\n"
           "line = sys.stdin.readline()\n"
           "os.close(0)\n"
           "print('closed', len(line), flush=True)\n"
           "time.sleep(3)\n"
           "print('done')\n")
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10,
             max_size=None) as ws:
    ws.send(json.dumps({"language": "python", "code": program,
                        "limits": {"wall_time": "20s"}}))
    ws.send(json.dumps({"type": "stdin", "data": "first line\n"}))
    stdout = ""
    while "closed" not in stdout:
        message = json.loads(ws.recv(timeout=30))
        if message["type"] == "stdout":
            stdout += message["data"]
    chunk = json.dumps({"type": "stdin", "data": "x" * (1 << 20)})
    for _ in range(20):
        ws.send(chunk)
    tail, closed = rest(ws)
errors = [m for m in tail if m["type"] == "error"]
expect("no error for stdin sent after the program closed it", not errors, errors)
results = [m for m in tail if m["type"] == "result"]
expect("the program ended on its own", len(results) == 1
       and results[0]["result"]["outcome"] == {"kind": "exited", "code": 0}
       and results[0]["result"]["stdout"] == "closed 11\ndone\n", (closed, tail))
