# SPDX-License-Identifier: ISC
"""ternd's maillog as Postfix's log summariser reads it.

A known mix goes through SMTP: messages delivered locally, recipients
refused at RCPT (relay attempts from outside mynetworks), recipients on
a domain routed to the retry: transport (deferred) and on one routed to
the error: transport (bounced, with a non-delivery notice to a local
sender).  pflogsumm's totals for the maillog must equal that mix.
"""

import os
import re
import smtplib

import ternlib
from ternlib import Ternd

F = ternlib.Failures()

DELIVERED = 3   # messages to a local user, one recipient each
REJECTED = 2    # RCPT refused: relay access denied
DEFERRED = 2    # messages to the retry: transport
BOUNCED = 2     # messages to the error: transport, each with an NDN

LOCAL_SENDER = "owner@localhost"
REMOTE_SENDER = "a@example.org"


def write_file(t, name, lines):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return path


def send(t, sender, rcpt):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.ehlo("client.example.org")
        refused = s.sendmail(sender, [rcpt],
                             "Subject: summary\r\n\r\nbody\r\n")
        F.check(not refused, "%s is accepted" % rcpt, refused)


def reject(t, rcpt):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.ehlo("client.example.org")
        code, _ = s.mail(REMOTE_SENDER)
        F.check(code == 250, "MAIL before the relay attempt", code)
        code, msg = s.rcpt(rcpt)
        F.check(code == 554 and b"Relay access denied" in msg,
                "RCPT %s: 554 Relay access denied" % rcpt, (code, msg))
        s.rset()


def maillog(t):
    try:
        with open(os.path.join(t.dir, "maillog"), "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def settled(t):
    """True once every message has its final status line."""
    text = maillog(t)
    sent = len(re.findall(r"status=sent", text))
    bounced = len(re.findall(r"status=bounced", text))
    deferred = set(re.findall(r": (%s): to=<[^>]*@defer\.test>.*"
                              r"status=deferred" % ternlib.QUEUE_ID, text))
    return (sent >= DELIVERED + BOUNCED and bounced >= BOUNCED and
            len(deferred) >= DEFERRED)


def summary_count(out, label):
    m = re.search(r"^\s*(\d+)\s+%s\b" % re.escape(label), out, re.M)
    return int(m.group(1)) if m else None


def main():
    prog = ternlib.have("pflogsumm")
    if prog is None:
        print("pflogsumm is not installed")
        raise SystemExit(77)
    with Ternd(start=False) as t:
        access = write_file(t, "relay_access",
                            ["defer.test OK", "bounce.test OK"])
        transport = write_file(t, "transport", [
            "defer.test retry:4.4.1 test deferral",
            "bounce.test error:5.1.1 test bounce",
        ])
        t.params.update({
            "maillog_file": os.path.join(t.dir, "maillog"),
            "mynetworks": "192.0.2.0/24",
            "smtpd_relay_restrictions":
                "check_recipient_access texthash:%s, "
                "reject_unauth_destination" % access,
            "transport_maps": "texthash:" + transport,
        })
        t.write_config()
        t.start()

        for i in range(DELIVERED):
            send(t, REMOTE_SENDER, "user%d@localhost" % i)
        for i in range(REJECTED):
            reject(t, "x%d@remote.test" % i)
        for i in range(DEFERRED):
            send(t, REMOTE_SENDER, "d%d@defer.test" % i)
        for i in range(BOUNCED):
            send(t, LOCAL_SENDER, "b%d@bounce.test" % i)

        F.check(ternlib.wait_for(lambda: settled(t)),
                "every message reaches its final status in the maillog",
                maillog(t))
        F.check(len(t.wait_maildir("owner", BOUNCED)) == BOUNCED,
                "the sender of the bounced messages gets %d notices"
                % BOUNCED)
        F.check(t.stop() == 0, "ternd stops cleanly")

        log = os.path.join(t.dir, "maillog")
        status, out = ternlib.run([prog, "--syslog-name=tern", log])
        F.check(status == 0, "pflogsumm exits 0", out)
        # Notices are generated inside ternd, so they are not "received",
        # but their local deliveries count as delivered.
        expected = [("received", DELIVERED + DEFERRED + BOUNCED),
                    ("delivered", DELIVERED + BOUNCED),
                    ("deferred", DEFERRED),
                    ("bounced", BOUNCED),
                    ("rejected", REJECTED)]
        bad = False
        for label, want in expected:
            got = summary_count(out, label)
            bad |= not F.check(got == want, "pflogsumm: %d %s"
                               % (want, label), "got %s" % got)
        if bad:
            print("--- pflogsumm output\n" + out)
            print("--- maillog\n" + maillog(t))
    F.exit()


main()
