# SPDX-License-Identifier: ISC
"""GET /metrics after real traffic: `promtool check metrics` (Debian's
prometheus package) accepts it, the counters agree with what was done,
and the histograms have counted the deliveries and acceptances."""

import re
import smtplib

import adminlib
import ternlib

F = ternlib.Failures()


def value(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def main():
    tool = adminlib.promtool()
    if not F.check(tool is not None, "promtool is available"):
        F.exit()
    spam = {"smtpd_sender_restrictions":
            "check_sender_access inline:{spam@bad.test=REJECT}"}
    with ternlib.Ternd(adminlib.params(spam)) as t:
        api = adminlib.Api(t)
        for i in range(3):
            adminlib.send(t, "a%d@sender.test" % i, ["user@mx.example.test"])
        deferred = adminlib.send(t, "b@sender.test", ["x@remote.test"])
        with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
            s.ehlo("client.example.test")
            s.mail("spam@bad.test")
            code, _ = s.rcpt("user@mx.example.test")
        F.check(code // 100 == 5, "a sender on the access list is refused",
                code)
        t.wait_maildir("user", 3)
        adminlib.wait_state(api, deferred, "deferred")
        ternlib.wait_for(lambda: 'tern_queue_messages{state="deferred"} 1'
                         in api.get("/metrics").text, 10)
        r = api.get("/metrics")
        F.check(r.status == 200, "metrics answer", r)
        status, out = ternlib.run([tool, "check", "metrics"], input=r.data)
        F.check(status == 0, "promtool check metrics passes", out)
        text = r.text
        F.check(value(text, "tern_messages_received_total") == 4,
                "4 messages received", value(text,
                                             "tern_messages_received_total"))
        F.check(value(text, "tern_recipients_delivered_total") == 3,
                "3 delivered")
        F.check(value(text, "tern_recipients_deferred_total") >= 1,
                "at least 1 deferred")
        F.check(value(text, "tern_smtpd_rejects_total") >= 1,
                "the refused RCPT is counted")
        F.check(value(text, "tern_delivery_delay_seconds_count") == 3,
                "the delivery delay histogram counted 3")
        F.check(value(text, "tern_acceptance_latency_seconds_count") == 4,
                "the acceptance latency histogram counted 4")
        F.check('tern_queue_messages{state="deferred"} 1' in text,
                "the deferred message is in the queue gauge",
                re.findall(r"tern_queue_messages.*", text))
        F.check(value(text, "tern_smtpd_connections_total") >= 5,
                "connections are counted")
    F.exit()


if __name__ == "__main__":
    main()
