# SPDX-License-Identifier: ISC
"""smtpd_milters: the Sendmail Milter protocol, as Postfix speaks it.

Against Debian's OpenDKIM, a real Milter run in the foreground with a
private configuration and a key made by opendkim-genkey: mail from a
client in its InternalHosts is stored with a DKIM-Signature: header,
and opendkim itself, in verify mode with the public key given as
TestPublicKeys, finds the stored message's signature good.

Against nobody: a port that nobody listens on gives
milter_default_action: tempfail (451 4.7.1 at MAIL, as Postfix
answers), accept (mail goes through), reject (550 5.7.1).

Against a small Milter in this test (a fake peer on purpose, to test how
tern takes replies): REJECT at RCPT refuses only that recipient,
TEMPFAIL at the end of the message gives 451 4.7.1, the modifications
(ADDHEADER, CHGHEADER, DELRCPT, ADDRCPT, REPLBODY) reach the stored
message and its envelope, and garbage replies give the default action
while ternd goes on.
"""

import os
import pwd
import re
import socket
import struct
import subprocess
import threading

import ternlib
from ternlib import SMTPConn, Ternd

F = ternlib.Failures()
BASE = {"mydestination": "example.test, localhost"}
MSG = ("From: a@example.org\nTo: user@localhost\nSubject: milter test\n"
       "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
       "Message-ID: <milter-test@example.org>\n\nHello milter.\nBye.\n")


def send(t, rcpts=("user@localhost",), body=MSG, sender="a@example.org"):
    """One transaction; returns the MAIL, RCPT and DATA replies (DATA
    None when nothing was accepted)."""
    with SMTPConn(t.port, timeout=60) as c:
        c.cmd("EHLO client.example.org")
        mail = c.cmd("MAIL FROM:<%s>" % sender)
        replies = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts] \
            if mail[0] == 250 else []
        data = None
        if any(r[0] == 250 for r in replies):
            c.cmd("DATA")
            c.send(body.replace("\n", "\r\n") + "\r\n.\r\n")
            data = c.reply()
        c.cmd("QUIT")
    return mail, replies, data


# OpenDKIM

def opendkim_programs():
    need = ["opendkim", "opendkim-genkey"]
    if all(ternlib.have(p) or os.access("/usr/sbin/" + p, os.X_OK)
           for p in need):
        return True
    if os.geteuid() == 0 and ternlib.have("apt-get"):
        print("opendkim is missing; installing it")
        ternlib.run(["apt-get", "install", "-y", "-q", "opendkim",
                     "opendkim-tools"], timeout=300)
    return all(ternlib.have(p) or os.access("/usr/sbin/" + p, os.X_OK)
               for p in need)


def program(name):
    return ternlib.have(name) or "/usr/sbin/" + name


class OpenDKIM(ternlib.Child):
    """opendkim -f on a free loopback port with its own configuration,
    key and PID file in directory; mode is "sv" or "v"."""

    def __init__(self, directory, mode="sv", extra=()):
        self.dir = directory
        self.mode = mode
        self.extra = list(extra)
        self.port = None
        self.log_path = os.path.join(directory, "opendkim-%s.log" % mode)

    def start(self):
        self.port = ternlib.free_port()
        conf = os.path.join(self.dir, "opendkim-%s.conf" % self.mode)
        lines = [
            "Syslog no",
            "Socket inet:%d@127.0.0.1" % self.port,
            "Mode " + self.mode,
            "Domain example.org",
            "Selector test",
            "KeyFile " + os.path.join(self.dir, "test.private"),
            "Canonicalization relaxed/simple",
            "InternalHosts 127.0.0.1",
            "PidFile " + os.path.join(self.dir, "opendkim-%s.pid" % self.mode),
            "RequireSafeKeys no",
            "UserID " + pwd.getpwuid(os.getuid()).pw_name,
        ] + self.extra
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.conf = conf
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([program("opendkim"), "-f", "-x", conf],
                                     stdout=self.log, stderr=self.log)
        up = ternlib.wait_for(lambda: self._listening() or
                              self.proc.poll() is not None)
        if self.proc.poll() is not None or not up:
            raise RuntimeError("opendkim did not start: " +
                               open(self.log_path).read())
        return self

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False


def public_key_record(directory):
    """The TXT data opendkim-genkey wrote to test.txt, unquoted."""
    text = open(os.path.join(directory, "test.txt")).read()
    return "".join(re.findall(r'"([^"]*)"', text))


def opendkim_verify(conf, path):
    """opendkim's own test mode on the message in path; its output."""
    out = subprocess.run([program("opendkim"), "-x", conf, "-t", path,
                          "-vv"], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def dkim_signing():
    t = Ternd(BASE, start=False)
    try:
        key_dir = os.path.join(t.dir, "dkim")
        os.makedirs(key_dir)
        ternlib.run([program("opendkim-genkey"), "-D", key_dir, "-d",
                     "example.org", "-s", "test"])
        with OpenDKIM(key_dir) as dk:
            t.params["smtpd_milters"] = "inet:127.0.0.1:%d" % dk.port
            t.write_config()
            t.start()
            mail, rcpts, data = send(t)
            F.expect(data, "250 2.0.0 Ok: queued as", "signed mail queued")
            t.wait_maildir("user", 1)
            msg = t.maildir_messages("user")[0]
            F.check(ternlib.header(msg, "DKIM-Signature") is not None,
                    "stored message carries DKIM-Signature:",
                    ternlib.header_block(msg))
            sig = ternlib.header(msg, "DKIM-Signature") or ""
            F.check("d=example.org" in sig and "s=test" in sig,
                    "signature names the domain and selector", sig)
            t.stop()
        # opendkim verifies the stored message with the public key in a
        # file instead of the DNS.
        keys = os.path.join(key_dir, "public.keys")
        with open(keys, "w") as f:
            f.write("test._domainkey.example.org %s\n" %
                    public_key_record(key_dir))
        path = os.path.join(key_dir, "stored.eml")
        with open(path, "w") as f:
            f.write(msg.replace("\r\n", "\n"))
        conf = os.path.join(key_dir, "opendkim-v.conf")
        with open(conf, "w") as f:
            f.write("Syslog no\nMode v\nTestPublicKeys %s\n"
                    "Canonicalization relaxed/simple\n"
                    "RequireSafeKeys no\n" % keys)
        text = opendkim_verify(conf, path)
        F.check("dkim=pass" in text and re.search(
            r"verification \(s=test, d=example.org.*\) succeeded", text),
            "opendkim verifies the stored signature", text)
        # The same check fails once the stored body is changed.
        with open(path, "w") as f:
            f.write(msg.replace("\r\n", "\n").replace("Hello", "Jello"))
        text = opendkim_verify(conf, path)
        F.check("dkim=pass" not in text,
                "a changed body fails verification", text)
    finally:
        t.stop()
        t.cleanup()


# Nobody listening

def default_action():
    port = ternlib.free_port()
    for action, mail_prefix in (("tempfail", "451 4.7.1"),
                                ("reject", "550 5.7.1"),
                                ("accept", "250")):
        with Ternd(dict(BASE, smtpd_milters="inet:127.0.0.1:%d" % port,
                        milter_default_action=action)) as t:
            mail, rcpts, data = send(t)
            F.expect(mail, mail_prefix,
                     "milter_default_action=%s at MAIL" % action)
            if action == "accept":
                F.expect(data, "250 2.0.0 Ok: queued as",
                         "accept: message queued")
            else:
                F.check(t.wait_log("milter-reject: MAIL from"),
                        "%s logged as milter-reject" % action)


# A small Milter in the test

class FakeMilter(threading.Thread):
    """A Milter speaking the wire protocol on a free port.  script maps
    a command byte to the reply packets (a list of (cmd, data)) it gets;
    commands not in it get CONTINUE.  "O" gets the negotiation reply
    with the given protocol flags.  What it received is in .seen."""

    def __init__(self, script, actions=0x1ff, protocol=0, garbage=None):
        super().__init__(daemon=True)
        self.script = script
        self.actions = actions
        self.protocol = protocol
        self.garbage = garbage
        self.seen = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                hdr = f.read(4)
                if len(hdr) < 4:
                    return
                n = struct.unpack(">I", hdr)[0]
                pkt = f.read(n)
                cmd, data = chr(pkt[0]), pkt[1:]
                self.seen.append((cmd, data))
                if cmd == "O":
                    ver = struct.unpack(">I", data[:4])[0]
                    conn.sendall(packet("O", struct.pack(
                        ">III", ver, self.actions, self.protocol)))
                    continue
                if cmd in ("D", "A", "Q"):
                    if cmd == "Q":
                        return
                    continue
                if self.garbage and cmd == self.garbage[0]:
                    conn.sendall(self.garbage[1])
                    continue
                for rc, rd in self.script.get(cmd, [("c", b"")]):
                    conn.sendall(packet(rc, rd))
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd.encode() + data


def cstr(*parts):
    return b"".join(p.encode() + b"\0" for p in parts)


def with_milter(milter, fn, **params):
    with Ternd(dict(BASE, smtpd_milters="inet:127.0.0.1:%d" % milter.port,
                    **params)) as t:
        return fn(t)


def reject_at_rcpt():
    m = FakeMilter({})

    # Refuse recipients by their address; the others continue.
    def serve(conn):
        f = conn.makefile("rb")
        try:
            while True:
                hdr = f.read(4)
                if len(hdr) < 4:
                    return
                pkt = f.read(struct.unpack(">I", hdr)[0])
                cmd, data = chr(pkt[0]), pkt[1:]
                m.seen.append((cmd, data))
                if cmd == "O":
                    conn.sendall(packet("O", struct.pack(">III", 6, 0x1ff,
                                                         0)))
                elif cmd == "R" and b"bad@" in data:
                    conn.sendall(packet("y", cstr("550 5.7.1 <bad@localhost>"
                                                  " no thanks")))
                elif cmd == "R" and b"later@" in data:
                    conn.sendall(packet("t"))
                elif cmd in ("D", "A"):
                    continue
                elif cmd == "Q":
                    return
                else:
                    conn.sendall(packet("c"))
        finally:
            conn.close()
    m.serve = serve

    def run(t):
        mail, rcpts, data = send(t, ("bad@localhost", "later@localhost",
                                     "user@localhost"))
        F.expect(rcpts[0], "550 5.7.1 <bad@localhost> no thanks",
                 "REPLYCODE at RCPT refuses that recipient")
        F.expect(rcpts[1], "451 4.7.1", "TEMPFAIL at RCPT: 451 4.7.1")
        F.expect(rcpts[2], "250", "the other recipient is accepted")
        F.expect(data, "250 2.0.0 Ok: queued as", "message queued")
        t.wait_maildir("user", 1)
        F.check(t.wait_log(r"milter-reject: RCPT from .*bad@localhost"),
                "refusal logged as milter-reject")
        macros = b"".join(d for c, d in m.seen if c == "D")
        F.check(b"{rcpt_addr}\0<bad@localhost>" in macros or
                b"{rcpt_addr}\0bad@localhost" in macros,
                "{rcpt_addr} macro sent", macros)
        F.check(b"j\0mx.example.test\0" in macros, "j macro sent", macros)
        conn = [d for c, d in m.seen if c == "C"]
        F.check(conn and conn[0].startswith(b"[127.0.0.1]\0" + b"4"),
                "CONNECT names the client and family 4", conn)
    try:
        with_milter(m, run)
    finally:
        m.close()


def tempfail_at_eom():
    m = FakeMilter({"E": [("t", b"")]})
    try:
        def run(t):
            mail, rcpts, data = send(t)
            F.expect(data, "451 4.7.1", "TEMPFAIL at end of message")
            F.check(t.maildir_files("user") == [], "nothing delivered")
            # The session goes on: the next message is asked again.
            mail, rcpts, data = send(t)
            F.expect(data, "451 4.7.1", "second message, same answer")
        with_milter(m, run)
    finally:
        m.close()


def modifications():
    body = b"Replaced body line 1.\r\nReplaced line 2.\r\n"
    m = FakeMilter({"E": [
        ("h", cstr("X-Milter-Added", "yes")),
        ("m", struct.pack(">I", 1) + cstr("Subject", "changed subject")),
        ("-", cstr("<other@localhost>")),
        ("+", cstr("<added@localhost>")),
        ("b", body),
        ("c", b""),
    ]})
    try:
        def run(t):
            mail, rcpts, data = send(t, ("user@localhost",
                                         "other@localhost"))
            F.expect(data, "250 2.0.0 Ok: queued as", "edited mail queued")
            t.wait_maildir("user", 1)
            t.wait_maildir("added", 1)
            msg = t.maildir_messages("user")[0]
            F.check(ternlib.header(msg, "X-Milter-Added") == "yes",
                    "ADDHEADER reached the stored message",
                    ternlib.header_block(msg))
            F.check(ternlib.header(msg, "Subject") == "changed subject",
                    "CHGHEADER changed Subject:", ternlib.header_block(msg))
            F.check("Replaced body line 1.\n" in msg and
                    "Hello milter" not in msg, "REPLBODY replaced the body",
                    msg)
            F.check(t.maildir_files("other") == [],
                    "DELRCPT removed a recipient")
            F.check(len(t.maildir_files("added")) == 1,
                    "ADDRCPT added a recipient")
            heads = [d for c, d in m.seen if c == "L"]
            F.check(b"Subject\0milter test\0" in heads,
                    "headers sent without the blank after the colon",
                    heads)
            bodies = b"".join(d for c, d in m.seen if c == "B")
            F.check(bodies == b"Hello milter.\r\nBye.\r\n\r\n",
                    "body sent with CRLF line endings", bodies)
        with_milter(m, run)
    finally:
        m.close()


def garbage():
    cases = [
        ("bad length", ("M", b"\xff\xff\xff\xff")),
        ("unknown reply", ("M", packet("Z", b"x"))),
        ("cut-off reply", ("M", b"\x00\x00\x00\x10y55")),
        ("empty packet", ("R", b"\x00\x00\x00\x00")),
        ("REPLYCODE not 4xx/5xx", ("R", packet("y", cstr("250 fine"))))]
    for what, g in cases:
        m = FakeMilter({}, garbage=g)
        try:
            def run(t):
                mail, rcpts, data = send(t)
                stage = mail if g[0] == "M" else rcpts[0]
                F.expect(stage, "451 4.7.1",
                         "%s: milter_default_action tempfail" % what)
                F.check(t.running(), "%s: ternd goes on" % what)
            with_milter(m, run, milter_command_timeout="2s")
        finally:
            m.close()
    # A milter that never answers: the command timeout, then the default
    # action accept lets mail through.
    m = FakeMilter({}, garbage=("M", b""))
    try:
        def run(t):
            mail, rcpts, data = send(t)
            F.expect(mail, "250", "silent milter: accepted after timeout")
            F.expect(data, "250 2.0.0 Ok: queued as", "and queued")
        with_milter(m, run, milter_command_timeout="1s",
                    milter_default_action="accept")
    finally:
        m.close()


def no_reply_flags():
    # The milter asks for no RCPT and no reply to headers; it must not
    # see RCPT and must get its headers without being waited for.
    m = FakeMilter({"L": []}, protocol=0x08 | 0x80)
    try:
        def run(t):
            mail, rcpts, data = send(t)
            F.expect(data, "250 2.0.0 Ok: queued as", "queued with NR flags")
            F.check(not any(c == "R" for c, d in m.seen),
                    "SMFIP_NORCPT: no RCPT sent")
            F.check(any(c == "L" for c, d in m.seen), "headers sent")
        with_milter(m, run)
    finally:
        m.close()


F.section("milter_default_action against nobody", default_action)
F.section("REJECT and TEMPFAIL at RCPT", reject_at_rcpt)
F.section("TEMPFAIL at end of message", tempfail_at_eom)
F.section("header, body and recipient modifications", modifications)
F.section("garbage replies", garbage)
F.section("protocol flags", no_reply_flags)
if opendkim_programs():
    F.section("DKIM signing with OpenDKIM", dkim_signing)
else:
    F.check(False, "opendkim is installed")
F.exit()
