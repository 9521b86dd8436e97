"""The official MCP Python SDK (pinned by scripts/mcp-clients.txt) against `warden serve`'s
`/mcp` endpoint (streamable HTTP) with the server's bearer token, and without it.

Usage: client_http.py URL TOKEN, URL being the endpoint (http://127.0.0.1:PORT/mcp). Prints one
JSON object of observations; crates/warden-cli/tests/mcp.rs asserts on it.
"""

import json
import sys

import anyio
import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client


def text_of(result):
    return "".join(getattr(part, "text", "") for part in result.content)


def observed(result):
    return {
        "is_error": result.is_error,
        "text": text_of(result),
        "structured": result.structured_content,
    }


def leaves(error):
    """The exceptions inside (nested) exception groups, as text."""
    if isinstance(error, BaseExceptionGroup):
        return [text for e in error.exceptions for text in leaves(e)]
    return [f"{type(error).__name__}: {error}"]


async def authorized(url, token, report):
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                report["tools"] = sorted(t.name for t in listed.tools)
                report["run_code"] = observed(
                    await session.call_tool(
                        "run_code", {"language": "python", "code": "print('over http')"}
                    )
                )
                # Last: a failed stream may leave the session unusable.
                try:
                    report["flood"] = observed(
                        await session.call_tool("shell", {"command": "yes | head -c 100000000"})
                    )
                except MCPError as e:
                    report["flood"] = {"raised": e.message}


async def anonymous(url, report):
    # The SDK's own view of a connection without the token.
    try:
        with anyio.fail_after(60):
            async with httpx2.AsyncClient(timeout=30) as http:
                async with streamable_http_client(url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
        report["anonymous"] = {"failed": False}
    except BaseException as e:  # noqa: BLE001 - an ExceptionGroup or a TimeoutError alike
        report["anonymous"] = {"failed": True, "errors": leaves(e)}
    # The HTTP status behind it.
    async with httpx2.AsyncClient(timeout=30) as http:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "anonymous", "version": "0"},
            },
        }
        answer = await http.post(
            url,
            json=initialize,
            headers={"Accept": "application/json, text/event-stream"},
        )
        report["anonymous"]["status"] = answer.status_code


async def main(url, token):
    report = {}
    with anyio.fail_after(300):
        await authorized(url, token, report)
    await anonymous(url, report)
    print(json.dumps(report))


anyio.run(main, sys.argv[1], sys.argv[2])
