#!/usr/bin/python3
"""HTTPS stand-in for the live carbon APIs, for tests/integration/live_carbon.

Serves the recorded responses of tests/data/providers (Electricity Maps v3,
WattTime v3, Carbon Aware SDK WebAPI) over TLS with the test's certificate,
checking credentials like the real APIs. The only rewrite: every ISO-8601
timestamp in a response is shifted by whole hours so that the recording's
"now" (2026-03-10T12:00Z, see tests/data/providers/README.md) becomes the
current hour; the shift is computed per request, so an hour boundary crossed
during a test changes nothing.

Control and observation through files in --state-dir:
  fail          exists -> data endpoints answer HTTP 500
  requests.log  one line per request: "<status> <path> auth=<ok|bad|none>"
  port          the listening port, written once serving (atomic rename)

Credentials come from the environment (never the command line):
  FAKE_EMAPS_TOKEN, FAKE_WT_USER, FAKE_WT_PASSWORD.
"""

import argparse
import base64
import datetime as dt
import http.server
import os
import re
import ssl
import sys
import threading
import urllib.parse

ANCHOR = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)
ISO = re.compile(r'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})"')
WT_TOKEN = "fake-watttime-session-token"


def shifted(text):
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    delta = now - ANCHOR

    def one(m):
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S") + delta
        return '"%s%s%s"' % (t.strftime("%Y-%m-%dT%H:%M:%S"), m.group(2) or "", m.group(3))

    return ISO.sub(one, text)


class Api(http.server.BaseHTTPRequestHandler):
    server_version = "fake-carbon-api/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: requests.log is the record
        pass

    def record(self, status, path, auth):
        with self.server.lock:
            with open(os.path.join(self.server.state_dir, "requests.log"), "a") as f:
                f.write("%d %s auth=%s\n" % (status, path, auth))

    def send(self, status, body, path, auth):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.record(status, path, auth)

    def recorded(self, name):
        with open(os.path.join(self.server.data_dir, name)) as f:
            return shifted(f.read())

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        q = urllib.parse.parse_qs(url.query)
        header = self.headers.get("auth-token") or self.headers.get("Authorization")
        routes = {
            # Electricity Maps v3 (auth-token header).
            ("/v3/carbon-intensity/history", "DE"): "emaps_v3_history_DE.json",
            ("/v3/carbon-intensity/forecast", "DE"): "emaps_v3_forecast_DE.json",
            # WattTime v3 (Bearer token from /login).
            ("/v3/historical", "CAISO_NORTH"): "watttime_v3_historical_CAISO_NORTH.json",
            ("/v3/forecast", "CAISO_NORTH"): "watttime_v3_forecast_CAISO_NORTH.json",
            # Carbon Aware SDK WebAPI (no credentials).
            ("/emissions/bylocation", "westus"): "casdk_emissions_bylocation_westus.json",
            ("/emissions/forecasts/current", "westus"): "casdk_forecasts_current_westus_eastus.json",
        }
        if path == "/login":
            want = base64.b64encode(
                ("%s:%s" % (os.environ.get("FAKE_WT_USER", ""),
                            os.environ.get("FAKE_WT_PASSWORD", ""))).encode()).decode()
            ok = header == "Basic " + want
            if not ok:
                return self.send(401, '{"error":"bad credentials"}', path, "bad" if header else "none")
            return self.send(200, '{"token":"%s"}' % WT_TOKEN, path, "ok")
        zone = (q.get("zone") or q.get("region") or q.get("location") or [""])[0]
        name = routes.get((path, zone))
        if name is None:
            return self.send(404, '{"error":"not found"}', path, "none")
        if path.startswith("/v3/carbon-intensity/"):
            expected = os.environ.get("FAKE_EMAPS_TOKEN")
            got = self.headers.get("auth-token")
        elif path.startswith("/v3/"):
            expected = "Bearer " + WT_TOKEN
            got = self.headers.get("Authorization")
        else:
            expected = got = None
        auth = "none" if got is None else ("ok" if got == expected else "bad")
        if expected is not None and auth != "ok":
            return self.send(401, '{"error":"unauthorized"}', path, auth)
        if os.path.exists(os.path.join(self.server.state_dir, "fail")):
            return self.send(500, '{"error":"internal"}', path, auth)
        return self.send(200, self.recorded(name), path, auth)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--state-dir", required=True)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.lock = threading.Lock()
    srv.state_dir = args.state_dir
    srv.data_dir = args.data_dir
    tmp = os.path.join(args.state_dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(args.state_dir, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
