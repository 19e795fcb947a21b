#!/usr/bin/env python3
"""Real clients of Tern's Sieve side.

manage HOST PORT USER PASSWORD
    The PyPI `managesieve` client over STARTTLS: capabilities, login, a
    script refused with its line, HAVESPACE, PUTSCRIPT, SETACTIVE,
    LISTSCRIPTS, GETSCRIPT, DELETESCRIPT (refused for the active script),
    UNAUTHENTICATE. Leaves the script "sorting" active: it files mail into
    "Sorted" (created) and flags it.

mailboxes HOST PORT USER PASSWORD
    IMAP (imaplib, STARTTLS): every mailbox with its messages' flags,
    subjects and X-Sieved fields, as JSON.
"""
import imaplib
import json
import ssl
import sys

SORTING = 'require ["fileinto", "mailbox", "imap4flags"];\r\nfileinto :create :flags "$Sorted" "Sorted";\r\n'


def manage(host, port, user, password):
    import managesieve

    m = managesieve.MANAGESIEVE(host, int(port), use_tls=True, tls_verify=False)
    assert "vacation" in m.capabilities and "editheader" in m.capabilities, m.capabilities
    assert "PLAIN" in m.loginmechs, m.loginmechs
    assert m.login("", user, password) == "OK", m.response_text
    typ = m.putscript("broken", 'require "fileinto";\r\nfileinto "x"\r\n')
    text = m.response_text.decode() if isinstance(m.response_text, bytes) else m.response_text
    assert typ == "NO" and "line 3, column 1" in text, (typ, text)
    assert m.havespace("sorting", len(SORTING)) == "OK"
    assert m.havespace("sorting", 10_000_000) == "NO"
    assert m.putscript("sorting", SORTING) == "OK", m.response_text
    assert m.putscript("spare", "keep;") == "OK"
    assert m.setactive("sorting") == "OK"
    typ, scripts = m.listscripts()
    assert typ == "OK" and sorted(scripts) == [("sorting", True), ("spare", False)], scripts
    typ, text = m.getscript("sorting")
    assert typ == "OK" and text == SORTING, repr(text)
    assert m.deletescript("sorting") == "NO"
    assert m.deletescript("spare") == "OK"
    assert m.unauthenticate() == "OK"
    m.logout()
    print("OK")


def mailboxes(host, port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    imap = imaplib.IMAP4(host, int(port))
    imap.starttls(context)
    imap.login(user, password)
    out = {}
    typ, lines = imap.list()
    names = [l.decode().rsplit(' "/" ', 1)[-1].strip('"') for l in lines]
    for name in names:
        typ, count = imap.select('"%s"' % name, readonly=True)
        if typ != "OK":
            continue
        if int(count[0]) == 0:
            out[name] = []
            continue
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT X-SIEVED)])")
        msgs = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = item[0].decode()
            flags = flags[flags.index("FLAGS (") + 7:]
            flags = flags[: flags.index(")")].split()
            head = item[1].decode()
            fields = {}
            for line in head.split("\r\n"):
                if ": " in line:
                    k, v = line.split(": ", 1)
                    fields[k.lower()] = v
            msgs.append({"flags": flags, "subject": fields.get("subject", ""), "x-sieved": fields.get("x-sieved")})
        out[name] = msgs
    imap.logout()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    {"manage": manage, "mailboxes": mailboxes}[sys.argv[1]](*sys.argv[2:6])
