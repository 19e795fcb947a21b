"""One HTTP request as a JMAP client sends it (Python's urllib, Basic
authentication). Prints one JSON object: status, content type and body
(parsed when it is JSON, else text).
Usage: jmap_call.py METHOD URL USER PASSWORD [CONTENT-TYPE] < body"""
import base64
import json
import sys
import urllib.error
import urllib.request

method, url, user, password = sys.argv[1:5]
content_type = sys.argv[5] if len(sys.argv) > 5 else "application/json"
body = sys.stdin.buffer.read() or None
request = urllib.request.Request(url, data=body, method=method)
if user:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
if body is not None:
    request.add_header("Content-Type", content_type)
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        status, headers, raw = response.status, response.headers, response.read()
except urllib.error.HTTPError as e:
    status, headers, raw = e.code, e.headers, e.read()
content_type = headers.get("Content-Type", "")
try:
    parsed = json.loads(raw)
except ValueError:
    parsed = raw.decode("utf-8", "replace")
print(json.dumps({"status": status, "type": content_type, "body": parsed,
                  "disposition": headers.get("Content-Disposition")}))
