# SPDX-License-Identifier: ISC
"""Delivery to real remote SMTP peers: aiosmtpd (in this process, with
scripted per-recipient replies and STARTTLS) and Postfix's smtp-sink.

Checks relayhost and transport_maps routing, what goes over the wire
(dot-stuffing, CRLF, one transaction for several recipients), the
Postfix delivery log line, per-recipient outcomes in one transaction
(2xx sent, 4xx retried on the backoff schedule until sent, 5xx bounced
at once with an RFC 3464 report in the sender's Maildir), a connection
refused, STARTTLS at levels may, encrypt and verify, SMTP AUTH to a relay
host, DSN notices (NOTIFY, RET, ORCPT, ENVID), connection reuse, a slow
destination that must not starve a fast one, and many messages to
smtp-sink.
"""

import base64
import email
import email.policy
import os
import re
import smtplib
import sys

import peerlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@localhost"


def send(t, rcpts, body="Subject: test\r\n\r\nhello\r\n", sender=SENDER):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.sendmail(sender, rcpts, body)


def parse_report(text):
    """The parts of an RFC 3464 report: (message, per-message fields,
    [per-recipient fields], returned part)."""
    msg = email.message_from_string(text, policy=email.policy.compat32)
    parts = msg.get_payload()
    status = [p for p in parts if p.get_content_type() ==
              "message/delivery-status"]
    blocks = status[0].get_payload() if status else []
    returned = [p for p in parts if p.get_content_type() in
                ("message/rfc822", "text/rfc822-headers")]
    return msg, (blocks[0] if blocks else None), blocks[1:], \
        (returned[0] if returned else None)


def check_report(text, rcpt, action, status_prefix, what):
    msg, per_msg, per_rcpt, returned = parse_report(text)
    F.check(msg.get_content_type() == "multipart/report",
            what + ": multipart/report", msg.get_content_type())
    F.check(msg.get_param("report-type") == "delivery-status",
            what + ": report-type=delivery-status")
    F.check(per_msg is not None and
            per_msg["Reporting-MTA"] == "dns; mx.example.test",
            what + ": Reporting-MTA: dns; mx.example.test",
            per_msg and per_msg["Reporting-MTA"])
    F.check(per_msg is not None and per_msg["Arrival-Date"],
            what + ": Arrival-Date")
    found = [b for b in per_rcpt if b["Final-Recipient"] ==
             "rfc822; " + rcpt]
    F.check(len(found) == 1, what + ": one Final-Recipient: rfc822; " + rcpt,
            [b.items() for b in per_rcpt])
    if found:
        b = found[0]
        F.check(b["Action"] == action, what + ": Action: " + action,
                b["Action"])
        F.check((b["Status"] or "").startswith(status_prefix),
                what + ": Status: %s..." % status_prefix, b["Status"])
        F.check(b["Remote-MTA"] == "dns; 127.0.0.1",
                what + ": Remote-MTA: dns; 127.0.0.1", b["Remote-MTA"])
        F.check((b["Diagnostic-Code"] or "").startswith("smtp; " +
                                                        status_prefix[0]),
                what + ": Diagnostic-Code: smtp; ...", b["Diagnostic-Code"])
    F.check(returned is not None, what + ": the original is returned")
    F.check(msg["From"].startswith("MAILER-DAEMON@mx.example.test"),
            what + ": From: MAILER-DAEMON", msg["From"])
    return msg


def transport_file(t, routes):
    path = os.path.join(t.dir, "transport")
    with open(path, "w") as f:
        for dom, dest in routes.items():
            f.write("%s %s\n" % (dom, dest))
    return "texthash:" + path


def relayhost_and_wire(peer):
    with Ternd({"relayhost": peer.hostport}) as t:
        body = ("Subject: wire\r\n\r\nfirst\r\n.leading dot\r\n..two\r\n"
                "last\r\n")
        send(t, ["a@remote.test", "b@remote.test"], body)
        msgs = peer.wait_messages(1)
        F.check(len(msgs) == 1, "one transaction for two recipients",
                len(msgs))
        if not msgs:
            return
        m = msgs[0]
        F.check(m.mail_from == SENDER, "MAIL FROM is the sender", m.mail_from)
        F.check(sorted(m.rcpts) == ["a@remote.test", "b@remote.test"],
                "both recipients in RCPT TO", m.rcpts)
        text = m.content
        F.check(b"\r\n.leading dot\r\n..two\r\n" in text,
                "dot-stuffing undone by the peer: lines intact", text[-80:])
        F.check(b"\n" not in text.replace(b"\r\n", b""),
                "every line ends in CRLF on the wire")
        F.check(b"Received: from " in text, "ternd's Received: is there")
        lines = t.wait_log(r"status=sent")
        rx = (r"tern/smtp\[\d+\]: " + ternlib.QUEUE_ID +
              r": to=<a@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,"
              r" delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, "
              r"dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as PEER1\)"
              % peer.port)
        F.check(t.wait_log(rx), "Postfix delivery line for a@remote.test",
                t.log_lines("to=<a@"))
        F.check(t.wait_log(r"removed"), "the message is removed")


def sender_relayhost(peer):
    """sender_dependent_relayhost_maps: one sender's mail goes by its own
    relay host, the null sender's by "<>", the rest by relayhost."""
    with peerlib.Peer() as other, \
            Ternd({"relayhost": peer.hostport,
                   "sender_dependent_relayhost_maps":
                       "inline:{special@example.org=%s, <>=%s, "
                       "@dunno.test=DUNNO}"
                       % (other.hostport, other.hostport)}) as t:
        before = len(peer.messages)
        send(t, ["s@remote.test"], sender="special@example.org")
        F.check(other.wait_messages(1) and
                other.messages[0].mail_from == "special@example.org",
                "the special sender goes by its own relay host")
        send(t, ["n@remote.test"], sender="")
        F.check(other.wait_messages(2) and
                other.messages[1].mail_from in ("", "<>"),
                "the null sender goes by the \"<>\" entry",
                [m.mail_from for m in other.messages])
        send(t, ["d@remote.test"], sender="x@dunno.test")
        send(t, ["o@remote.test"], sender="other@example.org")
        F.check(peer.wait_messages(before + 2) and
                sorted(m.mail_from for m in peer.messages[before:]) ==
                ["other@example.org", "x@dunno.test"],
                "DUNNO and other senders go by relayhost")
        F.check(len(other.messages) == 2, "and only those two went by the "
                "sender's relay host", len(other.messages))


def generic_maps(peer):
    """smtp_generic_maps: local addresses become public ones in the
    envelope and the headers of outgoing mail, not in the body."""
    maps = ("inline:{alice@localhost=alice.smith@public.example, "
            "@localhost=@public.example}")
    with Ternd({"relayhost": peer.hostport,
                "smtp_generic_maps": maps}) as t:
        before = len(peer.messages)
        body = ("From: Alice <alice@localhost>\r\nTo: far@remote.test\r\n"
                "Cc: bob@localhost,\r\n carol@elsewhere.test\r\n"
                "Subject: generic\r\n\r\nwrite to alice@localhost\r\n")
        send(t, ["far@remote.test"], body, sender="alice@localhost")
        F.check(peer.wait_messages(before + 1), "delivered to the relay")
        if len(peer.messages) <= before:
            return
        m = peer.messages[before]
        text = m.text()
        F.check(m.mail_from == "alice.smith@public.example",
                "the envelope sender is rewritten", m.mail_from)
        F.check(m.rcpts == ["far@remote.test"], "the recipient is kept",
                m.rcpts)
        F.check("From: Alice <alice.smith@public.example>" in text,
                "From: is rewritten", text[:400])
        F.check("Cc: bob@public.example,\r\n carol@elsewhere.test" in text,
                "a folded Cc: is rewritten where it matches")
        F.check("write to alice@localhost" in text, "the body is left alone")


def per_recipient(peer_port_holder):
    def rcpt_reply(addr, n):
        if addr.startswith("hard@"):
            return "550 5.1.1 <%s>: Recipient address rejected" % addr
        if addr.startswith("soft@") and n <= 2:
            return "451 4.3.0 <%s>: try again later" % addr
        return None

    with peerlib.Peer(rcpt_reply=rcpt_reply) as peer, \
            Ternd({"relayhost": peer.hostport,
                   "minimal_backoff_time": "1s",
                   "maximal_backoff_time": "1s",
                   "queue_run_delay": "1s"}) as t:
        send(t, ["ok@remote.test", "soft@remote.test", "hard@remote.test"],
             "Subject: mixed\r\nMessage-ID: <mixed@test>\r\n\r\nbody\r\n")
        F.check(t.wait_log(r"to=<ok@remote\.test>.*status=sent"),
                "ok@ is sent")
        F.check(t.wait_log(r"to=<hard@remote\.test>.*dsn=5\.1\.1, "
                           r"status=bounced \(host 127\.0\.0\.1"
                           r"\[127\.0\.0\.1\] said: 550 5\.1\.1 "
                           r"<hard@remote\.test>: Recipient address rejected"
                           r" \(in reply to RCPT TO command\)\)"),
                "hard@ is bounced with Postfix's reason",
                t.log_lines("hard@"))
        F.check(t.wait_log(r"to=<soft@remote\.test>.*dsn=4\.3\.0, "
                           r"status=deferred \(host 127\.0\.0\.1"
                           r"\[127\.0\.0\.1\] said: 451 4\.3\.0"),
                "soft@ is deferred with the reply as reason")
        F.check(t.wait_log(r"to=<soft@remote\.test>.*status=sent", 30),
                "soft@ is sent on a later attempt", t.log_lines("soft@"))
        F.check(len(t.log_lines(r"to=<soft@remote\.test>.*status=deferred"))
                == 2, "soft@ was deferred exactly twice",
                t.log_lines("soft@"))
        F.check(peer.rcpt_seen.get("ok@remote.test") == 1,
                "ok@ is not sent again on the retries", peer.rcpt_seen)
        F.check(peer.rcpt_seen.get("hard@remote.test") == 1,
                "hard@ is not tried again", peer.rcpt_seen)
        F.check(t.wait_log(ternlib.QUEUE_ID + r": sender non-delivery "
                           r"notification: " + ternlib.QUEUE_ID),
                "log: sender non-delivery notification: ID")
        msgs = t.wait_maildir("sender", 1)
        F.check(len(msgs) == 1, "the sender gets one bounce", len(msgs))
        if msgs:
            F.check(msgs[0].startswith("Return-Path: <>\n"),
                    "the bounce comes from the null sender", msgs[0][:40])
            m = check_report(msgs[0], "hard@remote.test", "failed", "5.1.1",
                             "5xx bounce")
            F.check("mixed@test" in msgs[0],
                    "the returned message is the original")
            F.check("ok@remote.test" not in str(parse_report(msgs[0])[2]),
                    "only the failed recipient is in the report")
        F.check(t.wait_log(r"removed"), "the message is removed at the end")


def lifetime_bounce():
    with peerlib.Peer(rcpt_reply=lambda a, n:
                      "452 4.2.2 <%s>: mailbox full" % a) as peer, \
            Ternd({"relayhost": peer.hostport,
                   "minimal_backoff_time": "1s",
                   "maximal_backoff_time": "1s",
                   "queue_run_delay": "1s",
                   "maximal_queue_lifetime": "3s"}) as t:
        send(t, ["full@remote.test"], "Subject: expire\r\n\r\nbody\r\n")
        F.check(t.wait_log(r"to=<full@remote\.test>.*status=deferred"),
                "full@ is deferred first")
        F.check(t.wait_log(r"to=<full@remote\.test>.*status=expired, "
                           r"returned to sender", 30),
                "full@ expires after maximal_queue_lifetime",
                t.log_lines("full@"))
        n = peer.rcpt_seen.get("full@remote.test", 0)
        F.check(n >= 2, "it was retried before it expired (%d tries)" % n)
        msgs = t.wait_maildir("sender", 1)
        F.check(len(msgs) == 1, "the sender gets the bounce", len(msgs))
        if msgs:
            check_report(msgs[0], "full@remote.test", "failed", "4.2.2",
                         "lifetime bounce")


def refused_and_tls(cert, key):
    dead = ternlib.free_port()
    with peerlib.Peer(cert=cert, key=key) as tls_peer, \
            peerlib.Peer() as plain_peer:
        with Ternd({"minimal_backoff_time": "1s",
                    "maximal_backoff_time": "2s",
                    "queue_run_delay": "1s",
                    "smtp_tls_security_level": "may"}, start=False) as t:
            t.params["transport_maps"] = transport_file(t, {
                "tls.test": "smtp:" + tls_peer.hostport,
                "refused.test": "smtp:[127.0.0.1]:%d" % dead,
            })
            t.write_config()
            t.start()
            send(t, ["x@tls.test"])
            msgs = tls_peer.wait_messages(1)
            F.check(msgs and msgs[0].tls, "may: the message went over TLS")
            F.check(t.wait_log(r"Untrusted TLS connection established to "
                               r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: TLSv1\.[23]"
                               % tls_peer.port),
                    "may: the TLS log line")
            send(t, ["x@refused.test"])
            F.check(t.wait_log(r"to=<x@refused\.test>, relay=none, .*"
                               r"dsn=4\.4\.1, status=deferred \(connect to "
                               r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection "
                               r"refused\)" % dead),
                    "connection refused: deferred, Postfix's reason",
                    t.log_lines("refused"))
        with Ternd({"relayhost": plain_peer.hostport,
                    "smtp_tls_security_level": "encrypt"}) as t:
            send(t, ["y@plain.test"])
            F.check(t.wait_log(r"to=<y@plain\.test>.*dsn=4\.7\.4, "
                               r"status=deferred \(TLS is required, but was "
                               r"not offered by host 127\.0\.0\.1"
                               r"\[127\.0\.0\.1\]\)"),
                    "encrypt: a peer without STARTTLS defers",
                    t.log_lines("plain"))
            F.check(len(plain_peer.messages) == 0,
                    "encrypt: nothing went in clear text")
        # smtp_tls_policy_maps: encrypt for one next hop over the global
        # "may", and none for one over the global "encrypt".
        with Ternd({"smtp_tls_security_level": "may"}, start=False) as t:
            t.params["transport_maps"] = transport_file(t, {
                "strict.test": "smtp:" + plain_peer.hostport,
            })
            t.params["smtp_tls_policy_maps"] = (
                "inline:{%s=encrypt}" % plain_peer.hostport)
            t.write_config()
            t.start()
            send(t, ["z@strict.test"])
            F.check(t.wait_log(r"to=<z@strict\.test>.*dsn=4\.7\.4, "
                               r"status=deferred \(TLS is required"),
                    "smtp_tls_policy_maps: encrypt for the next hop")
        with Ternd({"relayhost": tls_peer.hostport,
                    "smtp_tls_security_level": "encrypt",
                    "smtp_tls_policy_maps":
                        "inline:{%s=none}" % tls_peer.hostport}) as t:
            before = len(tls_peer.messages)
            send(t, ["w@any.test"])
            msgs = tls_peer.wait_messages(before + 1)
            F.check(len(msgs) > before and not msgs[-1].tls,
                    "smtp_tls_policy_maps: none for a next hop that offers "
                    "STARTTLS sends in clear text")


def reuse_and_data_reject():
    def data_reply(msg):
        if b"Subject: reject me" in msg.content:
            return "554 5.7.1 content rejected"
        return None

    with peerlib.Peer(data_reply=data_reply) as peer, \
            Ternd({"relayhost": peer.hostport}) as t:
        for i in range(3):
            send(t, ["r%d@remote.test" % i])
            t.wait_log(r"to=<r%d@remote\.test>.*status=sent" % i)
        F.check(len(peer.messages) == 3, "three messages arrive",
                len(peer.messages))
        F.check(len(peer.sessions_seen) < 3,
                "the connection is reused (%d sessions for 3 messages)"
                % len(peer.sessions_seen))
        send(t, ["z@remote.test"], "Subject: reject me\r\n\r\nbad\r\n")
        F.check(t.wait_log(r"to=<z@remote\.test>.*dsn=5\.7\.1, "
                           r"status=bounced \(host 127\.0\.0\.1"
                           r"\[127\.0\.0\.1\] said: 554 5\.7\.1 content "
                           r"rejected \(in reply to end of DATA command\)\)"),
                "5xx after DATA bounces", t.log_lines("z@"))
        F.check(t.wait_maildir("sender", 1), "and the sender is told")


def dsn_notices():
    """NOTIFY=SUCCESS to a server without DSN gets a "relayed" notice,
    NOTIFY=NEVER silences a bounce, RET=HDRS returns the headers only,
    and ORCPT comes back as Original-Recipient."""
    def rcpt_reply(addr, n):
        if addr.startswith("no"):
            return "550 5.1.1 <%s>: no such user" % addr
        return None

    with peerlib.Peer(rcpt_reply=rcpt_reply) as peer, \
            Ternd({"relayhost": peer.hostport}) as t:
        with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
            s.ehlo("client.test")
            F.check(s.has_extn("dsn"), "ternd offers DSN")
            s.mail(SENDER, ["RET=HDRS", "ENVID=env-42"])
            s.rcpt("yes@remote.test", ["NOTIFY=SUCCESS",
                                       "ORCPT=rfc822;orig@remote.test"])
            s.rcpt("no1@remote.test", ["NOTIFY=NEVER"])
            s.rcpt("no2@remote.test", ["NOTIFY=FAILURE"])
            s.data("Subject: dsn\r\n\r\nsecret body\r\n")
        F.check(t.wait_log(r"sender delivery status notification: " +
                           ternlib.QUEUE_ID), "a success notice is sent")
        F.check(t.wait_log(r"sender non-delivery notification: " +
                           ternlib.QUEUE_ID), "a bounce is sent")
        msgs = t.wait_maildir("sender", 2)
        F.check(len(msgs) == 2, "the sender gets two notices", len(msgs))
        ok = [m for m in msgs if "Action: relayed" in m]
        bad = [m for m in msgs if "Action: failed" in m]
        F.check(len(ok) == 1 and "Final-Recipient: rfc822; yes@remote.test"
                in ok[0], "NOTIFY=SUCCESS: Action: relayed for yes@")
        F.check(ok and "Original-Recipient: rfc822;orig@remote.test" in
                ok[0], "ORCPT: Original-Recipient in the notice")
        F.check(ok and "Original-Envelope-Id: env-42" in ok[0],
                "ENVID: Original-Envelope-Id in the notice")
        F.check(len(bad) == 1 and "no2@remote.test" in bad[0] and
                "no1@remote.test" not in bad[0],
                "NOTIFY=NEVER: no1@ is left out of the bounce")
        if bad:
            _, _, _, returned = parse_report(bad[0])
            F.check(returned is not None and
                    returned.get_content_type() == "text/rfc822-headers",
                    "RET=HDRS: only the headers are returned")
            F.check("secret body" not in bad[0],
                    "RET=HDRS: the body is not returned")


def verify_tls(cert, key, other_cert):
    with peerlib.Peer(cert=cert, key=key) as peer:
        with Ternd({"relayhost": peer.hostport,
                    "smtp_tls_security_level": "verify",
                    "smtp_tls_CAfile": cert}) as t:
            send(t, ["v@remote.test"])
            F.check(peer.wait_messages(1) and peer.messages[0].tls,
                    "verify: delivered over TLS with a trusted certificate")
            F.check(t.wait_log(r"Verified TLS connection established"),
                    "verify: the log says Verified")
        with Ternd({"relayhost": peer.hostport,
                    "smtp_tls_security_level": "verify",
                    "smtp_tls_CAfile": other_cert}) as t:
            send(t, ["w@remote.test"])
            F.check(t.wait_log(r"to=<w@remote\.test>.*status=deferred "
                               r"\(Cannot start TLS: handshake failure"),
                    "verify: an untrusted certificate defers",
                    t.log_lines("w@"))
            F.check(len(peer.messages) == 1,
                    "verify: nothing went to the untrusted server")


def sasl_auth(cert, key):
    with peerlib.Peer(cert=cert, key=key, auth=("relayuser", "s3cret")) \
            as peer:
        with Ternd({"relayhost": peer.hostport,
                    "smtp_tls_security_level": "encrypt",
                    "smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_tls_security_options": "noanonymous"},
                   start=False) as t:
            path = os.path.join(t.dir, "sasl_passwd")
            with open(path, "w") as f:
                f.write("%s relayuser:s3cret\n" % peer.hostport)
            t.params["smtp_sasl_password_maps"] = "texthash:" + path
            t.write_config()
            t.start()
            send(t, ["auth@remote.test"])
            F.check(peer.wait_messages(1),
                    "AUTH: the message is relayed after authenticating")
            F.check(peer.auth_seen and peer.auth_seen[0][1:] ==
                    ("relayuser", True),
                    "AUTH: the relay saw our user", peer.auth_seen)
        with Ternd({"relayhost": peer.hostport,
                    "smtp_tls_security_level": "encrypt",
                    "smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_tls_security_options": "noanonymous"},
                   start=False) as t:
            path = os.path.join(t.dir, "sasl_passwd")
            with open(path, "w") as f:
                f.write("%s relayuser:wrong\n" % peer.hostport)
            t.params["smtp_sasl_password_maps"] = "texthash:" + path
            t.write_config()
            t.start()
            send(t, ["auth2@remote.test"])
            F.check(t.wait_log(r"to=<auth2@remote\.test>.*dsn=4\.7\.0, "
                               r"status=deferred \(SASL authentication "
                               r"failed; server 127\.0\.0\.1\[127\.0\.0\.1\]"
                               r" said: 535"),
                    "AUTH: a wrong password defers", t.log_lines("auth2"))
            F.check(len(peer.messages) == 1,
                    "AUTH: nothing relayed without authentication")


def fairness():
    """A slow destination holds at most four fifths of the workers, so a
    message for another destination goes out while it is busy."""
    with peerlib.Peer(data_delay=3) as slow, peerlib.Peer() as fast:
        with Ternd({"delivery_threads": "5"}, start=False) as t:
            t.params["transport_maps"] = transport_file(t, {
                "slow.test": "smtp:" + slow.hostport,
                "fast.test": "smtp:" + fast.hostport,
            })
            t.write_config()
            t.start()
            for i in range(8):
                send(t, ["s%d@slow.test" % i])
            ternlib.wait_for(lambda: slow.in_data >= 4, 10)
            send(t, ["f@fast.test"])
            F.check(t.wait_log(r"to=<f@fast\.test>.*status=sent", 2.5),
                    "the fast destination is served while the slow one "
                    "is busy")
            done = len(t.log_lines(r"slow\.test>.*status=sent"))
            F.check(done < 8, "... before the slow one is done (%d/8)" % done)
            ternlib.wait_for(lambda: len(t.log_lines(
                r"slow\.test>.*status=sent")) == 8, 30)
            F.check(len(t.log_lines(r"slow\.test>.*status=sent")) == 8,
                    "all slow messages arrive in the end")
            F.check(slow.max_in_data == 4,
                    "the slow destination held 4 of 5 workers at most "
                    "(%d)" % slow.max_in_data)


def smtp_sink(tmp):
    try:
        sink = peerlib.Sink(tmp).start()
    except RuntimeError as e:
        print("skip: smtp-sink: %s" % e)
        return
    try:
        with Ternd({"relayhost": "[127.0.0.1]:%d" % sink.port}) as t:
            n = 20
            for i in range(n):
                send(t, ["s%d@sink.test" % i],
                     "Subject: sink %d\r\n\r\n.dot line\r\nend\r\n" % i)
            got = t.wait_log(r"status=sent", 30)
            ternlib.wait_for(lambda: len(t.log_lines(r"status=sent")) >= n,
                             30)
            F.check(len(t.log_lines(r"status=sent")) == n,
                    "smtp-sink: %d messages sent" % n,
                    len(t.log_lines(r"status=sent")))
            F.check(not t.log_lines(r"status=(deferred|bounced)"),
                    "smtp-sink: nothing deferred or bounced",
                    t.log_lines(r"status=(deferred|bounced)")[:3])
            files = sink.files()
            F.check(len(files) >= 1, "smtp-sink saved the messages",
                    len(files))
            if files:
                with open(files[0], "rb") as f:
                    data = f.read()
                F.check(b"\n.dot line" in data,
                        "smtp-sink: the dot line arrives intact")
    finally:
        sink.stop()


def seven_bit(tmp):
    """A server that does not offer 8BITMIME (smtp-sink -8) gets 8-bit
    MIME parts as quoted-printable, which decode to the same text."""
    try:
        sink = peerlib.Sink(os.path.join(tmp, "7bit"), ["-8"])
        os.makedirs(sink.dir, exist_ok=True)
        sink.start()
    except RuntimeError as e:
        print("skip: smtp-sink: %s" % e)
        return
    text = "Grüße aus Köln, «quoted» = equals\n" + "é" * 100 + "\n"
    # Written out by hand: Python's email package would encode the text
    # part itself.
    att = base64.encodebytes(bytes(range(256))).decode()
    mime = ("From: %s\r\nTo: x@sink.test\r\nSubject: eight bit\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n%s"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=b.bin\r\n\r\n%s"
            "--b1--\r\n" % (SENDER, text.replace("\n", "\r\n"),
                              att.replace("\n", "\r\n")))
    plain = "Subject: no mime\r\n\r\nnaïve café\r\n"
    try:
        with Ternd({"relayhost": "[127.0.0.1]:%d" % sink.port}) as t:
            with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as c:
                c.sendmail(SENDER, ["x@sink.test"], mime.encode("utf-8"),
                           mail_options=["BODY=8BITMIME"])
                c.sendmail(SENDER, ["y@sink.test"], plain.encode("utf-8"),
                           mail_options=["BODY=8BITMIME"])
            F.check(ternlib.wait_for(
                lambda: len(t.log_lines(r"status=sent")) == 2),
                "both are delivered to a server without 8BITMIME",
                t.log_lines("to=<"))
            files = ternlib.wait_for(lambda: len(sink.files()) == 2 and
                                     sink.files())
            got = []
            for name in files or []:
                with open(name, "rb") as f:
                    got.append(f.read())
            F.check(len(got) == 2 and all(max(g) < 128 for g in got),
                    "what the server gets is 7-bit")
            msgs = [email.message_from_bytes(g, policy=email.policy.default)
                    for g in got]
            mixed = [x for x in msgs if x.is_multipart()]
            if F.check(len(mixed) == 1, "the MIME message arrives"):
                body = mixed[0].get_body(("plain",))
                F.check(body["Content-Transfer-Encoding"] ==
                        "quoted-printable", "its text part is "
                        "quoted-printable", body["Content-Transfer-Encoding"])
                # The line break before a boundary is the boundary's.
                F.check(body.get_content().replace("\r\n", "\n") ==
                        text.rstrip("\n"),
                        "and decodes to the text that was sent",
                        repr(body.get_content()[:120]))
                atts = list(mixed[0].iter_attachments())
                F.check(atts and atts[0].get_content() == bytes(range(256)),
                        "the base64 attachment is left alone")
            other = [x for x in msgs if not x.is_multipart()]
            if F.check(len(other) == 1, "the message without MIME arrives"):
                F.check(other[0]["Content-Type"].startswith("text/plain") and
                        other[0].get_payload(decode=True).startswith(
                            "naïve café".encode()),
                        "it gets MIME headers and decodes the same",
                        str(other[0])[:300])
    finally:
        sink.stop()


def main():
    if not peerlib.HAVE_AIOSMTPD:
        print("SKIP: python3-aiosmtpd is not installed")
        sys.exit(77)
    import tempfile
    tmp = tempfile.mkdtemp(prefix="tern-smtp-delivery-")
    # ternd runs as mail_owner when started as root: it reads the CA
    # files from here.
    os.chmod(tmp, 0o755)
    cert, key = ternlib.make_cert(tmp, cn="peer.test")
    other_cert, _ = ternlib.make_cert(tmp, name="other", cn="other.test")
    for name in os.listdir(tmp):
        os.chmod(os.path.join(tmp, name), 0o644)
    with peerlib.Peer() as peer:
        F.section("relayhost and the wire", relayhost_and_wire, peer)
        F.section("sender_dependent_relayhost_maps", sender_relayhost, peer)
        F.section("smtp_generic_maps", generic_maps, peer)
    F.section("per-recipient outcomes and retries", per_recipient, None)
    F.section("bounce at maximal_queue_lifetime", lifetime_bounce)
    F.section("connection refused and STARTTLS", refused_and_tls, cert, key)
    F.section("connection reuse and DATA refusal", reuse_and_data_reject)
    F.section("DSN notices", dsn_notices)
    F.section("STARTTLS at level verify", verify_tls, cert, key, other_cert)
    F.section("SMTP AUTH to a relay host", sasl_auth, cert, key)
    F.section("fairness between destinations", fairness)
    F.section("smtp-sink", smtp_sink, tmp)
    F.section("8-bit mail to a server without 8BITMIME", seven_bit, tmp)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    F.exit()


if __name__ == "__main__":
    main()
