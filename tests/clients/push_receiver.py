#!/usr/bin/env python3
"""A Web Push receiver (RFC 8030 push service and device in one) for JMAP
push subscriptions (RFC 8620 §7.2): an HTTPS server with its own P-256
key pair and authentication secret, which decrypts aes128gcm messages
(RFC 8291, RFC 8188) with the `cryptography` library, independently of
Tern's code.
Usage: push_receiver.py IP CERT KEY
Prints "ready <port> <p256dh> <auth>" (base64url) once listening on an
ephemeral port, then one JSON
line per POST: {"path", "ttl", "encoding", "type", "message"} with the
message decoded (decrypted when encrypted). It answers 201, or 410 when
the path starts with /gone (the subscription is no more)."""
import base64
import http.server
import json
import os
import ssl
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ip, cert, key = sys.argv[1:4]
private = ec.generate_private_key(ec.SECP256R1())
ua_public = private.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
auth = os.urandom(16)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hkdf(ikm, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt(body):
    salt, record_size, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    key_id, sealed = body[21:21 + id_len], body[21 + id_len:]
    assert len(sealed) <= record_size, "one record"
    server_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_id)
    secret = private.exchange(ec.ECDH(), server_public)
    ikm = hkdf(secret, auth, b"WebPush: info\0" + ua_public + key_id, 32)
    cek = hkdf(ikm, salt, b"Content-Encoding: aes128gcm\0", 16)
    nonce = hkdf(ikm, salt, b"Content-Encoding: nonce\0", 12)
    plain = AESGCM(cek).decrypt(nonce, sealed, None).rstrip(b"\0")
    assert plain.endswith(b"\x02"), "the last record's delimiter"
    return plain[:-1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding")
        try:
            text = decrypt(body) if encoding == "aes128gcm" else body
            message = json.loads(text)
        except Exception as e:  # what was wrong is the test's answer
            message = {"error": repr(e)}
        print(json.dumps({"path": self.path, "ttl": self.headers.get("TTL"),
                          "encoding": encoding, "type": self.headers.get("Content-Type"),
                          "message": message}), flush=True)
        self.send_response(410 if self.path.startswith("/gone") else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer((ip, 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", server.server_address[1], b64(ua_public), b64(auth), flush=True)
server.serve_forever()
