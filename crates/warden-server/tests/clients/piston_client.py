#!/usr/bin/env python3
"""End-to-end check of warden's Piston v2 API with the `pistonapi` client (1.0.1), unchanged.

Usage: piston_client.py BASE_URL   (e.g. http://127.0.0.1:2358; the client gets BASE_URL/api/v2)

Every language through the client (its runtimes, then a run with stdin), a compile error, then
over plain JSON what the client does not show: the stages, a time limit's status, validation
messages. Exits non-zero with a message on the first failure."""

import json
import sys
import urllib.error
import urllib.request

from pistonapi import PistonAPI
from pistonapi.exceptions import PistonError

from programs import BROKEN_C, HELLO

# Piston's names for warden's languages (what clients written for Piston send).
PISTON = {"python": "python", "c": "c", "cpp": "c++", "java": "java", "javascript": "javascript",
          "go": "go", "rust": "rust", "ruby": "ruby", "php": "php", "r": "rscript", "bash": "bash"}


def check(condition, what):
    if not condition:
        sys.exit(f"piston_client: FAILED: {what}")
    print(f"piston_client: ok: {what.splitlines()[0][:100]}")


def execute(base, body):
    request = urllib.request.Request(base + "/api/v2/execute", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main(base):
    piston = PistonAPI(endpoint=base + "/api/v2")
    runtimes = piston.runtimes
    for language, name in PISTON.items():
        check(name in runtimes, f"runtime {name} listed: {sorted(runtimes)}")
        output = piston.execute(name, runtimes[name]["version"], HELLO[language], stdin="piston")
        check(output == "hello piston\n", f"{name}: output {output!r}")

    output = piston.execute("c", "*", BROKEN_C)
    check("undefined_name" in output, f"compile error reaches run.output: {output!r}")
    try:
        piston.execute("cobol", "*", "x")
        check(False, "an unknown language is refused")
    except PistonError as e:
        check(str(e) == "cobol-* runtime is unknown", f"unknown runtime message: {e}")

    status, body = execute(base, {"language": "c++", "version": "*", "files": [{"content": HELLO["cpp"]}],
                                  "stdin": "json"})
    check(status == 200 and body["compile"]["code"] == 0 and body["run"]["stdout"] == "hello json\n",
          f"compiled stages: {status} {body}")
    status, body = execute(base, {"language": "python", "version": "3.x", "run_timeout": 1000,
                                  "files": [{"content": "import time\ntime.sleep(5)\n"}]})
    check(status == 200 and body["run"]["status"] == "TO" and body["run"]["signal"] == "SIGKILL",
          f"timeout: {status} {body}")
    # The compile stage's own limits: no C++ compiles in 20 ms of wall time (a program of its
    # own, which the compile cache cannot hold yet).
    uncached = HELLO["cpp"] + "// compile_timeout\n"
    status, body = execute(base, {"language": "c++", "version": "*", "files": [{"content": uncached}],
                                  "compile_timeout": 20})
    check(status == 200 and body["compile"]["status"] == "TO" and body["compile"]["signal"] == "SIGKILL"
          and "run" in body and body["run"]["status"] == "TO",
          f"compile_timeout: {status} {body}")
    # `output` is both streams in the order they were written (the pauses put each write in
    # a read of its own), as Piston appends each chunk as it arrives.
    interleaved = "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 0.1; echo four >&2"
    status, body = execute(base, {"language": "bash", "version": "*", "files": [{"content": interleaved}]})
    check(status == 200 and body["run"]["output"] == "one\ntwo\nthree\nfour\n"
          and body["run"]["stdout"] == "one\nthree\n" and body["run"]["stderr"] == "two\nfour\n",
          f"interleaved output: {status} {body}")
    status, body = execute(base, {"language": "python", "version": "*", "files": "nope"})
    check(status == 400 and body == {"message": "files is required as an array"}, f"validation: {body}")
    print("piston_client: all passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1].rstrip("/"))
