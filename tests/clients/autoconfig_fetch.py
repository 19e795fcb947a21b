"""Fetch client autoconfiguration the way clients do and read it with
standard parsers: Thunderbird's config-v1.1.xml and the autodiscover
answer with xml.etree, Apple's profile with plistlib (which refuses a
malformed property list). Prints JSON: the servers each document offers.
Usage: autoconfig_fetch.py BASE_URL ADDRESS"""
import json
import plistlib
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

base, address = sys.argv[1], sys.argv[2]
quoted = urllib.parse.quote(address)


def get(path, data=None, headers=None):
    request = urllib.request.Request(base + path, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read()


out = {}
_, body = get(f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={quoted}")
root = ET.fromstring(body)
provider = root.find("emailProvider")
out["thunderbird"] = {
    "domain": provider.findtext("domain"),
    "servers": [
        [s.tag, s.get("type"), s.findtext("hostname"), int(s.findtext("port")),
         s.findtext("socketType"), s.findtext("username")]
        for s in provider
        if s.tag in ("incomingServer", "outgoingServer")
    ],
}

request = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    f"<Request><EMailAddress>{address}</EMailAddress>"
    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>"
    "</Request></Autodiscover>"
).encode()
_, body = get("/autodiscover/autodiscover.xml", request, {"Content-Type": "text/xml"})
ns = {
    "r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
}
root = ET.fromstring(body)
out["autodiscover"] = [
    [p.findtext("r:Type", namespaces=ns), p.findtext("r:Server", namespaces=ns),
     int(p.findtext("r:Port", namespaces=ns)), p.findtext("r:Encryption", namespaces=ns),
     p.findtext("r:LoginName", namespaces=ns)]
    for p in root.iter(f"{{{ns['r']}}}Protocol")
]

content_type, body = get(f"/apple/mail.mobileconfig?emailaddress={quoted}")
profile = plistlib.loads(body)
account = profile["PayloadContent"][0]
out["mobileconfig"] = {
    "content_type": content_type,
    "type": account["PayloadType"],
    "incoming": [account["IncomingMailServerHostName"], account["IncomingMailServerPortNumber"]],
    "outgoing": [account["OutgoingMailServerHostName"], account["OutgoingMailServerPortNumber"]],
    "user": account["IncomingMailServerUsername"],
    "uuid": profile["PayloadUUID"],
}
print(json.dumps(out))
