# SPDX-License-Identifier: ISC
"""The ESMTP extensions of the SMTP server as clients use them.

EHLO's keyword list; enhanced status codes (RFC 2034) on every reply
but the greeting, HELO/EHLO and the 3xx prompts; PIPELINING (RFC 2920)
with whole batches in one write, commands behind the final dot and a
session fed one byte at a time; SIZE (RFC 1870) and message_size_limit;
8BITMIME; SMTPUTF8 (RFC 6531); the DSN parameters (RFC 3461); CHUNKING
(RFC 3030); and malformed commands, after each of which the session
goes on.  Raw sockets for exact bytes, smtplib and swaks as real
clients.
"""

import re
import smtplib

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"
SIZE_LIMIT = 20000
ESC = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


def ehlo(c):
    code, lines = c.cmd("EHLO " + HELO)
    F.check(code == 250, "EHLO is accepted", lines)
    return lines


def body_of(msg):
    return msg.split("\n\n", 1)[1] if "\n\n" in msg else ""


def keywords(t):
    with SMTPConn(t.port) as c:
        lines = ehlo(c)
        F.check(lines[:1] == ["250-mx.example.test"], "EHLO reply begins "
                "with \"250-mx.example.test\"", lines[:1])
        kw = [l[4:] for l in lines[1:]]
        want = ["PIPELINING", "SIZE %d" % SIZE_LIMIT, "8BITMIME",
                "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8", "CHUNKING"]
        for k in want:
            F.check(k in kw, "EHLO lists %s" % k, kw)
        F.check(not any(k.startswith("AUTH") for k in kw),
                "no AUTH keyword without smtpd_sasl_auth_enable", kw)
        F.check("STARTTLS" not in kw, "no STARTTLS without a certificate",
                kw)
        F.check(all(l.startswith("250-") for l in lines[:-1]) and
                lines[-1].startswith("250 "), "EHLO: 250- lines, then one "
                "250 line", lines)
        F.check(len(set(kw)) == len(kw), "EHLO lists no keyword twice", kw)
        r = c.cmd("HELO " + HELO)
        F.check(r == (250, ["250 mx.example.test"]), "HELO: one line, "
                "\"250 mx.example.test\"", r)
        F.expect(c.cmd("MAIL FROM:<%s> SIZE=10" % SENDER), "555 5.5.4",
                 "MAIL parameters after HELO (no ESMTP)")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                 "MAIL without parameters after HELO")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        code, _ = s.ehlo()
        F.check(code == 250, "smtplib: EHLO")
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "dsn", "smtputf8", "chunking"):
            F.check(s.has_extn(ext), "smtplib sees the %s extension" % ext)
        F.check(s.esmtp_features.get("size") == str(SIZE_LIMIT),
                "smtplib reads SIZE %d" % SIZE_LIMIT,
                s.esmtp_features.get("size"))
        s.quit()
    finally:
        s.close()


def enhanced_codes(t):
    """RFC 2034 section 3: every reply but the greeting and the HELO/EHLO
    answer starts with class.subject.detail after the code; 3xx prompts
    have no class of their own."""
    script = [
        "NOOP", "RSET", "VRFY someone", "HELP", "EXPN list", "XYZZY",
        "MAIL FROM:<%s>" % SENDER, "MAIL FROM:<%s>" % SENDER,
        "RCPT TO:<x@localhost", "RCPT TO:<x@localhost> FOO=1",
        "RCPT TO:<r@localhost>", "DATA", None, "DATA x", "RSET",
        "DATA", "RCPT TO:<r@localhost>", "MAIL FROM:<%s> SIZE=99999999"
        % SENDER, "MAIL FROM:<%s> BOGUS" % SENDER, "EHLO", "HELO",
        "STARTTLS", "AUTH PLAIN", "BDAT 0", "QUIT",
    ]
    with SMTPConn(t.port) as c:
        ehlo(c)
        bad = []
        seen = 0
        for line in script:
            if line is None:
                c.send("Subject: codes\r\n\r\nx\r\n.\r\n")
                code, lines = c.reply()
            else:
                code, lines = c.cmd(line)
            if code is None:
                bad.append((line, "connection closed"))
                break
            seen += 1
            if 300 <= code < 400:
                continue
            for l in lines:
                if not ESC.match(l) or l[0] != l[4]:
                    bad.append((line, l))
        F.check(not bad, "%d replies all carry an enhanced status code of "
                "their own class" % seen, bad)


def pipelining(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<p1@localhost>\r\n"
               "RCPT TO:<p2@localhost\r\nRCPT TO:<p3@localhost>\r\n"
               "DATA\r\n" % SENDER)
        rs = ternlib.read_replies(c, 5)
        want = ["250 2.1.0", "250 2.1.5", "501 5.5.4", "250 2.1.5", "354"]
        got = [reply_text(r) for r in rs]
        F.check(len(got) == 5 and all(g.startswith(w)
                                      for g, w in zip(got, want)),
                "MAIL/RCPT/bad RCPT/RCPT/DATA in one write: five replies "
                "in order", got)
        # The message, then a second transaction behind the final dot.
        c.send("Subject: first\r\n\r\none\r\n.\r\n"
               "MAIL FROM:<%s>\r\nRCPT TO:<p4@localhost>\r\nDATA\r\n"
               "Subject: second\r\n\r\ntwo\r\n.\r\nNOOP\r\n" % SENDER)
        rs = ternlib.read_replies(c, 6)
        got = [reply_text(r) for r in rs]
        want = ["250 2.0.0 Ok: queued as", "250 2.1.0", "250 2.1.5", "354",
                "250 2.0.0 Ok: queued as", "250 2.0.0 Ok"]
        F.check(len(got) == 6 and all(g.startswith(w)
                                      for g, w in zip(got, want)),
                "commands behind the final dot run after its 250", got)
        ids = [ternlib.queued_id(g) for g in got]
        F.check(len(got) == 6 and ids[0] and ids[4] and ids[0] != ids[4],
                "two messages, two queue IDs", ids)
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    for user, token in (("p1", "one"), ("p3", "one"), ("p4", "two")):
        msgs = t.wait_maildir(user, 1)
        F.check(len(msgs) == 1 and body_of(msgs[0]) == token + "\n",
                "pipelined message for %s delivered with its own body"
                % user, msgs)
    F.check(not t.maildir_files("p2"), "nothing for the refused RCPT")

    # The whole session in one write, QUIT included.
    with SMTPConn(t.port) as c:
        c.send("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<p5@localhost>\r\n"
               "DATA\r\nSubject: burst\r\n\r\nburst\r\n.\r\nQUIT\r\n"
               % (HELO, SENDER))
        rs = ternlib.read_replies(c, 6)
        got = [reply_text(r) for r in rs]
        F.check(len(got) == 6 and got[0].startswith("250 ") and
                got[4].startswith("250 2.0.0 Ok: queued as") and
                got[5] == "221 2.0.0 Bye",
                "EHLO..QUIT in one write: every reply, in order", got)
        F.check(c.readline() is None, "closed after QUIT")
    F.check(len(t.wait_maildir("p5", 1)) == 1, "burst session delivered")

    # One byte at a time: the parser must not depend on read sizes.
    with SMTPConn(t.port) as c:
        data = ("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<p6@localhost>\r\n"
                "DATA\r\nSubject: slow\r\n\r\n.dot\r\nslow\r\n.\r\nQUIT\r\n"
                % (HELO, SENDER)).encode()
        for i in range(len(data)):
            c.send(data[i:i + 1])
        rs = ternlib.read_replies(c, 6)
        got = [reply_text(r) for r in rs]
        F.check(len(got) == 6 and got[4].startswith("250 2.0.0 Ok: queued")
                and got[5] == "221 2.0.0 Bye",
                "a session sent one byte at a time gets every reply", got)
    msgs = t.wait_maildir("p6", 1)
    F.check(len(msgs) == 1 and body_of(msgs[0]) == "dot\nslow\n",
            "byte-at-a-time message delivered, dot-stuffing undone", msgs)

    swaks = ternlib.have("swaks")
    if not swaks:
        print("note: swaks is not installed; its case is left out")
        return
    st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                           "--pipeline", "--from", SENDER, "--to",
                           "swakspipe@localhost", "--header",
                           "Subject: swaks pipeline"])
    F.check(st == 0 and "250 2.0.0 Ok: queued as" in out,
            "swaks --pipeline delivers", out[-800:])
    F.check(len(t.wait_maildir("swakspipe", 1)) == 1,
            "swaks --pipeline message in the Maildir")


def size(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        F.expect(c.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, SIZE_LIMIT + 1)),
                 "552 5.3.4 Message size exceeds fixed limit",
                 "SIZE=limit+1")
        F.expect(c.cmd("MAIL FROM:<%s> SIZE=99999999999999999999999"
                       % SENDER), "5", "SIZE= too large for 64 bits")
        F.expect(c.cmd("MAIL FROM:<%s> SIZE=12x" % SENDER), "501 5.5.4",
                 "SIZE=12x")
        F.expect(c.cmd("MAIL FROM:<%s> SIZE=-1" % SENDER), "501 5.5.4",
                 "SIZE=-1")
        F.expect(c.cmd("MAIL FROM:<%s> FOO=bar" % SENDER),
                 "555 5.5.4 Unsupported option: FOO", "unknown FOO=bar")
        F.expect(c.cmd("MAIL FROM:<%s> size=%d" % (SENDER, SIZE_LIMIT)),
                 "250 2.1.0 Ok", "size=limit (parameter names are "
                 "case-blind)")
        F.expect(c.cmd("RCPT TO:<big@localhost>"), "250 2.1.5 Ok", "RCPT")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: too big\r\n\r\n" + ("y" * 78 + "\r\n") *
               (SIZE_LIMIT // 80 + 10) + ".\r\n")
        F.expect(c.reply(), "552 5.3.4 Error: message file too big",
                 "DATA over message_size_limit")
        F.expect(c.cmd("RCPT TO:<big@localhost>"), "503 5.5.1",
                 "the transaction is over after the 552")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                 "a new MAIL after the 552")
        F.expect(c.cmd("RCPT TO:<fits@localhost>"), "250 2.1.5 Ok", "RCPT")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: fits\r\n\r\n" + ("z" * 78 + "\r\n") *
               (SIZE_LIMIT // 80 - 10) + ".\r\n")
        F.expect(c.reply(), "250 2.0.0 Ok: queued as", "a message just "
                 "under the limit")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    F.check(not t.maildir_files("big"), "the oversized message is not "
            "delivered")
    F.check(len(t.wait_maildir("fits", 1)) == 1, "the one under the limit "
            "is")
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        try:
            s.sendmail(SENDER, ["big2@localhost"],
                       "Subject: x\n\n" + "w" * (SIZE_LIMIT * 2))
            F.check(False, "smtplib: a message over the limit is refused")
        except smtplib.SMTPSenderRefused as e:
            F.check(e.smtp_code == 552, "smtplib (which sends SIZE=) is "
                    "refused at MAIL with 552", e)
        except smtplib.SMTPDataError as e:
            F.check(e.smtp_code == 552, "smtplib is refused with 552", e)
        s.quit()
    finally:
        s.close()


def eightbit_and_utf8(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        F.expect(c.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER),
                 "250 2.1.0 Ok", "BODY=8BITMIME")
        F.expect(c.cmd("RCPT TO:<eight@localhost>"), "250 2.1.5 Ok", "RCPT")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n"
               "caf\u00e9 \u00fcber \u65e5\u672c\r\n.\r\n")
        F.expect(c.reply(), "250 2.0.0 Ok: queued as", "8-bit body")
        F.expect(c.cmd("MAIL FROM:<%s> BODY=7BIT" % SENDER), "250 2.1.0 Ok",
                 "BODY=7BIT")
        F.expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        F.expect(c.cmd("MAIL FROM:<%s> BODY=BINARYMIME" % SENDER), "555 5.5.4",
                 "BODY=BINARYMIME (not offered)")
        # RFC 6531 section 3.4: non-ASCII addresses need SMTPUTF8.
        F.expect(c.cmd("MAIL FROM:<j\u00f6rg@example.org>"), "553 5.6.7",
                 "non-ASCII sender without SMTPUTF8")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                 "MAIL after the 553")
        F.expect(c.cmd("RCPT TO:<m\u00fcller@localhost>"), "553 5.6.7",
                 "non-ASCII recipient without SMTPUTF8")
        F.expect(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
        F.expect(c.cmd("MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8 "
                       "BODY=8BITMIME"), "250 2.1.0 Ok",
                 "non-ASCII sender with SMTPUTF8")
        F.expect(c.cmd("RCPT TO:<m\u00fcller@localhost>"), "250 2.1.5 Ok",
                 "non-ASCII recipient with SMTPUTF8")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: utf8\r\nFrom: J\u00f6rg <j\u00f6rg@b\u00fccher"
               ".example>\r\n\r\ngr\u00fc\u00dfe\r\n.\r\n")
        F.expect(c.reply(), "250 2.0.0 Ok: queued as", "SMTPUTF8 message")
        F.expect(c.cmd("MAIL FROM:<%s> SMTPUTF8=yes" % SENDER), "5",
                 "SMTPUTF8 takes no value")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    msgs = t.wait_maildir("eight", 1)
    F.check(len(msgs) == 1 and body_of(msgs[0]) ==
            "caf\u00e9 \u00fcber \u65e5\u672c\n",
            "8-bit body delivered byte for byte", msgs)
    msgs = t.wait_maildir("m\u00fcller", 1)
    F.check(len(msgs) == 1, "SMTPUTF8 message delivered to m\u00fcller",
            msgs)
    if msgs:
        F.check(msgs[0].startswith("Return-Path: <j\u00f6rg@b\u00fccher."
                                   "example>\n"),
                "Return-Path keeps the UTF-8 sender", msgs[0][:80])
        F.check(body_of(msgs[0]) == "gr\u00fc\u00dfe\n", "UTF-8 body kept",
                body_of(msgs[0]))
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        s.ehlo()
        refused = s.sendmail("s\u00f8ren@example.org", ["\u00e5sa@localhost"],
                             "Subject: smtplib utf8\n\nhej\n".encode("utf-8"),
                             mail_options=["SMTPUTF8"])
        F.check(refused == {}, "smtplib with SMTPUTF8: accepted", refused)
        s.quit()
    finally:
        s.close()
    F.check(len(t.wait_maildir("\u00e5sa", 1)) == 1,
            "smtplib SMTPUTF8 message delivered")


def dsn(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        F.expect(c.cmd("MAIL FROM:<%s> RET=HDRS ENVID=QQ314159+2Bx" % SENDER),
                 "250 2.1.0 Ok", "RET=HDRS ENVID=xtext")
        F.expect(c.cmd("RCPT TO:<d1@localhost> NOTIFY=SUCCESS,FAILURE "
                       "ORCPT=rfc822;d1+40example.org"), "250 2.1.5 Ok",
                 "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d1+40example.org")
        F.expect(c.cmd("RCPT TO:<d2@localhost> NOTIFY=NEVER"),
                 "250 2.1.5 Ok", "NOTIFY=NEVER")
        F.expect(c.cmd("RCPT TO:<d3@localhost> NOTIFY=delay"),
                 "250 2.1.5 Ok", "NOTIFY=delay (case-blind)")
        for arg, what in (("NOTIFY=SOMETIMES", "NOTIFY=SOMETIMES"),
                          ("NOTIFY=NEVER,SUCCESS", "NOTIFY=NEVER,SUCCESS"),
                          ("NOTIFY=", "empty NOTIFY="),
                          ("NOTIFY=SUCCESS,", "NOTIFY=SUCCESS, (trailing "
                           "comma)")):
            F.expect(c.cmd("RCPT TO:<bad@localhost> " + arg),
                     "501 5.5.4 Bad NOTIFY parameter syntax", what)
        for arg, what in (("ORCPT=rfc822", "ORCPT without ';'"),
                          ("ORCPT=;x@y", "ORCPT without a type"),
                          ("ORCPT=rfc822;x+4", "ORCPT with a cut xtext "
                           "escape"),
                          ("ORCPT=rfc822;x+zzy", "ORCPT with a bad hex "
                           "escape")):
            F.expect(c.cmd("RCPT TO:<bad@localhost> " + arg), "501 5.5.4",
                     what)
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: dsn\r\n\r\ndsn\r\n.\r\n")
        F.expect(c.reply(), "250 2.0.0 Ok: queued as", "the DSN message")
        for arg, what in (("ENVID=a+zz", "ENVID with a bad escape"),
                          ("ENVID=" + "e" * 101, "ENVID over 100 "
                           "characters"),
                          ("ENVID=a=b", "ENVID with '='")):
            F.expect(c.cmd("MAIL FROM:<%s> %s" % (SENDER, arg)),
                     "501 5.5.4", what)
        r = c.cmd("MAIL FROM:<%s> RET=BOGUS" % SENDER)
        F.check(re.match(r"5\d\d 5\.5\.4 ", reply_text(r)),
                "RET=BOGUS: 5xx 5.5.4", r[1])
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    for u in ("d1", "d2", "d3"):
        F.check(len(t.wait_maildir(u, 1)) == 1, "DSN message delivered to "
                + u)
    F.check(not t.maildir_files("bad"), "nothing for the refused RCPTs")


def chunk(c, data, last=False):
    """Send one BDAT chunk and return the reply."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return c.reply()


def octets_ok(text, chunk_len, total):
    m = re.match(r"250 2\.0\.0 Ok: (\d+) octets received$", text)
    return m is not None and int(m.group(1)) in (chunk_len, total)


def chunking(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        F.expect(c.cmd("RCPT TO:<bdat@localhost>"), "250 2.1.5 Ok", "RCPT")
        parts = ["Subject: chunks\r\n\r\nfirst line\r\n.not stuffed\r",
                 "\n.\r\nsecond\r\n", "bare\nLF\r\n"]
        total = 0
        for p in parts:
            total += len(p)
            r = chunk(c, p)
            F.check(octets_ok(reply_text(r), len(p), total),
                    "BDAT %d: \"250 2.0.0 Ok: N octets received\" with N the "
                    "chunk's or the transaction's octets (%d or %d)"
                    % (len(p), len(p), total), r[1])
        r = chunk(c, "end\r\n", last=True)
        F.expect(r, "250 2.0.0 Ok: queued as ", "BDAT n LAST")
        qid = ternlib.queued_id(reply_text(r))
        # Empty LAST chunk, and BDAT pipelined with its data.
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        F.expect(c.cmd("RCPT TO:<bdat2@localhost>"), "250 2.1.5 Ok", "RCPT")
        c.send(b"BDAT 16\r\nSubject: two\r\n\r\nBDAT 3\r\nx\r\n"
               b"BDAT 0 LAST\r\n")
        rs = ternlib.read_replies(c, 3)
        got = [reply_text(r) for r in rs]
        F.check(len(got) == 3 and got[0].startswith("250 2.0.0 Ok: ") and
                got[1].startswith("250 2.0.0 Ok: ") and
                got[2].startswith("250 2.0.0 Ok: queued as "),
                "three BDATs in one write, the last \"BDAT 0 LAST\"", got)
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    msgs = t.wait_maildir("bdat", 1)
    if F.check(len(msgs) == 1, "BDAT message delivered", len(msgs)):
        F.check(body_of(msgs[0]) ==
                "first line\n.not stuffed\n.\nsecond\nbare\nLF\nend\n",
                "BDAT content kept: CRLF (also across chunks) turned into LF, "
                "no dot-unstuffing, a lone '.' line is content",
                body_of(msgs[0]))
        F.check(re.search(r"with ESMTP id %s\b" % qid,
                          ternlib.header(msgs[0], "Received") or ""),
                "BDAT message: Received: names queue ID %s" % qid)
    msgs = t.wait_maildir("bdat2", 1)
    F.check(len(msgs) == 1 and body_of(msgs[0]) == "x\n",
            "pipelined BDAT message delivered", msgs)


def chunking_errors(t):
    with SMTPConn(t.port) as c:
        ehlo(c)
        # The refused chunk must still be read: its bytes look like
        # commands, and none of them may run.
        r = chunk(c, "RSET\r\nQUIT\r\n")
        F.expect(r, "503 5.5.1", "BDAT without MAIL")
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the refused chunk's bytes "
                 "were consumed, not run")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        r = chunk(c, "QUIT\r\n", last=True)
        F.expect(r, "503 5.5.1", "BDAT LAST without RCPT")
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after it")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok",
                 "MAIL: the refused BDAT LAST ended the transaction")
        F.expect(c.cmd("RCPT TO:<afterbdat@localhost>"), "250 2.1.5 Ok",
                 "RCPT")
        F.expect(chunk(c, "Subject: a\r\n\r\nbody\r\n"), "250 2.0.0 Ok",
                 "BDAT chunk")
        F.expect(c.cmd("DATA"), "503 5.5.1", "DATA after BDAT in the same "
                 "transaction")
        F.expect(chunk(c, "more\r\n", last=True), "250 2.0.0 Ok: queued as",
                 "BDAT LAST still works after the refused DATA")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    msgs = t.wait_maildir("afterbdat", 1)
    F.check(len(msgs) == 1 and body_of(msgs[0]) == "body\nmore\n",
            "message after the refused DATA delivered whole", msgs)

    # A refused chunk outside any transaction must not poison the next
    # transaction.
    with SMTPConn(t.port) as c:
        ehlo(c)
        F.expect(chunk(c, "stray"), "503 5.5.1", "BDAT (not LAST) before "
                 "MAIL")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        F.expect(c.cmd("RCPT TO:<fresh@localhost>"), "250 2.1.5 Ok", "RCPT")
        queued = F.expect(chunk(c, "Subject: fresh\r\n\r\nfresh\r\n",
                                last=True),
                          "250 2.0.0 Ok: queued as", "BDAT LAST in the new "
                          "transaction after a refused BDAT before MAIL")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    if queued:
        F.check(len(t.wait_maildir("fresh", 1)) == 1, "the new "
                "transaction's message is delivered")

    for arg in ("x", "", "-1", "10 FIRST", "1x", "99999999999999999999999"):
        with SMTPConn(t.port) as c:
            ehlo(c)
            c.cmd("MAIL FROM:<%s>" % SENDER)
            c.cmd("RCPT TO:<badbdat@localhost>")
            r = c.cmd(("BDAT " + arg).rstrip(" "))
            F.expect(r, "501 5.5.4", "BDAT %r" % arg)
            F.check(ternlib.closed_by_server(c, 5), "BDAT %r: the "
                    "connection is closed (the chunk cannot be found)" % arg)
    F.check(not t.maildir_files("badbdat"), "nothing delivered after the "
            "bad BDAT sizes")

    # DATA first, then BDAT: BDAT is not allowed inside DATA content,
    # and message_size_limit holds for chunks too.
    with SMTPConn(t.port) as c:
        ehlo(c)
        c.cmd("MAIL FROM:<%s>" % SENDER)
        c.cmd("RCPT TO:<bigbdat@localhost>")
        big = b"b" * 1000 + b"\r\n"
        c.send(b"BDAT %d\r\n" % (len(big) * 15) + big * 15)
        r1 = c.reply()
        c.send(b"BDAT %d LAST\r\n" % (len(big) * 15) + big * 15)
        r2 = c.reply()
        F.check(reply_text(r2).startswith("552 5.3.4") or
                reply_text(r1).startswith("552 5.3.4"),
                "BDAT chunks over message_size_limit: 552 5.3.4",
                (r1[1], r2[1]))
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after the 552")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    F.check(not t.maildir_files("bigbdat"), "the oversized BDAT message is "
            "not delivered")


def malformed(t):
    cases = [
        ("MAIL FROM:", "501 5.5.4"),
        ("MAIL FROM:<>x", "501 5.5.4"),
        ("MAIL FROM:<a@b", "501 5.5.4"),
        ("MAIL TO:<a@example.org>", "501 5.5.4"),
        ("MAIL FROM:a@example.org", "501 5.5.4"),
        ("MAIL FROM:<a@@example.org>", "501 5.5.4"),
        ("MAIL FROM:<a..b@example.org>", "501 5.5.4"),
        ("MAIL FROM:<a@exa mple.org>", "501 5.5.4"),
        ("MAIL FROM:<@>", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> =x", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> X_Y=1", "501 5.5.4"),
        ("MAIL FROM:<%s@example.org>" % ("l" * 300), "501 5.5.4"),
        ("MAIL", "501 5.5.4"),
        ("EHLO", "501 5.5.4"),
        ("HELO", "501 5.5.4"),
        ("RSET now", "501 5.5.4"),
        ("\x01\x02\x03", "500 5.5.2"),
        ("MAILFROM:<a@example.org>", "500 5.5.2"),
        ("\xff\xfe garbage", "500 5.5.2"),
        ("", "500 5.5.2"),
        ("   ", "500 5.5.2"),
    ]
    with SMTPConn(t.port) as c:
        ehlo(c)
        for line, want in cases:
            F.expect(c.cmd(line), want, "%r" % line[:40])
            r = c.cmd("NOOP")
            if not F.expect(r, "250 2.0.0 Ok", "the session goes on after "
                            "%r" % line[:40]):
                return
        # In a transaction: bad RCPTs, then good ones.
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
        for line in ("RCPT TO:", "RCPT TO:<>", "RCPT TO:<a b@localhost>",
                     "RCPT TO:<x@localhost> NOTIFY", "RCPT FROM:<x@localhost>",
                     "RCPT TO:<x@localhost>>", "RCPT TO:x@localhost",
                     "RCPT TO:<x@[300.1.1.1.1]",
                     "RCPT TO:<" + "x" * 1000 + "@localhost>"):
            r = c.cmd(line)
            F.check(r[0] is not None and 500 <= r[0] < 600 and
                    ESC.match(reply_text(r)), "%r: 5xx with an enhanced code"
                    % line[:40], r[1])
        F.expect(c.cmd("RCPT TO:<good@localhost>"), "250 2.1.5 Ok",
                 "a good RCPT after the bad ones")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: after junk\r\n\r\nstill fine\r\n.\r\n")
        F.expect(c.reply(), "250 2.0.0 Ok: queued as", "the message")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    msgs = t.wait_maildir("good", 1)
    F.check(len(msgs) == 1, "message after the malformed commands delivered")
    # Lower-case and mixed-case verbs are the same commands.
    with SMTPConn(t.port) as c:
        F.expect(c.cmd("ehlo " + HELO), "250 ", "ehlo")
        F.expect(c.cmd("mail from:<%s>" % SENDER), "250 2.1.0 Ok",
                 "mail from:")
        F.expect(c.cmd("RcPt To:<mixed@localhost>"), "250 2.1.5 Ok",
                 "RcPt To:")
        F.expect(c.cmd("quit"), "221 2.0.0 Bye", "quit")


def discard_keywords():
    with Ternd({"smtpd_discard_ehlo_keywords": "chunking, DSN"}) as t:
        with SMTPConn(t.port) as c:
            lines = ehlo(c)
        kws = [l[4:].split(" ")[0] for l in lines[1:]]
        F.check("CHUNKING" not in kws and "DSN" not in kws and
                "PIPELINING" in kws and lines[-1].startswith("250 "),
                "smtpd_discard_ehlo_keywords leaves those out", lines)
        F.check(t.wait_log(r"discarding EHLO keywords: DSN CHUNKING"),
                "and logs it")
    with Ternd({"smtpd_discard_ehlo_keywords":
                    "silent-discard, pipelining"}) as t:
        with SMTPConn(t.port) as c:
            lines = ehlo(c)
        F.check(not [l for l in lines if "PIPELINING" in l],
                "silent-discard: PIPELINING is left out", lines)
        F.check(not t.log_lines("discarding EHLO keywords"),
                "silent-discard: and nothing is logged")


def main():
    # Many refusals on purpose: no error limit, and no error sleep.
    params = {"message_size_limit": str(SIZE_LIMIT),
              "smtpd_hard_error_limit": "1000",
              "smtpd_soft_error_limit": "1000"}
    with Ternd(params) as t:
        F.section("EHLO keywords", keywords, t)
        F.section("enhanced status codes", enhanced_codes, t)
        F.section("PIPELINING", pipelining, t)
        F.section("SIZE and message_size_limit", size, t)
        F.section("8BITMIME and SMTPUTF8", eightbit_and_utf8, t)
        F.section("DSN parameters", dsn, t)
        F.section("CHUNKING", chunking, t)
        F.section("CHUNKING errors", chunking_errors, t)
        F.section("malformed commands", malformed, t)
        F.check(t.running(), "ternd still running after all the sessions")
        if F.failed:
            print("--- ternd log\n" + t.log_text()[-20000:])
    F.section("smtpd_discard_ehlo_keywords", discard_keywords)
    F.exit()


if __name__ == "__main__":
    main()
