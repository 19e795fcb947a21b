#!/usr/bin/env python3
"""Send COUNT small messages over one SMTP session (Python's smtplib), each
with its own Subject (flood-N), to fill a queue fast.
Usage: flood.py HOST PORT FROM TO COUNT"""
import smtplib
import sys

host, port, sender, to, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
with smtplib.SMTP(host, port, timeout=60) as s:
    for i in range(count):
        msg = "From: <%s>\r\nTo: <%s>\r\nSubject: flood-%d\r\n\r\nmessage %d\r\n" % (sender, to, i, i)
        s.sendmail(sender, [to], msg.encode())
print("sent", count)
