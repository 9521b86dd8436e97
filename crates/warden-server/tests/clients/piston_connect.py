"""Piston's interactive WebSocket (`/api/v2/connect`) with a real WebSocket client, the
`websockets` package (pinned in scripts/test-clients.txt); run by
crates/warden-cli/tests/piston_connect.rs.

Usage: piston_connect.py BASE_URL TOKEN

The sessions of docs/compat.md: init, stdin, end of transmission, then runtime, stage, data and
exit messages and close 4999; no init within a second closes 4001; data before init 4003; a
message that is not JSON an error and 4002; SIGKILL ends the job with that signal, reported as the end of a stage the language has,
after its `stage` message; SIGINT
reaches the program, which handles it; an interactive session, each line answered before the next is written; a program killed by a
signal reports it. Exits 1 at the first broken expectation.
"""

import json
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wsclient import expect

BASE, TOKEN = sys.argv[1], sys.argv[2]
URL = BASE.replace("http://", "ws://", 1) + "/api/v2/connect"
assert URL.startswith("ws://127.0.0.1:"), "loopback only"


def session(messages, timeout=30):
    """Sends `messages` in order, then reads until the server closes; returns what it sent
    and the close frame (code, reason)."""
    received = []
    with connect(URL, additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 open_timeout=10, close_timeout=10) as ws:
        for message in messages:
            ws.send(json.dumps(message))
        try:
            while True:
                received.append(json.loads(ws.recv(timeout=timeout)))
        except ConnectionClosed:
            pass
        return received, (ws.close_code, ws.close_reason)


def drain(ws, received):
    """Appends every message to `received` until the server closes; the close frame."""
    try:
        while True:
            received.append(json.loads(ws.recv(timeout=30)))
    except ConnectionClosed:
        pass
    return (ws.close_code, ws.close_reason)


def init(code, language="bash"):
    return {"type": "init", "language": language, "version": "*",
            "files": [{"content": code}]}


EOT = "\u0004"

# A whole session: stdin in two messages, then end of transmission.
received, close = session([
    init("read a; read b; echo \"$a-$b\"; echo err >&2; exit 3"),
    {"type": "data", "stream": "stdin", "data": "one\n"},
    {"type": "data", "stream": "stdin", "data": "two\n" + EOT},
])
kinds = [m["type"] for m in received]
expect("the session's close", close == (4999, "Job Completed"), close)
expect("runtime first", kinds[:1] == ["runtime"] and received[0]["language"] == "bash", received)
expect("a run stage", {"type": "stage", "stage": "run"} in received, received)
stdout = "".join(m["data"] for m in received if m["type"] == "data" and m["stream"] == "stdout")
stderr = "".join(m["data"] for m in received if m["type"] == "data" and m["stream"] == "stderr")
expect("stdout from the stdin messages", stdout == "one-two\n", repr(stdout))
expect("stderr", stderr == "err\n", repr(stderr))
exits = [m for m in received if m["type"] == "exit"]
expect("the exit code", len(exits) == 1 and exits[0]["code"] == 3 and exits[0]["signal"] is None,
       exits)
expect("exit last", kinds[-1] == "exit", kinds)

# A character the program writes in two pieces arrives whole (a read of the pipe may end
# inside it); an invalid byte and a character never completed are U+FFFD.
received, close = session([
    init("printf '\\303'; sleep 0.2; printf '\\251 \\342\\202'; sleep 0.2; "
         "printf '\\254 \\377\\n\\360\\237'" + "\n"),
    {"type": "data", "stream": "stdin", "data": EOT},
])
stdout = "".join(m["data"] for m in received if m["type"] == "data" and m["stream"] == "stdout")
expect("characters cut by reads arrive whole", stdout == "\u00e9 \u20ac \ufffd\n\ufffd",
       repr(stdout))

# No init: closed with 4001 after Piston's one second.
received, close = session([], timeout=20)
expect("no init closes 4001", close == (4001, "Initialization Timeout") and received == [],
       (close, received))

# Data before init: 4003.
received, close = session([{"type": "data", "stream": "stdin", "data": "x"}])
expect("data before init closes 4003", close == (4003, "Not yet Initialized"), (close, received))

# Bug hunt: a message that is not JSON, before init or after it, is an `error` message and
# 4002, as Piston answers what its parser refuses (it was closed 4003 before init, and passed
# over after it, leaving the program waiting for its time limit).
def raw_session(texts, timeout=30):
    received = []
    with connect(URL, additional_headers={"Authorization": f"Bearer {TOKEN}"},
                 open_timeout=10, close_timeout=10) as ws:
        for text in texts:
            ws.send(text)
        return received, drain(ws, received)


received, close = raw_session(["not json"])
expect("not JSON before init: error, then 4002",
       close == (4002, "Notified Error") and [m["type"] for m in received] == ["error"]
       and "not JSON" in received[0]["message"], (close, received))
received, close = raw_session([json.dumps(init("read x; echo never")), "{oops"])
expect("not JSON after init: error, then 4002",
       close == (4002, "Notified Error") and received[-1]["type"] == "error"
       and not [m for m in received if m["type"] == "data"], (close, received))
# A message of another type before init is passed over; init still runs the program.
received, close = session([{"type": "hello"}, init("echo hi"),
                           {"type": "data", "stream": "stdin", "data": EOT}])
stdout = "".join(m["data"] for m in received if m["type"] == "data" and m["stream"] == "stdout")
expect("an unknown type before init is passed over",
       close == (4999, "Job Completed") and stdout == "hi\n", (close, received))

# A signal message ends the job at once, with that signal (the program sleeps before it
# writes anything).
received, close = session([init("sleep 5; echo never"), {"type": "signal", "signal": "SIGKILL"}])
exits = [m for m in received if m["type"] == "exit"]
expect("a signal message ends the job", close == (4999, "Job Completed")
       and len(exits) == 1 and exits[0]["signal"] == "SIGKILL", (close, received))
expect("nothing ran", not [m for m in received if m["type"] == "data"], received)
# Hunt compat 7: the `exit` of a job killed for a signal carries the `warden` object every
# other `exit` has: the job was cancelled where it was, as the history records it.
expect("a killed job's exit says its outcome",
       exits[0].get("warden") == {"outcome": {"kind": "cancelled"}}, exits)
# Hunt compat 7: a `data` message without a string `data` was passed over; Piston's write of
# it throws, which it answers with an `error` message and 4002.
for message in [{"type": "data", "stream": "stdin"},
                {"type": "data", "stream": "stdin", "data": 5}]:
    received, close = session([init("read x; echo never"), message])
    expect(f"{message}: error, then 4002",
           close == (4002, "Notified Error") and received[-1]["type"] == "error"
           and not [m for m in received if m["type"] == "data"], (close, received))

# Bug hunt, Piston's order: a signal that ends the job before its run started is the end of
# a stage the language has, announced by its `stage` message first: the run for an
# interpreted language (python compiles nothing), the compile stage for C killed while it
# compiles.
for language, code, stage in [
        ("python", "print('never')", "run"),
        ("c", "#include <stdio.h>\nint main(void){puts(\"never\"); return 0;}\n", "compile")]:
    received, close = session([init(code, language=language),
                               {"type": "signal", "signal": "SIGKILL"}])
    expect(f"{language}: stage, then its exit, when killed before the run",
           [m["type"] for m in received] == ["runtime", "stage", "exit"]
           and received[1]["stage"] == stage and received[2]["stage"] == stage
           and received[2]["signal"] == "SIGKILL" and close == (4999, "Job Completed"),
           (close, received))

# Interactive: each line is answered before the next is sent, so the program runs while the
# client writes, and its output comes back as it is produced.
with connect(URL, additional_headers={"Authorization": f"Bearer {TOKEN}"},
             open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps(init("while read l; do echo \"got $l\"; done; echo bye")))
    answers = []
    for line in ["a", "b", "c"]:
        ws.send(json.dumps({"type": "data", "stream": "stdin", "data": line + "\n"}))
        text = ""
        while not text.endswith("got %s\n" % line):
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "data" and message["stream"] == "stdout":
                text += message["data"]
        answers.append(text)
    ws.send(json.dumps({"type": "data", "stream": "stdin", "data": EOT}))
    rest = []
    closed = drain(ws, rest)
expect("each line answered before the next is sent", answers == ["got a\n", "got b\n", "got c\n"],
       answers)
tail = "".join(m["data"] for m in rest if m["type"] == "data" and m["stream"] == "stdout")
exits = [m for m in rest if m["type"] == "exit"]
expect("end of transmission ends the loop", tail == "bye\n" and closed == (4999, "Job Completed")
       and len(exits) == 1 and exits[0]["code"] == 0, (tail, closed, rest))

# A compiled language: the compile stage is reported whole, then the run streams.
received, close = session([
    init("#include <stdio.h>\nint main(void){char s[32]; if (fgets(s, sizeof s, stdin)) printf(\"c:%s\", s); return 0;}\n",
         language="c"),
    {"type": "data", "stream": "stdin", "data": "hi\n" + EOT},
])
stages_seen = [m["stage"] for m in received if m["type"] == "stage"]
exits = [(m["stage"], m["code"]) for m in received if m["type"] == "exit"]
stdout = "".join(m["data"] for m in received if m["type"] == "data" and m["stream"] == "stdout")
expect("compile then run", stages_seen == ["compile", "run"] and exits == [("compile", 0), ("run", 0)]
       and stdout == "c:hi\n" and close == (4999, "Job Completed"), (received, close))

# SIGINT (as SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) reaches the program, which handles it
# and goes on to its own end; the exit reports that end.
with connect(URL, additional_headers={"Authorization": f"Bearer {TOKEN}"},
             open_timeout=10, close_timeout=10) as ws:
    ws.send(json.dumps(init("trap 'echo caught; exit 5' INT; echo ready; "
                            "while :; do sleep 0.05; done")))
    messages = []
    while not any(m["type"] == "data" and "ready" in m["data"] for m in messages):
        messages.append(json.loads(ws.recv(timeout=30)))
    ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
    closed = drain(ws, messages)
stdout = "".join(m["data"] for m in messages if m["type"] == "data" and m["stream"] == "stdout")
exits = [m for m in messages if m["type"] == "exit"]
expect("a handled SIGINT", stdout == "ready\ncaught\n" and closed == (4999, "Job Completed")
       and len(exits) == 1 and exits[0]["code"] == 5 and exits[0]["signal"] is None,
       (closed, messages))

# A program killed by a signal reports it.
received, close = session([init("kill -TERM $$"), {"type": "data", "stream": "stdin",
                                                    "data": EOT}])
exits = [m for m in received if m["type"] == "exit"]
expect("a killed program's signal", close == (4999, "Job Completed") and len(exits) == 1
       and exits[0]["signal"] == "SIGTERM" and exits[0]["code"] is None, (close, received))

# A second init: 4000.
received, close = session([init("echo x"), init("echo y")])
expect("a second init closes 4000", close[0] == 4000, (close, received))
