"""The official MCP Python SDK (pinned by scripts/mcp-clients.txt) cancels a tool call in
flight: it starts `run_code` with a program that sleeps far longer than this script waits,
waits until that program runs, abandons the call (the SDK then sends
`notifications/cancelled`), and watches for the program's process to go, the session still
open. Then it makes one more call, to see that the session goes on.

Usage: client_cancel.py stdio WARDEN SECONDS | client_cancel.py http URL TOKEN SECONDS.
SECONDS is how long the program sleeps (`sleep SECONDS`, its command line is how the script
finds it in /proc). Prints one JSON object of observations; crates/warden-cli/tests/mcp.rs
asserts on it.
"""

import json
import os
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# Bounds on a hang, well under the program's own sleep: not timing assertions.
START_BOUND = 60
GONE_BOUND = 25


def running(needle):
    """Whether a process whose command line is `needle` exists."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline == needle:
            return True
    return False


async def wait_for(condition, bound):
    """Polls `condition` until it holds or `bound` seconds pass; the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if condition():
            return round(time.monotonic() - start, 1)
        await anyio.sleep(0.2)
    return None


async def exercise(session, seconds):
    await session.initialize()
    needle = f"sleep {seconds}"
    code = f"{needle}; echo done"
    report = {}
    scope = anyio.CancelScope()

    async def call():
        with scope:
            result = await session.call_tool(
                "run_code",
                {"language": "bash", "code": code, "limits": {"wall_time": "60s"}},
            )
            report["answered"] = result.is_error

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        report["started_after"] = await wait_for(lambda: running(needle), START_BOUND)
        scope.cancel()
    report["cancelled"] = scope.cancelled_caught
    report["gone_after"] = await wait_for(lambda: not running(needle), GONE_BOUND)
    after = await session.call_tool("wc", {"text": "one two\n"})
    report["after"] = {"is_error": after.is_error}
    return report


async def main(argv):
    with anyio.fail_after(200):
        if argv[0] == "stdio":
            params = StdioServerParameters(
                command=argv[1], args=["mcp"], env=dict(os.environ)
            )
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    report = await exercise(session, argv[2])
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {"Authorization": f"Bearer {argv[2]}"}
            async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
                async with streamable_http_client(argv[1], http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        report = await exercise(session, argv[3])
    print(json.dumps(report))


anyio.run(main, sys.argv[1:])
