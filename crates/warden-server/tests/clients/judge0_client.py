#!/usr/bin/env python3
"""End-to-end check of warden's Judge0 CE API with the official `judge0` SDK (0.0.8), unchanged.

Usage: judge0_client.py BASE_URL   (e.g. http://127.0.0.1:2358)

Every language through the SDK (each one is a batch of test cases: accepted and wrong answer),
compiler options, additional files, a compile error, a time limit, then what the SDK does not
reach, over plain HTTP: wait=true, base64, fields, the memory limit's exact outcome, deflated
and hostile archives, refused compiler options. Exits non-zero with a message on the first
failure."""

import base64
import io
import json
import sys
import zipfile
import urllib.error
import urllib.request

import judge0
from judge0 import Client, File, Filesystem, LanguageAlias, Status
from judge0.retry import MaxWaitTime

from programs import BROKEN_C, HELLO

# Prints the ANSWER macro, which only compiler options define.
ANSWER_C = "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", ANSWER); return 0; }\n"

ALIAS = {
    "python": LanguageAlias.PYTHON,
    "c": LanguageAlias.C,
    "cpp": LanguageAlias.CPP,
    "java": LanguageAlias.JAVA,
    "javascript": LanguageAlias.JAVASCRIPT,
    "go": LanguageAlias.GO,
    "rust": LanguageAlias.RUST,
    "ruby": LanguageAlias.RUBY,
    "php": LanguageAlias.PHP,
    "r": LanguageAlias.R,
    "bash": LanguageAlias.BASH,
}


def check(condition, what):
    if not condition:
        sys.exit(f"judge0_client: FAILED: {what}")
    print(f"judge0_client: ok: {what.splitlines()[0][:100]}")


def http(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main(base):
    # Compiles and JVM starts take longer than the SDK's default 2 s of polling.
    client = Client(base, retry_strategy=MaxWaitTime(max_wait_time_sec=300))
    check(client.version == "1.13.1", f"about.version is 1.13.1: {client.version}")

    for language, code in HELLO.items():
        cases = [("world", "hello world"), ("warden", "hello warden"), ("x", "hello y")]
        results = judge0.run(client=client, source_code=code, language=ALIAS[language],
                             test_cases=cases)
        statuses = [r.status for r in results]
        want = [Status.ACCEPTED, Status.ACCEPTED, Status.WRONG_ANSWER]
        details = [(r.status, r.stdout, r.stderr, r.compile_output, r.message) for r in results]
        check(statuses == want, f"{language}: test cases accepted, accepted, wrong answer: {details}")
        check(results[0].stdout == "hello world\n", f"{language}: stdout {results[0].stdout!r}")

    broken = judge0.run(client=client, source_code=BROKEN_C, language=LanguageAlias.C)
    check(broken.status == Status.COMPILATION_ERROR and "undefined_name" in (broken.compile_output or ""),
          f"C compile error: {broken.status} {broken.compile_output!r}")
    # Nothing ran: as Judge0, no time, memory or output of a run.
    unmeasured = (broken.time, broken.wall_time, broken.memory, broken.stdout, broken.exit_code)
    check(unmeasured == (None, None, None, None, None), f"C compile error measured: {unmeasured}")

    # Judge0 passes compiler_options to the compiler; warden admits the language's own list.
    answer = judge0.run(client=client, source_code=ANSWER_C, language=LanguageAlias.C,
                        compiler_options="-DANSWER=42 -O0")
    check(answer.status == Status.ACCEPTED and answer.stdout == "42\n",
          f"compiler options: {answer.status} {answer.stdout!r} {answer.compile_output!r}")

    # additional_files: a module and a data file beside the program (the SDK zips them).
    files = Filesystem(content=[File(name="helper.py", content="def twice(x):\n    return 2 * x\n"),
                                File(name="data/n.txt", content="21")])
    multi = judge0.run(client=client, language=LanguageAlias.PYTHON, additional_files=files,
                       source_code="import helper\nprint(helper.twice(int(open('data/n.txt').read())))\n")
    check(multi.status == Status.ACCEPTED and multi.stdout == "42\n",
          f"additional files: {multi.status} {multi.stdout!r} {multi.stderr!r}")

    # As Judge0, gcc compiles main.c alone: a .c file among the additional files is there to be
    # included (compiled as well, its definitions would be duplicates at link time).
    files = Filesystem(content=[File(name="util.c", content="int twice(int x) { return 2 * x; }\n")])
    included = judge0.run(client=client, language=LanguageAlias.C, additional_files=files,
                          source_code='#include <stdio.h>\n#include "util.c"\n'
                                      'int main(void) { printf("%d\\n", twice(21)); return 0; }\n')
    check(included.status == Status.ACCEPTED and included.stdout == "42\n",
          f"main.c alone: {included.status} {included.stdout!r} {included.compile_output!r}")

    slow = judge0.run(client=client, source_code="while True:\n    pass\n",
                      language=LanguageAlias.PYTHON, cpu_time_limit=1, wall_time_limit=3)
    check(slow.status == Status.TIME_LIMIT_EXCEEDED, f"time limit: {slow.status}")
    # As Judge0: isolate's message (base64, as the SDK asks, and leaves it), exit code 0 for a
    # killed run, nothing written is None.
    shape = (base64.b64decode(slow.message or ""), slow.exit_code, slow.stdout, slow.stderr)
    check(shape == (b"Time limit exceeded", 0, None, None), f"time limit's shape: {shape}")

    raw(base)
    print("judge0_client: all passed")


def raw(base):
    """What the SDK does not exercise: wait=true, base64 both ways, fields, exact outcomes."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    status, body = http(base, "POST", "/submissions?base64_encoded=true&wait=true&fields=stdout,status,warden,time,memory",
                        {"language_id": 71, "source_code": b64("print(input()[::-1])"), "stdin": b64("abc")})
    check(status == 201 and base64.b64decode(body["stdout"]) == b"cba\n" and body["status"]["id"] == 3,
          f"wait=true with base64: {status} {body}")
    check(isinstance(body["time"], str) and isinstance(body["memory"], int), f"units: {body}")

    # number_of_runs: three runs (each in a fresh sandbox), all accepted so the last one shown,
    # times averaged; the first that fails stops them and is shown, as Judge0 does.
    status, body = http(base, "POST", "/submissions?wait=true&fields=stdout,status,warden,time",
                        {"language_id": 46, "source_code": "echo again", "number_of_runs": 3})
    check(status == 201 and body["stdout"] == "again\n" and body["status"]["id"] == 3
          and body["warden"]["runs"] == 3, f"number_of_runs: {status} {body}")
    status, body = http(base, "POST", "/submissions?wait=true&fields=stdout,status,warden",
                        {"language_id": 46, "source_code": "echo once; exit 4", "number_of_runs": 3})
    check(status == 201 and body["stdout"] == "once\n" and body["status"]["id"] == 11
          and body["warden"]["runs"] == 1, f"number_of_runs, failing: {status} {body}")
    status, body = http(base, "POST", "/submissions", {"language_id": 46, "source_code": "true", "number_of_runs": 21})
    check(status == 422 and body.get("number_of_runs") == ["must be less than or equal to 20"],
          f"number_of_runs above 20: {status} {body}")

    # cpu_extra_time, as isolate's -x: killed later, judged against the limit asked for. Half a
    # second of cpu against 0.2 s plus 2 s extra: it finishes, and is a Time Limit Exceeded.
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    pass\nprint('done')\n"
    status, body = http(base, "POST", "/submissions?wait=true&fields=stdout,status,warden,time",
                        {"language_id": 71, "source_code": spin, "cpu_time_limit": 0.2, "cpu_extra_time": 2})
    check(status == 201 and body["status"]["id"] == 5 and body["stdout"] == "done\n"
          and float(body["time"]) >= 0.5 and body["warden"]["outcome"]["kind"] == "exited",
          f"cpu_extra_time: {status} {body}")

    memory = {"language_id": 71, "source_code": "x = 'a' * (400 * 1024 * 1024)\n", "memory_limit": 65536}
    status, body = http(base, "POST", "/submissions?wait=true&fields=status,warden", memory)
    check(status == 201 and body["status"]["id"] == 12 and body["warden"]["outcome"]["kind"] == "memory_limit",
          f"memory limit is Runtime Error (Other), exactly memory_limit: {status} {body}")

    status, body = http(base, "POST", "/submissions?wait=true",
                        {"language_id": 71, "source_code": "import sys; sys.stdout.buffer.write(b'\\xff')"})
    check(status == 201 and "use base64_encoded=true" in body.get("error", ""), f"invalid UTF-8: {status} {body}")

    for options, language, want in [("-fplugin=x.so", 50, "-fplugin=x.so is not an allowed compiler option"),
                                    ("-O2", 71, "setting compiler options is only allowed for compiled languages")]:
        status, body = http(base, "POST", "/submissions", {"language_id": language, "source_code": "1",
                                                           "compiler_options": options})
        check(status == 422 and want in " ".join(body.get("compiler_options", [])),
              f"compiler_options {options!r} for {language}: {status} {body}")

    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("words.txt", "warden " * 1000)
    archive = base64.b64encode(deflated.getvalue()).decode()
    status, body = http(base, "POST", "/submissions?wait=true",
                        {"language_id": 46, "source_code": "wc -w < words.txt", "additional_files": archive})
    check(status == 201 and body["stdout"] == "1000\n", f"deflated additional files: {status} {body}")
    # The multi-file program (89): the archive's compile script, then its run script, in one
    # workspace; a failing compile script is a Compilation Error with its output.
    def project(files):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, text in files.items():
                z.writestr(name, text)
        return base64.b64encode(buffer.getvalue()).decode()
    fields = "/submissions?wait=true&fields=stdout,compile_output,status"
    status, body = http(base, "POST", fields, {"language_id": 89, "additional_files": project({
        "main.c": '#include <stdio.h>\nint main(void) { printf("%d\\n", 6 * 7); return 0; }\n',
        "compile": "gcc -O2 -o prog main.c\n", "run": "./prog\n"})})
    check(status == 201 and body["stdout"] == "42\n" and body["status"]["id"] == 3, f"multi-file program: {status} {body}")
    status, body = http(base, "POST", fields, {"language_id": 89, "additional_files": project({
        "compile": "echo broken >&2; exit 3\n", "run": "echo never\n"})})
    check(status == 201 and body["status"]["id"] == 6 and body["compile_output"] == "broken\n" and not body["stdout"],
          f"multi-file compile error: {status} {body}")
    for body, want in [({"language_id": 89, "source_code": "echo", "additional_files": project({"run": "true"})},
                        {"source_code": ["must be blank"]}),
                       ({"language_id": 89, "additional_files": project({"other": "true"})},
                        {"additional_files": ['must contain a "run" script']})]:
        status, answer = http(base, "POST", "/submissions", body)
        check(status == 422 and answer == want, f"multi-file validation: {status} {answer}")
    status, body = http(base, "GET", "/languages/89", None)
    check(status == 200 and body["run_cmd"] == "/bin/bash run" and body["name"] == "Multi-file program",
          f"language 89: {status} {body}")
    # A submission's `language` is named as /languages names its id.
    _, listed = http(base, "GET", "/languages", None)
    names = {entry["id"]: entry["name"] for entry in listed}
    status, body = http(base, "POST", "/submissions?wait=true&fields=language",
                        {"language_id": 71, "source_code": "print(1)"})
    check(status == 201 and body["language"] == {"id": 71, "name": names[71]}, f"language: {status} {body}")

    slip = io.BytesIO()
    with zipfile.ZipFile(slip, "w") as z:
        z.writestr("../escape.txt", "x")
    for archive, want in [(base64.b64encode(slip.getvalue()).decode(), "not a relative path inside the program"),
                          (base64.b64encode(b"not a zip").decode(), "is not a zip archive")]:
        status, body = http(base, "POST", "/submissions", {"language_id": 46, "source_code": "true",
                                                           "additional_files": archive})
        check(status == 422 and want in " ".join(body.get("additional_files", [])),
              f"additional_files {want}: {status} {body}")

    # stack_limit is enforced: recursion 40 MiB deep fits Judge0's default stack, not 8000 KB.
    deep = ("#include <stdio.h>\nstatic int down(int n) { volatile char f[1000]; f[n % 1000] = (char)n;\n"
            "return n == 0 ? 0 : down(n - 1) + f[n % 1000] - (char)n + 1; }\n"
            "int main(void) { printf(\"%d\\n\", down(40000)); return 0; }\n")
    for stack, want in [(None, 3), (8000, 7)]:  # 7: Runtime Error (SIGSEGV)
        submission = {"language_id": 50, "source_code": deep}
        if stack:
            submission["stack_limit"] = stack
        status, body = http(base, "POST", "/submissions?wait=true", submission)
        check(status == 201 and body["status"]["id"] == want, f"stack_limit {stack}: {status} {body}")

    # redirect_stderr_to_stdout: one stream, in the order the program wrote it.
    interleaved = "import sys\nprint(1, flush=True)\nprint(2, file=sys.stderr, flush=True)\nprint(3)\n"
    status, body = http(base, "POST", "/submissions?wait=true",
                        {"language_id": 71, "source_code": interleaved, "redirect_stderr_to_stdout": True})
    check(status == 201 and body["stdout"] == "1\n2\n3\n" and not body["stderr"],
          f"redirect_stderr_to_stdout: {status} {body}")

    status, body = http(base, "GET", "/submissions/batch?tokens=nope")
    check(status == 200 and body == {"submissions": [None]}, f"unknown token in a batch: {body}")
    status, body = http(base, "POST", "/submissions?fields=nope", {"language_id": 71, "source_code": "1"})
    check(status == 400 and body == {"error": "invalid fields: [nope]"}, f"unknown field: {status} {body}")
    status, body = http(base, "POST", "/submissions", {"language_id": 4242, "source_code": "1"})
    check(status == 422 and body["language_id"] == ["language with id 4242 doesn't exist"],
          f"unknown language: {status} {body}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1].rstrip("/"))
