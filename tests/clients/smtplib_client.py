#!/usr/bin/env python3
"""Python's smtplib against a running Tern: MX delivery, relay refusal,
submission with STARTTLS + AUTH (PLAIN and SCRAM-SHA-256), implicit TLS, SMTPUTF8.
Usage: smtplib_client.py HOST SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT
Exits non-zero with a message on the first surprise."""
import base64
import hashlib
import hmac
import os
import smtplib
import ssl
import sys
from email.message import EmailMessage

host, mx, sub, subs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


# MX: local delivery, and no relay.
with smtplib.SMTP(host, mx, timeout=20) as s:
    s.ehlo("client.test")
    check(s.has_extn("pipelining") and s.has_extn("chunking") and not s.has_extn("auth"), "MX extensions")
    refused = s.sendmail("sender@far.test", ["alice@a.test"], b"From: sender@far.test\r\nSubject: via smtplib\r\n\r\nhello\r\n")
    check(refused == {}, "local delivery")
    try:
        s.sendmail("alice@a.test", ["victim@far.test"], b"Subject: relay\r\n\r\nx\r\n")
        check(False, "relay must be refused")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["victim@far.test"]
        check(code == 554 and text.startswith(b"5.7.1"), "relay refusal code: %r" % (e.recipients,))

# Submission: STARTTLS, then AUTH PLAIN (smtplib's choice), then a message.
with smtplib.SMTP(host, sub, timeout=20) as s:
    s.ehlo("client.test")
    check(not s.has_extn("auth"), "no AUTH before TLS")
    s.starttls(context=ctx)
    s.ehlo("client.test")
    check("SCRAM-SHA-256" in s.esmtp_features.get("auth", ""), "AUTH list after TLS")
    s.login("alice@a.test", "alice-pw")
    msg = EmailMessage()
    msg["From"] = "Alice <alice@a.test>"
    msg["To"] = "bob@a.test"
    msg["Subject"] = "submitted"
    msg.set_content("hi bob")
    check(s.send_message(msg) == {}, "submission")
    try:
        s.sendmail("bob@a.test", ["bob@a.test"], b"From: bob@a.test\r\n\r\nx\r\n")
        check(False, "sending as bob must be refused")
    except smtplib.SMTPSenderRefused as e:
        check(e.smtp_code == 553, "sender refusal code %d" % e.smtp_code)

# Wrong password.
with smtplib.SMTP(host, sub, timeout=20) as s:
    s.starttls(context=ctx)
    try:
        s.login("alice@a.test", "wrong")
        check(False, "wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        check(e.smtp_code == 535, "wrong password code %d" % e.smtp_code)


class Scram:
    """A SCRAM-SHA-256 client (RFC 5802, RFC 7677) for smtplib.auth."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step = 0

    def __call__(self, challenge=None):
        self.step += 1
        if self.step == 1:
            self.first_bare = "n=%s,r=%s" % (self.user, self.nonce)
            return "n,," + self.first_bare
        if self.step == 2:
            server_first = challenge.decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            check(attrs["r"].startswith(self.nonce), "server nonce extends ours")
            salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", "sha256").digest()
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = "c=biws,r=" + attrs["r"]
            auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
            signature = hmac.new(stored_key, auth_message, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b"Server Key", "sha256").digest()
            self.expected = base64.b64encode(hmac.new(server_key, auth_message, "sha256").digest()).decode()
            return without_proof + ",p=" + base64.b64encode(proof).decode()
        check(challenge.decode() == "v=" + self.expected, "server signature verifies")
        return ""


# Implicit TLS (RFC 8314) and SCRAM-SHA-256, then SMTPUTF8.
with smtplib.SMTP_SSL(host, subs, context=ctx, timeout=20) as s:
    s.ehlo("client.test")
    code, text = s.auth("SCRAM-SHA-256", Scram("alice@a.test", "alice-pw"), initial_response_ok=True)
    check(code == 235, "SCRAM: %d %r" % (code, text))
    check(s.has_extn("smtputf8"), "SMTPUTF8 offered")
    body = "From: alice@a.test\r\nTo: jörg@bücher.test\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    check(s.sendmail("alice@a.test", ["jörg@bücher.test", "bob@a.test"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}, "SMTPUTF8")

with smtplib.SMTP_SSL(host, subs, context=ctx, timeout=20) as s:
    try:
        s.auth("SCRAM-SHA-256", Scram("alice@a.test", "not-her-password"), initial_response_ok=True)
        check(False, "SCRAM with a wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        check(e.smtp_code == 535, "SCRAM failure code %d" % e.smtp_code)

print("OK")
