"""Write a TLS report message as RFC 8460 §5.3 describes it (multipart/report;
report-type=tlsrpt, the JSON report gzipped as application/tlsrpt+gzip) with
the JSON of the RFC's §4.4 example, made about POLICY_DOMAIN.
Usage: tlsrpt_message.py POLICY_DOMAIN REPORT_ID > message.eml"""
import gzip
import json
import sys
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

domain, report_id = sys.argv[1], sys.argv[2]
report = {
    "organization-name": "Company-X",
    "date-range": {
        "start-datetime": "2016-04-01T00:00:00Z",
        "end-datetime": "2016-04-01T23:59:59Z",
    },
    "contact-info": "sts-reporting@company-x.example",
    "report-id": report_id,
    "policies": [{
        "policy": {
            "policy-type": "sts",
            "policy-string": ["version: STSv1", "mode: testing",
                              f"mx: mx.{domain}", "max_age: 86400"],
            "policy-domain": domain,
            "mx-host": [f"mx.{domain}"],
        },
        "summary": {"total-successful-session-count": 5326,
                    "total-failure-session-count": 303},
        "failure-details": [{
            "result-type": "certificate-expired",
            "sending-mta-ip": "2001:db8:abcd:0012::1",
            "receiving-mx-hostname": f"mx.{domain}",
            "failed-session-count": 100,
        }, {
            "result-type": "starttls-not-supported",
            "sending-mta-ip": "2001:db8:abcd:0013::1",
            "receiving-mx-hostname": f"mx.{domain}",
            "receiving-ip": "203.0.113.56",
            "failed-session-count": 200,
            "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported",
        }, {
            "result-type": "validation-failure",
            "sending-mta-ip": "198.51.100.62",
            "receiving-ip": "203.0.113.58",
            "receiving-mx-hostname": f"mx.{domain}",
            "failed-session-count": 3,
            "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
        }],
    }],
}
message = MIMEMultipart("report", report_type="tlsrpt")
message["From"] = "tls-reporting@company-x.example"
message["To"] = f"tls-reports@{domain}"
message["Subject"] = f"Report Domain: {domain} Submitter: company-x.example Report-ID: <{report_id}>"
message["TLS-Report-Domain"] = domain
message["TLS-Report-Submitter"] = "company-x.example"
message.attach(MIMEText("This is an aggregate TLS report from company-x.example"))
attachment = MIMEApplication(gzip.compress(json.dumps(report).encode()), "tlsrpt+gzip")
attachment.add_header("Content-Disposition", "attachment",
                      filename=f"company-x.example!{domain}!1459468800!1459555199.json.gz")
message.attach(attachment)
sys.stdout.write(message.as_string().replace("\n", "\r\n"))
