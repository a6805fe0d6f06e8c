#!/usr/bin/env python3
"""A mail server for the smime-mail adapter's tests (aiosmtpd, Debian's
python3-aiosmtpd).

With --cert/--key it offers STARTTLS and refuses mail before it; without,
it speaks plain SMTP only.  Each mail lands in DIR/<n>.eml as received, with
DIR/<n>.meta holding the envelope sender, recipients and whether TLS was on.
Recipients starting with "reject" are refused with 550.  Writes the port it
listens on (127.0.0.1, chosen by the kernel) to --port-file.
"""
import argparse
import asyncio
import os
import ssl

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, str(self.n))
        with open(base + ".meta", "w") as f:
            f.write("from=%s\n" % envelope.mail_from)
            f.write("to=%s\n" % ",".join(envelope.rcpt_tos))
            f.write("tls=%d\n" % (1 if session.ssl is not None else 0))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 queued as m%d" % self.n


async def serve(a):
    ctx = None
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    handler = Handler(a.dir)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SMTP(handler, tls_context=ctx, require_starttls=ctx is not None,
                     hostname="receiver.test"),
        "127.0.0.1", 0)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.sockets[0].getsockname()[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    await srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
