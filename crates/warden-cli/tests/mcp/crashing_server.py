"""A stdio MCP server (standard library only) that answers initialize and tools/list and exits
with status 3 at its first tools/call, before answering it: `warden mcp wrap` must fail that
call and end rather than leave its client waiting (crates/warden-cli/tests/mcp.rs).
"""

import json
import sys

TOOL = {
    "name": "crash",
    "description": "Exits before answering.",
    "inputSchema": {"type": "object", "properties": {}},
}


def answer(request, result):
    print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), flush=True)


for line in sys.stdin:
    request = json.loads(line)
    method = request.get("method")
    if method == "initialize":
        answer(
            request,
            {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "crashing", "version": "1"},
            },
        )
    elif method == "tools/list":
        answer(request, {"tools": [TOOL]})
    elif method == "tools/call":
        sys.exit(3)
    elif "id" in request:
        print(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": {"code": -32601, "message": f"no method {method}"},
                }
            ),
            flush=True,
        )
