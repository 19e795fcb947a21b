#!/usr/bin/env python3
"""Submit one message with Python's smtplib: STARTTLS, AUTH, then MAIL/RCPT/DATA.
Usage: submit.py HOST PORT USER PASSWORD FROM TO[,TO...] [OPTION...] < message
An OPTION "MAIL:X=Y" goes on MAIL FROM, any other on every RCPT TO.
SMTPUTF8 is asked for when an address is not ASCII. Prints the refused
recipients (a dict, {} when all were accepted); exits non-zero if the server
refused the whole message."""
import smtplib
import ssl
import sys

host, port, user, password, sender, to = sys.argv[1:7]
options = sys.argv[7:]
rcpt_options = [o for o in options if not o.startswith("MAIL:")]
recipients = to.split(",")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
data = sys.stdin.buffer.read()
mail_options = [] if (sender + to).isascii() else ["SMTPUTF8"]
mail_options += [o[5:] for o in options if o.startswith("MAIL:")]
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.starttls(context=ctx)
    s.login(user, password)
    try:
        refused = s.sendmail(sender, recipients, data, mail_options, rcpt_options)
    except smtplib.SMTPRecipientsRefused as e:
        refused = e.recipients
    print(refused)
