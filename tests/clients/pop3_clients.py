#!/usr/bin/env python3
"""Python's poplib against a running Tern, and POP3/IMAP consistency.
Usage: pop3_clients.py HOST POP3_PORT POP3S_PORT IMAP_PORT SMTP_PORT"""
import poplib
import smtplib
import ssl
import sys
import time

from imapclient import IMAPClient

host, pop3_port, pop3s_port, imap_port, smtp_port = sys.argv[1], *map(int, sys.argv[2:6])
USER, PW = "alice@a.test", "alice-pw"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


with smtplib.SMTP(host, smtp_port, timeout=20) as s:
    for i in range(3):
        body = "From: x@far.test\r\nSubject: pop %d\r\n\r\nline one\r\n.starts with a dot\r\n" % i
        s.sendmail("x@far.test", [USER], body.encode())

# STLS, then USER/PASS.
p = poplib.POP3(host, pop3_port, timeout=20)
caps = p.capa()
check("STLS" in caps and "USER" in caps, "CAPA before TLS: %r" % caps)
p.stls(context=ctx)
check("STLS" not in p.capa(), "no STLS after TLS")
p.user(USER)
p.pass_(PW)
count, size = p.stat()
check(count == 3, "STAT count %d" % count)
resp, listing, _ = p.list()
sizes = [int(l.split()[1]) for l in listing]
check(sum(sizes) == size, "LIST sizes add up to STAT")
resp, lines, octets = p.retr(1)
check(b".starts with a dot" in lines, "dot-unstuffed by the client: %r" % lines)
check(octets - 2 * len(lines) <= sizes[0] <= octets, "RETR size %d vs LIST %d" % (octets, sizes[0]))
resp, top, _ = p.top(2, 0)
check(top[-1] == b"" and all(not l.startswith(b"line") for l in top), "TOP 0 is the header only: %r" % top)
resp, uidls, _ = p.uidl()
uidl = {int(l.split()[0]): l.split()[1].decode() for l in uidls}

# A second POP3 session on the same maildrop is refused (RFC 2449 IN-USE).
q = poplib.POP3_SSL(host, pop3s_port, context=ctx, timeout=20)
q.user(USER)
try:
    q.pass_(PW)
    check(False, "second session allowed")
except poplib.error_proto as e:
    check(b"[IN-USE]" in e.args[0], "IN-USE: %r" % e.args)
q.quit()

# The IMAP view: same identities, and a POP3 deletion arrives as EXPUNGE in IDLE.
c = IMAPClient(host, port=imap_port, ssl=False, timeout=20)
c.login(USER, PW)
info = c.select_folder("INBOX")
validity = info[b"UIDVALIDITY"]
uids = c.search("ALL")
check([uidl[i] for i in (1, 2, 3)] == ["%08x%08x" % (validity, u) for u in uids], "UIDL is UIDVALIDITY+UID: %r" % uidl)
c.idle()
p.dele(1)
time.sleep(0.2)
check(c.idle_check(timeout=0.5) == [], "nothing happens before QUIT")
p.quit()
seen = []
deadline = time.time() + 5
while (1, b"EXPUNGE") not in seen and time.time() < deadline:
    seen += c.idle_check(timeout=1)
c.idle_done()
check((1, b"EXPUNGE") in seen, "IMAP IDLE saw the POP3 deletion: %r" % seen)

# A dropped connection deletes nothing.
r = poplib.POP3_SSL(host, pop3s_port, context=ctx, timeout=20)
r.user(USER)
r.pass_(PW)
r.dele(1)
r.sock.close()
time.sleep(0.3)
check(len(c.search("ALL")) == 2, "a dropped session deleted nothing")
c.logout()
print("OK")
