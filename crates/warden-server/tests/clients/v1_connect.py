"""The own interactive WebSocket (`/v1/executions/connect`, docs/server.md) with a real
WebSocket client, the `websockets` package (pinned in scripts/test-clients.txt); run by
crates/warden-cli/tests/v1_connect.rs.

Usage: v1_connect.py BASE_URL TOKEN

An interactive python program answers each stdin message before the next is sent, then ends
at end of input with its result; a shell program handles SIGINT; SIGKILL ends a program with
that outcome; a program that is not valid, a message that is not one of the protocol's, and a
missing token are refused; a client that sends far more than the program reads is cut off.
Exits 1 at the first broken expectation.
"""

import base64
import json
import sys
import urllib.request

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from wsclient import expect, rest

BASE, TOKEN = sys.argv[1], sys.argv[2]
URL = BASE.replace("http://", "ws://", 1) + "/v1/executions/connect"
assert URL.startswith("ws://127.0.0.1:"), "loopback only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def exact_stdout(messages):
    """The bytes the program wrote to stdout: each chunk's `data_base64` when it has one (its
    text lost bytes), else its text."""
    return b"".join(base64.b64decode(m["data_base64"]) if "data_base64" in m
                    else m["data"].encode() for m in messages if m["type"] == "stdout")


def until(ws, text):
    """Messages until the program's stdout holds `text`; returns them and that stdout."""
    received, stdout = [], ""
    while text not in stdout:
        message = json.loads(ws.recv(timeout=30))
        received.append(message)
        if message["type"] == "stdout":
            stdout += message["data"]
    return received, stdout


# Interactive: each line is answered before the next is written; end of input ends the loop.
program = ("import sys\n"
           "for line in sys.stdin:\n"
           "    print('got', line.strip(), flush=True)\n"
           "print('bye')\n")
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "python", "code": program}))
    answers = []
    for line in ["a", "b", "c"]:
        ws.send(json.dumps({"type": "stdin", "data": line + "\n"}))
        _, stdout = until(ws, f"got {line}\n")
        answers.append(stdout)
    ws.send(json.dumps({"type": "stdin", "eof": True}))
    tail, closed = rest(ws)
expect("each line answered before the next", answers == ["got a\n", "got b\n", "got c\n"],
       answers)
results = [m for m in tail if m["type"] == "result"]
expect("the result last, then close 1000",
       closed[0] == 1000 and len(results) == 1 and tail[-1] is results[0], (closed, tail))
result = results[0]["result"]
expect("the result is the whole run's", result["outcome"] == {"kind": "exited", "code": 0}
       and result["stdout"] == "got a\ngot b\ngot c\nbye\n", result)

# A character that the program writes in two pieces arrives whole (a read of the pipe may end
# inside it); an invalid byte and a character never completed are U+FFFD, as in the result.
split = ("import sys, time\n"
         "out = sys.stdout.buffer\n"
         "for piece in [b'\\xc3', b'\\xa9 \\xe2\\x82', b'\\xac \\xff\\n\\xf0\\x9f']:\n"
         "    out.write(piece); out.flush(); time.sleep(0.2)\n")
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "python", "code": split}))
    ws.send(json.dumps({"type": "stdin", "eof": True}))
    tail, closed = rest(ws)
streamed = "".join(m["data"] for m in tail if m["type"] == "stdout")
results = [m["result"]["stdout"] for m in tail if m["type"] == "result"]
expect("characters cut by reads arrive whole", streamed == "\u00e9 \u20ac \ufffd\n\ufffd"
       and results == [streamed], (streamed, results))
exact = exact_stdout(tail)
expect("a chunk that lost bytes carries them", exact == "\u00e9 \u20ac ".encode()
       + b"\xff\n\xf0\x9f", exact)

# Input that is not UTF-8 text goes in base64, and comes back as the program wrote it.
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code": "cat"}))
    ws.send(json.dumps({"type": "stdin", "data_base64": base64.b64encode(b"\xff\x00ok").decode(),
                        "eof": True}))
    tail, closed = rest(ws)
exact = exact_stdout(tail)
expect("bytes in and out", exact == b"\xff\x00ok" and closed[0] == 1000, (exact, tail))

# SIGINT reaches the program, which handles it and ends on its own terms.
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code":
                        "trap 'echo caught; exit 5' INT; echo ready; while :; do sleep 0.05; done"}))
    until(ws, "ready\n")
    ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
    tail, closed = rest(ws)
outcome = [m["result"]["outcome"] for m in tail if m["type"] == "result"]
stdout = "".join(m["data"] for m in tail if m["type"] == "stdout")
expect("a handled SIGINT", outcome == [{"kind": "exited", "code": 5}] and "caught" in stdout
       and closed[0] == 1000, (closed, tail))

# SIGKILL ends the program: its outcome says so.
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code": "echo ready; sleep 30"}))
    until(ws, "ready\n")
    ws.send(json.dumps({"type": "signal", "signal": "SIGKILL"}))
    tail, closed = rest(ws)
outcome = [m["result"]["outcome"] for m in tail if m["type"] == "result"]
expect("SIGKILL ends it", outcome == [{"kind": "signaled", "signal": "SIGKILL"}], tail)

# Refusals: an unknown language, tests, a message outside the protocol, no token.
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "cobol", "code": "x"}))
    tail, closed = rest(ws)
expect("an unknown language is refused", closed[0] == 1008 and len(tail) == 1
       and tail[0]["type"] == "error" and "cobol" in tail[0]["error"], (closed, tail))
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send("not json")
    tail, closed = rest(ws)
expect("a first message that is not JSON is refused",
       closed[0] == 1008 and tail[0]["type"] == "error", (closed, tail))
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code": "echo ready; sleep 30"}))
    until(ws, "ready\n")
    ws.send(json.dumps({"type": "shout"}))
    tail, closed = rest(ws)
expect("a message outside the protocol ends the session",
       closed[0] == 1008 and [m["type"] for m in tail] == ["error"], (closed, tail))
# A client that writes far more than the program reads ends its session (the server keeps at
# most 16 MiB unread), and the program with it.
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code": "echo ready; sleep 30"}))
    until(ws, "ready\n")
    chunk = json.dumps({"type": "stdin", "data": "x" * (7 << 20)})
    try:
        for _ in range(4):
            ws.send(chunk)
    except ConnectionClosed:
        pass
    tail, closed = rest(ws)
errors = [m for m in tail if m["type"] == "error"]
expect("unread stdin past the cap ends the session", closed[0] == 1008 and len(errors) == 1
       and "not read" in errors[0]["error"], (closed, [m["type"] for m in tail]))

# A client that goes away mid-run: the program ends with the session (the Rust test looks for
# the `sleep 600.5` afterwards).
with connect(URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"language": "bash", "code": "echo ready; sleep 600.5"}))
    until(ws, "ready\n")

# A session's calls: stdin into a command, its workspace kept for the next call, a signal the
# next call's program handles, and the session still there afterwards.
def api(method, path, body=None):
    request = urllib.request.Request(BASE + path, method=method, headers={
        **AUTH, "content-type": "application/json"},
        data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read()
        return json.loads(text) if text else None


session_id = api("POST", "/v1/sessions", {})["id"]
SESSION_URL = URL.replace("/v1/executions/connect", f"/v1/sessions/{session_id}/connect")
with connect(SESSION_URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"command": "read x; echo \"got $x\"; echo \"$x\" > kept.txt"}))
    ws.send(json.dumps({"type": "stdin", "data": "hello\n", "eof": True}))
    tail, closed = rest(ws)
outcome = [m["result"] for m in tail if m["type"] == "result"]
expect("a session's call takes stdin", closed[0] == 1000 and len(outcome) == 1
       and outcome[0]["stdout"] == "got hello\n", (closed, tail))
with connect(SESSION_URL, additional_headers=AUTH, open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"command": "cat kept.txt; trap 'echo caught; exit 4' INT; echo ready; "
                                   "while :; do sleep 0.05; done"}))
    until(ws, "ready\n")
    ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
    tail, closed = rest(ws)
outcome = [m["result"] for m in tail if m["type"] == "result"]
expect("the next call sees the workspace and handles SIGINT",
       len(outcome) == 1 and outcome[0]["outcome"] == {"kind": "exited", "code": 4}
       and outcome[0]["stdout"] == "hello\nready\ncaught\n", (closed, tail))
state = api("GET", f"/v1/sessions/{session_id}")
expect("the session lives on", state.get("state") == "running", state)
with connect(SESSION_URL.replace(session_id, "no-such-session"), additional_headers=AUTH,
             open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps({"command": "true"}))
    tail, closed = rest(ws)
expect("an unknown session is an error", [m["type"] for m in tail] == ["error"]
       and tail[0]["kind"] == "not_found", (closed, tail))
api("DELETE", f"/v1/sessions/{session_id}")

try:
    with connect(URL, open_timeout=10) as ws:
        refused = None
except InvalidStatus as e:
    refused = e.response.status_code
expect("no token: 401", refused == 401, refused)
