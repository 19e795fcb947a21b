#!/usr/bin/env python3
"""An HTTPS server that keeps what is POSTed to it (TLS reports, RFC 8460 §3).
Usage: https_sink.py IP PORT CERT KEY DIR
Each POST is saved as DIR/N.body, its Content-Type and path in DIR/N.json;
it answers 201. Prints "ready" once listening."""
import http.server
import json
import os
import ssl
import sys

ip, port, cert, key, out = sys.argv[1:6]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = len([f for f in os.listdir(out) if f.endswith(".body")]) + 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(os.path.join(out, f"{n}.body"), "wb") as f:
            f.write(body)
        meta = {"path": self.path, "content_type": self.headers.get("Content-Type")}
        with open(os.path.join(out, f"{n}.json"), "w") as f:
            json.dump(meta, f)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer((ip, int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
