# SPDX-License-Identifier: ISC
"""TLS in the SMTP server: STARTTLS (RFC 3207) and implicit TLS on an
smtps listener (RFC 8314), driven by Python's ssl module, swaks and
openssl s_client.

Checks when STARTTLS is offered, the 220 and the fresh EHLO it asks
for, that bytes pipelined behind STARTTLS are thrown away rather than
run after the handshake, STARTTLS inside TLS, the TLS 1.2 minimum,
smtpd_tls_security_level = encrypt, the smtps banner after the
handshake, and the Received: header and log line of a message that
came over TLS.
"""

import re
import socket
import ssl
import threading
import warnings

import ternlib
from ternlib import SMTPConn, TLSConn, Ternd, reply_text

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"
RCVD_TLS = (r"\(using (TLSv1\.[23]) with cipher ([A-Z0-9_-]+) "
            r"\((\d+)/(\d+) bits\)\)")


def ehlo_keywords(c, name=HELO):
    code, lines = c.cmd("EHLO " + name)
    F.check(code == 250, "EHLO %s is accepted" % name, lines)
    return [l[4:] for l in lines[1:]]


def tls_ternd(params=None, smtps=False):
    """A Ternd with a fresh certificate; with smtps, a second listener
    for implicit TLS whose port is t.smtps_port."""
    t = Ternd(start=False)
    try:
        cert, key = ternlib.make_cert(t.dir)
        t.cert = cert
        t.params.update({"smtpd_tls_cert_file": cert,
                         "smtpd_tls_key_file": key})
        if smtps:
            t.smtps_port = ternlib.free_port()
            t.params["smtp_listen"] = ("127.0.0.1:%d, 127.0.0.1:%d/smtps"
                                       % (t.port, t.smtps_port))
        if params:
            t.params.update(params)
        t.write_config()
        t.start()
    except BaseException:
        t.cleanup()
        raise
    return t


def send_message(c, rcpt, body):
    """MAIL, RCPT, DATA on an open session; returns the final reply."""
    F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Ok", "MAIL")
    F.expect(c.cmd("RCPT TO:<%s>" % rcpt), "250 2.1.5 Ok", "RCPT " + rcpt)
    F.expect(c.cmd("DATA"), "354", "DATA")
    c.send("Subject: over TLS\r\n\r\n%s\r\n.\r\n" % body)
    r = c.reply()
    F.expect(r, "250 2.0.0 Ok: queued as ", "end of data")
    return r


def check_tls_received(t, user, qid, how):
    """The delivered message's Received: says which TLS and ESMTPS."""
    msgs = t.wait_maildir(user, 1)
    if not F.check(len(msgs) == 1, "%s: one message delivered to %s"
                   % (how, user), len(msgs)):
        return
    rcvd = ternlib.header(msgs[0], "Received") or ""
    m = re.search(RCVD_TLS, rcvd)
    F.check(m is not None, "%s: Received: has \"(using TLSv1.x with cipher "
            "NAME (N/N bits))\"" % how, rcvd)
    if m:
        F.check(m.group(3) == m.group(4) and int(m.group(3)) >= 128,
                "%s: Received: cipher bits N/N, at least 128" % how,
                m.group(0))
    F.check(re.search(r"\bwith ESMTPS id %s\b" % (qid or "?"), rcvd),
            "%s: Received: \"with ESMTPS id %s\"" % (how, qid), rcvd)
    F.check(rcvd.index("(using") < rcvd.index("by ") if "(using" in rcvd
            and "by " in rcvd else False,
            "%s: the (using ...) comment comes before \"by\"" % how, rcvd)


def not_offered():
    with Ternd() as t:
        with SMTPConn(t.port) as c:
            kw = ehlo_keywords(c)
            F.check("STARTTLS" not in kw, "no certificate: EHLO does not "
                    "list STARTTLS", kw)
            r = c.cmd("STARTTLS")
            F.check(r[0] is not None and 500 <= r[0] < 600 and
                    re.match(r"\d{3} 5\.\d\.\d+ ", reply_text(r)),
                    "no certificate: STARTTLS gets a 5xx with an enhanced "
                    "code", r[1])
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after it")
    t = tls_ternd({"smtpd_tls_security_level": "none"})
    with t:
        with SMTPConn(t.port) as c:
            kw = ehlo_keywords(c)
            F.check("STARTTLS" not in kw, "smtpd_tls_security_level = none: "
                    "EHLO does not list STARTTLS", kw)
            r = c.cmd("STARTTLS")
            F.check(r[0] is not None and 500 <= r[0] < 600,
                    "smtpd_tls_security_level = none: STARTTLS refused "
                    "with 5xx", r[1])


def starttls_dialogue(t):
    with SMTPConn(t.port) as c:
        F.expect(c.cmd("STARTTLS"), "503 5.5.1", "STARTTLS before EHLO")
        kw = ehlo_keywords(c)
        F.check("STARTTLS" in kw, "certificate set: EHLO lists STARTTLS", kw)
        F.expect(c.cmd("STARTTLS now"), "501 5.5.4", "STARTTLS with an "
                 "argument")
        F.expect(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS",
                 "STARTTLS")
        c.starttls()
        F.check(c.sock.version() in ("TLSv1.2", "TLSv1.3"),
                "handshake done: %s" % c.sock.version())
        F.expect(c.cmd("MAIL FROM:<%s>" % SENDER), "503 5.5.1",
                 "MAIL right after the handshake (EHLO needed again)")
        kw = ehlo_keywords(c, "tls.example.org")
        F.check("STARTTLS" not in kw, "inside TLS: EHLO no longer lists "
                "STARTTLS", kw)
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN",
                  "SMTPUTF8", "CHUNKING"):
            F.check(k in kw, "inside TLS: EHLO still lists %s" % k, kw)
        F.expect(c.cmd("STARTTLS"), "554 5.5.1", "STARTTLS inside TLS")
        F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "NOOP after the 554")
        r = send_message(c, "tlsuser@localhost", "sent over STARTTLS")
        F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    qid = ternlib.queued_id(reply_text(r))
    check_tls_received(t, "tlsuser", qid, "STARTTLS")
    msgs = t.maildir_messages("tlsuser")
    if msgs:
        rcvd = ternlib.header(msgs[0], "Received") or ""
        F.check(rcvd.startswith("from tls.example.org (unknown "
                                "[127.0.0.1])"),
                "Received: names the EHLO given after TLS, not the one "
                "before", rcvd)
    F.check(t.wait_log(r"tern/smtpd\[\d+\]: Anonymous TLS connection "
                       r"established from unknown\[127\.0\.0\.1\]: "
                       r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)$"),
            "log: Anonymous TLS connection established from "
            "unknown[127.0.0.1]: TLSv1.x with cipher ...")


def pipelined_after_starttls(t):
    """RFC 3207 section 4.2: whatever follows STARTTLS in the same
    packet is discarded, never run after the handshake."""
    cases = (
        ("RSET", "STARTTLS\r\nRSET\r\n"),
        ("MAIL FROM", "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n"),
        ("a whole transaction",
         "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n"
         "RCPT TO:<injected@localhost>\r\nDATA\r\n"
         "Subject: injected\r\n\r\ninjected\r\n.\r\n"),
    )
    for name, data in cases:
        with SMTPConn(t.port) as c:
            ehlo_keywords(c)
            c.send(data)
            r = c.reply()
            F.expect(r, "220 2.0.0 Ready to start TLS",
                     "%s pipelined behind STARTTLS: the 220" % name)
            F.check(not c.rbuf, "%s pipelined behind STARTTLS: nothing "
                    "answered in plain text" % name, c.rbuf)
            c.rbuf = b""
            c.starttls()
            lines = c.cmd("EHLO " + HELO)[1]
            F.check(lines[:1] == ["250-mx.example.test"],
                    "%s pipelined behind STARTTLS: the first reply inside "
                    "TLS is the one to EHLO" % name, lines[:2])
            F.expect(c.cmd("RCPT TO:<victim@localhost>"), "503 5.5.1",
                     "%s pipelined behind STARTTLS: RCPT finds no MAIL "
                     "transaction" % name)
            F.expect(c.cmd("HELP"), "214", "%s pipelined behind STARTTLS: "
                     "replies stay in step" % name)
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
    F.check(not ternlib.wait_for(lambda: t.maildir_files("injected"), 1.0),
            "no message from the injected transaction")


def _client_can(version):
    """True if this host's ssl module can handshake at version against a
    server that allows it (so that a refusal by ternd means something)."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        srv_ctx.minimum_version = version
        srv_ctx.maximum_version = version
        srv_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        srv_ctx.load_cert_chain(_client_can.cert, _client_can.key)
        cli = _old_client_ctx(version)
    except (ssl.SSLError, ValueError):
        return False
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    result = {}

    def serve():
        try:
            conn, _ = ls.accept()
            conn.settimeout(10)
            with srv_ctx.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    th = threading.Thread(target=serve)
    th.start()
    try:
        with socket.create_connection(ls.getsockname(), timeout=10) as raw:
            with cli.wrap_socket(raw, server_hostname="localhost") as s:
                result["v"] = s.version()
    except (OSError, ssl.SSLError):
        pass
    finally:
        th.join(10)
        ls.close()
    return bool(result.get("v"))


def _old_client_ctx(version):
    ctx = ternlib.tls_client_context(minimum=version, maximum=version)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def tls_versions(t):
    _client_can.cert, _client_can.key = t.cert, t.cert[:-4] + ".key"
    for version, name in ((ssl.TLSVersion.TLSv1, "TLSv1"),
                          (ssl.TLSVersion.TLSv1_1, "TLSv1.1")):
        if not _client_can(version):
            print("note: this host's OpenSSL cannot speak %s at all; "
                  "trying anyway" % name)
        mark = len(t.log_lines())
        with SMTPConn(t.port) as c:
            ehlo_keywords(c)
            F.expect(c.cmd("STARTTLS"), "220 2.0.0", "STARTTLS for a %s "
                     "client" % name)
            try:
                c.starttls(_old_client_ctx(version))
                got = c.sock.version()
            except (ssl.SSLError, OSError) as e:
                got = None
                print("%s handshake failed as it should: %s" % (name, e))
            F.check(got is None, "a %s client is refused (TLS 1.2 minimum)"
                    % name, got)
        F.check(ternlib.wait_for(lambda: [
            l for l in t.log_lines()[mark:]
            if re.search(r"SSL_accept error from unknown\[127\.0\.0\.1\]",
                         l)], 5),
            "log: SSL_accept error from unknown[127.0.0.1] for %s" % name)
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                          (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        with SMTPConn(t.port) as c:
            ehlo_keywords(c)
            F.expect(c.cmd("STARTTLS"), "220 2.0.0", "STARTTLS for a %s "
                     "client" % name)
            c.starttls(ternlib.tls_client_context(
                cafile=t.cert, minimum=version, maximum=version))
            F.check(c.sock.version() == name, "a %s client is accepted "
                    "(certificate verified for localhost)" % name,
                    c.sock.version())
            F.expect(c.cmd("EHLO " + HELO), "250 ", "EHLO over " + name)
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT over " + name)
    F.check(t.running(), "ternd still runs after the refused handshakes")


def encrypt_level():
    t = tls_ternd({"smtpd_tls_security_level": "encrypt"})
    with t:
        with SMTPConn(t.port) as c:
            kw = ehlo_keywords(c)
            F.check("STARTTLS" in kw, "encrypt: EHLO lists STARTTLS", kw)
            F.expect(c.cmd("MAIL FROM:<%s>" % SENDER),
                     "530 5.7.0 Must issue a STARTTLS command first",
                     "encrypt: MAIL before STARTTLS")
            F.expect(c.cmd("RCPT TO:<enc@localhost>"), "503 5.5.1",
                     "encrypt: RCPT after the refused MAIL")
            F.expect(c.cmd("NOOP"), "250 2.0.0 Ok", "encrypt: NOOP works")
            F.expect(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS",
                     "encrypt: STARTTLS")
            c.starttls()
            ehlo_keywords(c)
            r = send_message(c, "enc@localhost", "required TLS")
            F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
        check_tls_received(t, "enc", ternlib.queued_id(reply_text(r)),
                           "encrypt")
        swaks = ternlib.have("swaks")
        if swaks:
            st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                                   "--from", SENDER, "--to",
                                   "plainswaks@localhost"])
            F.check(st != 0 and "530 5.7.0" in out,
                    "encrypt: swaks without --tls is refused with 530 5.7.0",
                    out[-600:])
            st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                                   "--tls", "--from", SENDER, "--to",
                                   "tlsswaks@localhost"])
            F.check(st == 0, "encrypt: swaks --tls delivers", out[-600:])
            F.check(len(t.wait_maildir("tlsswaks", 1)) == 1,
                    "encrypt: swaks --tls message delivered")
            F.check(not t.maildir_files("plainswaks"),
                    "encrypt: nothing delivered from the plain session")


def smtps_listener():
    t = tls_ternd(smtps=True)
    with t:
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ternlib.tls_client_context(cafile=t.cert, minimum=version,
                                             maximum=version)
            try:
                c = TLSConn(t.smtps_port, context=ctx, timeout=5)
            except (OSError, ssl.SSLError) as e:
                F.check(False, "smtps %s: handshake, then the banner within "
                        "5s" % version.name, repr(e))
                continue
            with c:
                F.check(c.banner == (220, ["220 mx.example.test ESMTP tern"]),
                        "smtps %s: banner after the handshake, without the "
                        "client sending first" % version.name, c.banner)
                c.sock.settimeout(ternlib.DEFAULT_TIMEOUT)
                kw = ehlo_keywords(c)
                F.check("STARTTLS" not in kw, "smtps: EHLO does not list "
                        "STARTTLS", kw)
                F.expect(c.cmd("STARTTLS"), "554 5.5.1", "smtps: STARTTLS")
                r = send_message(c, "smtps%s@localhost"
                                 % version.name[-1], "implicit TLS")
                F.expect(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT")
            check_tls_received(t, "smtps%s" % version.name[-1],
                               ternlib.queued_id(reply_text(r)),
                               "smtps " + version.name)
        # The banner must follow every handshake, however fast the
        # client finishes it: a dozen new connections in a row.
        missing = []
        for i in range(12):
            version = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)[i % 2]
            ctx = ternlib.tls_client_context(minimum=version,
                                             maximum=version)
            try:
                with TLSConn(t.smtps_port, context=ctx, timeout=3) as c:
                    if c.banner[0] != 220:
                        missing.append((i, version.name, c.banner))
            except (OSError, ssl.SSLError) as e:
                missing.append((i, version.name, repr(e)))
        F.check(not missing, "smtps: 12 handshakes in a row, each followed "
                "by the 220 banner within 3s without the client sending "
                "first", missing)
        # A plain-text client on the smtps port gets no banner.
        with socket.create_connection(("127.0.0.1", t.smtps_port),
                                      timeout=5) as s:
            s.sendall(b"EHLO plain.example.org\r\n")
            try:
                data = s.recv(1000)
            except OSError:
                data = b""
            F.check(not data.startswith(b"2"), "smtps: a plain-text client "
                    "gets no SMTP reply", data)
        F.check(t.running(), "smtps: ternd still runs")
        swaks = ternlib.have("swaks")
        if swaks:
            st, out = ternlib.run([swaks, "--server",
                                   "127.0.0.1:%d" % t.smtps_port, "--tlsc",
                                   "--from", SENDER, "--to",
                                   "swakstlsc@localhost"])
            F.check(st == 0 and "250 2.0.0 Ok: queued as" in out,
                    "swaks --tlsc delivers over smtps", out[-800:])
            msgs = t.wait_maildir("swakstlsc", 1)
            F.check(len(msgs) == 1 and re.search(
                RCVD_TLS, ternlib.header(msgs[0], "Received") or ""),
                "swaks --tlsc: delivered with the TLS Received: comment")


def clients(t):
    swaks = ternlib.have("swaks")
    if swaks:
        st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                               "--tls", "--from", SENDER, "--to",
                               "swakstls@localhost", "--header",
                               "Subject: swaks tls"])
        F.check(st == 0 and "220 2.0.0 Ready to start TLS" in out and
                "250 2.0.0 Ok: queued as" in out,
                "swaks --tls: STARTTLS and a message", out[-800:])
        check_tls_received(t, "swakstls", ternlib.queued_id(out),
                           "swaks --tls")
        st, out = ternlib.run([swaks, "--server", "127.0.0.1:%d" % t.port,
                               "--tls", "--pipeline", "--from", SENDER,
                               "--to", "swakspipe@localhost"])
        F.check(st == 0 and "250 2.0.0 Ok: queued as" in out,
                "swaks --tls --pipeline: a message", out[-800:])
        F.check(len(t.wait_maildir("swakspipe", 1)) == 1,
                "swaks --tls --pipeline: delivered")
    else:
        print("note: swaks is not installed; its cases are left out")
    openssl = ternlib.have("openssl")
    data = ("EHLO sclient.example.org\r\nMAIL FROM:<%s>\r\n"
            "RCPT TO:<sclient@localhost>\r\nDATA\r\n"
            "Subject: s_client\r\n\r\nfrom openssl s_client\r\n.\r\n"
            "QUIT\r\n" % SENDER)
    st, out = ternlib.run([openssl, "s_client", "-starttls", "smtp",
                           "-connect", "127.0.0.1:%d" % t.port, "-quiet",
                           "-ign_eof", "-CAfile", t.cert,
                           "-verify_hostname", "localhost",
                           "-verify_return_error"], input=data)
    F.check("250 2.0.0 Ok: queued as" in out and "221 2.0.0 Bye" in out,
            "openssl s_client -starttls smtp: a message and QUIT",
            out[-800:])
    F.check("verify error" not in out, "openssl s_client: the certificate "
            "verifies for localhost", out[-400:])
    check_tls_received(t, "sclient", ternlib.queued_id(out),
                       "openssl s_client")


def main():
    # TLS 1.0 and 1.1 are asked for on purpose, to be refused.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if not ternlib.have("openssl"):
        print("SKIP: openssl is needed to make a certificate")
        raise SystemExit(77)
    F.section("STARTTLS not offered", not_offered)
    t = tls_ternd()
    with t:
        F.section("the STARTTLS dialogue", starttls_dialogue, t)
        F.section("commands pipelined behind STARTTLS",
                  pipelined_after_starttls, t)
        F.section("TLS protocol versions", tls_versions, t)
        F.section("swaks and openssl s_client", clients, t)
        F.check(t.running(), "ternd still running after the STARTTLS "
                "sessions")
        if F.failed:
            print("--- ternd log\n" + t.log_text())
    F.section("smtpd_tls_security_level = encrypt", encrypt_level)
    F.section("an smtps listener", smtps_listener)
    F.exit()


if __name__ == "__main__":
    main()
