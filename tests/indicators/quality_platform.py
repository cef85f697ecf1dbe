"""A stand-in for the national quality platform: an HTTP endpoint that takes POSTed FHIR R4
Bundles of Measures and MeasureReports, validates every resource with `fhir.resources`
(R4 4.0.1), and keeps one record per Idempotency-Key.

    quality_platform.py PORT TOKEN STATE_FILE [CERT KEY CA]

With CERT KEY CA it speaks HTTPS and takes only clients with a certificate CA issued (mutual
TLS), recording each accepted bundle's client certificate CN; TOKEN `-` asks for no bearer
token. Answers 401 without the bearer token, 422 when a resource does not validate (the reason in
the body), 200 for a bundle accepted or one whose key it already has. STATE_FILE holds a JSON
list of what was accepted: [{"key", "measures", "reports", "posts", "client"}].
"""

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fhir.resources.bundle import Bundle
from fhir.resources.measure import Measure
from fhir.resources.measurereport import MeasureReport

PORT, TOKEN, STATE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
TLS = sys.argv[4:7]
accepted = {}


def save():
    with open(STATE + ".tmp", "w") as f:
        json.dump(list(accepted.values()), f)
    import os
    os.replace(STATE + ".tmp", STATE)


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - the http.server interface
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        if TOKEN != "-" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, "bearer token required")
        key = self.headers.get("Idempotency-Key", "")
        if not key:
            return self.answer(400, "Idempotency-Key required")
        if key in accepted:
            accepted[key]["posts"] += 1
            save()
            return self.answer(200, "already have it")
        try:
            bundle = json.loads(data)
            Bundle.parse_obj({**bundle, "entry": []})
            measures = reports = 0
            for entry in bundle.get("entry", []):
                resource = entry["resource"]
                if resource["resourceType"] == "Measure":
                    Measure.parse_obj(resource)
                    measures += 1
                elif resource["resourceType"] == "MeasureReport":
                    MeasureReport.parse_obj(resource)
                    reports += 1
                else:
                    raise ValueError(f"unexpected {resource['resourceType']}")
        except Exception as e:  # noqa: BLE001 - every failure is the sender's to see
            return self.answer(422, str(e)[:2000])
        client = ""
        if TLS:
            subject = dict(pair[0] for pair in self.connection.getpeercert().get("subject", ()))
            client = subject.get("commonName", "")
        accepted[key] = {"key": key, "measures": measures, "reports": reports, "posts": 1,
                         "client": client}
        save()
        return self.answer(200, "accepted")

    def log_message(self, *args):
        pass


save()
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
if TLS:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS[0], TLS[1])
    context.load_verify_locations(TLS[2])
    context.verify_mode = ssl.CERT_REQUIRED
    # A client without a certificate fails its handshake; the server goes on serving.
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
