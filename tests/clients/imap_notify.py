#!/usr/bin/env python3
"""NOTIFY (RFC 5465) across sessions: a raw client asks to hear about its
selected INBOX (new messages with their UID and FLAGS, expunges, flags) and
every personal mailbox (messages, names, subscriptions, annotations),
without IDLE; another session (imaplib) changes things, and each change
arrives unasked. Prints the push latency and OK.

    imap_notify.py HOST IMAP_PORT
"""
import imaplib
import re
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])


def fail(what):
    print("FAIL: " + what)
    sys.exit(1)


class Raw:
    def __init__(self):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.f = self.sock.makefile("rb")
        self.f.readline()
        self.n = 0

    def command(self, text):
        self.n += 1
        tag = "r%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                fail("closed during %s" % text)
            if line.startswith(tag.encode() + b" "):
                if not line.startswith(tag.encode() + b" OK"):
                    fail("%s: %r" % (text, line))
                return lines
            lines.append(line.rstrip(b"\r\n"))

    def unasked(self, pattern, count=1):
        """Read lines the server sends without being asked until `count`
        of them match `pattern`; return (matching lines, ms)."""
        t = time.monotonic()
        got = []
        while len(got) < count:
            line = self.f.readline()
            if not line:
                fail("closed while waiting for %r" % pattern)
            line = line.rstrip(b"\r\n")
            if re.match(pattern.encode(), line):
                got.append(line)
        return got, (time.monotonic() - t) * 1000


a = Raw()
a.command("LOGIN alice@a.test alice-pw")
a.command("SELECT INBOX")
a.command("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
          "(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange))")

imaplib.Commands["SETMETADATA"] = ("AUTH", "SELECTED")
b = imaplib.IMAP4(host, port)
b.login("alice@a.test", "alice-pw")
times = []

b.append("INBOX", None, None, b"Subject: one\r\n\r\nx\r\n")
lines, ms = a.unasked(r"\* 1 FETCH")
times.append(ms)
if not re.match(rb"\* 1 FETCH \(UID 1 FLAGS \((\\Recent)?\)\)", lines[0]):
    fail("new message in the selected mailbox: %r" % lines)

b.append("Archive", None, None, b"Subject: two\r\n\r\ny\r\n")
lines, ms = a.unasked(r"\* STATUS Archive")
times.append(ms)
if not re.match(rb"\* STATUS Archive \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)", lines[0]):
    fail("new message elsewhere: %r" % lines)

b.select("INBOX")
b.store("1", "+FLAGS", "(\\Flagged)")
lines, ms = a.unasked(r"\* 1 FETCH")
times.append(ms)
if b"\\Flagged" not in lines[0]:
    fail("flag change: %r" % lines)

b.create("Work")
lines, _ = a.unasked(r"\* LIST")
if lines[0] != b'* LIST () "/" Work':
    fail("MailboxName on CREATE: %r" % lines)
b.rename("Work", "Play")
lines, _ = a.unasked(r"\* LIST")
if lines[0] != b'* LIST () "/" Play ("OLDNAME" (Work))':
    fail("MailboxName on RENAME: %r" % lines)
b.unsubscribe("Play")
lines, _ = a.unasked(r"\* LIST")
if lines[0] != b'* LIST () "/" Play':
    fail("SubscriptionChange: %r" % lines)
b._simple_command("SETMETADATA", "INBOX", '(/private/comment "hello")')
lines, _ = a.unasked(r"\* METADATA")
if lines[0] != b"* METADATA INBOX (/private/comment)":
    fail("MailboxMetadataChange: %r" % lines)
b.delete("Play")
lines, _ = a.unasked(r"\* LIST")
if lines[0] != b'* LIST (\\NonExistent) "/" Play':
    fail("MailboxName on DELETE: %r" % lines)

b.store("1", "+FLAGS", "(\\Deleted)")
b.expunge()
lines, _ = a.unasked(r"\* 1 EXPUNGE")

# NOTIFY NONE: quiet again (the next command's answer comes first).
a.command("NOTIFY NONE")
b.append("Archive", None, None, b"Subject: three\r\n\r\nz\r\n")
lines = a.command("NOOP")
if any(l.startswith(b"* STATUS") for l in lines):
    fail("STATUS after NOTIFY NONE: %r" % lines)
b.logout()
a.command("LOGOUT")
print("push_ms_max=%.1f" % max(times))
print("OK")
