#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# smtp_latency.py: SMTP acceptance rate and the time from the end of
# DATA (sending "\r\n.\r\n") to the server's 250, per message.
#
# It opens SESSIONS connections, says EHLO once on each, then sends
# messages in a loop over each connection (MAIL, RCPT, DATA, body) until
# COUNT messages in all have been accepted or SECONDS have passed.  With
# PIPELINING offered, MAIL, RCPT and DATA go in one write, as Postfix's
# SMTP client does; the timed part (final dot to 250) is the same
# either way.  Standard library only.
#
#   /usr/bin/python3 contrib/bench/smtp_latency.py -p PORT [-H 127.0.0.1]
#       [-s SESSIONS] [-m COUNT | -t SECONDS] [-l BODYBYTES]
#       [-f FROM] [-r TO] [--no-pipelining] [--timeout SECONDS]
#       [--max-reconnects N]
#
# One line of key=value pairs is printed:
#
#   sessions=N messages=M errors=E seconds=S rate=R p50_ms=.. p90_ms=..
#   p99_ms=.. max_ms=..
#
# rate is accepted messages a second over the whole run (connection
# set-up included).  The exit status is 1 if no message was accepted.

import argparse
import asyncio
import math
import resource
import sys
import time


class ReplyError(Exception):
    pass


async def reply(reader, timeout):
    """Read one (possibly multi-line) reply; return (code, lines)."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("connection closed by server")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    try:
        code = int(lines[-1][:3])
    except ValueError:
        raise ReplyError("bad reply %r" % lines[-1])
    return code, lines


def make_body(size, sender, rcpt, n):
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: benchmark message %d\r\n\r\n"
            % (sender, rcpt, n)).encode()
    line = b"x" * 76 + b"\r\n"
    full, rest = divmod(size, len(line))
    body = line * full + (b"y" * max(rest - 2, 0) + b"\r\n" if rest else b"")
    # Without the last CRLF: the client sends "\r\n.\r\n" as the end.
    return head + body[:-2]


class Run:
    def __init__(self, args):
        self.args = args
        self.want = args.count
        self.started = 0
        self.done = 0
        self.errors = 0
        self.lat = []
        self.deadline = None
        self.first_error = None

    def take(self):
        """Claim the next message, or None when the run is over."""
        if self.want and self.started >= self.want:
            return None
        if self.deadline and time.monotonic() >= self.deadline:
            return None
        self.started += 1
        return self.started

    def error(self, what):
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


async def session(run, sid):
    a = run.args
    t = a.timeout
    reconnects = 0
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(a.host, a.port), t)
        except (OSError, asyncio.TimeoutError) as e:
            run.error("connect: %s" % (str(e) or type(e).__name__))
            reconnects += 1
            if reconnects > a.max_reconnects or run.take() is None:
                return
            run.started -= 1
            await asyncio.sleep(0.1)
            continue
        try:
            code, _ = await reply(reader, t)
            if code != 220:
                raise ReplyError("banner %d" % code)
            writer.write(b"EHLO bench.localdomain\r\n")
            code, lines = await reply(reader, t)
            if code != 250:
                raise ReplyError("EHLO %d" % code)
            pipelining = a.pipelining and any(
                l[4:].strip().upper() == b"PIPELINING" for l in lines)
            mail = ("MAIL FROM:<%s>\r\n" % a.sender).encode()
            rcpt = ("RCPT TO:<%s>\r\n" % a.rcpt).encode()
            while True:
                n = run.take()
                if n is None:
                    break
                body = make_body(a.size, a.sender, a.rcpt, n)
                if pipelining:
                    writer.write(mail + rcpt + b"DATA\r\n")
                    codes = [(await reply(reader, t))[0] for _ in range(3)]
                else:
                    codes = []
                    for cmd in (mail, rcpt, b"DATA\r\n"):
                        writer.write(cmd)
                        c = (await reply(reader, t))[0]
                        codes.append(c)
                        if c >= 400:
                            break
                if codes[:2] != [250, 250] or codes[-1] != 354:
                    run.error("envelope %s" % codes)
                    if codes and codes[-1] == 354:
                        writer.write(b".\r\n")
                        await reply(reader, t)
                    writer.write(b"RSET\r\n")
                    await reply(reader, t)
                    continue
                writer.write(body)
                await writer.drain()
                t0 = time.perf_counter()
                writer.write(b"\r\n.\r\n")
                code, lines = await reply(reader, t)
                t1 = time.perf_counter()
                if code == 250:
                    run.done += 1
                    run.lat.append(t1 - t0)
                else:
                    run.error("end of data %r" % lines[-1])
            writer.write(b"QUIT\r\n")
            try:
                await reply(reader, t)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
            writer.close()
            return
        except (OSError, asyncio.TimeoutError, ConnectionError,
                ReplyError) as e:
            run.error("session %d: %s" % (sid, str(e) or type(e).__name__))
            writer.close()
            reconnects += 1
            if reconnects > a.max_reconnects:
                return


def pct(sorted_lat, p):
    if not sorted_lat:
        return float("nan")
    i = max(0, math.ceil(p / 100.0 * len(sorted_lat)) - 1)
    return sorted_lat[i] * 1000.0


async def main_async(args):
    run = Run(args)
    t0 = time.monotonic()
    if args.seconds:
        run.deadline = t0 + args.seconds
    await asyncio.gather(*(session(run, i) for i in range(args.sessions)))
    elapsed = time.monotonic() - t0
    lat = sorted(run.lat)
    print("sessions=%d messages=%d errors=%d seconds=%.2f rate=%.0f "
          "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f"
          % (args.sessions, run.done, run.errors, elapsed,
             run.done / elapsed if elapsed > 0 else 0,
             pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100)))
    if run.first_error:
        print("first error: %s" % run.first_error, file=sys.stderr)
    return 0 if run.done else 1


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("-s", "--sessions", type=int, default=1)
    p.add_argument("-m", "--count", type=int, default=0,
                   help="messages in all (0: until --seconds)")
    p.add_argument("-t", "--seconds", type=float, default=0)
    p.add_argument("-l", "--size", type=int, default=2048,
                   help="body bytes after the headers")
    p.add_argument("-f", "--sender", default="bench@example.test")
    p.add_argument("-r", "--rcpt", default="bench@localhost")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--max-reconnects", type=int, default=20,
                   help="per session, after errors")
    p.add_argument("--no-pipelining", dest="pipelining",
                   action="store_false")
    args = p.parse_args()
    if not args.count and not args.seconds:
        args.seconds = 10
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.sessions + 64 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.sessions + 64, hard))
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
