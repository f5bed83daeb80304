# SPDX-License-Identifier: ISC
"""When the queue's file system is short of space (free space below
queue_minfree or one and a half times message_size_limit), MAIL gets
"452 4.3.1 Insufficient system storage", mail already accepted is still
delivered, and once space returns (here: the limit is lowered by a
reload) mail is accepted again."""

import signal
import smtplib

import ternlib
from ternlib import Ternd

F = ternlib.Failures()
HUGE = str(10 ** 18)  # more than any disk has


def send(t, token):
    return ternlib.try_send(t, "Subject: %s\n\ntoken=%s\n" % (token, token))


def delivered(t, token):
    return any(("token=%s\n" % token) in m
               for m in t.maildir_messages("user"))


def short_of_space():
    with Ternd() as t:
        code, _ = send(t, "before")
        F.check(code == 250, "a message is accepted while there is room")
        t.write_config({"queue_minfree": HUGE})
        t.signal(signal.SIGHUP)
        F.check(t.wait_log(r"reload -- version"), "the reload is done")
        code, text = send(t, "during")
        F.check(code == 452 and "4.3.1 Insufficient system storage" in text,
                "MAIL gets 452 4.3.1 when the disk is short", (code, text))
        F.check(t.wait_log(r"not enough free space"), "and it is logged")
        F.check(ternlib.wait_for(lambda: delivered(t, "before")),
                "what was accepted before is delivered")
        s = smtplib.SMTP("127.0.0.1", t.port, timeout=20)
        s.ehlo("client.example.org")
        code, text = s.mail("a@example.org", ["SIZE=1000"])
        F.check(code == 452, "MAIL with SIZE gets 452 too", (code, text))
        s.close()
        t.write_config({"queue_minfree": "0"})
        t.signal(signal.SIGHUP)
        F.check(ternlib.wait_for(
            lambda: len(t.log_lines(r"reload -- version")) >= 2),
            "the second reload is done")
        code, _ = send(t, "after")
        F.check(code == 250, "mail is accepted again once there is room")
        F.check(ternlib.wait_for(lambda: delivered(t, "after")),
                "and delivered")
        F.check(not delivered(t, "during"), "the refused one never was")


F.section("short of space", short_of_space)
F.exit()
