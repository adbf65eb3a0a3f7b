#!/usr/bin/python3
"""Serves the KeyService's /metrics on plain HTTP for Prometheus.

Why: the KeyService's attested TLS certificate carries its evidence under the extension OID
2.25.73943003643445851295599434248433295863.1, whose 128-bit arc Go's crypto/x509 refuses
("x509: malformed extension OID field"), so Prometheus cannot complete a TLS handshake with it.
Until the KeyService serves metrics on a separate port (or uses an OID Go can parse), run this
beside it and point the moss-keyservice job here. The metrics are counts only; the relay reads
them over TLS without judging the KeyService's attestation and keeps no state.

    keyservice_metrics_relay.py --keyservice https://127.0.0.1:7443 --listen 127.0.0.1:9464"""
import argparse
import http.server
import ssl
import sys
import urllib.request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keyservice", required=True, help="https://host:port of the KeyService")
    ap.add_argument("--listen", default="127.0.0.1:9464", help="host:port to serve /metrics on")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    source = a.keyservice.rstrip("/") + "/metrics"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self.send_error(404)
                return
            try:
                with urllib.request.urlopen(source, context=ctx, timeout=10) as r:
                    body, ctype = r.read(16 << 20), r.headers.get("Content-Type", "text/plain")
            except OSError as e:
                self.send_error(502, f"KeyService: {e}")
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    host, port = a.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(f"keyservice_metrics_relay listening on http://{host}:{server.server_port}/metrics",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
