#!/usr/bin/env python3
"""Print an account's folders, and per message its flags, Subject and size,
one line each, with imaplib (for tests of what landed in a mailbox).

    imap_dump.py HOST PORT USER PASSWORD
"""
import imaplib
import re
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
m.login(user, password)
typ, data = m.list('""', "*")
names = sorted(
    re.match(rb'\(.*?\) "/" (.*)', d).group(1).decode().strip('"')
    for d in data
    if b"\\Noselect" not in d and b"\\NonExistent" not in d
)
for name in names:
    typ, data = m.select('"%s"' % name, readonly=True)
    count = int(data[0])
    print("folder %s %d" % (name, count))
    if count == 0:
        continue
    typ, data = m.fetch("1:*", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, header = item
        flags = re.search(rb"FLAGS \((.*?)\)", meta).group(1).decode()
        flags = " ".join(sorted(f for f in flags.split() if f != "\\Recent"))
        size = re.search(rb"RFC822.SIZE (\d+)", meta).group(1).decode()
        subject = header.decode().strip().replace("Subject: ", "")
        print("  %s [%s] %s" % (subject, flags, size))
m.logout()
