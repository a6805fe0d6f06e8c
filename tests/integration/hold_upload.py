#!/usr/bin/env python3
"""hold_upload.py PORT PATH LENGTH FIRST CAFILE GOFILE [CERT KEY]

POST to https://127.0.0.1:PORT/PATH announcing a body of LENGTH bytes, send
the headers and FIRST bytes of it, print "started", then wait until GOFILE
exists before sending the rest.  Prints the status code of the answer (000
when the connection ended without one).  For the request-body limits of
test_limits.sh: an upload held open half-way, as a slow or hostile client
would."""
import os
import socket
import ssl
import sys
import time

port, path, length, first, cafile, go = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                         int(sys.argv[4]), sys.argv[5], sys.argv[6])
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
if len(sys.argv) > 8:
    ctx.load_cert_chain(sys.argv[7], sys.argv[8])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
head = ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\n\r\n" % (path, length)).encode()
s.sendall(head + b" " * first)
print("started", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
try:
    s.sendall(b" " * (length - first))
    answer = b""
    while b"\r\n" not in answer:
        piece = s.recv(4096)
        if not piece:
            break
        answer += piece
except OSError:
    answer = b""
parts = answer.split(b" ")
print(parts[1].decode() if len(parts) > 1 and answer.startswith(b"HTTP/") else "000", flush=True)
