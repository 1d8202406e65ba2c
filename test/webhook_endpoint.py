#!/usr/bin/env python3
"""A webhook endpoint that hands Telnyx's deliveries to PostgreSQL.

  PGHOST=... PGDATABASE=... webhook_endpoint.py PORT

Each POST is passed, body and headers exactly as received, to
telnyx_apply_webhook (with psql, so that it needs nothing but Python).
Answers 200 when applied (or a duplicate, or an event type ignored), 400
when refused (bad signature, expired, malformed: Telnyx's retries would be
refused too), 500 otherwise (Telnyx retries).
"""
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SQL = "SELECT telnyx_apply_webhook(:'body', :'signature', :'timestamp')"


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        run = subprocess.run(
            ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=sqlstate",
             "-v", "body=" + body.decode("utf-8", "replace"),
             "-v", "signature=" + self.headers.get("telnyx-signature-ed25519", ""),
             "-v", "timestamp=" + self.headers.get("telnyx-timestamp", "")],
            input=SQL, capture_output=True, text=True)
        refused = "TX6" in run.stderr
        self.send_response(200 if run.returncode == 0 else 400 if refused else 500)
        self.end_headers()
        self.wfile.write((run.stdout or run.stderr).encode())


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
