"""What the WebSocket client scripts share: an expectation that ends the script at the first
failure, and the reading of a session's last messages."""

import json
import sys

from websockets.exceptions import ConnectionClosed


def expect(what, condition, detail):
    """Prints `ok` for a kept expectation; exits 1 at the first broken one."""
    if not condition:
        print(f"FAIL {what}: {detail}")
        sys.exit(1)
    print(f"ok   {what}")


def rest(ws):
    """Every message until the server closes, and the close frame."""
    received = []
    try:
        while True:
            received.append(json.loads(ws.recv(timeout=30)))
    except ConnectionClosed:
        pass
    return received, (ws.close_code, ws.close_reason)
