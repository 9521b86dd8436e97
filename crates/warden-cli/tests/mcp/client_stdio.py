"""The official MCP Python SDK (pinned by scripts/mcp-clients.txt) launches `warden mcp` on
stdio and uses every built-in tool, a limit, bad input and an unknown tool.

Usage: client_stdio.py WARDEN URL, URL being a public page http_fetch may fetch (a package
registry this host uses, found by the test at run time). The world's variables come in the environment. Prints one JSON
object of observations; crates/warden-cli/tests/mcp.rs asserts on it.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(getattr(part, "text", "") for part in result.content)


def observed(result):
    return {
        "is_error": result.is_error,
        "text": text_of(result),
        "structured": result.structured_content,
    }


async def main(warden, url):
    params = StdioServerParameters(command=warden, args=["mcp"], env=dict(os.environ))
    report = {}
    with anyio.fail_after(300):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                report["tools"] = {t.name: t.input_schema for t in listed.tools}
                calls = {
                    "run_code": ("run_code", {"language": "python", "code": "print(6 * 7)"}),
                    "python": ("python", {"code": "print(input()[::-1])", "stdin": "abc"}),
                    "shell": ("shell", {"command": "echo hello"}),
                    "files_write": (
                        "files",
                        {"operation": "write", "path": "notes/a.txt", "content": "kept"},
                    ),
                    "files_read": ("files", {"operation": "read", "path": "notes/a.txt"}),
                    "jq": ("jq", {"filter": ".items | length", "document": '{"items": [1, 2, 3]}'}),
                    "grep": ("grep", {"pattern": "^b", "text": "apple\nbanana\n"}),
                    "wc": ("wc", {"text": "a b c\n"}),
                    "http_fetch": ("http_fetch", {"url": url, "max_bytes": 200}),
                    "slow": (
                        "run_code",
                        {"language": "bash", "code": "sleep 30", "limits": {"wall_time": "1s"}},
                    ),
                    "wrong_property": ("wc", {"txt": "a"}),
                }
                report["calls"] = {}
                for key, (tool, arguments) in calls.items():
                    report["calls"][key] = observed(await session.call_tool(tool, arguments))
                try:
                    unknown = await session.call_tool("no_such_tool", {})
                    report["unknown"] = {"raised": False, "result": observed(unknown)}
                except MCPError as e:
                    report["unknown"] = {"raised": True, "code": e.code, "message": e.message}
                after = await session.call_tool("wc", {"text": "one two\n"})
                report["after_unknown"] = observed(after)
    print(json.dumps(report))


anyio.run(main, sys.argv[1], sys.argv[2])
