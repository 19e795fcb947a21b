"""Scrape a Prometheus endpoint and parse it with the official client's
text-format parser (PyPI prometheus-client): the test sees what Prometheus
would. Prints one JSON object: {"name{label=value,...}": value}, and the
metric families' types under "__types__".
Usage: prom_scrape.py URL"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    content_type = response.headers.get("Content-Type", "")
    text = response.read().decode("utf-8")
assert content_type.startswith("text/plain"), content_type

samples = {}
types = {}
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
samples["__types__"] = types
print(json.dumps(samples))
