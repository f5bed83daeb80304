# SPDX-License-Identifier: ISC
"""SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN against a
password file of crypt(3) hashes made by openssl passwd -6 (and
mkpasswd -m yescrypt when the whois package is installed).

Checks when AUTH is offered (TLS first unless smtpd_tls_auth_only =
no), both mechanisms with and without an initial response, "*" to
cancel, success, failure and its fail2ban-shaped log line, AUTH twice,
the failure limit and its window, relaying for authenticated clients
only, the log and Received: lines of an authenticated message, a
submission listener, STARTTLS forgetting a plain-text AUTH, and AUTH
pipelined with the transaction behind it.  Clients: raw sockets with
the ssl module, smtplib and swaks.
"""

import base64
import os
import re
import smtplib

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"
REMOTE = "someone@remote.test"
USERS = {"alice": "secret", "carol": "pa:ss w\u00f6rd"}
OK_235 = "235 2.7.0 Authentication successful"
FAIL_535 = "535 5.7.8 Error: authentication failed: authentication failure"
# The form fail2ban's postfix-sasl filter matches, for this client.
F2B = (r"tern/smtpd\[\d+\]: warning: [-._\w]+\[127\.0\.0\.1\]: SASL "
       r"(?:LOGIN|PLAIN) authentication failed(:[ A-Za-z0-9+/:]*={0,2})?\s*$")


def b64(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return base64.b64encode(s).decode("ascii")


def plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def hash_password(password, method):
    if method == "sha512":
        st, out = ternlib.run(["openssl", "passwd", "-6", password])
    else:
        st, out = ternlib.run(["mkpasswd", "-m", "yescrypt", password])
    out = out.strip()
    if st != 0 or not out.startswith("$"):
        raise RuntimeError("cannot hash a password: %s" % out)
    return out


def password_file(directory, yescrypt):
    """Write the password file; returns its path."""
    lines = ["# test users", ""]
    for user, password in USERS.items():
        lines.append("%s:%s" % (user, hash_password(password, "sha512")))
    if yescrypt:
        lines.append("yuki:%s" % hash_password("yes-secret", "yescrypt"))
    path = os.path.join(directory, "passwd")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def auth_ternd(params=None, yescrypt=False, submission=False):
    t = Ternd(start=False)
    try:
        cert, key = ternlib.make_cert(t.dir)
        t.cert = cert
        t.params.update({
            "smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key,
            "smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "passwd",
            "smtpd_sasl_path": password_file(t.dir, yescrypt),
            # 127.0.0.1 is outside mynetworks: only AUTH lets it relay.
            "mynetworks": "192.0.2.0/24",
        })
        if submission:
            t.sub_port = ternlib.free_port()
            t.params["smtp_listen"] = ("127.0.0.1:%d, 127.0.0.1:%d/submission"
                                       % (t.port, t.sub_port))
        if params:
            t.params.update(params)
        t.write_config()
        t.start()
    except BaseException:
        t.cleanup()
        raise
    return t


def tls_session(t, port=None):
    """A session after STARTTLS and a second EHLO; returns (conn, EHLO
    keywords inside TLS)."""
    c = SMTPConn(port or t.port)
    c.cmd("EHLO " + HELO)
    r = c.cmd("STARTTLS")
    if r[0] != 220:
        c.close()
        raise RuntimeError("STARTTLS refused: %r" % (r,))
    c.starttls()
    code, lines = c.cmd("EHLO " + HELO)
    return c, [l[4:] for l in lines[1:]]


def advertised(t):
    with SMTPConn(t.port) as c:
        code, lines = c.cmd("EHLO " + HELO)
        kw = [l[4:] for l in lines[1:]]
        F.check(not [k for k in kw if k.startswith("AUTH")],
                "plain text, smtpd_tls_auth_only = yes: EHLO does not list "
                "AUTH", kw)
        for mech in ("PLAIN " + plain("alice", "secret"), "LOGIN", "PLAIN"):
            F.expect(c.cmd("AUTH " + mech),
                     "538 5.7.11 Encryption required for requested "
                     "authentication mechanism",
                     "AUTH %s before TLS" % mech.split()[0])
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE),
                 "554 5.7.1 <%s>: Relay access denied" % REMOTE,
                 "relay without AUTH")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    c, kw = tls_session(t)
    with c:
        F.check("AUTH PLAIN LOGIN" in kw, "inside TLS: EHLO lists "
                "\"AUTH PLAIN LOGIN\"", kw)
        F.expect(c.cmd("AUTH CRAM-MD5"), "504 5.5.4", "AUTH CRAM-MD5 (not "
                 "offered)")
        r = c.cmd("AUTH")
        F.check(re.match(r"50[14] 5\.5\.4 ", reply_text(r)),
                "AUTH without a mechanism: 501 or 504, 5.5.4", r[1])
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), "503 5.5.1",
                 "AUTH inside a mail transaction")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE),
                 "554 5.7.1 <%s>: Relay access denied" % REMOTE,
                 "relay over TLS without AUTH")
        F.expect(c.cmd("RCPT TO:<local@localhost>"), "250 2.1.5",
                 "local recipient without AUTH")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def mechanisms(t):
    # PLAIN with an initial response, then a message that relays.
    c, kw = tls_session(t)
    with c:
        F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                 "AUTH PLAIN with an initial response")
        F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), "503 5.5.1",
                 "AUTH a second time")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "250 2.1.5",
                 "relay after AUTH (permit_sasl_authenticated)")
        F.expect(c.cmd("RCPT TO:<authed@localhost>"), "250 2.1.5",
                 "local recipient after AUTH")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: authenticated\r\n\r\nby alice\r\n.\r\n")
        r = c.reply()
        F.expect(r, "250 2.0.0 Ok: queued as", "end of data")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    qid = ternlib.queued_id(reply_text(r))
    msgs = t.wait_maildir("authed", 1)
    if F.check(len(msgs) == 1, "authenticated message delivered locally"):
        rcvd = ternlib.header(msgs[0], "Received") or ""
        F.check(re.search(r"\bwith ESMTPSA id %s\b" % qid, rcvd),
                "Received: \"with ESMTPSA id %s\"" % qid, rcvd)
    F.check(t.wait_log(r"tern/smtpd\[\d+\]: %s: "
                       r"client=unknown\[127\.0\.0\.1\], "
                       r"sasl_method=PLAIN, sasl_username=alice$" % qid),
            "log: %s: client=unknown[127.0.0.1], sasl_method=PLAIN, "
            "sasl_username=alice" % qid)

    # PLAIN without an initial response; the empty "334 " prompt.
    c, kw = tls_session(t)
    with c:
        F.check(c.cmd("AUTH PLAIN") == (334, ["334 "]),
                "AUTH PLAIN alone: \"334 \" (empty challenge)")
        F.expect(c.cmd(plain("carol", USERS["carol"])), OK_235,
                 "PLAIN response for a password with ':', ' ' and UTF-8")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "250 2.1.5", "relay as carol")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")

    # LOGIN, with the two prompts, and with the user as initial response.
    c, kw = tls_session(t)
    with c:
        F.check(c.cmd("AUTH LOGIN") == (334, ["334 VXNlcm5hbWU6"]),
                "AUTH LOGIN: \"334 VXNlcm5hbWU6\" (Username:)")
        F.check(c.cmd(b64("alice")) == (334, ["334 UGFzc3dvcmQ6"]),
                "LOGIN user: \"334 UGFzc3dvcmQ6\" (Password:)")
        F.expect(c.cmd(b64("secret")), OK_235, "LOGIN password")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "250 2.1.5", "relay after "
                 "LOGIN")
        F.expect(c.cmd("RCPT TO:<login@localhost>"), "250 2.1.5", "RCPT")
        F.expect(c.cmd("DATA"), "354", "DATA")
        c.send("Subject: login\r\n\r\nx\r\n.\r\n")
        r = c.reply()
        F.expect(r, "250 2.0.0 Ok: queued as", "end of data")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    qid = ternlib.queued_id(reply_text(r))
    F.check(t.wait_log(r"%s: client=unknown\[127\.0\.0\.1\], "
                       r"sasl_method=LOGIN, sasl_username=alice$" % qid),
            "log: client=..., sasl_method=LOGIN, sasl_username=alice")
    c, kw = tls_session(t)
    with c:
        F.check(c.cmd("AUTH LOGIN " + b64("alice")) ==
                (334, ["334 UGFzc3dvcmQ6"]),
                "AUTH LOGIN with the user name as initial response: "
                "\"334 UGFzc3dvcmQ6\"")
        F.expect(c.cmd(b64("secret")), OK_235, "LOGIN password")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")

    # Lower-case mechanism names, and an authzid equal to the user.
    c, kw = tls_session(t)
    with c:
        F.expect(c.cmd("auth plain " + plain("alice", "secret", "alice")),
                 OK_235, "\"auth plain\" with authzid = authcid")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")


def cancel_and_failures(t):
    mark = len(t.log_lines())
    c, kw = tls_session(t)
    with c:
        F.expect(c.cmd("AUTH PLAIN"), "334", "AUTH PLAIN")
        F.expect(c.cmd("*"), "501 5.7.0", "\"*\" cancels PLAIN")
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after the cancel")
        F.expect(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6", "AUTH LOGIN")
        F.expect(c.cmd(b64("alice")), "334 UGFzc3dvcmQ6", "LOGIN user")
        F.expect(c.cmd("*"), "501 5.7.0", "\"*\" cancels LOGIN at the "
                 "password")
        F.expect(c.cmd("AUTH PLAIN " + plain("alice", "wrong")), FAIL_535,
                 "PLAIN with a wrong password")
        F.expect(c.cmd("AUTH PLAIN " + plain("nobody", "secret")), FAIL_535,
                 "PLAIN for an unknown user (the same reply)")
        F.expect(c.cmd("AUTH LOGIN"), "334", "AUTH LOGIN")
        c.cmd(b64("alice"))
        F.expect(c.cmd(b64("Secret")), FAIL_535,
                 "LOGIN with a wrong password (case matters)")
        F.expect(c.cmd("AUTH PLAIN !!notbase64!!"), "501 5.5.2",
                 "PLAIN with a response that is not base64")
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes on")
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
        F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "554 5.7.1",
                 "no relay after the failures")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    new = t.log_lines()[mark:]
    f2b = [l for l in new if re.search(F2B, l)]
    F.check(any("SASL PLAIN authentication failed: authentication failure"
                in l for l in f2b),
            "log: \"warning: unknown[127.0.0.1]: SASL PLAIN authentication "
            "failed: authentication failure\" in fail2ban's form", new[-8:])
    F.check(any("SASL LOGIN authentication failed: authentication failure"
                in l for l in f2b),
            "log: \"... SASL LOGIN authentication failed: ...\"", new[-8:])
    F.check(len(f2b) >= 4, "log: a fail2ban line for each of the four "
            "failed attempts", f2b)
    F.check(not [l for l in new if "secret" in l.lower() or
                 "wrong" in l.lower()],
            "log: no password in any line")
    # The successes above must not have been spent: alice still works.
    c, kw = tls_session(t)
    with c:
        F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                 "AUTH after the failures (below the limit)")


def failure_limit():
    t = auth_ternd({"smtpd_sasl_failure_limit": "3",
                    "smtpd_sasl_failure_window": "3s"})
    with t:
        for i in range(3):
            c, kw = tls_session(t)
            with c:
                F.expect(c.cmd("AUTH PLAIN " + plain("alice", "bad%d" % i)),
                         FAIL_535, "failure %d of smtpd_sasl_failure_limit=3"
                         % (i + 1))
        fails = len(t.log_lines(F2B))
        c, kw = tls_session(t)
        with c:
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")),
                     "454 4.7.0 Too many failed authentication attempts",
                     "the right password after 3 failures")
            F.expect(c.cmd("AUTH LOGIN"), "454 4.7.0", "and LOGIN too")
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "the session goes on")
        F.check(len(t.log_lines(F2B)) == fails, "no password was checked "
                "while the client was blocked (no new failure lines)")

        def unblocked():
            with tls_session(t)[0] as c:
                r = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
                return r[0] == 235
        F.check(ternlib.wait_for(unblocked, 15, 0.5),
                "after smtpd_sasl_failure_window=3s the client may try again")
    # The default limit is 5.
    t = auth_ternd()
    with t:
        got = []
        for i in range(6):
            with tls_session(t)[0] as c:
                got.append(reply_text(c.cmd("AUTH PLAIN " +
                                            plain("alice", "no%d" % i))))
        F.check(got[:5] == [FAIL_535] * 5 and got[5].startswith("454 4.7.0"),
                "default smtpd_sasl_failure_limit: five 535s, then 454", got)


def yescrypt():
    if not ternlib.have("mkpasswd"):
        print("note: mkpasswd (package whois) is missing; the yescrypt "
              "case is left out")
        return
    st, out = ternlib.run(["mkpasswd", "-m", "help"])
    if "yescrypt" not in out:
        print("note: this mkpasswd has no yescrypt; the case is left out")
        return
    t = auth_ternd(yescrypt=True)
    with t:
        c, kw = tls_session(t)
        with c:
            F.expect(c.cmd("AUTH PLAIN " + plain("yuki", "yes-secret")),
                     OK_235, "a yescrypt ($y$) hash")
        c, kw = tls_session(t)
        with c:
            F.expect(c.cmd("AUTH PLAIN " + plain("yuki", "yes-secreT")),
                     FAIL_535, "a wrong password against yescrypt")


def auth_without_tls():
    t = auth_ternd({"smtpd_tls_auth_only": "no"})
    with t:
        with SMTPConn(t.port) as c:
            code, lines = c.cmd("EHLO " + HELO)
            kw = [l[4:] for l in lines[1:]]
            F.check("AUTH PLAIN LOGIN" in kw, "smtpd_tls_auth_only = no: "
                    "EHLO lists AUTH in plain text", kw)
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                     "AUTH PLAIN in plain text")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<plainauth@localhost>"), "250 2.1.5",
                     "RCPT")
            F.expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: x\r\n\r\nx\r\n.\r\n")
            r = c.reply()
            F.expect(r, "250 2.0.0 Ok: queued as", "end of data")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        msgs = t.wait_maildir("plainauth", 1)
        F.check(msgs and re.search(r"\bwith ESMTPA id ",
                                   ternlib.header(msgs[0], "Received") or ""),
                "Received: \"with ESMTPA\" (AUTH without TLS)",
                msgs and ternlib.header(msgs[0], "Received"))
        # RFC 3207 section 4.2: after STARTTLS the server forgets what it
        # learnt before, the authentication included.
        with SMTPConn(t.port) as c:
            c.cmd("EHLO " + HELO)
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                     "AUTH PLAIN in plain text")
            F.expect(c.cmd("STARTTLS"), "220 2.0.0", "then STARTTLS")
            c.starttls()
            code, lines = c.cmd("EHLO " + HELO)
            kw = [l[4:] for l in lines[1:]]
            F.check("AUTH PLAIN LOGIN" in kw, "after STARTTLS, EHLO offers "
                    "AUTH again (the plain-text AUTH is forgotten)", kw)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0", "MAIL")
            F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "554 5.7.1",
                     "after STARTTLS, no relay on the strength of the "
                     "plain-text AUTH")
            F.expect(c.cmd("RSET"), "250", "RSET")
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                     "AUTH again inside TLS")


def pipelined_auth(t):
    """AUTH with an initial response, pipelined with the transaction: the
    commands behind it must see its outcome."""
    c, kw = tls_session(t)
    with c:
        c.send("AUTH PLAIN %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
               "RSET\r\n" % (plain("alice", "secret"), SENDER, REMOTE))
        got = [reply_text(r) for r in ternlib.read_replies(c, 4)]
        F.check(len(got) == 4 and got[0] == OK_235 and
                got[1].startswith("250 2.1.0") and
                got[2].startswith("250 2.1.5") and got[3].startswith("250"),
                "good AUTH, MAIL, relay RCPT, RSET in one write: all "
                "accepted, in order", got)
    c, kw = tls_session(t)
    with c:
        c.send("AUTH PLAIN %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
               "RSET\r\n" % (plain("alice", "nope"), SENDER, REMOTE))
        got = [reply_text(r) for r in ternlib.read_replies(c, 4)]
        F.check(len(got) == 4 and got[0] == FAIL_535 and
                got[1].startswith("250 2.1.0") and
                got[2].startswith("554 5.7.1") and got[3].startswith("250"),
                "failed AUTH, MAIL, relay RCPT, RSET in one write: the RCPT "
                "is refused", got)


def clients(t):
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        # smtplib checks the name it connected to, 127.0.0.1, which the
        # certificate does not name: no verification here.
        s.starttls(context=ternlib.tls_client_context())
        s.ehlo()
        F.check("PLAIN" in s.esmtp_features.get("auth", "").split(),
                "smtplib sees AUTH PLAIN", s.esmtp_features)
        code, resp = s.login("alice", "secret")
        F.check(code == 235, "smtplib login()", (code, resp))
        refused = s.sendmail(SENDER, [REMOTE, "smtplib@localhost"],
                             "Subject: smtplib auth\n\nhi\n")
        F.check(refused == {}, "smtplib relays after login", refused)
        s.quit()
    finally:
        s.close()
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname=HELO, timeout=20)
    try:
        s.starttls(context=ternlib.tls_client_context())
        s.ehlo()
        try:
            s.login("alice", "not-it")
            F.check(False, "smtplib login() with a wrong password fails")
        except smtplib.SMTPAuthenticationError as e:
            F.check(e.smtp_code == 535, "smtplib login() with a wrong "
                    "password: 535", e)
        s.quit()
    finally:
        s.close()
    swaks = ternlib.have("swaks")
    if not swaks:
        print("note: swaks is not installed; its cases are left out")
        return
    for mech in ("PLAIN", "LOGIN"):
        st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                               "--tls", "--auth", mech, "--auth-user",
                               "alice", "--auth-password", "secret",
                               "--from", SENDER, "--to",
                               "swaks%s@localhost" % mech.lower()])
        F.check(st == 0 and OK_235 in out and "250 2.0.0 Ok: queued as" in out,
                "swaks --tls --auth %s" % mech, out[-900:])
        msgs = t.wait_maildir("swaks%s" % mech.lower(), 1)
        F.check(msgs and "with ESMTPSA" in (ternlib.header(
            msgs[0], "Received") or ""),
            "swaks --auth %s: delivered, Received: with ESMTPSA" % mech)
    st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                           "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                           "--auth-password", "wrong", "--from", SENDER,
                           "--to", "swaksbad@localhost"])
    F.check(st != 0 and "535 5.7.8" in out, "swaks with a wrong password: "
            "535 5.7.8", out[-600:])
    st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                           "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                           "--auth-password", "secret", "--from", SENDER,
                           "--to", REMOTE, "--quit-after", "RCPT"])
    F.check(st == 0 and "250 2.1.5" in out, "swaks --auth: RCPT to a remote "
            "domain accepted (relay)", out[-600:])


def submission():
    t = auth_ternd(submission=True)
    with t:
        with SMTPConn(t.sub_port) as c:
            F.check(c.banner[0] == 220, "submission listener banner",
                    c.banner)
            c.cmd("EHLO " + HELO)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER),
                     "530 5.7.0", "submission: MAIL before STARTTLS/AUTH")
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")),
                     "538 5.7.11", "submission: AUTH before TLS")
        c, kw = tls_session(t, t.sub_port)
        with c:
            F.check("AUTH PLAIN LOGIN" in kw, "submission inside TLS: EHLO "
                    "lists AUTH", kw)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER),
                     "530 5.7.0 Authentication required",
                     "submission: MAIL before AUTH")
            F.expect(c.cmd("RCPT TO:<sub@localhost>"), "503 5.5.1",
                     "submission: RCPT without MAIL")
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")), OK_235,
                     "submission: AUTH")
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0",
                     "submission: MAIL after AUTH")
            F.expect(c.cmd("RCPT TO:<%s>" % REMOTE), "250 2.1.5",
                     "submission: relay after AUTH")
            F.expect(c.cmd("RCPT TO:<sub@localhost>"), "250 2.1.5", "RCPT")
            F.expect(c.cmd("DATA"), "354", "DATA")
            c.send("Subject: submitted\r\n\r\nsub\r\n.\r\n")
            F.expect(c.reply(), "250 2.0.0 Ok: queued as", "end of data")
        F.check(len(t.wait_maildir("sub", 1)) == 1, "submitted message "
                "delivered")
        # The port-25 listener still takes mail without AUTH.
        with SMTPConn(t.port) as c:
            c.cmd("EHLO " + HELO)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0",
                     "port 25 listener: MAIL without AUTH")
            F.expect(c.cmd("RCPT TO:<mx@localhost>"), "250 2.1.5",
                     "port 25 listener: local RCPT without AUTH")


def sender_login():
    """smtpd_sender_login_maps with reject_sender_login_mismatch: a login
    may send only as the addresses it owns, and nobody may use an owned
    address without logging in."""
    maps = "inline:{alice@example.org=alice, @team.example=alice carol}"
    t = auth_ternd({"smtpd_sender_login_maps": maps,
                    "smtpd_sender_restrictions":
                        "reject_sender_login_mismatch"})
    with t:
        def mail(sender, login=None):
            c, _ = tls_session(t)
            with c:
                if login:
                    c.cmd("AUTH PLAIN " + plain(login, USERS[login]))
                c.cmd("MAIL FROM:<%s>" % sender)
                return c.cmd("RCPT TO:<x@localhost>")
        F.expect(mail("alice@example.org", "alice"), "250",
                 "alice sends as her own address")
        F.expect(mail("anyone@team.example", "carol"), "250",
                 "carol sends as an @domain he shares")
        F.expect(mail("alice@example.org", "carol"),
                 "553 5.7.1 <alice@example.org>: Sender address rejected: "
                 "not owned by user carol", "carol may not send as alice")
        F.expect(mail("stranger@else.test", "alice"),
                 "553 5.7.1 <stranger@else.test>: Sender address rejected: "
                 "not owned by user alice",
                 "nor as an address nobody owns")
        F.expect(mail("alice@example.org"),
                 "553 5.7.1 <alice@example.org>: Sender address rejected: "
                 "not logged in", "an owned address needs a login")
        F.expect(mail("stranger@else.test"), "250",
                 "without a login, unowned senders pass")
    # The restriction without the map is a configuration error.
    t = Ternd(start=False)
    with t:
        t.params["smtpd_sender_restrictions"] = "reject_sender_login_mismatch"
        t.write_config()
        try:
            t.start(timeout=5)
            started = True
        except RuntimeError:
            started = False
        F.check(not started and "reject_sender_login_mismatch needs "
                "smtpd_sender_login_maps" in t.log_text(),
                "reject_sender_login_mismatch without the map: refused",
                t.log_text()[-500:])


def disabled():
    with Ternd() as t:
        with SMTPConn(t.port) as c:
            code, lines = c.cmd("EHLO " + HELO)
            F.check(not [l for l in lines if "AUTH" in l],
                    "smtpd_sasl_auth_enable = no: no AUTH keyword", lines)
            F.expect(c.cmd("AUTH PLAIN " + plain("alice", "secret")),
                     "503 5.5.1", "AUTH when not enabled")
            F.expect(c.cmd("NOOP"), "250", "NOOP")


def main():
    if not ternlib.have("openssl"):
        print("SKIP: openssl is needed for certificates and hashes")
        raise SystemExit(77)
    F.section("AUTH not enabled", disabled)
    t = auth_ternd()
    with t:
        F.section("when AUTH is offered", advertised, t)
        F.section("PLAIN and LOGIN", mechanisms, t)
        F.section("cancel and failures", cancel_and_failures, t)
        F.section("AUTH pipelined with a transaction", pipelined_auth, t)
        F.section("smtplib and swaks", clients, t)
        F.check(t.running(), "ternd still running")
        if F.failed:
            print("--- ternd log\n" + t.log_text()[-20000:])
    F.section("smtpd_sasl_failure_limit and window", failure_limit)
    F.section("yescrypt hashes", yescrypt)
    F.section("smtpd_tls_auth_only = no", auth_without_tls)
    F.section("submission listener", submission)
    F.section("smtpd_sender_login_maps", sender_login)
    F.exit()


if __name__ == "__main__":
    main()
