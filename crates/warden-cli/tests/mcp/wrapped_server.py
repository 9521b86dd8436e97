"""A third-party stdio MCP server, written with the official MCP Python SDK's MCPServer, that
`warden mcp wrap` runs in a sandbox (crates/warden-cli/tests/mcp.rs): a harmless tool, one that
reads any path it is given, and one that opens any TCP connection it is asked to.
"""

import socket

from mcp.server.mcpserver import MCPServer

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two integers."""
    return str(a + b)


@server.tool()
def read_file(path: str) -> str:
    """Returns the text of the file at path."""
    with open(path, encoding="utf-8") as f:
        return f.read()


@server.tool()
def connect(host: str, port: int) -> str:
    """Opens a TCP connection to host:port and waits for its first byte (an intercepted
    connect succeeds at once: the answer comes with the policy's decision)."""
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return "answered" if conn.recv(1) else "closed"


if __name__ == "__main__":
    server.run()
