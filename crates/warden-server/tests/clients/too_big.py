"""A message larger than the server takes (`[server] max_body`) on both interactive
WebSockets, with a real WebSocket client, the `websockets` package (pinned in
scripts/test-clients.txt); run by crates/warden-cli/tests/v1_connect.rs against a server whose
`max_body` is 64 KiB, so that the client's whole message fits in the sockets' buffers and its
send returns while the server refuses it.

Usage: too_big.py BASE_URL TOKEN

Bug hunt: such a message dropped the connection with neither an `error` nor a close frame.
The own API answers an `error` (its message names `max_body`) and closes 1009 (message too
big); Piston's answers its `error` message and closes 4002, as for its other errors. The
program of the session ends with it. Exits 1 at the first broken expectation.
"""

import json
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wsclient import expect, rest

BASE, TOKEN = sys.argv[1], sys.argv[2]
WS = BASE.replace("http://", "ws://", 1)
assert WS.startswith("ws://127.0.0.1:"), "loopback only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOO_BIG = "x" * (100 << 10)


def session(path, messages):
    with connect(WS + path, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
        try:
            for message in messages:
                ws.send(message)
        except ConnectionClosed:
            pass
        return rest(ws)


# The own API: as the first message, and while the program runs.
program = json.dumps({"language": "bash", "code": "sleep 30"})
for what, messages in [
        ("first", [json.dumps({"language": "bash", "code": "true", "stdin": TOO_BIG})]),
        ("later", [program, json.dumps({"type": "stdin", "data": TOO_BIG})])]:
    tail, closed = session("/v1/executions/connect", messages)
    errors = [m for m in tail if m["type"] == "error"]
    expect(f"v1, a {what} message over max_body: an error, then 1009",
           closed == (1009, "message too big") and len(errors) == 1
           and "max_body" in errors[0]["error"] and tail[-1] is errors[0], (closed, tail))

# Piston's: as its init, and while the program runs.
init = {"type": "init", "language": "bash", "version": "*", "files": [{"content": "sleep 30"}]}
for what, messages in [
        ("init", [json.dumps({**init, "stdin": TOO_BIG})]),
        ("data", [json.dumps(init), json.dumps({"type": "data", "stream": "stdin",
                                                "data": TOO_BIG})])]:
    tail, closed = session("/api/v2/connect", messages)
    errors = [m for m in tail if m["type"] == "error"]
    expect(f"Piston, a {what} message over the limit: an error, then 4002",
           closed == (4002, "Notified Error") and len(errors) == 1
           and "larger than" in errors[0]["message"] and tail[-1] is errors[0],
           (closed, tail))
