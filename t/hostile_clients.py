# SPDX-License-Identifier: ISC
"""Hostile clients against one ternd, which must keep serving everyone
else.

Slowloris sessions that trickle one byte a second and never finish a
command, 1 MB command lines, 100,000 pipelined RCPTs in one burst,
100,000 NOOPs written without reading a reply, TLS handshakes that stop
half way (implicit TLS and STARTTLS) and garbage after STARTTLS,
invalid UTF-8 in commands, NUL bytes in commands and in message data,
and clients that hang up in every state of a session.  Meanwhile
normal clients get their mail accepted and delivered, ternd's memory
stays bounded, and at the end ternd still runs and delivers a last
message.
"""

import os
import smtplib
import socket
import ssl
import struct
import threading
import time

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"
TIMEOUT = 3            # smtpd_timeout, seconds
RSS_LIMIT_KB = 200 * 1024
BAD_UTF8 = [("a lone continuation octet", b"\x80"),
            ("a truncated sequence", b"\xc3"),
            ("0xFF", b"\xff"),
            ("an overlong encoding", b"\xc0\xaf"),
            ("an encoded surrogate", b"\xed\xa0\x80"),
            ("a code point above U+10FFFF", b"\xf4\x90\x80\x80")]
CUT = "421 4.4.2 mx.example.test Error: timeout exceeded"


def rss_kb(pid):
    """ternd's resident set size in kB (0 if it cannot be read)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RSSWatch:
    """Samples ternd's VmRSS in the background; .peak is the highest."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = rss_kb(pid)
        self.done = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.wait(0.05):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.th.join(5)
        self.peak = max(self.peak, rss_kb(self.pid))
        return False


def check_rss(t, watch, what):
    F.check(0 < watch.peak < RSS_LIMIT_KB, "%s: ternd's VmRSS stays under "
            "%d MB" % (what, RSS_LIMIT_KB // 1024),
            "peak %d kB" % watch.peak)


class Lines:
    """Fast reader of reply lines from a raw socket (the flood sections
    read hundreds of thousands of them)."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = []
        self.tail = b""
        self.eof = False

    def line(self):
        """One line without CRLF (bytes), or None at end of file."""
        while not self.pending:
            if self.eof:
                return None
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                if self.tail:
                    self.pending.append(self.tail)
                    self.tail = b""
                continue
            parts = (self.tail + data).split(b"\n")
            self.tail = parts.pop()
            self.pending.extend(parts)
            self.pending.reverse()
        return self.pending.pop().rstrip(b"\r")

    def reply(self):
        """The last line of one reply (str), or None at end of file."""
        while True:
            line = self.line()
            if line is None:
                return None
            if len(line) < 4 or line[3:4] != b"-":
                return line.decode("utf-8", "replace")


def writer(sock, data, result):
    """Start a thread that writes data to sock; result gets the error."""
    def run():
        try:
            sock.sendall(data)
            result.append(None)
        except OSError as e:
            result.append(e)
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def ehlo(c):
    code, lines = c.cmd("EHLO " + HELO)
    F.check(code == 250, "EHLO is accepted", lines)


def send_normal(t, user, what, deliver_within=5.0, port=None):
    """A well-behaved client sends one message to user@localhost; it must
    be accepted and delivered within deliver_within seconds."""
    start = time.monotonic()
    try:
        s = smtplib.SMTP("127.0.0.1", port or t.port, local_hostname=HELO,
                         timeout=10)
        try:
            s.sendmail(SENDER, ["%s@localhost" % user],
                       "Subject: %s\n\n%s\n" % (what, what))
            s.quit()
        finally:
            s.close()
        ok = None
    except (smtplib.SMTPException, OSError) as e:
        ok = repr(e)
    accepted = time.monotonic() - start
    F.check(ok is None and accepted < deliver_within, "%s: a normal client's "
            "message is accepted (in %.1fs)" % (what, accepted), ok)
    got = t.wait_maildir(user, 1, timeout=deliver_within)
    F.check(len(got) == 1, "%s: and delivered within %gs"
            % (what, deliver_within), "%d messages" % len(got))


def wait_cut_raw(sock, limit):
    """Read from sock until the server closes it or limit seconds pass:
    (bytes read, closed, seconds)."""
    start = time.monotonic()
    data = b""
    closed = False
    while time.monotonic() - start < limit:
        sock.settimeout(max(0.05, limit - (time.monotonic() - start)))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return data, closed, time.monotonic() - start


# Slowloris

def slowloris(t):
    n = 12
    results = [None] * n
    started = []
    bound = 2 * TIMEOUT + 2

    def loris(i):
        try:
            sock = socket.create_connection(("127.0.0.1", t.port), timeout=10)
        except OSError as e:
            results[i] = ("connect", repr(e))
            return
        with sock:
            rd = Lines(sock)
            banner = rd.reply()
            # Never a complete line: "EHLO xxxxxxx..." one byte a second.
            trickle = b"EHLO " + b"x" * 100
            start = time.monotonic()
            data = b""
            closed = False
            started.append(i)
            for k in range(int(bound) + 2):
                try:
                    sock.sendall(trickle[k:k + 1])
                except OSError:
                    closed = True
                    break
                got, closed, _ = wait_cut_raw(sock, 1.0)
                data += got
                if closed:
                    break
            results[i] = (banner, data, closed, time.monotonic() - start)

    threads = [threading.Thread(target=loris, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    # The slow clients are connected and trickling: a normal one is served.
    ternlib.wait_for(lambda: len(started) == n, timeout=10)
    send_normal(t, "loris_ok", "during %d slowloris sessions" % n)
    for th in threads:
        th.join(bound + 15)
    bad = []
    for i, r in enumerate(results):
        if r is None or r[0] == "connect":
            bad.append((i, r))
            continue
        banner, data, closed, took = r
        text = data.decode("utf-8", "replace").strip()
        if not (banner and banner.startswith("220") and text == CUT and
                closed and took <= bound):
            bad.append((i, text, closed, round(took, 1)))
    F.check(not bad, "%d clients sending one byte a second and never "
            "ending a command line: each gets \"%s\" and is closed within "
            "%gs (smtpd_timeout=%ds)" % (n, CUT, bound, TIMEOUT), bad[:4])
    F.check(t.running(), "slowloris: ternd still runs")


# Long command lines

def long_lines(t):
    big = 1 << 20
    with RSSWatch(t.pid) as w:
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.send(b"NOOP " + b"x" * big + b"\r\n")
            r = c.reply()
            F.expect(r, "500 5.5.2 Error: line too long", "a 1 MB NOOP line")
            if r[0] is not None:
                r = c.cmd("NOOP")
                F.check(r[0] is None or reply_text(r) == "250 2.0.0 Ok",
                        "after it the session goes on (or is closed)", r)
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<%s>" % SENDER)
            c.send(b"RCPT TO:<" + b"r" * big + b"@localhost>\r\n"
                   b"RCPT TO:<longrcpt@localhost>\r\n")
            F.expect(c.reply(), "500 5.5.2 Error: line too long",
                     "a 1 MB RCPT line")
            F.expect(c.reply(), "250 2.1.5", "the RCPT pipelined behind it "
                     "is run on its own")
            F.expect(c.cmd("RSET"), "250", "RSET")
        # A megabyte with no line end at all, then the client hangs up.
        with socket.create_connection(("127.0.0.1", t.port), 10) as s:
            s.recv(1000)
            try:
                s.sendall(b"HELO " + b"y" * (4 * big))
            except OSError:
                pass
        # Many of them at once.
        socks = []
        try:
            for _ in range(8):
                s = socket.create_connection(("127.0.0.1", t.port), 10)
                socks.append(s)
            for s in socks:
                try:
                    s.sendall(b"z" * big)
                except OSError:
                    pass
            send_normal(t, "longline_ok", "while 8 clients hold 1 MB "
                        "unfinished lines")
        finally:
            for s in socks:
                s.close()
    check_rss(t, w, "1 MB command lines")
    F.check(t.running(), "long lines: ternd still runs")


# Floods

def rcpt_flood(t):
    n = 100000
    limit = 1000
    cmds = [b"EHLO " + HELO.encode(), b"MAIL FROM:<" + SENDER.encode() + b">"]
    cmds += [b"RCPT TO:<f%d@localhost>" % i for i in range(n)]
    cmds += [b"RSET", b"QUIT"]
    payload = b"\r\n".join(cmds) + b"\r\n"
    with RSSWatch(t.pid) as w:
        sock = socket.create_connection(("127.0.0.1", t.port), timeout=20)
        with sock:
            rd = Lines(sock)
            banner = rd.reply()
            err = []
            th = writer(sock, payload, err)
            got = []
            start = time.monotonic()
            while len(got) < len(cmds) and time.monotonic() - start < 40:
                try:
                    r = rd.reply()
                except socket.timeout:
                    break
                if r is None:
                    break
                got.append(r)
            th.join(10)
    F.check(banner and banner.startswith("220"), "RCPT flood: banner",
            banner)
    F.check(len(got) == len(cmds), "%d pipelined RCPTs in one burst: every "
            "one of the %d commands answered" % (n, len(cmds)),
            "%d replies" % len(got))
    if len(got) == len(cmds):
        rc = got[2:2 + n]
        ok = sum(1 for r in rc if r.startswith("250 2.1.5"))
        full = sum(1 for r in rc if r == "452 4.5.3 Error: too many "
                   "recipients")
        F.check(got[0].startswith("250") and got[1].startswith("250 2.1.0"),
                "EHLO and MAIL accepted", got[:2])
        F.check(ok == limit and full == n - limit and
                all(r.startswith("250 2.1.5") for r in rc[:limit]),
                "the first %d (smtpd_recipient_limit) get 250 2.1.5, the "
                "other %d get \"452 4.5.3 Error: too many recipients\", in "
                "order" % (limit, n - limit),
                "%d accepted, %d refused" % (ok, full))
        F.check(got[-2].startswith("250") and got[-1].startswith("221"),
                "RSET and QUIT answered last, in order", got[-2:])
    check_rss(t, w, "RCPT flood")
    F.check(t.running(), "RCPT flood: ternd still runs")
    F.check(not t.maildir_files("f0"), "RCPT flood: nothing delivered (the "
            "transaction was reset)")


def noop_flood(t):
    n = 100000
    payload = b"EHLO " + HELO.encode() + b"\r\n" + b"NOOP\r\n" * n + \
        b"QUIT\r\n"
    with RSSWatch(t.pid) as w:
        sock = socket.create_connection(("127.0.0.1", t.port), timeout=20)
        with sock:
            rd = Lines(sock)
            banner = rd.reply()
            err = []
            # Write everything before reading a single reply.
            th = writer(sock, payload, err)
            th.join(15)
            wrote = not th.is_alive()
            # Other clients are served while the flood is unread.
            send_normal(t, "flood_ok", "during an unread pipelining flood")
            got = []
            start = time.monotonic()
            while len(got) < n + 2 and time.monotonic() - start < 30:
                try:
                    r = rd.reply()
                except socket.timeout:
                    break
                if r is None:
                    break
                got.append(r)
            th.join(10)
    F.check(banner and banner.startswith("220"), "NOOP flood: banner", banner)
    noops = got[1:1 + n]
    all_answered = (len(got) == n + 2 and
                    all(r == "250 2.0.0 Ok" for r in noops) and
                    got[-1].startswith("221"))
    closed = rd.eof and all(r == "250 2.0.0 Ok" for r in noops)
    F.check(all_answered or closed, "%d NOOPs written without reading: all "
            "answered in order, or the connection is closed (written "
            "completely: %s)" % (n, wrote),
            "%d replies, eof %s, last %r" % (len(got), rd.eof, got[-1:]))
    check_rss(t, w, "NOOP flood")
    F.check(t.running(), "NOOP flood: ternd still runs")


# TLS

def client_hello():
    """A real TLS ClientHello record, as Python's ssl module sends it."""
    ctx = ternlib.tls_client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_half(t):
    hello = client_hello()
    F.check(len(hello) > 50 and hello[:1] == b"\x16",
            "a ClientHello to send (%d octets)" % len(hello))
    bound = 2 * TIMEOUT + 2
    cases = []
    # Implicit TLS: half a ClientHello, the whole ClientHello and nothing
    # more, and only the record header.
    for name, data in (("half a ClientHello", hello[:len(hello) // 2]),
                       ("a whole ClientHello, then silence", hello),
                       ("a 5-octet record header", hello[:5]),
                       ("nothing at all", b"")):
        s = socket.create_connection(("127.0.0.1", t.smtps_port), 10)
        if data:
            s.sendall(data)
        cases.append(("smtps: " + name, s, False))
    # STARTTLS, then half a ClientHello / nothing.
    for name, data in (("half a ClientHello", hello[:len(hello) // 2]),
                       ("nothing", b"")):
        c = SMTPConn(t.port, timeout=10)
        ehlo(c)
        F.expect(c.cmd("STARTTLS"), "220 2.0.0", "STARTTLS before " + name)
        if data:
            c.send(data)
        cases.append(("STARTTLS, then " + name, c.sock, True))
    # All of them stall at once; a normal smtps client is served meanwhile.
    ctx = ternlib.tls_client_context()
    try:
        with ternlib.TLSConn(t.smtps_port, context=ctx, timeout=5) as c:
            F.expect(c.banner, "220", "smtps: a full handshake while others "
                     "stall half way")
            ehlo(c)
            c.cmd("MAIL FROM:<%s>" % SENDER)
            c.cmd("RCPT TO:<tls_ok@localhost>")
            F.expect(c.cmd("DATA"), "354", "DATA over smtps")
            c.send("Subject: tls\r\n\r\ntls\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "message over "
                     "smtps accepted")
            c.cmd("QUIT")
    except (OSError, ssl.SSLError) as e:
        F.check(False, "smtps: a full handshake while others stall", repr(e))
    F.check(len(t.wait_maildir("tls_ok", 1, timeout=5)) == 1,
            "the smtps message is delivered")
    send_normal(t, "tlsplain_ok", "while TLS handshakes stall")
    for name, s, _ in cases:
        data, closed, took = wait_cut_raw(s, bound)
        s.close()
        F.check(closed, "%s: the connection is closed within %gs "
                "(smtpd_timeout=%ds)" % (name, bound, TIMEOUT),
                "%.1fs, read %r" % (took, data[:60]))
    # STARTTLS followed by bytes that are not TLS at all.
    for name, junk in (("SMTP commands", b"EHLO x\r\nMAIL FROM:<a@b>\r\n"),
                       ("random octets", os.urandom(3000)),
                       ("a TLS record header with a huge length",
                        b"\x16\x03\x01\xff\xff" + b"\x00" * 64),
                       ("a ClientHello with its length field broken",
                        hello[:3] + struct.pack("!H", 3) + hello[5:])):
        with SMTPConn(t.port, timeout=10) as c:
            ehlo(c)
            F.expect(c.cmd("STARTTLS"), "220 2.0.0", "STARTTLS before " + name)
            c.send(junk)
            data, closed, took = wait_cut_raw(c.sock, bound)
            F.check(closed and not data.startswith(b"2"),
                    "STARTTLS, then %s: no SMTP reply, the connection is "
                    "closed" % name, "%.1fs, read %r" % (took, data[:60]))
    # Garbage on the smtps port.
    with socket.create_connection(("127.0.0.1", t.smtps_port), 10) as s:
        s.sendall(b"\x16\x03\x03\x00\x10" + b"\xff" * 16)
        data, closed, took = wait_cut_raw(s, bound)
        F.check(closed, "smtps: a record of garbage: the connection is "
                "closed", "%.1fs" % took)
    F.check(t.running(), "TLS: ternd still runs")


# Bytes that are not text

def bad_bytes(t):
    with SMTPConn(t.port) as c:
        c.send(b"EHLO \xff\xfe.example.org\r\n")
        r = c.reply()
        F.check(r[0] is not None and (r[0] == 250 or 500 <= r[0] < 600),
                "EHLO with invalid UTF-8: 250 or 5xx", r[1])
        ehlo(c)
        c.send(b"\xc3\x28\xa0\xa1\r\n")
        F.expect(c.reply(), "500 5.5.2", "a command of invalid UTF-8")
        c.send(b"MAIL FROM:<\xffx@example.org>\r\n")
        F.check(reply_text(c.reply())[:1] == "5", "MAIL with an invalid "
                "UTF-8 address, no SMTPUTF8: 5xx")
        c.cmd("RSET")
        # RFC 6531 section 3.3: under SMTPUTF8 a mailbox is UTF-8, which
        # excludes all of these.
        bad = []
        for name, seq in BAD_UTF8:
            c.send(b"MAIL FROM:<u" + seq + b"v@example.org> SMTPUTF8\r\n")
            r = c.reply()
            if reply_text(r)[:1] != "5":
                bad.append((name, reply_text(r)))
            c.cmd("RSET")
        F.check(not bad, "MAIL ... SMTPUTF8 with an address of invalid "
                "UTF-8 (%s): 5xx" % ", ".join(n for n, _ in BAD_UTF8), bad)
        F.expect(c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER), "250 2.1.0",
                 "MAIL SMTPUTF8")
        c.send(b"RCPT TO:<caf\xc3\xa9@localhost>\r\n")
        F.expect(c.reply(), "250 2.1.5", "RCPT of valid UTF-8 under "
                 "SMTPUTF8")
        bad = []
        for name, seq in BAD_UTF8:
            c.send(b"RCPT TO:<u" + seq + b"v@localhost>\r\n")
            r = c.reply()
            if reply_text(r)[:1] != "5":
                bad.append((name, reply_text(r)))
        F.check(not bad, "RCPT under SMTPUTF8 with an address of invalid "
                "UTF-8 (%s): 5xx" % ", ".join(n for n, _ in BAD_UTF8), bad)
        F.expect(c.cmd("RSET"), "250", "RSET")
        for line, what in ((b"EHLO ok\x00.example.org\r\n", "EHLO with NUL"),
                           (b"RSET\x00\r\n", "RSET NUL"),
                           (b"QUIT\x00\r\n", "QUIT NUL"),
                           (b"DATA\x00\r\n", "DATA NUL"),
                           (b"\x00" * 500 + b"\r\n", "500 NULs")):
            c.send(line)
            F.expect(c.reply(), "500 5.5.2", what)
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes on after "
                 "the NULs (QUIT NUL did not end it)")
        c.cmd("QUIT")
    # Message data with NUL bytes, invalid UTF-8 and every octet value.
    body = (b"NUL:\x00:here\r\nbad UTF-8: \xc3\x28 \xff\xfe \xed\xa0\x80\r\n"
            + bytes(b for b in range(256) if b not in (10, 13)) + b"\r\n"
            + b"\x00\x00\x00\r\nend\r\n")
    hdrs = b"Subject: bytes \xff\x00\r\nX-Bad: \xc3\x28\r\n\r\n"
    for how in ("DATA", "BDAT"):
        user = "bytes_" + how.lower()
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER)
            F.expect(c.cmd("RCPT TO:<%s@localhost>" % user), "250", "RCPT")
            if how == "DATA":
                F.expect(c.cmd("DATA"), "354", "DATA")
                c.send(hdrs + body + b".\r\n")
            else:
                msg = hdrs + body
                c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
            r = c.reply()
            code = r[0]
            F.check(code == 250 or (code is not None and 500 <= code < 600),
                    "%s with NULs and invalid UTF-8: accepted or refused "
                    "with 5xx" % how, r[1])
            F.expect(c.cmd("NOOP"), "250", "%s: the session goes on" % how)
            c.cmd("QUIT")
        if code == 250:
            files = []
            ternlib.wait_for(lambda: t.maildir_files(user))
            files = t.maildir_files(user)
            raw = b""
            if files:
                with open(files[0], "rb") as f:
                    raw = f.read()
            want = body.replace(b"\r\n", b"\n")
            F.check(want in raw, "%s: the body is stored byte for byte "
                    "(NULs, invalid UTF-8, all octets)" % how,
                    raw[-300:] if raw else "not delivered")
    F.check(t.running(), "bad bytes: ternd still runs")


# Hanging up anywhere

def hangups(t):
    mail = "MAIL FROM:<%s>\r\n" % SENDER
    rcpt = "RCPT TO:<hangup@localhost>\r\n"
    steps = [
        ("before the banner is read", [], b"", False),
        ("after the banner", None, b"", False),
        ("in the middle of a command line", None, b"EHLO exam", False),
        ("after EHLO", ["EHLO " + HELO + "\r\n"], b"", False),
        ("after MAIL", ["EHLO " + HELO + "\r\n", mail], b"", False),
        ("in the middle of RCPT", ["EHLO " + HELO + "\r\n", mail],
         b"RCPT TO:<hang", False),
        ("after RCPT", ["EHLO " + HELO + "\r\n", mail, rcpt], b"", False),
        ("after DATA's 354", ["EHLO " + HELO + "\r\n", mail, rcpt,
                              "DATA\r\n"], b"", False),
        ("in the headers", ["EHLO " + HELO + "\r\n", mail, rcpt, "DATA\r\n"],
         b"Subject: cut\r\nFrom: a", False),
        ("in the body", ["EHLO " + HELO + "\r\n", mail, rcpt, "DATA\r\n"],
         b"Subject: cut\r\n\r\nbody\r\n" * 2000, False),
        ("before the final CRLF of the end of data",
         ["EHLO " + HELO + "\r\n", mail, rcpt, "DATA\r\n"],
         b"Subject: cut\r\n\r\nbody\r\n.", False),
        ("inside a BDAT chunk", ["EHLO " + HELO + "\r\n", mail, rcpt],
         b"BDAT 1000 LAST\r\nonly a bit", False),
        ("between BDAT chunks", ["EHLO " + HELO + "\r\n", mail, rcpt,
                                 "BDAT 6\r\nSubj: "], b"", False),
        ("in the middle of the BDAT command", ["EHLO " + HELO + "\r\n", mail,
                                               rcpt], b"BDAT 10", False),
        ("after STARTTLS's 220", ["EHLO " + HELO + "\r\n", "STARTTLS\r\n"],
         b"", False),
        ("in the middle of the TLS handshake",
         ["EHLO " + HELO + "\r\n", "STARTTLS\r\n"], "hello", False),
        ("with a reset after RCPT", ["EHLO " + HELO + "\r\n", mail, rcpt],
         b"", True),
        ("with a reset in the body", ["EHLO " + HELO + "\r\n", mail, rcpt,
                                      "DATA\r\n"],
         b"Subject: cut\r\n\r\nbody\r\n", True),
    ]
    hello = client_hello()
    for name, cmds, tail, reset in steps:
        s = socket.create_connection(("127.0.0.1", t.port), 10)
        try:
            if cmds is not None:
                rd = Lines(s)
                rd.reply()
                for line in cmds:
                    s.sendall(line.encode())
                    rd.reply()
            if tail == "hello":
                tail = hello[:len(hello) // 2]
            if tail:
                s.sendall(tail)
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        finally:
            s.close()
        with SMTPConn(t.port, timeout=10) as c:
            ok = c.banner[0] == 220 and c.cmd("NOOP")[0] == 250
        F.check(ok, "a client hangs up %s: the next one is served" % name)
    # The same, forty at once.
    socks = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", t.port), 10)
        s.sendall(b"EHLO x\r\n" + mail.encode() + rcpt.encode() +
                  b"DATA\r\nSubject: x\r\n\r\n" + b"y" * (i * 100))
        socks.append(s)
    for s in socks:
        s.close()
    send_normal(t, "hangup_ok", "after forty clients hang up in DATA")
    F.check(t.running(), "hang-ups: ternd still runs")
    F.check(not t.maildir_files("hangup"), "nothing from the cut sessions "
            "is delivered")


def main():
    t = Ternd(start=False)
    with t:
        cert, key = ternlib.make_cert(t.dir)
        t.smtps_port = ternlib.free_port()
        t.params.update({
            "smtpd_timeout": "%ds" % TIMEOUT,
            "smtpd_soft_error_limit": "1000000",
            "smtpd_hard_error_limit": "1000000",
            "smtpd_recipient_limit": "1000",
            "smtpd_tls_cert_file": cert,
            "smtpd_tls_key_file": key,
            "smtp_listen": "127.0.0.1:%d, 127.0.0.1:%d/smtps"
                           % (t.port, t.smtps_port),
        })
        t.write_config()
        t.start()
        F.section("slowloris", slowloris, t)
        F.section("1 MB command lines", long_lines, t)
        F.section("a flood of RCPTs", rcpt_flood, t)
        F.section("a pipelining flood", noop_flood, t)
        F.section("TLS handshakes that stop half way", tls_half, t)
        F.section("invalid UTF-8 and NUL bytes", bad_bytes, t)
        F.section("hanging up in every state", hangups, t)
        F.check(t.running(), "after all of it, ternd still runs")
        if t.running():
            send_normal(t, "final", "the last message")
        F.check(not t.log_lines(r"(?i)panic|fatal|assert"),
                "the log has no panic, fatal error or failed assertion",
                t.log_lines(r"(?i)panic|fatal|assert")[:3])
    F.exit()


if __name__ == "__main__":
    main()
