#!/usr/bin/env python3
"""dkimpy (PyPI) as an implementation of DKIM and ARC that is not Tern's.

  dkim_tool.py keygen rsa|rsa512|ed25519 KEYFILE -> prints the DNS TXT value; writes the key
  dkim_tool.py sign DOMAIN SELECTOR KEYFILE rsa|ed25519 relaxed|simple  < msg > signed msg
  dkim_tool.py sign-l DOMAIN SELECTOR KEYFILE  < msg > msg signed with l= (Ed25519, relaxed)
  dkim_tool.py verify RECORDS.json < msg      -> one line per signature: "d=... s=... pass|fail"
  dkim_tool.py arc-seal DOMAIN SELECTOR KEYFILE AUTHSERV-ID < msg > sealed msg

RECORDS.json maps DNS names ("sel._domainkey.d.test") to TXT values, so that
verification needs no DNS. Messages are read and written as bytes (CRLF)."""
import base64
import json
import subprocess
import sys

import dkim
import nacl.signing


def keygen(kind, path):
    if kind.startswith("rsa"):
        bits = kind[3:] or "2048"  # rsa512: a key too weak for RFC 8301
        subprocess.run(["openssl", "genrsa", "-out", path, bits], check=True, capture_output=True)
        der = subprocess.run(
            ["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True, capture_output=True
        ).stdout
        print("v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    else:
        key = nacl.signing.SigningKey.generate()
        with open(path, "wb") as f:
            f.write(base64.b64encode(bytes(key)))
        print("v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(key.verify_key)).decode())


def read_key(path):
    with open(path, "rb") as f:
        return f.read()


def sign(domain, selector, keyfile, kind, canon, length=False):
    msg = sys.stdin.buffer.read()
    algorithm = b"rsa-sha256" if kind.startswith("rsa") else b"ed25519-sha256"
    header = dkim.sign(
        msg,
        selector.encode(),
        domain.encode(),
        read_key(keyfile),
        canonicalize=(canon.encode(), canon.encode()),
        signature_algorithm=algorithm,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        length=length,
    )
    sys.stdout.buffer.write(header.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg)


def verify(records_path):
    with open(records_path) as f:
        records = json.load(f)

    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip("."), "").encode()

    msg = sys.stdin.buffer.read()
    d = dkim.DKIM(msg)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    if count == 0:
        print("none")
    for i in range(count):
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        print("d=%s s=%s %s" % (d.domain.decode(), d.selector.decode(), "pass" if ok else "fail"))


def arc_seal(domain, selector, keyfile, authserv_id):
    msg = sys.stdin.buffer.read()
    headers = dkim.arc_sign(
        msg,
        selector.encode(),
        domain.encode(),
        read_key(keyfile),
        authserv_id.encode(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    out = b"".join(h.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for h in headers)
    sys.stdout.buffer.write(out + msg)


command, args = sys.argv[1], sys.argv[2:]
def sign_l(domain, selector, keyfile):
    sign(domain, selector, keyfile, "ed25519", "relaxed", length=True)


{"keygen": keygen, "sign": sign, "sign-l": sign_l, "verify": verify, "arc-seal": arc_seal}[command](*args)
