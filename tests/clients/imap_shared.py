#!/usr/bin/env python3
"""Shared mailboxes (RFC 4314, RFC 2342) with two users and Python's
imaplib: alice shares Projects with bob; bob finds it in the other users'
namespace and may do what each grant allows, no more; IDLE on the shared
mailbox sees alice's new mail; taking the grant away hides it again.

    imap_shared.py HOST IMAP_PORT
"""
import imaplib
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
SHARED = '"Shared/alice@a.test/Projects"'


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


alice = imaplib.IMAP4(host, port)
alice.login("alice@a.test", "alice-pw")
bob = imaplib.IMAP4(host, port)
bob.login("bob@a.test", "bob-pw")

typ, data = bob.namespace()
check(b'(("Shared/" "/"))' in data[0], "NAMESPACE names the other users' namespace: %r" % data)
check(alice.create("Projects")[0] == "OK", "CREATE")
msg = b"From: carol@c.test\r\nSubject: plan\r\n\r\nThe plan.\r\n"
check(alice.append("Projects", None, None, msg)[0] == "OK", "APPEND")

# Not shared yet: bob cannot see or open it.
typ, data = bob.list('""', "Shared/*")
check(data == [None], "nothing shared yet: %r" % data)
typ, data = bob.select(SHARED)
check(typ == "NO" and b"NONEXISTENT" in data[0], "not shared: %r" % data)

# Read-only grant.
check(alice.setacl("Projects", "bob@a.test", "lr")[0] == "OK", "SETACL lr")
typ, data = bob.list('""', "Shared/*")
names = [d.decode() for d in data]
check(any(n.endswith(' Shared/alice@a.test/Projects') for n in names), "bob lists it: %r" % names)
typ, data = bob.myrights(SHARED)
check(data == [b'Shared/alice@a.test/Projects lr'], "MYRIGHTS: %r" % data)
try:
    bob.select(SHARED)
    check(False, "SELECT without s, w, t, e or i answers READ-ONLY")
except imaplib.IMAP4.readonly:
    pass
typ, data = bob.select(SHARED, readonly=True)
check(typ == "OK" and data == [b"1"], "EXAMINE with r: %r %r" % (typ, data))
typ, data = bob.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(b"plan" in data[0][1], "FETCH: %r" % data)
typ, data = bob.append(SHARED, None, None, b"Subject: x\r\n\r\ny\r\n")
check(typ == "NO" and b"NOPERM" in data[0], "APPEND without i: %r" % data)
typ, data = bob.getacl(SHARED)
check(typ == "NO" and b"NOPERM" in data[0], "GETACL without a: %r" % data)
typ, data = bob.delete(SHARED)
check(typ == "NO" and b"NOPERM" in data[0], "DELETE in the shared namespace: %r" % data)
bob.close()

# Seen and insert: read-write, \Seen yes, other flags no.
check(alice.setacl("Projects", "bob@a.test", "+si")[0] == "OK", "SETACL +si")
typ, data = bob.select(SHARED)
check(typ == "OK", "SELECT")
typ, data = bob.store("1", "+FLAGS", "(\\Seen)")
check(typ == "OK", "STORE \\Seen with s: %r" % data)
typ, data = bob.store("1", "+FLAGS", "(\\Flagged)")
check(typ == "NO" and b"NOPERM" in data[0], "STORE \\Flagged without w: %r" % data)
typ, data = bob.append(SHARED, None, None, b"From: bob@a.test\r\nSubject: from bob\r\n\r\nhi\r\n")
check(typ == "OK", "APPEND with i: %r" % data)
typ, data = bob.expunge()
check(typ == "NO" and b"NOPERM" in data[0], "EXPUNGE without e: %r" % data)
alice.select("Projects")
typ, data = alice.search(None, "SUBJECT", '"from bob"')
check(data == [b"2"], "alice sees bob's message: %r" % data)
typ, data = alice.fetch("1", "(FLAGS)")
check(b"\\Seen" in data[0], "alice sees the \\Seen bob set: %r" % data)

# IDLE on the shared mailbox hears alice's new mail.
raw = socket.create_connection((host, port), timeout=10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"i1 LOGIN bob@a.test bob-pw\r\n")
while not f.readline().startswith(b"i1 "):
    pass
raw.sendall(b'i2 SELECT "Shared/alice@a.test/Projects"\r\n')
while not f.readline().startswith(b"i2 "):
    pass
raw.sendall(b"i3 IDLE\r\n")
check(f.readline().startswith(b"+"), "IDLE accepted")
t = time.monotonic()
alice.append("Projects", None, None, b"Subject: third\r\n\r\nz\r\n")
line = f.readline()
push_ms = (time.monotonic() - t) * 1000
check(line == b"* 3 EXISTS\r\n", "IDLE on the shared mailbox sees EXISTS: %r" % line)
raw.sendall(b"DONE\r\ni4 LOGOUT\r\n")
raw.close()

# Taken away: gone from LIST and SELECT.
check(alice.deleteacl("Projects", "bob@a.test")[0] == "OK", "DELETEACL")
typ, data = bob.list('""', "Shared/*")
check(data == [None], "nothing shared any more: %r" % data)
typ, data = bob.select(SHARED)
check(typ == "NO", "SELECT after DELETEACL: %r" % data)
alice.logout()
bob.logout()
print("push_ms=%.1f" % push_ms)
print("OK")
