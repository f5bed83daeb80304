# SPDX-License-Identifier: ISC
"""Signals: SIGTERM ends ternd with status 0 and tells idle clients
"421 4.3.2 Service shutting down"; SIGHUP re-reads the config, keeps the
old one when the new file is bad (logging file:line), and applies a good
one to new connections."""

import re
import signal
import smtplib
import time
import traceback

import ternlib
from ternlib import SMTPConn, Ternd

F = ternlib.Failures()
STOP_TIMEOUT = 10.0


def send_one(t, rcpt, token):
    """Send a message with smtplib; returns True on a 250."""
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.example.org",
                     timeout=20)
    try:
        s.ehlo()
        s.mail("a@example.org")
        s.rcpt(rcpt)
        code, _ = s.data("Subject: %s\n\ntoken=%s\n" % (token, token))
        s.quit()
        return code == 250
    finally:
        s.close()


def delivered(t, user, token):
    return any(("token=%s\n" % token) in m for m in t.maildir_messages(user))


def sigterm_idle_client():
    with Ternd() as t:
        with SMTPConn(t.port) as idle, SMTPConn(t.port) as fresh:
            code, _ = idle.cmd("EHLO client.example.org")
            F.check(code == 250, "idle client: EHLO accepted")
            F.check(fresh.banner[0] == 220, "second client got its banner")
            start = time.monotonic()
            t.signal(signal.SIGTERM)
            for name, c in (("idle client after EHLO", idle),
                            ("client idle after the banner", fresh)):
                try:
                    code, lines = c.reply()
                    closed = c.readline() is None
                except OSError as e:
                    lines, closed = ["(%r)" % e], False
                F.check(lines == ["421 4.3.2 Service shutting down"],
                        "%s receives \"421 4.3.2 Service shutting down\""
                        % name, lines)
                F.check(closed, "%s: connection closed after the 421" % name)
        st = t.wait_exit(STOP_TIMEOUT)
        took = time.monotonic() - start
        F.check(st == 0, "SIGTERM: exit status 0 within %gs" % STOP_TIMEOUT,
                "status %s after %.1fs" % (st, took))
        if st is not None:
            print("ternd exited %.2fs after SIGTERM" % took)


def sighup_bad_file():
    with Ternd() as t:
        good = open(t.conf).read()
        bad = good + "smtpd_timeout = abc\n"
        line = bad.count("\n")
        t.write_config(text=bad)
        reloads = len(t.log_lines(r"reload -- "))
        t.signal(signal.SIGHUP)
        pat = r"%s:%d: bad value for smtpd_timeout" % (re.escape(t.conf), line)
        F.check(t.wait_log(pat), "bad file: the error is logged with %s:%d"
                % (t.conf, line))
        F.check(t.running(), "bad file: ternd keeps running")
        F.check(len(t.log_lines(r"reload -- ")) == reloads,
                "bad file: no reload line")
        try:
            ok = send_one(t, "user@localhost", "after-bad-hup")
        except (smtplib.SMTPException, OSError) as e:
            ok = False
            print("send failed: %r" % e)
        F.check(ok, "bad file: ternd still accepts mail")
        F.check(ternlib.wait_for(
            lambda: delivered(t, "user", "after-bad-hup")),
            "bad file: the message is delivered")
        with SMTPConn(t.port) as c:
            F.check(c.banner[1] == ["220 mx.example.test ESMTP tern"],
                    "bad file: the old banner stays", c.banner)
        st = t.stop()
        F.check(st == 0, "bad file: SIGTERM afterwards: exit status 0", st)


def sighup_good_file():
    with Ternd() as t:
        before = SMTPConn(t.port)
        try:
            F.check(before.banner[1] == ["220 mx.example.test ESMTP tern"],
                    "banner before the reload", before.banner)
            before.cmd("EHLO client.example.org")
            t.write_config(params={"smtpd_banner": "$myhostname ESMTP reloaded"})
            t.signal(signal.SIGHUP)
            pat = (r"tern/master\[%d\]: reload -- version 0\.1\.0, "
                   r"configuration %s$" % (t.pid, re.escape(t.conf)))
            F.check(t.wait_log(pat),
                    "log: reload -- version 0.1.0, configuration FILE")
            with SMTPConn(t.port) as c:
                F.check(c.banner[1] == ["220 mx.example.test ESMTP reloaded"],
                        "a new connection gets the new smtpd_banner",
                        c.banner)
            code, _ = before.cmd("NOOP")
            F.check(code == 250, "a connection from before the reload "
                    "still works", code)
            before.cmd("QUIT")
        finally:
            before.close()
        try:
            ok = send_one(t, "user@localhost", "after-good-hup")
        except (smtplib.SMTPException, OSError) as e:
            ok = False
            print("send failed: %r" % e)
        F.check(ok and ternlib.wait_for(
            lambda: delivered(t, "user", "after-good-hup")),
            "mail is accepted and delivered after the reload")
        st = t.stop()
        F.check(st == 0, "SIGTERM after the reload: exit status 0", st)


def main():
    for name, fn in (("SIGTERM with idle clients", sigterm_idle_client),
                     ("SIGHUP with a bad file", sighup_bad_file),
                     ("SIGHUP with a good file", sighup_good_file)):
        print("checking " + name)
        try:
            fn()
        except Exception:
            F.check(False, name + " ran to the end", traceback.format_exc())
    F.exit()


if __name__ == "__main__":
    main()
