#!/usr/bin/env python3
"""Check a DMARC aggregate report message read from stdin, independently of
Tern: find the gzip attachment (RFC 7489 §7.2.1.1), decompress it and
validate the XML against the RFC 7489 Appendix C schema (the copy shipped in
the `dmarc` package from PyPI), with `xmlschema` from PyPI.

Prints the attachment's file name on the first line, then the XML. Exits
non-zero when something is missing or the XML is not valid.

With --rezip ID: prints instead a new report message with the same XML under
report id ID, zipped (application/zip), as some receivers send them."""
import email
import email.message
import email.policy
import gzip
import importlib.util
import os
import io
import sys
import zipfile

import xmlschema


def schema_path():
    spec = importlib.util.find_spec("dmarc")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the dmarc package (PyPI) is not installed")
    base = list(spec.submodule_search_locations)[0]
    return os.path.join(base, "report", "schemas", "dmarc.xsd")


def main():
    message = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
    parts = [p for p in message.walk() if p.get_content_type() == "application/gzip"]
    if len(parts) != 1:
        sys.exit(f"expected one application/gzip part, found {len(parts)}")
    xml = gzip.decompress(parts[0].get_payload(decode=True))
    schema = xmlschema.XMLSchema(schema_path())
    errors = list(schema.iter_errors(xml.decode("utf-8")))
    if errors:
        sys.exit("invalid report:\n" + "\n".join(str(e) for e in errors[:5]))
    if sys.argv[1:2] == ["--rezip"]:
        return rezip(message, xml.decode("utf-8"), sys.argv[2])
    print(parts[0].get_filename())
    sys.stdout.write(xml.decode("utf-8"))


def rezip(original, xml, report_id):
    start = xml.index("<report_id>") + len("<report_id>")
    end = xml.index("</report_id>")
    xml = xml[:start] + report_id + xml[end:]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("report.xml", xml)
    out = email.message.EmailMessage()
    out["From"] = original["From"]
    out["To"] = original["To"]
    out["Subject"] = f"Report Domain: x Submitter: y Report-ID: <{report_id}>"
    out.set_content("A zipped DMARC aggregate report.")
    out.add_attachment(buffer.getvalue(), maintype="application", subtype="zip", filename="report.zip")
    sys.stdout.buffer.write(out.as_bytes(policy=email.policy.SMTP))


main()
