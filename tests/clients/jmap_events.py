"""Listen to a JMAP event source (RFC 8620 §7.3) as a client does: print
"open" once the response has started, then one JSON line per event
({"event", "data", "at"}: at is the Unix time it arrived), until the
server ends the stream or TIMEOUT seconds pass.
Usage: jmap_events.py URL USER PASSWORD TIMEOUT"""
import base64
import json
import sys
import time
import urllib.request

url, user, password, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
request = urllib.request.Request(url)
token = base64.b64encode(f"{user}:{password}".encode()).decode()
request.add_header("Authorization", f"Basic {token}")
request.add_header("Accept", "text/event-stream")
deadline = time.time() + timeout
with urllib.request.urlopen(request, timeout=timeout) as response:
    assert response.headers.get("Content-Type", "").startswith("text/event-stream")
    print("open", flush=True)
    event, data = None, []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            print(json.dumps({"event": event, "data": json.loads("\n".join(data)),
                              "at": time.time()}), flush=True)
            event, data = None, []
        if time.time() > deadline:
            break
