# SPDX-License-Identifier: ISC
"""The SMTP server's limits and the ways a session is cut short.

smtpd_recipient_limit, line_length_limit on command lines (in one
write, in pieces, and far beyond the read size), smtpd_hard_error_limit,
the per-client and total connection limits (and the mynetworks
exemption), smtpd_timeout against smtpd_data_timeout (DATA and BDAT),
NUL bytes in commands, many clients at once, and an IPv6 listener.
"""

import smtplib
import socket
import threading
import time

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"


def ehlo(c):
    code, lines = c.cmd("EHLO " + HELO)
    F.check(code == 250, "EHLO is accepted", lines)


def recipient_limit():
    with Ternd({"smtpd_recipient_limit": "5"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            for i in range(5):
                F.expect(c.cmd("RCPT TO:<lim%d@localhost>" % i), "250 2.1.5",
                         "RCPT %d of 5" % (i + 1))
            for i in range(5, 7):
                F.expect(c.cmd("RCPT TO:<lim%d@localhost>" % i),
                         "452 4.5.3 Error: too many recipients",
                         "RCPT %d of 5" % (i + 1))
            F.expect(c.cmd("DATA"), "354", "DATA with the five accepted")
            c.send("Subject: five\r\n\r\nfive\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "end of data")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0",
                     "the limit is per transaction: new MAIL")
            F.expect(c.cmd("RCPT TO:<lim9@localhost>"), "250 2.1.5",
                     "RCPT in the new transaction")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        for i in range(5):
            F.check(len(t.wait_maildir("lim%d" % i, 1)) == 1,
                    "lim%d got the message" % i)
        for i in range(5, 7):
            F.check(not t.maildir_files("lim%d" % i),
                    "lim%d (over the limit) got nothing" % i)


def line_length():
    limit = 1000
    with Ternd({"line_length_limit": str(limit),
                "smtpd_hard_error_limit": "100",
                "smtpd_soft_error_limit": "100"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            F.expect(c.cmd("NOOP " + "x" * 900), "250 2.0.0 Ok",
                     "a 905-octet command line (under %d)" % limit)
            F.expect(c.cmd("NOOP " + "x" * (limit * 3)),
                     "500 5.5.2 Error: line too long",
                     "a %d-octet command line in one write" % (limit * 3 + 5))
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes on")
            c.send("NOOP " + "y" * 600)
            c.send("y" * 600)
            c.send("y" * 600 + "\r\n")
            F.expect(c.reply(), "500 5.5.2 Error: line too long",
                     "a 1805-octet command line in three writes")
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes on")
            c.send("MAIL FROM:<" + "z" * 200000 + "@example.org>\r\n")
            F.expect(c.reply(), "500 5.5.2 Error: line too long",
                     "a 200 kB MAIL line")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                     "MAIL after the long lines: no part of them was run")
            F.expect(c.cmd("RCPT TO:<longline@localhost>"), "250 2.1.5",
                     "RCPT")
            F.expect(c.cmd("DATA"), "354", "DATA")
            # Long lines in the message itself are content, not errors.
            c.send("Subject: long\r\n\r\n" + "w" * 5000 + "\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "a message with "
                     "a 5000-octet line")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        msgs = t.wait_maildir("longline", 1)
        F.check(len(msgs) == 1 and ("w" * 5000) in msgs[0].replace("\n", ""),
                "the long message line is delivered")


def hard_error_limit():
    with Ternd({"smtpd_hard_error_limit": "3"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<a b@localhost>"), "501 5.5.4",
                     "error 1")
            F.expect(c.cmd("XYZZY"), "500 5.5.2", "error 2")
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "a good command between")
            c.send("RCPT TO:<c d@localhost>\r\n")
            rs = ternlib.read_replies(c, 3)
            got = [reply_text(r) for r in rs]
            F.check(len(got) >= 2 and got[0].startswith("501 5.5.4") and
                    got[1] == "421 4.7.0 mx.example.test Error: too many "
                    "errors", "error 3 of smtpd_hard_error_limit=3: its "
                    "reply, then \"421 4.7.0 mx.example.test Error: too many "
                    "errors\"", got)
            F.check(len(got) == 3 and rs[2][0] is None,
                    "the connection is closed after the 421", got)
        F.check(t.wait_log(r"(?i)tern/smtpd\[\d+\]: too many errors after "
                           r"RCPT from unknown\[127\.0\.0\.1\]$"),
                "log: too many errors after RCPT from unknown[127.0.0.1]")
        with SMTPConn(t.port) as c:
            c.send("A\r\nB\r\nC\r\nD\r\nE\r\n")
            rs = ternlib.read_replies(c, 5)
            got = [reply_text(r) for r in rs]
            F.check(got[:4] == ["500 5.5.2 Error: command not recognized"] * 3
                    + ["421 4.7.0 mx.example.test Error: too many errors"],
                    "pipelined errors: three 500s and the 421; the rest is "
                    "not run", got)
            F.check(len(got) == 5 and rs[4][0] is None, "closed after the "
                    "421", got)


def hold(port, n, host="127.0.0.1"):
    """Open n sessions that got their banner."""
    conns = []
    for _ in range(n):
        c = SMTPConn(port, host=host)
        F.check(c.banner[0] == 220, "connection %d gets a 220"
                % (len(conns) + 1), c.banner)
        conns.append(c)
    return conns


def connection_limits():
    params = {"mynetworks": "192.0.2.0/24",
              "smtpd_client_connection_count_limit": "3"}
    with Ternd(params) as t:
        # The harness's readiness probe may still be closing.
        conns = []
        try:
            conns = hold(t.port, 3)
            with SMTPConn(t.port) as c:
                F.check(c.banner == (421, ["421 4.7.0 mx.example.test Error: "
                                           "too many connections from your "
                                           "address"]),
                        "4th connection from 127.0.0.1 (outside mynetworks, "
                        "limit 3): 421 4.7.0 ... too many connections from "
                        "your address", c.banner)
                F.check(c.readline() is None, "and it is closed")
            F.check(t.wait_log(r"warning: Connection concurrency limit "
                               r"exceeded: from unknown\[127\.0\.0\.1\]"),
                    "log: warning: Connection concurrency limit exceeded")
            F.expect(conns[0].cmd("QUIT"), "221", "one of the three quits")
            conns.pop(0).close()

            def fourth_ok():
                try:
                    c = SMTPConn(t.port, timeout=5)
                except OSError:
                    return False
                if c.banner[0] == 220:
                    conns.append(c)
                    return True
                c.close()
                return False
            F.check(ternlib.wait_for(fourth_ok), "after one quits, a new "
                    "connection is let in")
            for c in conns:
                F.expect(c.cmd("NOOP"), "250", "held connections still work")
        finally:
            for c in conns:
                c.close()
    params = {"smtpd_client_connection_count_limit": "2"}
    with Ternd(params) as t:
        conns = hold(t.port, 4)
        try:
            F.check(all(c.banner[0] == 220 for c in conns), "127.0.0.1 in "
                    "mynetworks is exempt from the per-client limit")
        finally:
            for c in conns:
                c.close()
    params = {"smtpd_connection_limit": "3"}
    with Ternd(params) as t:
        conns = []
        try:
            # The readiness probe's session may take a moment to end.
            ternlib.wait_for(lambda: "disconnect from" in t.log_text())
            conns = hold(t.port, 3)
            with SMTPConn(t.port) as c:
                F.check(c.banner == (421, ["421 4.7.0 mx.example.test Error: "
                                           "too many connections"]),
                        "4th connection with smtpd_connection_limit=3: "
                        "421 4.7.0 mx.example.test Error: too many "
                        "connections", c.banner)
            for c in conns:
                c.cmd("QUIT")
                c.close()
            conns = []

            def free_again():
                with SMTPConn(t.port, timeout=5) as c:
                    return c.banner[0] == 220
            F.check(ternlib.wait_for(free_again), "after they quit, new "
                    "connections are let in")
        finally:
            for c in conns:
                c.close()


def wait_cut(c):
    """Wait for the server to give up on c: (reply, closed, seconds)."""
    start = time.monotonic()
    try:
        r = c.reply()
        closed = r[0] is None or c.readline() is None
    except OSError as e:
        r, closed = (None, ["(%r)" % e]), False
    return r, closed, time.monotonic() - start


def timeouts():
    params = {"smtpd_timeout": "4s", "smtpd_data_timeout": "1s"}
    with Ternd(params) as t:
        cases = (
            ("in DATA", ["MAIL FROM:<%s>" % SENDER, "RCPT TO:<tmo@localhost>",
                         "DATA"], "Subject: cut\r\n\r\npartial", 0.8, 3.0),
            ("inside a BDAT chunk", ["MAIL FROM:<%s>" % SENDER,
                                     "RCPT TO:<tmo@localhost>"],
             "BDAT 100 LAST\r\nonly part", 0.8, 3.0),
            ("between commands", ["MAIL FROM:<%s>" % SENDER], "", 3.5, 10.0),
        )
        for name, cmds, tail, lo, hi in cases:
            with SMTPConn(t.port) as c:
                ehlo(c)
                for line in cmds:
                    c.cmd(line)
                if tail:
                    c.send(tail)
                r, closed, took = wait_cut(c)
            F.check(reply_text(r) == "421 4.4.2 mx.example.test Error: "
                    "timeout exceeded", "%s: \"421 4.4.2 mx.example.test "
                    "Error: timeout exceeded\"" % name, r[1])
            F.check(closed, "%s: the connection is closed" % name)
            F.check(lo <= took <= hi, "%s: cut after %.1f..%.1fs "
                    "(smtpd_data_timeout=1s, smtpd_timeout=4s)"
                    % (name, lo, hi), "%.2fs" % took)
        F.check(t.wait_log(r"tern/smtpd\[\d+\]: timeout after DATA from "
                           r"unknown\[127\.0\.0\.1\]"),
                "log: timeout after DATA from unknown[127.0.0.1]")
        F.check(not t.maildir_files("tmo"), "nothing delivered from the "
                "cut sessions")
        # A client that keeps sending in DATA is not cut off.
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<%s>" % SENDER)
            c.cmd("RCPT TO:<slowdata@localhost>")
            F.expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: slow\r\n\r\n")
            for i in range(6):
                c.sock.settimeout(0.4)
                try:
                    early = c.sock.recv(100)
                except socket.timeout:
                    early = b""
                c.sock.settimeout(ternlib.DEFAULT_TIMEOUT)
                if early:
                    break
                c.send("line %d\r\n" % i)
            F.check(not early, "a line every 0.4s for 2.4s keeps DATA alive "
                    "under smtpd_data_timeout=1s", early)
            c.send(".\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "slow message "
                     "accepted")


def nul_bytes():
    with Ternd() as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            for line, what in ((b"NOOP\x00\r\n", "NOOP NUL"),
                               (b"MAIL FROM:<a\x00b@example.org>\r\n",
                                "NUL inside an address"),
                               (b"\x00\r\n", "a lone NUL"),
                               (b"RCPT TO:<x@localhost>\x00 NOTIFY=NEVER\r\n",
                                "NUL between address and parameters")):
                c.send(line)
                F.expect(c.reply(), "500 5.5.2", what)
                F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes "
                         "on after " + what)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                     "MAIL after the NULs")
            F.expect(c.cmd("RCPT TO:<nul@localhost>"), "250 2.1.5 Ok", "RCPT")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def many_clients():
    n = 30
    with Ternd() as t:
        results = [None] * n

        def client(i):
            try:
                s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO,
                                 timeout=30)
                try:
                    s.sendmail(SENDER, ["many%d@localhost" % i],
                               "Subject: %d\n\nclient %d\n" % (i, i))
                    s.quit()
                    results[i] = True
                finally:
                    s.close()
            except (smtplib.SMTPException, OSError) as e:
                results[i] = repr(e)

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        bad = [r for r in results if r is not True]
        F.check(not bad, "%d concurrent smtplib clients all accepted" % n,
                bad[:3])
        F.check(ternlib.wait_for(lambda: all(
            t.maildir_files("many%d" % i) for i in range(n))),
            "all %d messages delivered" % n)


def ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        port6 = s.getsockname()[1]
        s.close()
    except OSError as e:
        print("note: no ::1 on this host (%s); the IPv6 case is left out" % e)
        return
    t = Ternd(start=False)
    with t:
        t.params["smtp_listen"] = "127.0.0.1:%d, [::1]:%d" % (t.port, port6)
        t.write_config()
        t.start()
        with SMTPConn(port6, host="::1") as c:
            F.check(c.banner == (220, ["220 mx.example.test ESMTP tern"]),
                    "[::1]:%d sends the banner" % port6, c.banner)
            ehlo(c)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<v6@localhost>"), "250 2.1.5",
                     "RCPT over IPv6")
            F.expect(c.cmd("RCPT TO:<x@elsewhere.example>"), "250 2.1.5",
                     "relay from ::1 (in the default mynetworks)")
            F.expect(c.cmd("RSET"), "250", "RSET")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<v6@localhost>"), "250 2.1.5", "RCPT")
            F.expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: v6\r\n\r\nsix\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "end of data")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        msgs = t.wait_maildir("v6", 1)
        if F.check(len(msgs) == 1, "message over IPv6 delivered"):
            rcvd = ternlib.header(msgs[0], "Received") or ""
            F.check(rcvd.startswith("from %s (unknown [IPv6:::1])" % HELO),
                    "Received: \"from HELO (unknown [IPv6:::1])\" (RFC 5321 "
                    "address literal)", rcvd)
        F.check(t.log_lines(r"tern/smtpd\[\d+\]: connect from "
                            r"unknown\[::1\]$"),
                "log: connect from unknown[::1]")


def rate_limits():
    """Per-client rates in anvil_rate_time_unit: MAIL, RCPT and
    connections past their limits, and a client in the exceptions."""
    with Ternd({"mynetworks": "192.0.2.0/24",
                "anvil_rate_time_unit": "1h",
                "smtpd_client_message_rate_limit": "2",
                "smtpd_client_recipient_rate_limit": "3",
                "smtpd_client_connection_rate_limit": "4"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            for i in range(2):
                F.expect(c.cmd("MAIL FROM:<a@example.org>"), "250",
                         "MAIL %d within the rate" % (i + 1))
                c.cmd("RSET")
            F.expect(c.cmd("MAIL FROM:<a@example.org>"),
                     "450 4.7.1 Error: too much mail from 127.0.0.1",
                     "the third MAIL in the hour")
        F.check(t.log_lines(r"warning: Message delivery request rate limit "
                            r"exceeded: 3 from unknown\[127\.0\.0\.1\] "
                            r"for service smtp"),
                "logged as Postfix logs it")
        # Two connections so far, and the harness's own probe: the limit
        # of four is reached within a few more.
        banners = []
        for _ in range(8):
            with SMTPConn(t.port) as c:
                banners.append(c.banner)
            if banners[-1][0] != 220:
                break
        F.check(len(banners) <= 3 and banners[-1][0] == 421 and
                "421 4.7.0 mx.example.test Error: too many connections" in
                reply_text(banners[-1]),
                "connections past smtpd_client_connection_rate_limit get "
                "421", banners)
        F.check(t.log_lines(r"warning: Connection rate limit exceeded: 5 "
                            r"from unknown\[127\.0\.0\.1\]"),
                "and the refusal is logged")
    with Ternd({"mynetworks": "192.0.2.0/24",
                "smtpd_client_recipient_rate_limit": "2",
                "smtpd_client_event_limit_exceptions": "127.0.0.0/8"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<a@example.org>")
            codes = [c.cmd("RCPT TO:<u%d@localhost>" % i)[0]
                     for i in range(4)]
            F.check(codes == [250] * 4, "an exception has no rate limit",
                    codes)
    with Ternd({"mynetworks": "192.0.2.0/24",
                "smtpd_client_recipient_rate_limit": "2"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<a@example.org>")
            codes = [c.cmd("RCPT TO:<u%d@localhost>" % i)[0]
                     for i in range(3)]
            F.check(codes == [250, 250, 450],
                    "the third RCPT past smtpd_client_recipient_rate_limit",
                    codes)


def main():
    F.section("smtpd_recipient_limit", recipient_limit)
    F.section("line_length_limit", line_length)
    F.section("smtpd_hard_error_limit", hard_error_limit)
    F.section("connection limits", connection_limits)
    F.section("smtpd_timeout and smtpd_data_timeout", timeouts)
    F.section("NUL bytes in commands", nul_bytes)
    F.section("many clients at once", many_clients)
    F.section("IPv6 listener", ipv6)
    F.section("rate limits", rate_limits)
    F.exit()


if __name__ == "__main__":
    main()
