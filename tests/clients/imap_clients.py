#!/usr/bin/env python3
"""Real IMAP clients against a running Tern: Python's imaplib and imapclient (PyPI).

Checks ENVELOPE and BODYSTRUCTURE against Python's own email parser, IDLE push
of an SMTP delivery, and three sessions on one mailbox staying consistent while
one of them expunges.
Usage: imap_clients.py HOST IMAP_PORT IMAPS_PORT SMTP_PORT
Exits non-zero with a message on the first surprise; prints figures on success."""
import email
import email.policy
import imaplib
import smtplib
import ssl
import sys
import threading
import time

from imapclient import IMAPClient

host, imap_port, imaps_port, smtp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
USER, PW = "alice@a.test", "alice-pw"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


MESSAGES = [
    # Plain text, encoded-word subject, several recipients and a group.
    b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@b.test>\r\nTo: alice@a.test, \"Bob B.\" <bob@a.test>\r\n"
    b"Cc: Team: x@c.test, y@c.test;\r\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <p1@b.test>\r\nIn-Reply-To: <p0@b.test>\r\n\r\nHallo Alice,\r\nbis bald.\r\n",
    # Nested multipart with an attached message and odd charsets.
    b"From: Carol <carol@c.test>\r\nTo: alice@a.test\r\nSubject: nested\r\nDate: Tue, 3 Nov 2026 11:00:00 +0000\r\n"
    b"Message-ID: <p2@c.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    b"preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    b"--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n--inner--\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: dave@d.test\r\nSubject: inner message\r\n\r\ninner body\r\n"
    b"--outer\r\nContent-Type: image/png; name=x.png\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.png\r\n\r\niVBORw0KGgo=\r\n"
    b"--outer--\r\nepilogue\r\n",
]

with smtplib.SMTP(host, smtp_port, timeout=20) as s:
    for m in MESSAGES:
        check(s.sendmail("sender@far.test", [USER], m) == {}, "SMTP delivery")


def parts_of(structure):
    """Flatten a BODYSTRUCTURE (imapclient's BodyData, or the plain tuples it leaves
    inside a message/rfc822 part) into the type/subtype of its leaves."""
    if getattr(structure, "is_multipart", False):
        return [k for p in structure[0] for k in parts_of(p)]
    if isinstance(structure[0], (tuple, list)):
        out = []
        for p in structure:
            if not isinstance(p, (tuple, list)):
                break
            out += parts_of(p)
        return out
    kind = (structure[0].decode() + "/" + structure[1].decode()).lower()
    if kind == "message/rfc822":
        return [kind] + parts_of(structure[8])
    return [kind]


def leaves(msg):
    """The same from Python's email package."""
    kind = msg.get_content_type()
    if kind == "message/rfc822":
        return [kind] + leaves(msg.get_payload(0))
    if msg.is_multipart():
        return [k for p in msg.get_payload() for k in leaves(p)]
    return [kind]


def decoded(value):
    return str(email.header.make_header(email.header.decode_header(value)))


# --- imapclient over implicit TLS: structure and envelope against the email package.
c = IMAPClient(host, port=imaps_port, ssl=True, ssl_context=ctx, timeout=20)
c.login(USER, PW)
c.select_folder("INBOX")
uids = c.search("ALL")
check(len(uids) == 2, "two messages delivered, got %r" % uids)
data = c.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[]", "RFC822.SIZE"])
for uid in uids:
    raw = data[uid][b"BODY[]"]
    check(len(raw) == data[uid][b"RFC822.SIZE"], "RFC822.SIZE is the size of BODY[]")
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    env = data[uid][b"ENVELOPE"]
    check(decoded(env.subject.decode()) == decoded(parsed["Subject"]), "ENVELOPE subject %r vs %r" % (env.subject, parsed["Subject"]))
    check(env.message_id.decode() == parsed["Message-ID"], "ENVELOPE message-id")
    sender = env.from_[0]
    check((sender.mailbox + b"@" + sender.host).decode() == email.utils.parseaddr(parsed["From"])[1], "ENVELOPE from address")
    tos = [(a.mailbox + b"@" + a.host).decode() for a in env.to]
    check(tos == [a for _, a in email.utils.getaddresses([parsed["To"]])], "ENVELOPE to %r" % tos)
    check(parts_of(data[uid][b"BODYSTRUCTURE"]) == leaves(parsed), "BODYSTRUCTURE %r vs %r" % (parts_of(data[uid][b"BODYSTRUCTURE"]), leaves(parsed)))
first = data[uids[0]][b"ENVELOPE"]
check(first.cc[0].mailbox == b"Team" and first.cc[0].host is None, "group start in ENVELOPE cc")
check(first.in_reply_to == b"<p0@b.test>", "in-reply-to")
# BODY[section] of the attached message and BINARY of the quoted-printable part.
sec = c.fetch([uids[1]], ["BODY.PEEK[2.HEADER]", "BINARY.PEEK[1.1]"])[uids[1]]
check(sec[b"BODY[2.HEADER]"] == b"From: dave@d.test\r\nSubject: inner message\r\n\r\n", "BODY[2.HEADER]: %r" % sec[b"BODY[2.HEADER]"])
check(sec[b"BINARY[1.1]"] == "Grüße".encode("iso-8859-1"), "BINARY decodes quoted-printable: %r" % sec[b"BINARY[1.1]"])
check(c.search(["SUBJECT", "Grüße"], charset="UTF-8") == [uids[0]], "SEARCH on a decoded subject")
check(c.search(["BODY", "grüße"], charset="UTF-8") == [uids[1]], "SEARCH in a decoded latin-1 body")

# --- IDLE: an SMTP delivery reaches the idling client.
c.idle()
sent_at = []


def deliver():
    time.sleep(0.3)
    with smtplib.SMTP(host, smtp_port, timeout=20) as s:
        sent_at.append(time.monotonic())
        s.sendmail("sender@far.test", [USER], b"From: x@far.test\r\nSubject: push\r\n\r\nnow\r\n")
        sent_at.append(time.monotonic())


t = threading.Thread(target=deliver)
t.start()
responses = c.idle_check(timeout=10)
seen = time.monotonic()
c.idle_done()
t.join()
check(any(r[1] == b"EXISTS" and r[0] == 3 for r in responses), "IDLE saw EXISTS: %r" % responses)
push_ms = (seen - sent_at[1]) * 1000
check(push_ms < 1000, "pushed within a second (%.0f ms)" % push_ms)

# --- Three sessions on one mailbox; the third expunges.
a = imaplib.IMAP4(host, imap_port)
a.login(USER, PW)
a.select("INBOX")
b = IMAPClient(host, port=imap_port, ssl=False, timeout=20)
b.login(USER, PW)
b.select_folder("INBOX")
b.idle()
third = imaplib.IMAP4(host, imap_port)
third.login(USER, PW)
third.select("INBOX")
third.store("1", "+FLAGS", "\\Deleted")
typ, data = third.expunge()
check(data == [b"1"], "the expunging session sees EXPUNGE 1: %r" % data)
idle = []
deadline = time.monotonic() + 5
while (1, b"EXPUNGE") not in idle and time.monotonic() < deadline:
    idle += b.idle_check(timeout=1)
b.idle_done()
check((1, b"EXPUNGE") in idle, "the idling session sees EXPUNGE 1: %r" % idle)
typ, data = a.noop()
check(a.untagged_responses.get("EXPUNGE") == [b"1"], "the other session sees EXPUNGE at its next command: %r" % a.untagged_responses)
for session in (a, third):
    typ, data = session.fetch("1:*", "(UID)")
    check([d.split()[-1].rstrip(b")") for d in data] == [str(u).encode() for u in uids[1:]] + [str(uids[-1] + 1).encode()], "same sequence numbers: %r" % data)
check(b.search("ALL") == uids[1:] + [uids[-1] + 1], "imapclient sees the same UIDs")
for s in (a, third):
    s.logout()
b.logout()

# --- imaplib: the common commands.
m = imaplib.IMAP4(host, imap_port)
m.login(USER, PW)
check(m.create("Work")[0] == "OK", "CREATE")
check(m.append("Work", "(\\Seen)", imaplib.Time2Internaldate(time.time()), b"From: alice@a.test\r\nSubject: note\r\n\r\nx\r\n")[0] == "OK", "APPEND")
typ, data = m.select("Work")
check(data == [b"1"], "SELECT Work")
check(m.copy("1", "Archive")[0] == "OK", "COPY")
typ, data = m.uid("MOVE", "1", "Trash")
check(typ == "OK", "UID MOVE")
typ, data = m.status("Trash", "(MESSAGES)")
check(data == [b"Trash (MESSAGES 1)"], "STATUS after MOVE: %r" % data)
m.logout()
c.logout()
print("push_ms=%.1f" % push_ms)
print("OK")
