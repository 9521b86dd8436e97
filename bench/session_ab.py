"""The latency of a session's call, `POST /v1/sessions/{id}/exec {"command": "true"}`, in an
isolated (gVisor) session of each of two warden binaries (say, a build before a change and one
after), the calls alternating between them: docs/BENCHMARKS.md.

Usage: python3 bench/session_ab.py BEFORE_BINARY AFTER_BINARY CALLS   (as root)"""
import json, os, shutil, statistics, subprocess, sys, time, urllib.request, tempfile
WORKS = []


def start(binary):
    work = tempfile.mkdtemp()
    open(f"{work}/warden.toml", "w").write("[server]\nworkers = 2\n")
    env = dict(os.environ, WARDEN_CONFIG=f"{work}/warden.toml", WARDEN_DB=f"{work}/h.sqlite3", WARDEN_CACHE_DIR=f"{work}/cache", WARDEN_SESSIONS_DIR=f"{work}/sessions", WARDEN_VOLUMES_DIR=f"{work}/volumes")
    log = open(f"{work}/log", "w")
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], env=env, stderr=log)
    for _ in range(100):
        t = open(f"{work}/log").read()
        if "listening on http://" in t:
            WORKS.append(work)
            return p, t.split("listening on http://")[1].split()[0]
        time.sleep(0.1)
    raise SystemExit(open(f"{work}/log").read())
def post(addr, path, body):
    req = urllib.request.Request(f"http://{addr}{path}", json.dumps(body).encode(), {"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=60).read())
servers = {name: start(b) for name, b in (("before", sys.argv[1]), ("after", sys.argv[2]))}
ids = {name: post(a, "/v1/sessions", {"mode": "isolated"})["id"] for name, (_, a) in servers.items()}
times = {name: [] for name in servers}
N = int(sys.argv[3])
for i in range(N + 5):
    for name in (("before", "after") if i % 2 else ("after", "before")):
        _, a = servers[name]
        t = time.perf_counter()
        r = post(a, f"/v1/sessions/{ids[name]}/exec", {"command": "true"})
        assert r["outcome"] == {"kind": "exited", "code": 0}, r
        if i >= 5:
            times[name].append((time.perf_counter() - t) * 1000)
for name, ts in times.items():
    print(f"{name}: median {statistics.median(ts):.1f} ms, mean {statistics.mean(ts):.1f}, min {min(ts):.1f}")
ratios = [a / b for a, b in zip(times["after"], times["before"])]
print(f"after/before, median of pairs: {statistics.median(ratios):.3f}")
for name, (p, a) in servers.items():
    try: urllib.request.urlopen(urllib.request.Request(f"http://{a}/v1/sessions/{ids[name]}", method="DELETE"), timeout=30)
    except Exception as e: print(e)
    p.terminate(); p.wait()
for work in WORKS:
    shutil.rmtree(work, ignore_errors=True)
