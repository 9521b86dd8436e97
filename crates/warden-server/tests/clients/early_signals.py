"""Signals sent before the program starts wait for it, over both interactive WebSockets
(`/v1/executions/connect` and Piston's `/api/v2/connect`) with a real WebSocket client, the
`websockets` package (pinned in scripts/test-clients.txt); run by
crates/warden-cli/tests/v1_connect.rs against a server with one worker.

Usage: early_signals.py BASE_URL TOKEN

Bug hunt, early signals: a signal sent before the execution had a sandbox was lost, and the
program ran to its end. A first session holds the only worker while three others send their
program and, at once, a signal: each is still queued, so no sandbox of theirs exists when the
signal arrives. Once the worker is free, each program must end by its signal. Exits 1 at the
first broken expectation.
"""

import json
import sys
import time
import urllib.request

from websockets.sync.client import connect

from wsclient import expect, rest

BASE, TOKEN = sys.argv[1], sys.argv[2]
WS = BASE.replace("http://", "ws://", 1)
assert WS.startswith("ws://127.0.0.1:"), "loopback only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROGRAM = "echo ready; sleep 2; echo end"


def open_ws(path):
    return connect(WS + path, additional_headers=AUTH, open_timeout=10, close_timeout=10)


def queued():
    with urllib.request.urlopen(BASE + "/v1/health", timeout=10) as answer:
        return json.loads(answer.read())["load"]["queued"]


# The only worker is held until its program reads end of input.
hold = open_ws("/v1/executions/connect")
hold.send(json.dumps({"language": "bash", "code": "echo held; read x"}))
stdout = ""
while "held\n" not in stdout:
    message = json.loads(hold.recv(timeout=30))
    if message["type"] == "stdout":
        stdout += message["data"]

kill = open_ws("/v1/executions/connect")
kill.send(json.dumps({"language": "bash", "code": PROGRAM}))
kill.send(json.dumps({"type": "signal", "signal": "SIGKILL"}))
term = open_ws("/v1/executions/connect")
term.send(json.dumps({"language": "bash", "code": PROGRAM}))
term.send(json.dumps({"type": "signal", "signal": "SIGTERM"}))
piston = open_ws("/api/v2/connect")
piston.send(json.dumps({"type": "init", "language": "bash", "version": "*",
                        "files": [{"content": PROGRAM}]}))
piston.send(json.dumps({"type": "signal", "signal": "SIGTERM"}))

deadline = time.monotonic() + 20
while queued() < 3 and time.monotonic() < deadline:
    time.sleep(0.05)
expect("the three sessions wait for the worker", queued() == 3, queued())
# The server reads each message as it comes: give it the moment it takes to read the signals
# while their sessions are still queued (not a timing assertion: a late read is covered too).
time.sleep(0.5)
hold.send(json.dumps({"type": "stdin", "eof": True}))
rest(hold)
hold.close()

for ws, signal in [(kill, "SIGKILL"), (term, "SIGTERM")]:
    tail, closed = rest(ws)
    ws.close()
    results = [m["result"] for m in tail if m["type"] == "result"]
    expect(f"a {signal} sent before the program started ends it",
           closed[0] == 1000 and len(results) == 1
           and results[0]["outcome"] == {"kind": "signaled", "signal": signal}
           and "end" not in results[0]["stdout"], (closed, tail))

tail, closed = rest(piston)
piston.close()
exits = [m for m in tail if m["type"] == "exit"]
output = "".join(m["data"] for m in tail if m["type"] == "data")
expect("Piston: a SIGTERM sent before the program started ends it",
       closed == (4999, "Job Completed") and len(exits) == 1 and exits[0]["stage"] == "run"
       and exits[0]["signal"] == "SIGTERM" and "end" not in output, (closed, tail))
