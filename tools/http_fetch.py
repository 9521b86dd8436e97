# The http_fetch tool's program (tools/http_fetch.toml). It reads its input as JSON on stdin
# and prints one JSON object. urllib takes the proxy from HTTP_PROXY / HTTPS_PROXY, which
# warden sets to its egress proxy inside the sandbox.
import json
import sys
import urllib.error
import urllib.request

request = json.load(sys.stdin)
limit = int(request.get("max_bytes", 65536))
try:
    with urllib.request.urlopen(request["url"], timeout=25) as response:
        body = response.read(limit + 1)
        result = {
            "status": response.status,
            "content_type": response.headers.get("Content-Type"),
            "truncated": len(body) > limit,
            "body": body[:limit].decode("utf-8", "replace"),
        }
except urllib.error.HTTPError as e:
    body = e.read(limit + 1)
    text = body[:limit].decode("utf-8", "replace")
    # warden's proxy refuses what the policy denies with its own answer: an error, not a page.
    if text.startswith("warden: "):
        print(json.dumps({"error": text.strip()}))
        sys.exit(1)
    result = {
        "status": e.code,
        "content_type": e.headers.get("Content-Type"),
        "truncated": len(body) > limit,
        "body": text,
    }
except (urllib.error.URLError, OSError, ValueError) as e:
    print(json.dumps({"error": str(getattr(e, "reason", e))}))
    sys.exit(1)
print(json.dumps(result))
