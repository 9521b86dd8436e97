"""The measurements of bench/batch.sh: many short python programs through the CLI, the way an
evaluation harness runs them, next to the bare interpreter and to bubblewrap.

Usage: [BATCH_REUSE=N] python3 batch.py WARDEN PY HUMANEVAL_JSONL_GZ ROUNDS HELLO_RUNS [SERVER_URL]

Each round runs, for each way in a rotating order (bare, `warden run`, bwrap, `warden batch`:
one process for all the programs of a task, with as many workers, and with a SERVER_URL `warden serve`: `POST /v1/executions?wait=true` on one keep-alive connection per
worker, and `warden run --server`: the CLI, one process a program, through that server):
- the 164 HumanEval programs (prompt, canonical solution, the problem's tests and its `check`
  call) one after another, then with two workers;
- HELLO_RUNS python hellos with two workers.
Every process is started with an empty environment and no shell. A ratio is the median over the
rounds of a way's time over the bare time of the same round, so that the machine's drift falls
on all of them alike. Every program must exit 0 every way: a failure stops the run with its
output. Prints a markdown table."""

import gzip
import http.client
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

WARDEN, PY, DATA, ROUNDS, HELLO_RUNS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(
    sys.argv[5])
SERVER = urllib.parse.urlparse(sys.argv[6]).netloc if len(sys.argv) > 6 else None
# `warden batch --reuse`: 1 (a fresh sandbox per program) unless BATCH_REUSE says.
BATCH_REUSE = os.environ.get("BATCH_REUSE", "1")

# As bench/startup.sh: every namespace, a read-only /usr, fresh /dev, /proc, tmpfs /tmp and
# /work, a cleared environment; no cgroup, seccomp filter, rlimits or output cap.
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
         "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
         "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
         "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/work",
         "--chdir", "/work", "--clearenv", "--setenv", "PATH", "/usr/bin"]


def programs(directory):
    """Writes the HumanEval programs into `directory`; returns their paths."""
    paths = []
    with gzip.open(DATA, "rt") as lines:
        for line in lines:
            problem = json.loads(line)
            source = (problem["prompt"] + problem["canonical_solution"] + "\n\n" + problem["test"]
                      + f"\n\ncheck({problem['entry_point']})\n")
            path = os.path.join(directory, problem["task_id"].replace("/", "_") + ".py")
            with open(path, "w") as f:
                f.write(source)
            paths.append(path)
    return paths


def process(argv, env=None):
    """Runs `argv` to its end; stops everything unless it exited 0."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env or {})
    if done.returncode != 0:
        sys.exit(f"error: {shlex.join(argv)} exited {done.returncode}:\n"
                 f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}")


connections = threading.local()


def served(path):
    """Runs the program at `path` through the server, on this thread's connection (a new one
    after a pause: the server closes idle connections while the other ways run)."""
    now = time.monotonic()
    if now - getattr(connections, "used", -1e9) > 1.0:
        if hasattr(connections, "conn"):
            connections.conn.close()
        connections.conn = http.client.HTTPConnection(SERVER, timeout=120)
    connections.used = now
    with open(path) as f:
        body = json.dumps({"language": "python", "code": f.read()})
    connections.conn.request("POST", "/v1/executions?wait=true", body,
                             {"content-type": "application/json"})
    response = connections.conn.getresponse()
    result = json.loads(response.read())
    if response.status != 200 or result.get("outcome") != {"kind": "exited", "code": 0}:
        sys.exit(f"error: {path} through the server: {response.status} {result}")


class Whole:
    """A way that runs all the programs of a task in one command, given the paths and the
    number of workers."""

    def __init__(self, run):
        self.run = run


def batch(paths, workers, db):
    """`warden batch` over `paths`; stops everything unless each program exited 0."""
    argv = [WARDEN, "batch", "-j", str(workers), "--reuse", BATCH_REUSE, "-l", "python", *paths]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          env={"WARDEN_DB": db})
    lines = done.stdout.decode(errors="replace").splitlines()
    good = [json.loads(line).get("result", {}).get("outcome") == {"kind": "exited", "code": 0}
            for line in lines]
    if done.returncode != 0 or len(good) != len(paths) or not all(good):
        sys.exit(f"error: warden batch exited {done.returncode}:\n"
                 f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}")


def ways(db):
    """name -> function running the program at a path, one way."""
    found = {
        "bare": lambda path: process([PY, path]),
        "warden run": lambda path: process([WARDEN, "run", "-l", "python", path],
                                           {"WARDEN_DB": db}),
        "bwrap": lambda path: process([*BWRAP, "--ro-bind", path, "/work/main.py", PY,
                                       "/work/main.py"]),
        "warden batch": Whole(lambda paths, workers: batch(paths, workers, db)),
    }
    if SERVER:
        found["warden serve"] = served
        found["warden run --server"] = lambda path: process(
            [WARDEN, "run", "--server", f"http://{SERVER}", "-l", "python", path])
    return found


def timed(run, paths, workers):
    start = time.perf_counter()
    if isinstance(run, Whole):
        run.run(paths, workers)
    elif workers == 1:
        for path in paths:
            run(path)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, paths))
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as work:
        paths = programs(work)
        hello = os.path.join(work, "hello.py")
        with open(hello, "w") as f:
            f.write('print("hello")\n')
        how = ways(os.path.join(work, "history.sqlite3"))
        tasks = {
            f"HumanEval, {len(paths)} programs, sequential (s)": (paths, 1),
            f"HumanEval, {len(paths)} programs, 2 workers (s)": (paths, 2),
            f"python hello × {HELLO_RUNS}, 2 workers (s)": ([hello] * HELLO_RUNS, 2),
        }
        names = list(how)
        # One warm-up pass of everything: the page cache, the server's pool.
        for name in names:
            timed(how[name], paths + [hello], 2)
        times = {(task, name): [] for task in tasks for name in names}
        for round_ in range(ROUNDS):
            shift = round_ % len(names)
            for task, (files, workers) in tasks.items():
                for name in names[shift:] + names[:shift]:
                    times[(task, name)].append(timed(how[name], files, workers))
            print(f"round {round_ + 1} of {ROUNDS} done", file=sys.stderr)

    others = names[1:]
    print("| Task | " + " | ".join(names) + " | " + " | ".join(f"{n} × bare" for n in others)
          + " |")
    print("|---|" + "---:|" * (len(names) + len(others)))
    for task in tasks:
        median = [statistics.median(times[(task, name)]) for name in names]
        ratio = [statistics.median(a / b for a, b in zip(times[(task, name)],
                                                         times[(task, "bare")]))
                 for name in others]
        print(f"| {task} | " + " | ".join(f"{m:.2f}" for m in median) + " | "
              + " | ".join(f"{r:.2f}×" for r in ratio) + " |")


main()
