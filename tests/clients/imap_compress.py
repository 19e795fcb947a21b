#!/usr/bin/env python3
"""IMAP COMPRESS=DEFLATE (RFC 4978) as a client does it, over TLS: raw
DEFLATE both ways after the tagged OK, with Python's zlib.

    imap_compress.py check HOST IMAPS_PORT USER PASSWORD
        commands and a large FETCH through the compressed stream; the
        reply bytes on the wire are counted; prints OK.
    imap_compress.py idle HOST IMAPS_PORT USER PASSWORD N PID
        opens N sessions (N/2 compressed), leaves them idle, and prints the
        server's resident memory per session with and without compression
        (from /proc/PID/status).
"""
import socket
import ssl
import sys
import time
import zlib


def fail(what):
    print("FAIL: " + what)
    sys.exit(1)


class Session:
    def __init__(self, host, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((host, port), timeout=20)
        self.sock = ctx.wrap_socket(raw)
        self.buf = b""
        self.inflate = None
        self.deflate = None
        self.wire_in = 0
        self.n = 0
        self.line()  # greeting

    def send(self, data):
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            fail("connection closed")
        self.wire_in += len(chunk)
        if self.inflate:
            chunk = self.inflate.decompress(chunk)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self, text, literal=None):
        """Send a command; return (tagged line, untagged lines, literals)."""
        self.n += 1
        tag = "c%d" % self.n
        if literal is not None:
            self.send(("%s %s {%d+}\r\n" % (tag, text, len(literal))).encode() + literal + b"\r\n")
        else:
            self.send(("%s %s\r\n" % (tag, text)).encode())
        untagged, literals = [], []
        while True:
            line = self.line()
            if line.endswith(b"}") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1:-1])
                literals.append(self.take(size))
                line += b"<literal>" + self.line()
            if line.startswith(tag.encode() + b" "):
                return line, untagged, literals
            untagged.append(line)

    def compress(self):
        tagged, _, _ = self.command("COMPRESS DEFLATE")
        if b"OK" not in tagged:
            fail("COMPRESS: %r" % tagged)
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        if self.buf:
            fail("uncompressed bytes after the OK: %r" % self.buf)


def check(host, port, user, password):
    s = Session(host, port)
    tagged, untagged, _ = s.command("CAPABILITY")
    if b"COMPRESS=DEFLATE" in b" ".join(untagged):
        fail("COMPRESS offered before login")
    s.command("LOGIN %s %s" % (user, password))
    tagged, untagged, _ = s.command("CAPABILITY")
    if b"COMPRESS=DEFLATE" not in b" ".join(untagged):
        fail("COMPRESS not offered after login: %r" % untagged)
    s.compress()
    tagged, untagged, _ = s.command("CAPABILITY")
    if not tagged.endswith(b"OK CAPABILITY completed") or b"COMPRESS=DEFLATE" in b" ".join(untagged):
        fail("CAPABILITY through the compressed stream: %r %r" % (tagged, untagged))
    body = b"".join(b"Line %05d of a long and repetitive message body.\r\n" % i for i in range(20000))
    message = b"From: alice@a.test\r\nSubject: big\r\n\r\n" + body
    tagged, _, _ = s.command("APPEND INBOX", message)
    if b"OK" not in tagged:
        fail("APPEND: %r" % tagged)
    tagged, untagged, _ = s.command("SELECT INBOX")
    exists = [u for u in untagged if u.endswith(b"EXISTS")]
    if not exists:
        fail("SELECT: %r" % untagged)
    n = int(exists[0].split()[1])
    before = s.wire_in
    tagged, untagged, literals = s.command("FETCH %d BODY.PEEK[]" % n)
    if literals != [message]:
        fail("FETCH returned %d bytes, not the message" % sum(map(len, literals)))
    wire = s.wire_in - before
    if wire * 10 > len(message):
        fail("the FETCH took %d bytes on the wire for %d" % (wire, len(message)))
    tagged, _, _ = s.command("COMPRESS DEFLATE")
    if b"NO [COMPRESSIONACTIVE]" not in tagged:
        fail("a second COMPRESS: %r" % tagged)
    # Pipelined commands in one compressed write.
    s.send(b"p1 NOOP\r\np2 NOOP\r\np3 LOGOUT\r\n")
    lines = []
    while not lines or not lines[-1].startswith(b"p3 "):
        lines.append(s.line())
    if not (lines[0].startswith(b"p1 OK") and lines[1].startswith(b"p2 OK") and lines[-1].startswith(b"p3 OK")):
        fail("pipelined: %r" % lines)
    print("fetch_bytes=%d wire_bytes=%d" % (len(message), wire))
    print("OK")


def rss_kib(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS")


def idle(host, port, user, password, count, pid):
    results = {}
    for compressed in (False, True):
        time.sleep(1)
        base = rss_kib(pid)
        sessions = []
        for _ in range(count):
            s = Session(host, port)
            s.command("LOGIN %s %s" % (user, password))
            if compressed:
                s.compress()
            s.command("SELECT INBOX")
            s.command("FETCH 1:* (FLAGS UID)")
            sessions.append(s)
        time.sleep(1)
        grown = rss_kib(pid) - base
        results[compressed] = grown * 1024 / count
        for s in sessions:
            s.command("LOGOUT")
            s.sock.close()
    print("idle_bytes_per_session plain=%.0f compressed=%.0f extra_for_compress=%.0f" % (
        results[False], results[True], results[True] - results[False]))


if __name__ == "__main__":
    mode = sys.argv[1]
    host, port, user, password = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if mode == "check":
        check(host, port, user, password)
    else:
        idle(host, port, user, password, int(sys.argv[6]), sys.argv[7])
