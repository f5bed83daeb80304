# SPDX-License-Identifier: ISC
"""The SMTP dialogue of ternd as a client sees it, and what it leaves in
the Maildir and the log.

Checks the banner and EHLO keywords, a transaction with two recipients,
per-recipient replies, RSET/NOOP/QUIT, the 500/501/503 replies after which
the session goes on, relay refusal from outside mynetworks, unknown local
recipients, the recipient and size limits, dot-stuffing, the headers
ternd adds or keeps, and the Postfix-shaped log lines of one message.
"""

import re
import smtplib
import time
import traceback

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
SENDER = "a@example.org"
HELO = "client.example.org"
SIZE_LIMIT = 20000


def expect(reply, prefix, what):
    """Check that the last line of reply starts with prefix."""
    text = reply_text(reply)
    return F.check(text.startswith(prefix), "%s: \"%s\"" % (what, prefix),
                   "got %r" % (reply[1],))


def section(name, fn, *args):
    print("checking " + name)
    try:
        fn(*args)
    except Exception:
        F.check(False, name + " ran to the end", traceback.format_exc())


def ehlo(c):
    code, lines = c.cmd("EHLO " + HELO)
    F.check(code == 250, "EHLO is accepted", lines)
    return lines


def banner_and_ehlo(t):
    with SMTPConn(t.port) as c:
        F.check(c.banner == (220, ["220 mx.example.test ESMTP tern"]),
                "banner is \"220 mx.example.test ESMTP tern\"", c.banner)
        lines = ehlo(c)
        F.check(lines and lines[0].startswith("250-mx.example.test"),
                "EHLO reply starts with the host name", lines)
        keywords = [l[4:] for l in lines[1:]]
        for kw in ("PIPELINING", "SIZE %d" % SIZE_LIMIT, "8BITMIME",
                   "ENHANCEDSTATUSCODES"):
            F.check(kw in keywords, "EHLO lists %s" % kw, keywords)
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def two_recipients(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        expect(c.cmd("RCPT TO:<alice@localhost>"), "250 2.1.5 Ok",
               "RCPT alice@localhost")
        expect(c.cmd("RCPT TO:<bob@mx.example.test>"), "250 2.1.5 Ok",
               "RCPT bob@mx.example.test")
        expect(c.cmd("DATA"), "354", "DATA")
        # Dot-stuffed as it goes on the wire (RFC 5321 section 4.5.2).
        c.send("Subject: two recipients\r\n"
               "\r\n"
               "first line\r\n"
               "..x\r\n"
               "...\r\n"
               "y..\r\n"
               ".\r\n")
        r = c.reply()
        expect(r, "250 2.0.0 Ok: queued as ", "end of data")
        qid = ternlib.queued_id(reply_text(r))
        F.check(qid is not None, "reply names a 10-character queue ID", r)
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    alice = t.wait_maildir("alice", 1)
    bob = t.wait_maildir("bob", 1)
    F.check(len(alice) == 1, "one message in alice's Maildir", len(alice))
    F.check(len(bob) == 1, "one message in bob's Maildir", len(bob))
    for user, msgs, rcpt in (("alice", alice, "alice@localhost"),
                             ("bob", bob, "bob@mx.example.test")):
        if not msgs:
            continue
        m = msgs[0]
        body = m.split("\n\n", 1)[1] if "\n\n" in m else ""
        F.check(body == "first line\n.x\n..\ny..\n",
                "%s: dot-stuffing undone (..x -> .x, ... -> ..)" % user,
                repr(body))
        F.check("\r" not in m, "%s: file has LF line endings" % user)
        F.check(ternlib.header(m, "Delivered-To") == rcpt,
                "%s: Delivered-To: %s" % (user, rcpt),
                ternlib.header(m, "Delivered-To"))
        rcvd = ternlib.header(m, "Received") or ""
        F.check(rcvd.startswith(
            "from %s (unknown [127.0.0.1])\n\tby mx.example.test (tern) with "
            "ESMTP id %s" % (HELO, qid)),
            "%s: Received: names the client and the queue ID" % user, rcvd)
    if qid:
        lines = t.wait_log(r"tern/qmgr\[\d+\]: %s: removed" % qid)
        F.check(lines, "log: %s: removed after both deliveries" % qid)
        F.check(t.log_lines(r"tern/qmgr\[\d+\]: %s: from=<%s>, size=\d+, "
                            r"nrcpt=2 \(queue active\)" % (qid, SENDER)),
                "log: qmgr from=<%s>, size=N, nrcpt=2" % SENDER)
        for rcpt in ("alice@localhost", "bob@mx.example.test"):
            F.check(t.log_lines(r"tern/local\[\d+\]: %s: to=<%s>, "
                                r"relay=local, .*status=sent" % (qid, rcpt)),
                    "log: local to=<%s> status=sent" % rcpt)


def rset_noop(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        expect(c.cmd("RCPT TO:<alice@localhost>"), "250 2.1.5 Ok", "RCPT")
        expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        expect(c.cmd("RCPT TO:<alice@localhost>"), "503 5.5.1",
               "RCPT after RSET needs a new MAIL")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
               "MAIL after RSET")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        F.check(c.readline() is None, "connection closed after QUIT")


def errors_continue(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("XYZZY"), "500 5.5.2 Error: command not recognized",
               "unknown command")
        expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after the 500")
        expect(c.cmd("MAIL FROM:bogus<"), "501 5.5.4", "MAIL FROM:bogus<")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
               "MAIL after the 501")
        expect(c.cmd("RCPT TO:<alice@localhost"), "501 5.5.4",
               "RCPT TO:<alice@localhost (no '>')")
        expect(c.cmd("RCPT TO:<alice@localhost>"), "250 2.1.5 Ok",
               "RCPT after the 501")
        expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def bad_sequence(t):
    with SMTPConn(t.port) as c:
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "503 5.5.1",
               "MAIL before EHLO")
        ehlo(c)
        expect(c.cmd("RCPT TO:<alice@localhost>"), "503 5.5.1",
               "RCPT before MAIL")
        expect(c.cmd("DATA"), "503 5.5.1", "DATA before MAIL")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        # RFC 5321 section 3.3 allows 503 or 554 here; Postfix says
        # "554 5.5.1 Error: no valid recipients".
        r = c.cmd("DATA")
        F.check(reply_text(r).startswith(("503 5.5.1", "554 5.5.1")),
                "DATA before RCPT: \"503 5.5.1\" or \"554 5.5.1\"", r[1])
        expect(c.cmd("RCPT TO:<alice@localhost>"), "250 2.1.5 Ok",
               "RCPT after the 503")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "503 5.5.1",
               "a second MAIL in one transaction")
        expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def recipient_limit(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        for i in range(3):
            expect(c.cmd("RCPT TO:<r%d@localhost>" % i), "250 2.1.5 Ok",
                   "RCPT %d of smtpd_recipient_limit=3" % (i + 1))
        expect(c.cmd("RCPT TO:<r3@localhost>"),
               "452 4.5.3 Error: too many recipients", "fourth RCPT")
        expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET after the 452")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def size_limit(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, SIZE_LIMIT * 2)),
               "552 5.3.4", "MAIL with SIZE= over message_size_limit")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        expect(c.cmd("RCPT TO:<big@localhost>"), "250 2.1.5 Ok", "RCPT")
        expect(c.cmd("DATA"), "354", "DATA")
        line = "x" * 70 + "\r\n"
        c.send("Subject: too big\r\n\r\n" + line * (SIZE_LIMIT // 70 * 2)
               + ".\r\n")
        expect(c.reply(), "552 5.3.4",
               "message over message_size_limit=%d" % SIZE_LIMIT)
        expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after the 552")
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
               "MAIL after the 552")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    F.check(not t.maildir_files("big"), "the oversized message was not "
            "delivered")


def smtplib_send(t, rcpts, msg):
    """One fresh smtplib session: EHLO, MAIL, RCPT..., DATA, QUIT.
    Returns the queue ID and the per-recipient replies."""
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        s.ehlo()
        code, _ = s.mail(SENDER)
        F.check(code == 250, "smtplib MAIL accepted", code)
        replies = [s.rcpt(r) for r in rcpts]
        code, resp = s.data(msg)
        F.check(code == 250, "smtplib DATA accepted", (code, resp))
        qid = ternlib.queued_id(resp)
        s.quit()
    finally:
        s.close()
    return qid, replies


def headers_and_log(t):
    msg = "Subject: added headers\n\nhello\n"
    qid, _ = smtplib_send(t, ["carol@localhost"], msg)
    F.check(qid is not None, "queue ID in the 250 reply", qid)
    msgs = t.wait_maildir("carol", 1)
    if not F.check(len(msgs) == 1, "message delivered to carol", len(msgs)):
        return
    m = msgs[0]
    hdrs = ternlib.headers(m)
    names = [n.lower() for n, _ in hdrs]
    F.check(m.startswith("Return-Path: <%s>\n" % SENDER),
            "first line is Return-Path: <%s>" % SENDER, m[:80])
    F.check(ternlib.header(m, "Delivered-To") == "carol@localhost",
            "Delivered-To: carol@localhost", ternlib.header(m, "Delivered-To"))
    F.check(names[:3] == ["return-path", "delivered-to", "received"],
            "Return-Path, Delivered-To, then Received", names)
    rcvd = ternlib.header(m, "Received") or ""
    rx = (r"from %s \(unknown \[127\.0\.0\.1\]\)\n"
          r"\tby mx\.example\.test \(tern\) with ESMTP id %s\n"
          r"\tfor <carol@localhost>; "
          r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 0-9]?\d "
          r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
          r"\d\d:\d\d:\d\d [-+]\d{4}" % (re.escape(HELO), qid))
    F.check(re.match(rx, rcvd), "Received: header in Postfix's shape", rcvd)
    F.check(names.index("received") < names.index("subject"),
            "Received: comes before the client's headers", names)
    msgid = ternlib.header(m, "Message-ID")
    F.check(msgid and re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msgid),
            "Message-ID: added when missing", msgid)
    F.check(ternlib.header(m, "Date"), "Date: added when missing")
    F.check(m.endswith("\n\nhello\n"), "body kept", repr(m[-40:]))
    F.check("\r" not in m, "file has LF line endings")

    print("checking the log lines of message %s" % qid)
    if not t.wait_log(r"tern/qmgr\[\d+\]: %s: removed" % qid):
        F.check(False, "log: %s: removed" % qid)
    pid = t.pid
    pats = [
        ("smtpd client=", r"tern/smtpd\[%d\]: %s: client=unknown\[127\.0\.0\.1\]$"
         % (pid, qid)),
        ("cleanup message-id=", r"tern/cleanup\[%d\]: %s: message-id=%s$"
         % (pid, qid, re.escape(msgid or "<?>"))),
        ("qmgr from=", r"tern/qmgr\[%d\]: %s: from=<%s>, size=\d+, nrcpt=1 "
         r"\(queue active\)$" % (pid, qid, re.escape(SENDER))),
        ("local status=sent", r"tern/local\[%d\]: %s: to=<carol@localhost>, "
         r"relay=local, delay=\d+(\.\d+)?, "
         r"delays=\d+(\.\d+)?/\d+(\.\d+)?/\d+(\.\d+)?/\d+(\.\d+)?, "
         r"dsn=2\.0\.0, status=sent \(delivered to maildir\)$" % (pid, qid)),
        ("qmgr removed", r"tern/qmgr\[%d\]: %s: removed$" % (pid, qid)),
    ]
    lines = t.log_lines()
    where = []
    for what, pat in pats:
        idx = [i for i, l in enumerate(lines) if re.search(pat, l)]
        F.check(len(idx) == 1, "log: exactly one %s line for %s" % (what, qid),
                "pattern %s matched %d lines" % (pat, len(idx)))
        where.append(idx[0] if idx else -1)
    F.check(where == sorted(where) and -1 not in where,
            "log: client=, message-id=, from=, to=, removed in that order",
            where)
    F.check(t.log_lines(r"tern/smtpd\[%d\]: connect from "
                        r"unknown\[127\.0\.0\.1\]$" % pid),
            "log: connect from unknown[127.0.0.1]")
    F.check(t.log_lines(r"tern/smtpd\[%d\]: disconnect from "
                        r"unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
                        r"data=1 quit=1 commands=5$" % pid),
            "log: disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 "
            "data=1 quit=1 commands=5")
    F.check(t.log_lines(r"tern/master\[%d\]: daemon started -- version "
                        r"0\.1\.0, configuration %s$" % (pid, re.escape(t.conf))),
            "log: daemon started -- version 0.1.0, configuration FILE")
    prefix = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                        r"[ 0-9]\d \d\d:\d\d:\d\d \S+ tern/[a-z]+\[%d\]: " % pid)
    bad = [l for l in lines if not prefix.match(l)]
    F.check(not bad, "every log line is \"Mon DD HH:MM:SS host tern/ROLE[PID]: "
            "text\"", bad[:5])


def message_id_kept(t):
    msg = ("Message-ID: <kept-1234@example.org>\n"
           "Date: Mon, 1 Dec 2025 10:00:00 +0000\n"
           "Subject: kept\n\nbody\n")
    qid, _ = smtplib_send(t, ["dave@localhost"], msg)
    msgs = t.wait_maildir("dave", 1)
    if not F.check(len(msgs) == 1, "message delivered to dave", len(msgs)):
        return
    m = msgs[0]
    hdrs = [n.lower() for n, _ in ternlib.headers(m)]
    F.check(ternlib.header(m, "Message-ID") == "<kept-1234@example.org>",
            "the client's Message-ID is kept", ternlib.header(m, "Message-ID"))
    F.check(hdrs.count("message-id") == 1, "only one Message-ID", hdrs)
    F.check(ternlib.header(m, "Date") == "Mon, 1 Dec 2025 10:00:00 +0000",
            "the client's Date is kept", ternlib.header(m, "Date"))
    F.check(hdrs.count("date") == 1, "only one Date", hdrs)
    F.check(t.wait_log(r"tern/cleanup\[\d+\]: %s: "
                       r"message-id=<kept-1234@example\.org>$" % qid),
            "log: cleanup message-id=<kept-1234@example.org>")


def relay_refused():
    with Ternd({"mynetworks": "192.0.2.0/24"}) as t:
        with SMTPConn(t.port) as c:
            ehlo(c)
            expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
            expect(c.cmd("RCPT TO:<someone@elsewhere.example>"), "554 5.7.1",
                   "relay from outside mynetworks")
            expect(c.cmd("RCPT TO:<user@localhost>"), "250 2.1.5 Ok",
                   "local recipient from outside mynetworks")
            expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
            expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def relay_allowed(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        expect(c.cmd("RCPT TO:<someone@elsewhere.example>"), "250 2.1.5 Ok",
               "relay from inside mynetworks (127.0.0.1)")
        expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def unknown_local_recipient():
    with Ternd(start=False) as t:
        users = t.dir + "/users"
        with open(users, "w") as f:
            f.write("# local users\nalice anything\nbob x\n")
        t.params["local_recipient_maps"] = "texthash:" + users
        t.write_config()
        t.start()
        with SMTPConn(t.port) as c:
            ehlo(c)
            expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
            expect(c.cmd("RCPT TO:<carol@localhost>"), "550 5.1.1",
                   "unknown local recipient")
            expect(c.cmd("RCPT TO:<alice@localhost>"), "250 2.1.5 Ok",
                   "known local recipient after the 550")
            expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: one of two\r\n\r\nhi\r\n.\r\n")
            expect(c.reply(), "250 2.0.0 Ok: queued as ", "end of data")
            expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        F.check(len(t.wait_maildir("alice", 1)) == 1,
                "delivered to the known recipient")
        F.check(not t.maildir_files("carol"),
                "nothing for the unknown recipient")


def idle_timeout():
    with Ternd({"smtpd_timeout": "1s"}) as t:
        for name, setup in (("after the banner", []),
                            ("after EHLO", ["EHLO " + HELO]),
                            ("in DATA", ["EHLO " + HELO,
                                         "MAIL FROM:<%s>" % SENDER,
                                         "RCPT TO:<idle@localhost>", "DATA"])):
            with SMTPConn(t.port) as c:
                for line in setup:
                    c.cmd(line)
                start = time.monotonic()
                try:
                    r = c.reply()
                    closed = c.readline() is None
                except OSError as e:
                    r, closed = (None, ["(%r)" % e]), False
                took = time.monotonic() - start
            F.check(reply_text(r).startswith("421 4.4.2 "),
                    "smtpd_timeout=1s %s: \"421 4.4.2 ...\"" % name, r[1])
            F.check(closed, "smtpd_timeout=1s %s: connection closed" % name)
            F.check(0.9 <= took < 10, "smtpd_timeout=1s %s: after about a "
                    "second" % name, "%.2fs" % took)
        F.check(not t.maildir_files("idle"), "the message cut off in DATA "
                "is not delivered")


def main():
    params = {"smtpd_recipient_limit": "3",
              "message_size_limit": str(SIZE_LIMIT)}
    with Ternd(params) as t:
        section("banner and EHLO keywords", banner_and_ehlo, t)
        section("a transaction with two recipients", two_recipients, t)
        section("RSET, NOOP and QUIT", rset_noop, t)
        section("500 and 501 replies, then the session goes on",
                errors_continue, t)
        section("503 for commands out of order", bad_sequence, t)
        section("smtpd_recipient_limit", recipient_limit, t)
        section("message_size_limit", size_limit, t)
        section("headers added and log lines", headers_and_log, t)
        section("Message-ID and Date kept", message_id_kept, t)
        section("relay from mynetworks", relay_allowed, t)
        F.check(t.running(), "ternd still running after all the sessions")
        if F.failed:
            print("--- ternd log\n" + t.log_text())
    section("relay refused outside mynetworks", relay_refused)
    section("local_recipient_maps", unknown_local_recipient)
    section("smtpd_timeout", idle_timeout)
    F.exit()


if __name__ == "__main__":
    main()
