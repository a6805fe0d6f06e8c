#!/usr/bin/env python3
"""A party's HTTPS endpoint for the push adapter's tests.

Requires a client certificate from --ca (mutual TLS) and stores each POST
body as DIR/<n>.body with the client's subject in DIR/<n>.peer and the
request headers in DIR/<n>.headers.  The path picks the answer:
  /ok       202, no body
  /receipt  202 with a signed receipt (openssl cms -sign) as application/pkcs7-mime
  /fail     500
  /refuse   400
  /slow     sleeps 30 s, then 202
  /receipt-first
            POSTs a signed receipt to hegnd's API itself (--hegn-url, as the
            party of --party-cert and --party-key), writes its status to
            DIR/<n>.receipt-status, then answers 202: the receipt is in before
            the push returns
Writes the port it listens on (127.0.0.1, chosen by the kernel unless --port
names one, so that a test can bring the same endpoint back) to --port-file.
"""
import argparse
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--sign-cert")
    ap.add_argument("--sign-key")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--hegn-url")
    ap.add_argument("--party-cert")
    ap.add_argument("--party-key")
    a = ap.parse_args()
    lock = threading.Lock()
    counter = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, status, body=b"", ctype="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def signed_receipt(self, body):
            receipt = json.dumps({
                "message_id": self.headers.get("X-Hegn-Message-Id", ""),
                "sha256": hashlib.sha256(body).hexdigest(),
                "status": "accepted"}).encode()
            with tempfile.NamedTemporaryFile(dir=a.dir) as src:
                src.write(receipt)
                src.flush()
                return subprocess.run(
                    ["openssl", "cms", "-sign", "-binary", "-nodetach", "-md", "sha256",
                     "-signer", a.sign_cert, "-inkey", a.sign_key, "-outform", "DER",
                     "-in", src.name],
                    check=True, capture_output=True).stdout

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                counter[0] += 1
                n = counter[0]
            peer = self.connection.getpeercert() or {}
            cn = ""
            for rdn in peer.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
            base = os.path.join(a.dir, str(n))
            with open(base + ".peer", "w") as f:
                f.write(cn + "\n")
            with open(base + ".headers", "w") as f:
                f.write(str(self.headers))
            with open(base + ".tmp", "wb") as f:
                f.write(body)
            os.rename(base + ".tmp", base + ".body")
            if self.path == "/ok":
                self.answer(202)
            elif self.path == "/receipt":
                self.answer(202, self.signed_receipt(body),
                            "application/pkcs7-mime; smime-type=signed-data")
            elif self.path == "/receipt-first":
                der = self.signed_receipt(body)
                tls = ssl.create_default_context(cafile=a.ca)
                tls.load_cert_chain(a.party_cert, a.party_key)
                req = urllib.request.Request(
                    "%s/v1/messages/%s/receipt" % (a.hegn_url,
                                                   self.headers.get("X-Hegn-Message-Id", "")),
                    data=der, method="POST",
                    headers={"Content-Type": "application/pkcs7-mime"})
                try:
                    with urllib.request.urlopen(req, context=tls, timeout=30) as r:
                        status = r.status
                except urllib.error.HTTPError as e:
                    status = e.code
                with open(base + ".receipt-status", "w") as f:
                    f.write("%d\n" % status)
                self.answer(202)
            elif self.path == "/fail":
                self.answer(500, b"internal trouble")
            elif self.path == "/refuse":
                self.answer(400, b"bad message")
            elif self.path == "/slow":
                time.sleep(30)
                self.answer(202)
            else:
                self.answer(404)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
