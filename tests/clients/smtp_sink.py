#!/usr/bin/env python3
"""An SMTP server that is not Tern (aiosmtpd, from PyPI), for Tern's outbound
tests: it writes every message it accepts to DIR as N.eml (the bytes as
received, after dot-unstuffing) and N.json (the envelope).

Usage: smtp_sink.py IP PORT DIR [--greylist] [--auth USER:PASS]
                    [--tls CERT KEY] [--smtputf8] [--size N] [--hostname NAME]
                    [--no-8bitmime]

--greylist   the first RCPT of each recipient gets 451 4.7.1, later ones 250
--auth       offer AUTH PLAIN/LOGIN (over TLS only) and require it for MAIL
--tls        offer STARTTLS with this certificate
--smtputf8   offer SMTPUTF8 (aiosmtpd does not by default)
--size       the SIZE limit to advertise and enforce
--no-8bitmime  do not offer 8BITMIME (a 7-bit server, RFC 6152)

Prints "ready" once listening; stops on SIGTERM."""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("ip")
p.add_argument("port", type=int)
p.add_argument("dir")
p.add_argument("--greylist", action="store_true")
p.add_argument("--auth")
p.add_argument("--tls", nargs=2)
p.add_argument("--smtputf8", action="store_true")
p.add_argument("--size", type=int, default=33554432)
p.add_argument("--hostname", default="sink.test")
p.add_argument("--no-8bitmime", dest="no_8bitmime", action="store_true")
args = p.parse_args()


class Sink:
    def __init__(self):
        self.count = 0
        self.seen = set()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if args.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if args.greylist and address not in self.seen:
            self.seen.add(address)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(args.dir, str(self.count))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "auth": session.authenticated,
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Ok: stored as %d" % self.count


def authenticator(server, session, envelope, mechanism, auth_data):
    user, password = args.auth.split(":", 1)
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok)


kwargs = {
    "enable_SMTPUTF8": args.smtputf8,
    "data_size_limit": args.size,
}
if args.tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    kwargs["tls_context"] = ctx
if args.auth:
    kwargs["authenticator"] = authenticator
    kwargs["auth_required"] = True

controller = Controller(Sink(), hostname=args.ip, port=args.port, server_hostname=args.hostname, **kwargs)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
