"""The official MCP Python SDK (pinned by scripts/mcp-clients.txt) launches
`warden mcp wrap crashing -- /usr/bin/python3 crashing_server.py` and calls the tool at which
the server exits: the call must fail with an error, within a minute, not hang.

Usage: client_crash.py WARDEN SERVER STATUS_FILE. The world's variables come in the
environment. `warden mcp wrap` runs under a shell that writes its exit status to STATUS_FILE.
Prints one JSON object of observations; crates/warden-cli/tests/mcp.rs asserts on it.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(warden, server, status_file):
    wrap = ["mcp", "wrap", "crashing", "--read-only", os.path.dirname(server)]
    wrap += ["--", "/usr/bin/python3", server]
    # The shell records how `warden mcp wrap` ended, which the SDK does not tell.
    script = '"$0" "$@"; echo $? > "$WARDEN_TEST_STATUS"'
    params = StdioServerParameters(
        command="/bin/sh",
        args=["-c", script, warden, *wrap],
        env=dict(os.environ, WARDEN_TEST_STATUS=status_file),
    )
    report = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            report["tools"] = sorted(t.name for t in listed.tools)
            try:
                with anyio.fail_after(60):
                    result = await session.call_tool("crash", {})
                report["crash"] = {"is_error": result.is_error}
            except MCPError as e:
                report["crash"] = {"raised": True, "code": e.code, "message": e.message}
            except TimeoutError:
                report["crash"] = {"timed_out": True}
    print(json.dumps(report))


anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
