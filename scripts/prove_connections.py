#!/usr/bin/env python3
"""Many connections on one Tern process (hardening.md C-FT8, C-FT9; issue #21).

  prove_connections.py --pid PID --smtp HOST:PORT --imaps HOST:PORT \
      --user ADDRESS --password PW [-n N] [--apart]

Opens N SMTP connections (greeting, EHLO, then idle) and N IMAP connections
over implicit TLS (AUTHENTICATE SCRAM-SHA-256, SELECT INBOX, IDLE), reads the
server's memory (VmRSS of PID) before and after each set, delivers one
message, and measures how long until every IDLE connection has seen it
(`* 1 EXISTS`). Then closes everything and checks the server still answers.
With --apart the SMTP connections are closed before the IMAP ones open, so
N of each kind fit where the descriptors do not allow 2N at once.
SCRAM is used because its server side is cheap (a stored key), where a
password login would measure Argon2, not connections.

Last line: RESULT smtp_conns=.. imap_idle_conns=.. kib_per_smtp=..
kib_per_imap_idle=.. push_p50_ms=.. push_max_ms=.. Every wait is bounded."""
import argparse, asyncio, base64, hashlib, hmac, os, ssl, sys, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


async def line(reader, timeout=60):
    data = await asyncio.wait_for(reader.readline(), timeout)
    if not data:
        raise ConnectionError("closed")
    return data


async def smtp_idle(host, port):
    r, w = await asyncio.open_connection(host, port)
    greeting = await line(r)
    assert greeting.startswith(b"220"), greeting
    w.write(b"EHLO prove.test\r\n")
    while True:
        l = await line(r)
        if l[3:4] != b"-":
            break
    return r, w


class Scram:
    """RFC 5802 / RFC 7677 client; the salted password is computed once."""

    cache = {}

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"

    def first(self):
        return base64.b64encode(("n,," + self.first_bare).encode()).decode()

    def final(self, server_first_b64):
        server_first = base64.b64decode(server_first_b64).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        key = (self.password, attrs["s"], iters)
        if key not in Scram.cache:
            Scram.cache[key] = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        salted = Scram.cache[key]
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return base64.b64encode(f"{without_proof},p={base64.b64encode(proof).decode()}".encode()).decode()


async def imap_tagged(r, tag):
    while True:
        l = await line(r)
        if l.startswith(tag + b" "):
            assert l.startswith(tag + b" OK"), l
            return


async def imap_idle(host, port, user, password, context):
    r, w = await asyncio.open_connection(host, port, ssl=context, server_hostname="localhost")
    await line(r)
    scram = Scram(user, password)
    w.write(f"a AUTHENTICATE SCRAM-SHA-256 {scram.first()}\r\n".encode())
    challenge = await line(r)
    assert challenge.startswith(b"+ "), challenge
    w.write((scram.final(challenge[2:].strip().decode()) + "\r\n").encode())
    l = await line(r)
    if l.startswith(b"+ "):
        w.write(b"\r\n")
        l = await line(r)
    assert l.startswith(b"a OK"), l
    w.write(b"b SELECT INBOX\r\n")
    await imap_tagged(r, b"b")
    w.write(b"c IDLE\r\n")
    l = await line(r)
    assert l.startswith(b"+"), l
    return r, w


async def open_many(n, make, batch=200):
    conns = []
    for start in range(0, n, batch):
        conns += await asyncio.gather(*(make() for _ in range(min(batch, n - start))))
    return conns


async def wait_exists(r, sent_at, timeout):
    while True:
        l = await line(r, timeout)
        if l.startswith(b"* ") and l.rstrip().endswith(b"EXISTS"):
            return (time.monotonic() - sent_at) * 1000


async def send_one(host, port, to):
    r, w = await smtp_idle(host, port)
    for cmd in [f"MAIL FROM:<prove@far.test>", f"RCPT TO:<{to}>", "DATA"]:
        w.write((cmd + "\r\n").encode())
        reply = await line(r)
        assert reply[:1] in b"23", reply
    w.write(b"From: <prove@far.test>\r\nSubject: push\r\n\r\nOne for every IDLE.\r\n.\r\n")
    reply = await line(r)
    assert reply.startswith(b"250"), reply
    w.write(b"QUIT\r\n")
    w.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--smtp", required=True)
    p.add_argument("--imaps", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--apart", action="store_true")
    a = p.parse_args()
    sh, sp = a.smtp.rsplit(":", 1)
    ih, ip = a.imaps.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    base = rss_kib(a.pid)
    t0 = time.monotonic()
    smtp = await open_many(a.n, lambda: smtp_idle(sh, int(sp)))
    after_smtp = rss_kib(a.pid)
    print(f"{len(smtp)} SMTP connections idle in {time.monotonic() - t0:.1f}s: "
          f"server RSS {base} -> {after_smtp} KiB", flush=True)
    if a.apart:
        for _, w in smtp:
            w.close()
        await asyncio.sleep(3)
        # Freed memory stays with the allocator for the IMAP sessions to
        # reuse: their cost is counted from the start (an upper bound).
        print(f"SMTP connections closed: server RSS {rss_kib(a.pid)} KiB", flush=True)
        imap_from = base
    else:
        imap_from = after_smtp
    t1 = time.monotonic()
    imap = await open_many(a.n, lambda: imap_idle(ih, int(ip), a.user, a.password, context), batch=100)
    after_imap = rss_kib(a.pid)
    print(f"{len(imap)} IMAP IDLE connections over TLS in {time.monotonic() - t1:.1f}s: "
          f"server RSS {imap_from} -> {after_imap} KiB", flush=True)
    cpu_before = cpu_s(a.pid)
    await asyncio.sleep(5)
    idle_cpu = cpu_s(a.pid) - cpu_before
    idle_now = len(imap) if a.apart else len(smtp) + len(imap)
    print(f"server CPU while {idle_now} connections sit idle for 5 s: {idle_cpu:.2f}s", flush=True)

    sent_at = time.monotonic()
    await send_one(sh, int(sp), a.user)
    waits = await asyncio.gather(*(wait_exists(r, sent_at, 120) for r, _ in imap))
    waits.sort()
    p50, worst = waits[len(waits) // 2], waits[-1]
    print(f"one delivery seen by all {len(waits)} IDLE sessions: p50 {p50:.0f} ms, last {worst:.0f} ms", flush=True)

    for _, w in ([] if a.apart else smtp) + imap:
        w.close()
    await asyncio.sleep(2)
    r, w = await smtp_idle(sh, int(sp))
    w.write(b"QUIT\r\n")
    assert (await line(r)).startswith(b"221")
    print(f"RESULT smtp_conns={len(smtp)} imap_idle_conns={len(imap)} "
          f"kib_per_smtp={(after_smtp - base) / max(1, len(smtp)):.1f} "
          f"kib_per_imap_idle={(after_imap - imap_from) / max(1, len(imap)):.1f} "
          f"apart={int(a.apart)} "
          f"idle_cpu_s={idle_cpu:.2f} push_p50_ms={p50:.0f} push_max_ms={worst:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
