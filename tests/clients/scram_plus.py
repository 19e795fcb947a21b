#!/usr/bin/env python3
"""SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with tls-exporter channel binding
(RFC 9266) against an IMAPS port, written independently of Tern: OpenSSL's
s_client does TLS and exports the binding data, this script does SCRAM
(hashlib, hmac) and SASLprep-free ASCII credentials.

  scram_plus.py HOST:PORT USER PASSWORD [honest|wrong-binding|no-binding]

honest: binds to the real channel; wrong-binding: sends other binding data,
as a man in the middle relaying to another TLS connection would;
no-binding: SCRAM-SHA-256 with the "y" flag although the server offers
-PLUS (a downgrade). Prints the server's tagged answer to AUTHENTICATE."""
import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
import time


def main():
    hostport, user, password, mode = sys.argv[1:5]
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", hostport, "-tls1_3", "-ign_eof",
         "-keymatexport", "EXPORTER-Channel-Binding", "-keymatexportlen", "32"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    binding = None
    deadline = time.time() + 10
    while time.time() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        m = re.search(r"Keying material: ([0-9A-Fa-f]+)", line)
        if m:
            binding = bytes.fromhex(m.group(1))
        if line.startswith("* OK"):
            break
    if binding is None:
        print("no keying material from openssl")
        return

    def send(text):
        proc.stdin.write(text.encode() + b"\r\n")
        proc.stdin.flush()

    def read():
        return proc.stdout.readline().decode(errors="replace").rstrip("\r\n")

    nonce = base64.b64encode(os.urandom(18)).decode()
    if mode == "no-binding":
        mech, gs2, cbdata = "SCRAM-SHA-256", "y,,", b""
    else:
        mech, gs2 = "SCRAM-SHA-256-PLUS", "p=tls-exporter,,"
        cbdata = binding if mode == "honest" else bytes(32)
    first_bare = f"n={user},r={nonce}"
    send(f"a AUTHENTICATE {mech} " + base64.b64encode((gs2 + first_bare).encode()).decode())
    line = read()
    if not line.startswith("+ "):
        print(line)
        return
    server_first = base64.b64decode(line[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = "c=" + base64.b64encode(gs2.encode() + cbdata).decode() + ",r=" + attrs["r"]
    auth_message = f"{first_bare},{server_first},{without_proof}"
    signature = hmac.new(stored, auth_message.encode(), hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    send(base64.b64encode(f"{without_proof},p={base64.b64encode(proof).decode()}".encode()).decode())
    line = read()
    if line.startswith("+ "):
        server_final = base64.b64decode(line[2:]).decode()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expected = base64.b64encode(hmac.new(server_key, auth_message.encode(), hashlib.sha256).digest()).decode()
        if server_final != "v=" + expected:
            print("bad server signature")
            return
        send("")
        line = read()
    print(line)
    send("z LOGOUT")
    proc.stdin.close()
    proc.wait(timeout=10)


if __name__ == "__main__":
    main()
