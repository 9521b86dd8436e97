"""The official MCP Python SDK (pinned by scripts/mcp-clients.txt) launches
`warden mcp wrap demo --network limited_access ... -- PYTHON wrapped_server.py` and calls the
wrapped server's tools: an ordinary call, reads of files outside what the sandbox shows, then a
connection its policy denies, after which the server is stopped and every call fails.

Usage: client_wrapped.py WARDEN SERVER_DIR SECRET HOST PORT STATUS_FILE. The world's variables
come in the environment. `warden mcp wrap` runs under a shell that writes its exit status to
STATUS_FILE. Prints one JSON object of observations; crates/warden-cli/tests/mcp.rs asserts on
it.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

VENV = "/opt/warden-mcp-venv"


def text_of(result):
    return "".join(getattr(part, "text", "") for part in result.content)


async def call(session, tool, arguments):
    """A call's result, or the JSON-RPC error the SDK raised for it."""
    try:
        with anyio.fail_after(60):
            result = await session.call_tool(tool, arguments)
        return {"is_error": result.is_error, "text": text_of(result)}
    except MCPError as e:
        return {"raised": True, "code": e.code, "message": e.message}


async def main(warden, server_dir, secret, host, port, status_file):
    wrap = ["mcp", "wrap", "demo", "--network", "limited_access"]
    wrap += ["--read-only", VENV, "--read-only", server_dir, "--"]
    wrap += [f"{VENV}/bin/python3", os.path.join(server_dir, "wrapped_server.py")]
    # The shell records how `warden mcp wrap` ended, which the SDK does not tell.
    script = '"$0" "$@"; echo $? > "$WARDEN_TEST_STATUS"'
    params = StdioServerParameters(
        command="/bin/sh",
        args=["-c", script, warden, *wrap],
        env=dict(os.environ, WARDEN_TEST_STATUS=status_file),
    )
    report = {}
    with anyio.fail_after(300):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                report["tools"] = sorted(t.name for t in listed.tools)
                report["add"] = await call(session, "add", {"a": 2, "b": 3})
                report["secret"] = await call(session, "read_file", {"path": secret})
                report["shadow"] = await call(session, "read_file", {"path": "/etc/shadow"})
                report["connect"] = await call(session, "connect", {"host": host, "port": port})
                report["after"] = await call(session, "add", {"a": 1, "b": 1})
    print(json.dumps(report))


warden, server_dir, secret, host, port, status_file = sys.argv[1:]
anyio.run(main, warden, server_dir, secret, host, int(port), status_file)
