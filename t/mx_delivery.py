# SPDX-License-Identifier: ISC
"""Delivery by MX lookup against a private nameserver (Debian's dnsmasq
on a loopback port, named by dns_server): MX preference order with
fallback to the next exchanger when the best one refuses connections,
the domain's own address when it has no MX, the RFC 7505 null MX and a
domain that does not exist (both bounce at once, with a report to the
sender), and a delay warning while a destination keeps deferring.

MX records that lead back to this server: the best MX is ternd's own
listener (or an address of proxy_interfaces), which bounces with 5.4.6
"mail for ... loops back to myself", and ternd as a backup MX, which
tries only the better exchangers.
"""

import os
import smtplib
import sys
import tempfile

import peerlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@localhost"


def send(t, rcpts, body="Subject: mx\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.sendmail(SENDER, rcpts, body)


def run(tmp, peer):
    records = [
        # mx1 is preferred but refuses connections; mx2 has the peer.
        "--mx-host=mx.test,mx1.mx.test,10",
        "--mx-host=mx.test,mx2.mx.test,20",
        "--host-record=mx1.mx.test,127.0.0.3",
        "--host-record=mx2.mx.test,127.0.0.1",
        # No MX: the domain's own A record.
        "--host-record=amx.test,127.0.0.1",
        # RFC 7505: a single MX of preference 0 naming the root.
        "--dns-rr=nullmx.test,15,000000",
        # Always refuses: for the delay warning.
        "--mx-host=slow.test,mx.slow.test,10",
        "--host-record=mx.slow.test,127.0.0.1",
    ]
    with ternlib.Dnsmasq(tmp, records) as dns:
        with Ternd({"dns_server": dns.server,
                    "minimal_backoff_time": "1s",
                    "maximal_backoff_time": "1s",
                    "queue_run_delay": "1s",
                    "delay_warning_time": "2s"}, start=False) as t:
            path = os.path.join(t.dir, "transport")
            with open(path, "w") as f:
                for dom in ("mx.test", "amx.test", "nullmx.test",
                            "nosuch.test", "slow.test"):
                    f.write("%s smtp:%s:%d\n" % (dom, dom, peer.port))
            t.params["transport_maps"] = "texthash:" + path
            t.write_config()
            t.start()

            send(t, ["a@mx.test"])
            F.check(t.wait_log(r"to=<a@mx\.test>, relay=mx2\.mx\.test"
                               r"\[127\.0\.0\.1\]:%d, .*status=sent"
                               % peer.port),
                    "mx.test: delivered by the second MX after the first "
                    "refused", t.log_lines("a@mx"))
            got = [m for m in peer.messages if "a@mx.test" in m.rcpts]
            F.check(len(got) == 1, "mx.test: the peer has the message")

            send(t, ["b@amx.test"])
            F.check(t.wait_log(r"to=<b@amx\.test>, relay=amx\.test"
                               r"\[127\.0\.0\.1\]:%d, .*status=sent"
                               % peer.port),
                    "amx.test: no MX, delivered to its A record",
                    t.log_lines("amx"))

            send(t, ["c@nullmx.test"])
            F.check(t.wait_log(r"to=<c@nullmx\.test>, relay=none, .*"
                               r"dsn=5\.1\.10, status=bounced \(Domain "
                               r"nullmx\.test does not accept mail "
                               r"\(nullMX\)\)"),
                    "null MX: bounced with 5.1.10", t.log_lines("nullmx"))

            send(t, ["d@nosuch.test"])
            F.check(t.wait_log(r"to=<d@nosuch\.test>, relay=none, .*"
                               r"dsn=5\.4\.4, status=bounced \(Host or "
                               r"domain name not found"),
                    "nonexistent domain: bounced with 5.4.4",
                    t.log_lines("nosuch"))
            msgs = t.wait_maildir("sender", 2)
            F.check(len(msgs) == 2, "the sender gets two bounces",
                    len(msgs))
            text = "\n".join(msgs)
            F.check("Final-Recipient: rfc822; c@nullmx.test" in text and
                    "Status: 5.1.10" in text,
                    "the null MX report names the recipient and 5.1.10")
            F.check("Diagnostic-Code: X-Tern; Domain nullmx.test does "
                    "not accept mail" in text,
                    "the null MX report has the reason")

            peer.rcpt_reply = lambda a, n: (
                "450 4.2.0 <%s>: greylisted" % a if "slow.test" in a
                else None)
            send(t, ["e@slow.test"])
            F.check(t.wait_log(r"to=<e@slow\.test>.*status=deferred"),
                    "slow.test: deferred")
            F.check(t.wait_log(r"sender delay notification: " +
                               ternlib.QUEUE_ID, 20),
                    "a delay warning after delay_warning_time")
            msgs = t.wait_maildir("sender", 3)
            warn = [m for m in msgs if "Action: delayed" in m]
            F.check(len(warn) == 1, "the sender gets one delay warning",
                    len(warn))
            if warn:
                F.check("Subject: Delayed Mail (still being retried)" in
                        warn[0], "the warning's subject")
                F.check("Final-Recipient: rfc822; e@slow.test" in warn[0],
                        "the warning names the recipient")
            t.wait_log(r"to=<e@slow\.test>.*status=deferred")
            n = len(t.log_lines(r"sender delay notification"))
            F.check(n == 1, "only one delay warning is sent", n)


def loops(tmp):
    with Ternd(start=False) as t:
        records = [
            "--mx-host=self.test,mx.self.test,10",
            "--mx-host=self.test,other.self.test,20",
            "--host-record=mx.self.test,127.0.0.1",
            "--host-record=other.self.test,127.0.0.3",
            # A backup MX: the primary refuses, and ternd must not take
            # the mail from itself.
            "--mx-host=backup.test,mx1.backup.test,10",
            "--mx-host=backup.test,mx2.backup.test,20",
            "--host-record=mx1.backup.test,127.0.0.3",
            "--host-record=mx2.backup.test,127.0.0.1",
            "--mx-host=nat.test,mx.nat.test,10",
            "--host-record=mx.nat.test,192.0.2.25",
        ]
        with ternlib.Dnsmasq(tmp, records) as dns:
            path = os.path.join(t.dir, "transport")
            with open(path, "w") as f:
                for dom in ("self.test", "backup.test", "nat.test"):
                    f.write("%s smtp:%s:%d\n" % (dom, dom, t.port))
            t.params.update({"dns_server": dns.server,
                             "transport_maps": "texthash:" + path,
                             "proxy_interfaces": "192.0.2.25"})
            t.write_config()
            t.start()
            send(t, ["a@self.test", "b@backup.test", "c@nat.test"])
            F.check(t.wait_log(r"to=<a@self\.test>, relay=none, .*"
                               r"dsn=5\.4\.6, status=bounced \(mail for "
                               r"self\.test loops back to myself\)"),
                    "the best MX is this server: bounced with 5.4.6",
                    t.log_lines("self.test"))
            F.check(t.wait_log(r"to=<c@nat\.test>, relay=none, .*"
                               r"dsn=5\.4\.6, status=bounced"),
                    "an MX on proxy_interfaces counts as this server",
                    t.log_lines("nat.test"))
            F.check(t.wait_log(r"to=<b@backup\.test>, relay=none, .*"
                               r"status=deferred \(connect to "
                               r"mx1\.backup\.test\[127\.0\.0\.3\]"),
                    "as a backup MX it tries the primary only",
                    t.log_lines("backup.test"))
            F.check(not t.log_lines(r"to=<b@backup\.test>.*mx2\.backup"),
                    "and never itself")


def main():
    if not peerlib.HAVE_AIOSMTPD:
        print("SKIP: python3-aiosmtpd is not installed")
        sys.exit(77)
    if ternlib.Dnsmasq.program() is None:
        print("SKIP: dnsmasq is not installed")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="tern-mx-")
    with peerlib.Peer() as peer:
        F.section("MX delivery", run, tmp, peer)
    F.section("MX records that point back here", loops, tmp)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    F.exit()


if __name__ == "__main__":
    main()
