# SPDX-License-Identifier: ISC
"""SMTP smuggling (the attacks published in December 2023): only
CRLF "." CRLF ends DATA.

For each false end of data -- bare LF or bare CR around the dot, a NUL
before it -- a message carries a second transaction behind it and ends
with a real CRLF "." CRLF.  ternd must see one message whose content
includes the smuggled commands, and must not run them: the recipient
of the smuggled transaction gets nothing, and the log has no message
from the smuggled sender.  Each case runs three ways: in one write, cut
right after the false ending, and one byte at a time.
"""

import re

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "good@example.org"
EVIL = "evil@example.net"

FALSE_ENDS = [
    ("LF . LF", b"\n.\n"),
    ("LF . CRLF", b"\n.\r\n"),
    ("CRLF . LF", b"\r\n.\n"),
    ("CR . CR", b"\r.\r"),
    ("CRLF . CR", b"\r\n.\r"),
    ("CR . CRLF", b"\r.\r\n"),
    ("CRLF NUL . CRLF", b"\r\n\x00.\r\n"),
    ("CRLF . NUL CRLF", b"\r\n.\x00\r\n"),
    ("CRLF SP . CRLF", b"\r\n .\r\n"),
    ("CRLF . SP CRLF", b"\r\n. \r\n"),
    ("LF LF . LF LF", b"\n\n.\n\n"),
    ("CR CR LF . CR CR LF", b"\r\r\n.\r\r\n"),
]


def smuggling_payload(n, ending):
    smuggled = ("MAIL FROM:<%s>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\n"
                "From: <%s>\r\nSubject: smuggled %d\r\n\r\nsmuggled-%d"
                % (EVIL, EVIL, n, n)).encode()
    head = ("Subject: carrier %d\r\n\r\ncarrier-%d" % (n, n)).encode()
    return head, ending + smuggled + b"\r\n.\r\n"


def one_case(t, n, name, ending, how):
    head, tail = smuggling_payload(n, ending)
    with SMTPConn(t.port) as c:
        c.cmd("EHLO " + HELO)
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<carrier@localhost>"), "250 2.1.5", "RCPT")
        F.expect(c.cmd("DATA"), "354", "DATA")
        if how == "one write":
            c.send(head + tail)
        elif how == "cut after the false end":
            c.send(head + ending)
            c.send(tail[len(ending):])
        else:
            for i in range(len(head + tail)):
                c.send((head + tail)[i:i + 1])
        r = c.reply()
        F.expect(r, "250 2.0.0 Ok: queued as ", "%s, %s: one 250 for the "
                 "whole message" % (name, how))
        q = c.cmd("QUIT")
        F.check(q == (221, ["221 2.0.0 Bye"]), "%s, %s: the next reply is "
                "the one to QUIT, nothing from smuggled commands"
                % (name, how), q)
    return ternlib.queued_id(reply_text(r))


def main():
    with Ternd({"smtpd_hard_error_limit": "1000",
                "smtpd_soft_error_limit": "1000"}) as t:
        n = 0
        expected = []
        for name, ending in FALSE_ENDS:
            for how in ("one write", "cut after the false end",
                        "one byte at a time"):
                print("checking %s, %s" % (name, how))
                try:
                    qid = one_case(t, n, name, ending, how)
                except OSError as e:
                    F.check(False, "%s, %s ran to the end" % (name, how), e)
                    qid = None
                expected.append((n, name, how, qid))
                n += 1
        msgs = t.wait_maildir("carrier", len(expected))
        F.check(len(msgs) == len(expected), "carrier: one message per case "
                "(%d)" % len(expected), len(msgs))
        by_token = {}
        for m in msgs:
            found = re.search(r"carrier-(\d+)", m)
            if found:
                by_token[int(found.group(1))] = m
        for n, name, how, qid in expected:
            m = by_token.get(n, "")
            F.check("smuggled-%d" % n in m and
                    ("MAIL FROM:<%s>" % EVIL) in m,
                    "%s, %s: the smuggled commands are content of the one "
                    "message" % (name, how), repr(m[-300:]))
        F.check(not ternlib.wait_for(lambda: t.maildir_files("victim"), 1.0),
                "victim: no smuggled message delivered",
                t.maildir_messages("victim")[:1])
        F.check(not t.log_lines(r"from=<%s>" % re.escape(EVIL)),
                "log: no message from <%s>" % EVIL,
                t.log_lines(r"from=<%s>" % re.escape(EVIL))[:3])
        F.check(t.running(), "ternd still running")
        if F.failed:
            print("--- ternd log\n" + t.log_text()[-20000:])
    F.exit()


if __name__ == "__main__":
    main()
