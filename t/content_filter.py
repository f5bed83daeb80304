# SPDX-License-Identifier: ISC
"""An after-queue content filter, as amavis is run behind Postfix:
content_filter sends new mail to an SMTP filter (here aiosmtpd, which
adds a header and gives each message back with smtplib), the filter
gives it back on a smtp_listen address with the "nofilter" option, and
from there it is delivered.  A filter that answers 451 leaves the mail
queued; notices that ternd makes itself skip the filter; a header_checks
FILTER action picks the filter for one message only, and so do FILTER
(and BCC, for a blind copy) as the results of an access table.
"""

import os
import re
import smtplib
import sys

import peerlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@localhost"


class Filter:
    """The filter: what it does with each message is up to its mode."""

    def __init__(self):
        self.mode = "pass"
        self.back_port = None
        self.peer = peerlib.Peer(data_reply=self.data)

    def data(self, msg):
        if self.mode == "tempfail":
            return "451 4.3.0 filter busy"
        content = b"X-Filtered: by the test filter\r\n" + msg.content
        with smtplib.SMTP("127.0.0.1", self.back_port, timeout=20) as s:
            s.sendmail(msg.mail_from, msg.rcpts, content)
        return None


def send(t, rcpts, subject, extra=""):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.sendmail(SENDER, rcpts, "Subject: %s\r\n%s\r\nbody\r\n"
                   % (subject, extra))


def listeners(t, flt):
    """t's own listener and a nofilter one, where flt gives mail back."""
    flt.back_port = ternlib.free_port()
    return "127.0.0.1:%d, 127.0.0.1:%d/nofilter" % (t.port, flt.back_port)


def run(flt):
    with Ternd(start=False) as t:
        checks = os.path.join(t.dir, "header_checks")
        with open(checks, "w") as f:
            f.write("/^X-Scan-Me: yes/ FILTER smtp:[127.0.0.1]:%d\n"
                    % flt.peer.port)
        t.params.update({
            "smtp_listen": listeners(t, flt),
            "content_filter": "smtp:[127.0.0.1]:%d" % flt.peer.port,
            "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
            "queue_run_delay": "1s",
        })
        t.write_config()
        t.start()

        send(t, ["user@localhost"], "filtered")
        msgs = t.wait_maildir("user", 1)
        F.check(len(msgs) == 1 and "X-Filtered: by the test filter" in
                msgs[0], "the message went through the filter and back",
                msgs)
        F.check(t.log_lines(r"to=<user@localhost>, relay=127\.0\.0\.1"
                            r"\[127\.0\.0\.1\]:%d, .*status=sent"
                            % flt.peer.port),
                "logged as sent to the filter")
        F.check(t.log_lines(r"to=<user@localhost>, relay=local, .*"
                            r"status=sent"),
                "and delivered once it came back")

        flt.mode = "tempfail"
        send(t, ["later@localhost"], "held by the filter")
        F.check(t.wait_log(r"to=<later@localhost>, .*status=deferred "
                           r".*451 4\.3\.0 filter busy"),
                "a filter that answers 451 defers the message")
        F.check(not t.maildir_files("later"), "and nothing is delivered")
        flt.mode = "pass"
        F.check(len(t.wait_maildir("later", 1, 20)) == 1,
                "once the filter is back the message arrives")

        # A notice this server makes goes straight to the sender.
        send(t, ["x@nowhere.invalid"], "bounces")
        msgs = t.wait_maildir("sender", 1, 20)
        F.check(len(msgs) == 1 and "X-Filtered" not in
                msgs[0].split("\n\n", 1)[0],
                "the bounce skips the filter", msgs[:1])

    # Without content_filter, FILTER in header_checks picks it.
    with Ternd(start=False) as t:
        checks = os.path.join(t.dir, "header_checks")
        with open(checks, "w") as f:
            f.write("/^X-Scan-Me: yes/ FILTER smtp:[127.0.0.1]:%d\n"
                    % flt.peer.port)
        t.params.update({
            "smtp_listen": listeners(t, flt),
            "header_checks": "regexp:" + checks,
        })
        t.write_config()
        t.start()
        send(t, ["a@localhost"], "scan me", "X-Scan-Me: yes\r\n")
        send(t, ["b@localhost"], "not me")
        a = t.wait_maildir("a", 1)
        b = t.wait_maildir("b", 1)
        F.check(len(a) == 1 and "X-Filtered" in a[0],
                "FILTER sends the matching message to the filter")
        F.check(len(b) == 1 and "X-Filtered" not in b[0],
                "and leaves the others alone")
        F.check(t.log_lines(r"filter: header X-Scan-Me: yes"),
                "the FILTER action is logged")

    # FILTER and BCC as results of an access table.
    with Ternd(start=False) as t:
        access = os.path.join(t.dir, "access")
        with open(access, "w") as f:
            f.write("scan@localhost FILTER smtp:[127.0.0.1]:%d\n"
                    "copy@localhost BCC watcher@localhost\n"
                    % flt.peer.port)
        t.params.update({
            "smtp_listen": listeners(t, flt),
            "smtpd_recipient_restrictions":
                "check_recipient_access texthash:" + access,
        })
        t.write_config()
        t.start()
        send(t, ["scan@localhost"], "access filter")
        send(t, ["copy@localhost"], "access bcc")
        msgs = t.wait_maildir("scan", 1)
        F.check(len(msgs) == 1 and "X-Filtered" in msgs[0],
                "check_recipient_access FILTER picks the filter")
        F.check(t.log_lines(r"NOQUEUE: filter: RCPT from .*triggers FILTER"),
                "logged as Postfix logs it", t.log_lines("filter"))
        F.check(len(t.wait_maildir("watcher", 1)) == 1 and
                len(t.wait_maildir("copy", 1)) == 1,
                "check_recipient_access BCC adds a blind copy")


def main():
    if not peerlib.HAVE_AIOSMTPD:
        print("SKIP: python3-aiosmtpd is not installed")
        sys.exit(77)
    flt = Filter()
    with flt.peer:
        F.section("content_filter", run, flt)
    F.exit()


if __name__ == "__main__":
    main()
