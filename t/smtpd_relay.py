# SPDX-License-Identifier: ISC
"""Relay control and the restriction lists, with Postfix's semantics.

The default smtpd_relay_restrictions (permit_mynetworks,
permit_sasl_authenticated, reject_unauth_destination) against the
classic open-relay tricks from outside mynetworks; a custom relay list;
an OK in smtpd_recipient_restrictions that must not open the relay;
check_client_access, check_helo_access, check_sender_access and
check_recipient_access with texthash: and pcre: tables and the actions
OK, REJECT [text], DUNNO, 4xx text and 5xx text; reject_rbl_client and
reject_unknown_recipient_domain against a private dnsmasq; the
NOQUEUE reject log line; and a config with an unknown restriction,
which ternd must refuse to start with.

Postfix's address classes, from outside mynetworks: relay_domains with
relay_recipient_maps (relayed through relay_transport to an aiosmtpd
peer), virtual_alias_domains (known aliases rewritten and delivered,
unknown ones refused) and virtual_mailbox_domains (unknown mailboxes
refused), each with its "User unknown in ... table" reply.
"""

import os
import re
import subprocess

import peerlib
import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"


def write(t, name, text):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def started(params, files=None):
    """A Ternd with params, after writing files {name: text}; "@name@" in
    a parameter value becomes that file's path."""
    t = Ternd(start=False)
    try:
        paths = {}
        for name, text in (files or {}).items():
            paths[name] = write(t, name, text)
        for k, v in params.items():
            for name, path in paths.items():
                v = v.replace("@%s@" % name, path)
            t.params[k] = v
        t.write_config()
        t.start()
    except BaseException:
        t.cleanup()
        raise
    return t


def rcpt_reply(t, rcpt, sender=SENDER, helo=HELO):
    """A fresh session: EHLO, MAIL, RCPT; returns the first reply that is
    not a 250 (or the RCPT's 250)."""
    with SMTPConn(t.port) as c:
        r = c.cmd("EHLO " + helo)
        if r[0] != 250:
            return r
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if r[0] != 250:
            return r
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
        return r


def open_relay():
    t = started({"mynetworks": "192.0.2.0/24"})
    with t:
        tricks = [
            ("someone@remote.test", "a remote domain"),
            ("someone@REMOTE.TEST", "a remote domain in capitals"),
            ("user%remote.test@localhost", "the percent hack"),
            ("@localhost:user@remote.test", "a source route through us"),
            ("@localhost,@mx.example.test:user@remote.test",
             "a two-hop source route"),
            ("remote.test!user@localhost", "a bang path"),
            ("\"user@remote.test\"@localhost", "a quoted local part with @"),
            ("\"user%remote.test\"@localhost", "a quoted percent hack"),
            ("user@[192.0.2.99]", "an address literal"),
            ("user@remote.test@localhost", "two @ signs"),
            ("user@localhost.remote.test", "our name as a prefix"),
        ]
        with SMTPConn(t.port) as c:
            c.cmd("EHLO " + HELO)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            for rcpt, what in tricks:
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                F.check(r[0] is not None and 500 <= r[0] < 600,
                        "open relay attempt, %s <%s>: refused with 5xx"
                        % (what, rcpt), r[1])
            F.expect(c.cmd("RCPT TO:<someone@remote.test>"),
                     "554 5.7.1 <someone@remote.test>: Relay access denied",
                     "the Relay access denied reply")
            F.expect(c.cmd("RCPT TO:<localuser@localhost>"), "250 2.1.5",
                     "a local recipient is still accepted")
            F.expect(c.cmd("RCPT TO:<postmaster>"), "250 2.1.5",
                     "<postmaster> without a domain is ours")
            F.expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: local\r\n\r\nx\r\n.\r\n")
            r = c.reply()
            F.expect(r, "250 2.0.0 Ok: queued as", "end of data")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        qid = ternlib.queued_id(reply_text(r))
        F.check(t.wait_log(r"tern/qmgr\[\d+\]: %s: from=<%s>, size=\d+, "
                           r"nrcpt=2 " % (qid, re.escape(SENDER))),
                "the queued message has the two accepted recipients only")
        F.check(t.log_lines(
            r"tern/smtpd\[\d+\]: NOQUEUE: reject: RCPT from "
            r"unknown\[127\.0\.0\.1\]: 554 5\.7\.1 <someone@remote\.test>: "
            r"Relay access denied; from=<a@example\.org> "
            r"to=<someone@remote\.test> proto=ESMTP "
            r"helo=<client\.example\.org>$"),
            "log: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
            "...: Relay access denied; from=<...> to=<...> proto=ESMTP "
            "helo=<...>")
        swaks = ternlib.have("swaks")
        if swaks:
            st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                                   "--from", SENDER, "--to",
                                   "victim@remote.test"])
            F.check(st != 0 and "554 5.7.1" in out, "swaks relay attempt: "
                    "554 5.7.1", out[-500:])
    # The relay list is evaluated first: mynetworks alone does not
    # help when the list leaves permit_mynetworks out.
    t = started({"smtpd_relay_restrictions": "reject_unauth_destination"})
    with t:
        F.expect(rcpt_reply(t, "someone@remote.test"), "554 5.7.1",
                 "smtpd_relay_restrictions = reject_unauth_destination: "
                 "no relay even from mynetworks")
        F.expect(rcpt_reply(t, "me@localhost"), "250 2.1.5",
                 "and local mail is accepted")


def relay_lists():
    files = {"friends": "partner.test OK\nfriend@remote.test OK\n"}
    # An OK in smtpd_recipient_restrictions does not skip the relay list.
    t = started({"mynetworks": "192.0.2.0/24",
                 "smtpd_recipient_restrictions":
                 "check_recipient_access texthash:@friends@"}, files)
    with t:
        F.expect(rcpt_reply(t, "friend@remote.test"),
                 "554 5.7.1 <friend@remote.test>: Relay access denied",
                 "OK in smtpd_recipient_restrictions does not open the "
                 "relay")
    # A relay list with a table lets one partner domain through.
    t = started({"mynetworks": "192.0.2.0/24",
                 "smtpd_relay_restrictions":
                 "permit_mynetworks, check_recipient_access "
                 "texthash:@friends@, reject_unauth_destination"}, files)
    with t:
        F.expect(rcpt_reply(t, "anyone@partner.test"), "250 2.1.5",
                 "relay list with check_recipient_access: partner.test "
                 "relayed")
        F.expect(rcpt_reply(t, "anyone@remote.test"), "554 5.7.1",
                 "but not remote.test")


def recipient_access():
    files = {
        "rcpt": ("# recipient access\n"
                 "blocked@localhost REJECT no thanks\n"
                 "deferred@localhost 450 try again later\n"
                 "perm@localhost 550 5.1.1 no such mailbox here\n"
                 "okuser@localhost OK\n"
                 "dunno@localhost DUNNO\n"
                 "spam.example REJECT\n"
                 "bare@localhost REJECT\n"),
        "rcpt.pcre": ("# pcre rules, in order\n"
                      "/^dunno@/ REJECT pcre says no\n"
                      "/^re[0-9]+@localhost$/ REJECT regex match\n"
                      "/^okuser@/ REJECT never reached\n"
                      "/^CaSe@/ 451 4.3.0 case-blind rule\n"
                      "/^ExAct@/i REJECT exact case\n"),
    }
    t = started({"smtpd_recipient_restrictions":
                 "check_recipient_access texthash:@rcpt@, "
                 "check_recipient_access pcre:@rcpt.pcre@, permit"}, files)
    with t:
        cases = [
            ("blocked@localhost", "554 5.7.1 <blocked@localhost>: Recipient "
             "address rejected: no thanks", "REJECT text"),
            ("bare@localhost", "554 5.7.1 <bare@localhost>: Recipient "
             "address rejected: Access denied", "REJECT without text"),
            ("deferred@localhost", "450 4.7.1 <deferred@localhost>: "
             "Recipient address rejected: try again later", "450 text"),
            ("perm@localhost", "550 5.1.1 <perm@localhost>: Recipient "
             "address rejected: no such mailbox here",
             "550 with its own enhanced code"),
            ("okuser@localhost", "250 2.1.5", "OK stops the list (the pcre "
             "REJECT is not reached)"),
            ("x@spam.example", "554 5.7.1 <x@spam.example>: Recipient "
             "address rejected: Access denied", "a domain key"),
            ("x@sub.spam.example", "554 5.7.1 <x@sub.spam.example>: "
             "Recipient address rejected", "a parent domain key matches a "
             "subdomain (Postfix's smtpd_access_maps default)"),
            ("dunno@localhost", "554 5.7.1 <dunno@localhost>: Recipient "
             "address rejected: pcre says no", "DUNNO goes on to the next "
             "restriction"),
            ("re42@localhost", "554 5.7.1 <re42@localhost>: Recipient "
             "address rejected: regex match", "a pcre rule"),
            ("cAsE@localhost", "451 4.3.0 <cAsE@localhost>: Recipient "
             "address rejected: case-blind rule",
             "a pcre rule (case-blind by default)"),
            ("exact@localhost", "250 2.1.5", "a pcre rule with the i flag "
             "(case-sensitive) does not match other case"),
            ("ExAct@localhost", "554 5.7.1 <ExAct@localhost>: Recipient "
             "address rejected: exact case", "and matches its own case"),
            ("plain@localhost", "250 2.1.5", "no rule: permit"),
            ("BLOCKED@localhost", "554 5.7.1", "texthash keys are "
             "case-blind for addresses"),
        ]
        with SMTPConn(t.port) as c:
            c.cmd("EHLO " + HELO)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            for rcpt, want, what in cases:
                F.expect(c.cmd("RCPT TO:<%s>" % rcpt), want,
                         "check_recipient_access, %s" % what)
            F.expect(c.cmd("DATA"), "354", "DATA with the accepted ones")
            c.send("Subject: access\r\n\r\nx\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "end of data")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        F.check(len(t.wait_maildir("okuser", 1)) == 1 and
                len(t.wait_maildir("plain", 1)) == 1,
                "the accepted recipients got the message")
        F.check(not t.maildir_files("blocked") and
                not t.maildir_files("dunno"),
                "the refused ones did not")
        F.check(t.log_lines(
            r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
            r"<blocked@localhost>: Recipient address rejected: no thanks; "
            r"from=<a@example\.org> to=<blocked@localhost> proto=ESMTP "
            r"helo=<client\.example\.org>$") or t.log_lines(
            r"[0-9A-Za-z]{10}: reject: RCPT from unknown\[127\.0\.0\.1\]: "
            r"554 5\.7\.1 <blocked@localhost>: Recipient address rejected: "
            r"no thanks; from=<a@example\.org> to=<blocked@localhost> "
            r"proto=ESMTP helo=<client\.example\.org>$"),
            "log: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
            "<blocked@localhost>: Recipient address rejected: no thanks; ...")


def client_helo_sender_access():
    t = started({"smtpd_client_restrictions":
                 "check_client_access texthash:@clients@"},
                {"clients": "127.0.0.1 REJECT go away\n"})
    with t:
        F.expect(rcpt_reply(t, "me@localhost"),
                 "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: "
                 "go away", "check_client_access by address")
    t = started({"smtpd_client_restrictions":
                 "check_client_access texthash:@clients@"},
                {"clients": "127.0.0 REJECT your network\n"})
    with t:
        F.expect(rcpt_reply(t, "me@localhost"),
                 "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: "
                 "your network", "check_client_access by network prefix "
                 "127.0.0")
    t = started({"smtpd_client_restrictions":
                 "check_client_access pcre:@clients@, reject"},
                {"clients": "/^127\\.0\\.0\\.1$/ OK\n"})
    with t:
        F.expect(rcpt_reply(t, "me@localhost"), "250 2.1.5",
                 "check_client_access pcre OK before a reject")
    files = {"helo": "bad.helo.example REJECT fake helo\n"
                     "slow.helo.example 450 4.7.1 come back later\n",
             "senders": "spammer@example.com REJECT go away\n"
                        "example.net 450 4.7.1 greylisted\n"
                        "vip@example.com OK\n"}
    t = started({"smtpd_helo_restrictions":
                 "check_helo_access texthash:@helo@",
                 "smtpd_sender_restrictions":
                 "check_sender_access texthash:@senders@"}, files)
    with t:
        F.expect(rcpt_reply(t, "me@localhost", helo="bad.helo.example"),
                 "554 5.7.1 <bad.helo.example>: Helo command rejected: "
                 "fake helo", "check_helo_access REJECT")
        F.expect(rcpt_reply(t, "me@localhost", helo="slow.helo.example"),
                 "450 4.7.1 <slow.helo.example>: Helo command rejected: "
                 "come back later", "check_helo_access 450")
        F.expect(rcpt_reply(t, "me@localhost", sender="spammer@example.com"),
                 "554 5.7.1 <spammer@example.com>: Sender address rejected: "
                 "go away", "check_sender_access REJECT")
        F.expect(rcpt_reply(t, "me@localhost", sender="anyone@example.net"),
                 "450 4.7.1 <anyone@example.net>: Sender address rejected: "
                 "greylisted", "check_sender_access domain key, 450")
        F.expect(rcpt_reply(t, "me@localhost", sender="vip@example.com"),
                 "250 2.1.5", "check_sender_access OK")
        F.expect(rcpt_reply(t, "me@localhost"), "250 2.1.5",
                 "a clean HELO and sender")
        # A refusal of one recipient does not end the transaction.
        with SMTPConn(t.port) as c:
            c.cmd("EHLO bad.helo.example")
            c.cmd("MAIL FROM:<%s>" % SENDER)
            F.expect(c.cmd("RCPT TO:<me@localhost>"), "554 5.7.1",
                     "RCPT after a bad HELO")
            F.expect(c.cmd("EHLO good.helo.example"), "250", "a new EHLO")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<me@localhost>"), "250 2.1.5",
                     "RCPT after the new, clean EHLO")


def dns_checks():
    prog = ternlib.Dnsmasq.program()
    if prog is None and os.geteuid() == 0 and ternlib.have("apt-get"):
        print("dnsmasq is missing; installing dnsmasq-base")
        ternlib.run(["apt-get", "install", "-y", "-q", "dnsmasq-base"],
                    timeout=300)
        prog = ternlib.Dnsmasq.program()
    if prog is None:
        print("note: dnsmasq is not available; the DNS cases are left out")
        return
    t0 = Ternd(start=False)
    with t0:
        records = ["--host-record=1.0.0.127.bl.test,127.0.0.2",
                   "--txt-record=1.0.0.127.bl.test,\"listed for testing\"",
                   "--host-record=known.test,192.0.2.10",
                   "--mx-host=mxonly.test,known.test,10"]
        with ternlib.Dnsmasq(t0.dir, records) as dns:
            F.check(ternlib.dns_rcode(dns.port, "1.0.0.127.bl.test") == 0,
                    "dnsmasq answers for 1.0.0.127.bl.test")
            F.check(ternlib.dns_rcode(dns.port, "nxdomain.test") == 3,
                    "dnsmasq says NXDOMAIN for nxdomain.test")
            t = started({"dns_server": dns.server,
                         "smtpd_client_restrictions":
                         "reject_rbl_client clean.test, "
                         "reject_rbl_client bl.test"})
            with t:
                r = rcpt_reply(t, "me@localhost")
                F.expect(r, "554 5.7.1 Service unavailable; Client host "
                         "[127.0.0.1] blocked using bl.test",
                         "reject_rbl_client bl.test")
                F.check("listed for testing" in reply_text(r),
                        "the reply carries the zone's TXT record", r[1])
            t = started({"dns_server": dns.server,
                         "smtpd_client_restrictions":
                         "reject_rbl_client clean.test",
                         "smtpd_recipient_restrictions":
                         "reject_unknown_recipient_domain"})
            with t:
                F.expect(rcpt_reply(t, "me@localhost"), "250 2.1.5",
                         "reject_rbl_client clean.test (not listed)")
                F.expect(rcpt_reply(t, "x@nxdomain.test"),
                         "450 4.1.2 <x@nxdomain.test>: Recipient address "
                         "rejected: Domain not found",
                         "reject_unknown_recipient_domain, NXDOMAIN")
                F.expect(rcpt_reply(t, "x@known.test"), "250 2.1.5",
                         "reject_unknown_recipient_domain, a domain with A")
                F.expect(rcpt_reply(t, "x@mxonly.test"), "250 2.1.5",
                         "reject_unknown_recipient_domain, a domain with MX")
                # DNS checks run off the I/O thread: pipelined RCPTs must
                # still be answered in order.
                with SMTPConn(t.port) as c:
                    c.cmd("EHLO " + HELO)
                    c.send("MAIL FROM:<%s>\r\nRCPT TO:<a@nxdomain.test>\r\n"
                           "RCPT TO:<b@known.test>\r\nRCPT TO:<c@nx2.test>\r\n"
                           "RCPT TO:<d@localhost>\r\nNOOP\r\n" % SENDER)
                    got = [reply_text(r) for r in ternlib.read_replies(c, 6)]
                    want = ["250 2.1.0", "450 4.1.2 <a@nxdomain.test>",
                            "250 2.1.5", "450 4.1.2 <c@nx2.test>",
                            "250 2.1.5", "250 2.0.0"]
                    F.check(len(got) == 6 and all(
                        g.startswith(w) for g, w in zip(got, want)),
                        "pipelined RCPTs with DNS lookups: replies in order",
                        got)


def bad_config():
    cases = [
        ("smtpd_recipient_restrictions", "permit_mynetworks, reject_bogus",
         "an unknown restriction"),
        ("smtpd_client_restrictions", "reject_rbl_client",
         "reject_rbl_client without a zone"),
        ("smtpd_helo_restrictions", "check_helo_access",
         "check_helo_access without a table"),
        ("smtpd_relay_restrictions", "permit_mynetworks, frobnicate",
         "an unknown restriction in the relay list"),
    ]
    for name, value, what in cases:
        t = Ternd(start=False)
        with t:
            text = t.write_config(params={name: value})
            line = [i + 1 for i, l in enumerate(text.splitlines())
                    if l.startswith(name + " ")][0]
            p = subprocess.Popen([ternlib.ternd_path(), "-f", "-c", t.conf],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, cwd=t.dir)
            try:
                out, _ = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
                F.check(False, "%s: ternd refuses to start" % what,
                        "still running after 20s")
                continue
            out = out.decode("utf-8", "replace")
            F.check(p.returncode not in (0, None), "%s: ternd exits with a "
                    "failure status" % what, p.returncode)
            want = "%s:%d: bad value for %s: " % (t.conf, line, name)
            F.check(want in out, "%s: the error says \"%s...\""
                    % (what, want), out[-600:])
    # An empty relay list with a permissive recipient list would be an
    # open relay.
    t = Ternd(start=False)
    with t:
        t.write_config(params={"smtpd_relay_restrictions": "",
                               "smtpd_recipient_restrictions": "permit"})
        p = subprocess.Popen([ternlib.ternd_path(), "-f", "-c", t.conf],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=t.dir)
        try:
            out, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            out = b"(still running after 20s)"
        F.check(p.returncode not in (0, None) and
                (b"open relay" in out.lower() or
                 b"smtpd_relay_restrictions" in out),
                "empty smtpd_relay_restrictions with recipient list "
                "\"permit\": refused", out[-400:])


def address_classes():
    files = {
        "relay_rcpts": "known@relay.test x\n@open.relay.test x\n",
        "valias": "alice@valias.test user@localhost\n"
                  "sales@valias.test alice@valias.test\n",
        "vmbox": "bob@vmbox.test vmbox.test/bob/\n",
        "relocated": "gone@localhost gone@elsewhere.test\n"
                     "@old.relay.test the new domain new.test\n",
    }
    with peerlib.Peer() as p:
        t = started({
            "mynetworks": "192.0.2.0/24",
            "relay_domains": "relay.test",
            "relay_recipient_maps": "texthash:@relay_rcpts@",
            "relay_transport": "relay:[127.0.0.1]:%d" % p.port,
            "virtual_alias_domains": "valias.test",
            "virtual_alias_maps": "texthash:@valias@",
            "virtual_mailbox_domains": "vmbox.test",
            "virtual_mailbox_maps": "texthash:@vmbox@",
            "relocated_maps": "texthash:@relocated@",
        }, files)
        with t:
            cases = [
                ("known@relay.test", "250 2.1.5", "a relay recipient"),
                ("x@open.relay.test", "250 2.1.5",
                 "a subdomain of relay_domains, listed by @domain"),
                ("stranger@relay.test",
                 "550 5.1.1 <stranger@relay.test>: Recipient address "
                 "rejected: User unknown in relay recipient table",
                 "an unknown relay recipient"),
                ("alice@valias.test", "250 2.1.5", "a virtual alias"),
                ("nobody@valias.test",
                 "550 5.1.1 <nobody@valias.test>: Recipient address "
                 "rejected: User unknown in virtual alias table",
                 "an unknown virtual alias"),
                ("bob@vmbox.test", "250 2.1.5", "a virtual mailbox"),
                ("carol@vmbox.test",
                 "550 5.1.1 <carol@vmbox.test>: Recipient address "
                 "rejected: User unknown in virtual mailbox table",
                 "an unknown virtual mailbox"),
                ("gone@localhost",
                 "550 5.1.6 <gone@localhost>: Recipient address rejected: "
                 "User has moved to gone@elsewhere.test",
                 "relocated_maps: a user who moved"),
                ("x@old.relay.test",
                 "550 5.1.6 <x@old.relay.test>: Recipient address rejected: "
                 "User has moved to the new domain new.test",
                 "relocated_maps: an @domain entry"),
                ("someone@remote.test", "554 5.7.1", "still no open relay"),
                ("user%remote.test@relay.test", "554 5.7.1",
                 "nor a percent hack through a relay domain"),
            ]
            for rcpt, want, what in cases:
                F.expect(rcpt_reply(t, rcpt), want,
                         "%s <%s>" % (what, rcpt))

            with SMTPConn(t.port) as c:
                c.cmd("EHLO " + HELO)
                c.cmd("MAIL FROM:<%s>" % SENDER)
                for rcpt in ("known@relay.test", "sales@valias.test"):
                    F.expect(c.cmd("RCPT TO:<%s>" % rcpt), "250", rcpt)
                c.cmd("DATA")
                c.send("Subject: classes\r\n\r\nclasses\r\n.\r\n")
                F.expect(c.reply(), "250 2.0.0", "queued")
                c.cmd("QUIT")
            msgs = p.wait_messages(1)
            F.check(msgs and msgs[0].rcpts == ["known@relay.test"],
                    "the relay domain's mail went out by relay_transport",
                    msgs and msgs[0].rcpts)
            F.check(t.wait_maildir("user", 1),
                    "the alias of an alias was delivered locally")
            F.check(t.wait_log(r"to=<user@localhost>, "
                               r"orig_to=<sales@valias\.test>, relay=local"
                               r".*status=sent"),
                    "logged with orig_to, as Postfix does")
    # soft_bounce turns refusals and bounces into "try again later".
    t = started({"mynetworks": "192.0.2.0/24", "soft_bounce": "yes",
                 "relocated_maps": "texthash:@relocated@",
                 "transport_maps": "inline:{nowhere.test=error:5.1.1 gone}"},
                files)
    with t:
        F.expect(rcpt_reply(t, "someone@remote.test"),
                 "454 4.7.1 <someone@remote.test>: Relay access denied",
                 "soft_bounce: relay access denied is 454 4.7.1")
        F.expect(rcpt_reply(t, "gone@localhost"), "450 4.1.6",
                 "soft_bounce: a relocated user is 450 4.1.6")
        st, out = ternlib.submit(t, "sender@localhost", "x@nowhere.test",
                                 b"Subject: x\n\nx\n")
        F.check(t.wait_log(r"to=<x@nowhere\.test>.*dsn=4\.1\.1, "
                           r"status=deferred \(gone\)"),
                "soft_bounce: what would bounce is deferred", out)
    # Mail a local program sends to an unknown alias bounces, as Postfix's
    # virtual_alias_address_class says.
    with Ternd({"virtual_alias_domains": "valias.test",
                "relocated_maps": "inline:{gone@localhost=new@x.test}"}) as t:
        st, out = ternlib.submit(t, "", "nobody@valias.test",
                                 b"Subject: x\n\nx\n")
        F.check(st == 0, "sendmail takes it", out)
        F.check(t.wait_log(r"to=<nobody@valias\.test>.*dsn=5\.1\.1, "
                           r"status=bounced \(User unknown in virtual alias "
                           r"table\)"),
                "a submitted message to an unknown alias bounces")
        st, out = ternlib.submit(t, "", "gone@localhost",
                                 b"Subject: x\n\nx\n")
        F.check(t.wait_log(r"to=<gone@localhost>.*dsn=5\.1\.6, "
                           r"status=bounced \(User has moved to "
                           r"new@x\.test\)"),
                "a submitted message to a relocated user bounces with 5.1.6",
                out)


def main():
    F.section("open relay attempts", open_relay)
    F.section("smtpd_relay_restrictions", relay_lists)
    F.section("check_recipient_access", recipient_access)
    F.section("check_client/helo/sender_access", client_helo_sender_access)
    F.section("DNS checks", dns_checks)
    F.section("address classes", address_classes)
    F.section("bad restriction lists in the config", bad_config)
    F.exit()


if __name__ == "__main__":
    main()
