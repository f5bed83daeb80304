# SPDX-License-Identifier: ISC
"""check_policy_service: Postfix's SMTP access policy delegation.

Against Debian's postgrey, a real greylisting policy server run on a
free loopback port with a private database: the first attempt gets
"450 4.2.0 ... Greylisted", a retry after the delay is accepted and the
message carries postgrey's X-Greylist: header above our Received:.

Against nobody: a port and a socket path that nobody listens on give
smtpd_policy_service_default_action (451 4.3.5 Server configuration
problem, or what it is set to).

Against a small policy server in this test (a fake peer on purpose, to
test how tern takes answers): garbage, oversized, NUL-laden and cut-off
answers give the default action and ternd goes on; the actions of
access(5) (REJECT, 4xx, DEFER_IF_PERMIT, DEFER_IF_REJECT, HOLD, DISCARD,
REDIRECT, PREPEND, WARN) act as from a table, over a unix-domain socket;
the attributes sent name the client, sender, recipient and transaction;
a server that never answers holds up only the sessions that asked it,
each for smtpd_policy_service_timeout, not the others, and not a
shutdown.
"""

import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time

import ternlib
from ternlib import SMTPConn, Ternd

F = ternlib.Failures()
HELO = "client.example.org"
SENDER = "a@example.org"
BASE = {"mydestination": "example.test, localhost",
        "smtpd_policy_service_retry_delay": "0"}


def restrictions(service):
    return "reject_unauth_destination, check_policy_service " + service


def session(t, rcpts, body=None, helo=HELO, sender=SENDER):
    """EHLO, MAIL, a RCPT for each of rcpts and, if body is given and a
    recipient was accepted, DATA.  Returns the RCPT replies and the DATA
    reply (or None)."""
    replies = []
    data = None
    with SMTPConn(t.port, timeout=60) as c:
        c.cmd("EHLO " + helo)
        c.cmd("MAIL FROM:<%s>" % sender)
        for r in rcpts:
            replies.append(c.cmd("RCPT TO:<%s>" % r))
        if body is not None and any(r[0] == 250 for r in replies):
            c.cmd("DATA")
            c.send(body.replace("\n", "\r\n") + "\r\n.\r\n")
            data = c.reply()
        c.cmd("QUIT")
    return replies, data


def rcpt(t, addr):
    return session(t, [addr])[0][0]


# postgrey

def postgrey_program():
    prog = ternlib.have("postgrey") or (
        "/usr/sbin/postgrey" if os.access("/usr/sbin/postgrey", os.X_OK)
        else None)
    if prog is None and os.geteuid() == 0 and ternlib.have("apt-get"):
        print("postgrey is missing; installing it")
        ternlib.run(["apt-get", "install", "-y", "-q", "postgrey"],
                    timeout=300)
        prog = ternlib.have("postgrey") or (
            "/usr/sbin/postgrey" if os.access("/usr/sbin/postgrey", os.X_OK)
            else None)
    return prog


class Postgrey(ternlib.Child):
    """postgrey on a free loopback port, its database, whitelists and
    log in directory; stopped by its own PID when the with-block ends.
    It runs in the foreground (as a child, not a daemon with --pidfile),
    so that its PID is known and it logs to its own file."""

    def __init__(self, directory, delay):
        self.dir = os.path.join(directory, "postgrey")
        self.delay = delay
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "log")

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        empty = os.path.join(self.dir, "whitelist")
        open(empty, "w").close()
        if os.geteuid() == 0:
            # It refuses to keep root; its own account is there since
            # the package made it.
            user = "postgrey"
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                user, pw = "nobody", pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            # The test directory is private until ternd opens it.
            os.chmod(os.path.dirname(self.dir), 0o755)
            group = ["--group=%d" % pw.pw_gid]
        else:
            user = pwd.getpwuid(os.getuid()).pw_name
            group = ["--group=%d" % os.getgid()]
        deadline = time.monotonic() + ternlib.DEFAULT_TIMEOUT
        while True:
            self.port = ternlib.free_port()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [postgrey_program(), "--inet=127.0.0.1:%d" % self.port,
                     "--dbdir=" + self.dir, "--delay=%d" % self.delay,
                     "--user=" + user] + group +
                    ["--whitelist-clients=" + empty,
                     "--whitelist-recipients=" + empty,
                     "--auto-whitelist-clients=0", "--hostname=grey.test"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=self.dir)
            finally:
                log.close()
            if ternlib.wait_for(lambda: self.proc.poll() is not None or
                                self.listening()):
                if self.proc.poll() is None:
                    return self
            self.stop()
            if time.monotonic() >= deadline:
                raise RuntimeError("postgrey did not start; log:\n" +
                                   self.log_text())

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def greylisting():
    if postgrey_program() is None:
        print("note: postgrey is not available; the greylisting cases "
              "are left out")
        return
    delay = 2
    t = Ternd(BASE, start=False)
    with t, Postgrey(t.dir, delay) as pg:
        t.params["smtpd_recipient_restrictions"] = restrictions(
            "inet:127.0.0.1:%d" % pg.port)
        t.write_config()
        t.start()
        first = time.monotonic()
        r = rcpt(t, "grey@example.test")
        F.expect(r, "450 4.2.0 <grey@example.test>: Recipient address "
                 "rejected: Greylisted, see "
                 "http://postgrey.schweikert.ch/help/example.test.html",
                 "postgrey greylists the first attempt")
        F.check(t.log_lines(
            r"tern/smtpd\[\d+\]: NOQUEUE: reject: RCPT from "
            r"unknown\[127\.0\.0\.1\]: 450 4\.2\.0 <grey@example\.test>: "
            r"Recipient address rejected: Greylisted, see \S+; "
            r"from=<a@example\.org> to=<grey@example\.test> proto=ESMTP "
            r"helo=<client\.example\.org>$"),
            "log: NOQUEUE: reject: RCPT ...: 450 4.2.0 ... Greylisted")
        F.check(ternlib.wait_for(lambda: re.search(
            r"action=greylist, reason=new, client_name=unknown, "
            r"client_address=127\.0\.0\.1, sender=a@example\.org, "
            r"recipient=grey@example\.test", pg.log_text())),
            "postgrey logs the triplet ternd sent", pg.log_text()[-800:])

        # A retry before the delay is still greylisted; one after it
        # passes.  Retries every half second, for at most 30 seconds.
        body = "Subject: greylisted\n\nhello\n"
        got = {}

        def retry():
            replies, data = session(t, ["grey@example.test"], body)
            got["rcpt"], got["data"] = replies[0], data
            return replies[0][0] == 250
        ok = ternlib.wait_for(retry, timeout=30, interval=0.5)
        waited = time.monotonic() - first
        F.check(ok, "a retry is accepted once the delay is over", got)
        F.check(waited >= delay - 0.5,
                "not before postgrey's delay of %ds (%.1fs)" % (delay,
                                                                  waited))
        F.expect(got.get("data", (None, [])), "250 2.0.0 Ok: queued as",
                 "the message is queued")
        msgs = t.wait_maildir("grey", 1)
        if F.check(len(msgs) == 1, "the message is delivered"):
            names = [n for n, _ in ternlib.headers(msgs[0])]
            xg = ternlib.header(msgs[0], "X-Greylist") or ""
            F.check(re.match(r"delayed \d+ seconds by postgrey-\S+ at "
                             r"grey\.test; ", xg),
                    "postgrey's PREPEND: X-Greylist: delayed N seconds by "
                    "postgrey", xg)
            F.check("X-Greylist" in names and "Received" in names and
                    names.index("X-Greylist") < names.index("Received"),
                    "X-Greylist: stands above our Received:, as Postfix "
                    "puts it", names)
        # Known now: accepted at once, and without a second X-Greylist.
        replies, data = session(t, ["grey@example.test"],
                                "Subject: again\n\nhello\n")
        F.expect(replies[0], "250 2.1.5", "the known triplet passes at once")
        msgs = t.wait_maildir("grey", 2)
        again = [m for m in msgs if ternlib.header(m, "Subject") == "again"]
        F.check(len(again) == 1 and
                ternlib.header(again[0], "X-Greylist") is None,
                "no X-Greylist: on mail that was not delayed")
        F.check(not t.log_lines(r"problem talking to server"),
                "no trouble talking to postgrey",
                t.log_lines(r"problem talking"))


# Nobody there

def nobody_listening():
    port = ternlib.free_port()
    t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
        "inet:127.0.0.1:%d" % port)))
    with t:
        start = time.monotonic()
        F.expect(rcpt(t, "u@example.test"),
                 "451 4.3.5 <u@example.test>: Recipient address rejected: "
                 "Server configuration problem",
                 "nobody on the policy port: the default action")
        F.check(time.monotonic() - start < 5,
                "a refused connection costs no timeout")
        F.check(len(t.log_lines(
            r"tern/smtpd\[\d+\]: warning: problem talking to server "
            r"inet:127\.0\.0\.1:%d: connect: Connection refused$" % port)) ==
            2, "log: problem talking to server ... Connection refused, once "
            "per try (smtpd_policy_service_try_limit = 2)",
            t.log_lines(r"problem talking"))
        F.check(t.log_lines(
            r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 451 4\.3\.5 "
            r"<u@example\.test>: Recipient address rejected: Server "
            r"configuration problem; from=<a@example\.org> "
            r"to=<u@example\.test>"), "log: the 451 reject line")
    t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
        "unix:/nonexistent/policy.sock")))
    with t:
        F.expect(rcpt(t, "u@example.test"), "451 4.3.5",
                 "no socket at the unix path: the default action")
        F.check(t.log_lines(r"problem talking to server "
                            r"unix:/nonexistent/policy\.sock: connect: No "
                            r"such file or directory"),
                "log: ... No such file or directory")
    t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
        "inet:127.0.0.1:%d" % port),
        smtpd_policy_service_default_action="DUNNO"))
    with t:
        F.expect(rcpt(t, "u@example.test"), "250 2.1.5",
                 "smtpd_policy_service_default_action = DUNNO lets it pass")


# A policy server of our own

class FakePolicy:
    """A policy server that answers by recipient: answers maps the local
    part to the bytes to send back ("action=...\\n\\n"), SILENT to send
    nothing, CLOSE to hang up.  Records each request's attributes.
    Listens on TCP, or on a unix-domain socket when path is given."""

    SILENT = object()
    CLOSE = object()

    def __init__(self, answers, path=None):
        self.answers = answers
        self.path = path
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            os.chmod(path, 0o777)
            self.service = "unix:" + path
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.service = "inet:127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(64)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.client, args=(conn,),
                             daemon=True).start()

    def client(self, conn):
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    req, buf = buf.split(b"\n\n", 1)
                    attrs = dict(line.split("=", 1) for line in
                                 req.decode("utf-8", "replace").split("\n")
                                 if "=" in line)
                    with self.lock:
                        self.requests.append(attrs)
                    local = attrs.get("recipient", "").split("@")[0]
                    answer = self.answers.get(local, b"action=DUNNO\n\n")
                    if answer is self.CLOSE:
                        return
                    if answer is not self.SILENT:
                        conn.sendall(answer)
        except OSError:
            return
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.stopping = True
        self.sock.close()
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def queued_after(t, local, whatsup, text):
    """Send a message to local@example.test, whose policy answer is an
    action that smtpd logs as whatsup with text; check that it is
    queued and logged, and return its queue ID ("none" if it has
    none)."""
    replies, data = session(t, [local + "@example.test"],
                            "Subject: %s\n\nhi\n" % local)
    F.expect(data, "250 2.0.0 Ok: queued as", "%s: queued" % whatsup.upper())
    F.check(t.log_lines(r"NOQUEUE: %s: RCPT from unknown\[127\.0\.0\.1\]: "
                        r"<%s@example\.test>: Recipient address %s; "
                        r"from=<a@example\.org> to=<%s@example\.test>"
                        % (whatsup, local, re.escape(text), local)),
            "log: NOQUEUE: %s: RCPT ...: <%s@example.test>: Recipient "
            "address %s" % (whatsup, local, text))
    return ternlib.queued_id(ternlib.reply_text(data or (0, []))) or "none"


def garbage():
    answers = {
        "hello": b"hello\n\n",
        "huge": b"action=DUNNO " + b"x" * 20000 + b"\n\n",
        "nul": b"action=OK\0\n\n",
        "cut": FakePolicy.CLOSE,
        "empty": b"action=\n\n",
        "two": b"action=OK\naction=REJECT\n\n",
        "noaction": b"foo=bar\n\n",
        "binary": bytes(range(256)) + b"\n\n",
        "blank": b"\n",
        "crlf": b"action=REJECT crlf works\r\n\r\n",
    }
    with FakePolicy(answers) as fp:
        t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
            fp.service), smtpd_policy_service_try_limit="1"))
        with t:
            for local in ("hello", "huge", "nul", "cut", "empty", "two",
                          "noaction", "binary", "blank"):
                F.expect(rcpt(t, local + "@example.test"),
                         "451 4.3.5 <%s@example.test>: Recipient address "
                         "rejected: Server configuration problem" % local,
                         "a %s answer: the default action" % local)
            F.check(t.running(), "ternd is still running")
            F.check(len(t.log_lines(r"warning: problem talking to server "
                                    r"inet:127\.0\.0\.1:\d+: ")) == 9,
                    "one warning for each", t.log_lines(r"problem talking"))
            F.check(t.log_lines(r"problem talking to server \S+: bad "
                                r"answer: answer too long$"),
                    "log: bad answer: answer too long")
            F.check(t.log_lines(r"problem talking to server \S+: read: "
                                r"connection closed$"),
                    "log: read: connection closed")
            F.expect(rcpt(t, "crlf@example.test"),
                     "554 5.7.1 <crlf@example.test>: Recipient address "
                     "rejected: crlf works", "an answer in CRLF lines")
            F.expect(rcpt(t, "fine@example.test"), "250 2.1.5",
                     "and a good answer after all that")


def actions():
    answers = {
        "rej": b"action=REJECT policy says no\n\n",
        "tmp": b"action=450 4.7.2 come back later\n\n",
        "dip": b"action=DEFER_IF_PERMIT 4.2.0 Greylisted\n\n",
        "dipr": b"action=DEFER_IF_PERMIT 4.2.0 Greylisted\n\n",
        "dir": b"action=DEFER_IF_REJECT 4.7.1 not now\n\n",
        "hold": b"action=HOLD\n\n",
        "disc": b"action=DISCARD gone\n\n",
        "redir": b"action=REDIRECT elsewhere@example.test\n\n",
        "prep": b"action=PREPEND X-Policy: checked\n\n",
        "warn": b"action=WARN looked at\n\n",
        "list": b"action=permit_mynetworks, reject\n\n",
    }
    t = Ternd(start=False)
    with t:
        table = os.path.join(t.dir, "after")
        with open(table, "w") as f:
            f.write("dipr@example.test REJECT after the policy\n"
                    "dir@example.test 550 after the policy\n")
        with FakePolicy(answers, os.path.join(t.dir, "policy.sock")) as fp:
            t.params.update(BASE)
            t.params["smtpd_recipient_restrictions"] = (
                restrictions(fp.service) +
                ", check_recipient_access texthash:" + table)
            t.write_config()
            t.start()
            expect = [
                ("rej", "554 5.7.1 <rej@example.test>: Recipient address "
                 "rejected: policy says no"),
                ("tmp", "450 4.7.2 <tmp@example.test>: Recipient address "
                 "rejected: come back later"),
                ("dip", "450 4.2.0 <dip@example.test>: Recipient address "
                 "rejected: Greylisted"),
                ("dipr", "554 5.7.1 <dipr@example.test>: Recipient address "
                 "rejected: after the policy"),
                ("dir", "450 4.7.1 <dir@example.test>: Recipient address "
                 "rejected: not now"),
                ("list", "250 2.1.5"),
                ("warn", "250 2.1.5"),
            ]
            for local, reply in expect:
                F.expect(rcpt(t, local + "@example.test"), reply,
                         "action for %s@" % local)
            F.check(t.log_lines(r"NOQUEUE: warn: RCPT from "
                                r"unknown\[127\.0\.0\.1\]: looked at; "
                                r"from=<a@example\.org> "
                                r"to=<warn@example\.test> proto=ESMTP"),
                    "log: NOQUEUE: warn: RCPT ...: looked at")

            # One message, two recipients: the same instance, the queue
            # ID once the first is accepted; PREPEND goes on top.
            n = fp.count()
            replies, data = session(t, ["prep@example.test",
                                        "other@example.test"],
                                    "Subject: prepended\n\nhi\n")
            F.expect(data, "250 2.0.0 Ok: queued as", "PREPEND: queued")
            qid = ternlib.queued_id(ternlib.reply_text(data))
            reqs = fp.requests[n:n + 2]
            if F.check(len(reqs) == 2, "two requests", reqs):
                a, b = reqs
                F.check(a.get("request") == "smtpd_access_policy" and
                        a.get("protocol_state") == "RCPT" and
                        a.get("protocol_name") == "ESMTP" and
                        a.get("helo_name") == HELO and
                        a.get("sender") == SENDER and
                        a.get("recipient") == "prep@example.test" and
                        a.get("client_address") == "127.0.0.1" and
                        a.get("client_name") == "unknown" and
                        a.get("server_address") == "127.0.0.1" and
                        a.get("server_port") == str(t.port) and
                        a.get("client_port", "").isdigit() and
                        a.get("encryption_keysize") == "0" and
                        "etrn_domain" in a and "sasl_username" in a,
                        "the attributes name the client, the sender and "
                        "the recipient", a)
                F.check(a.get("queue_id") == "" and b.get("queue_id") == qid,
                        "queue_id: empty for the first recipient, then "
                        "the message's", (a.get("queue_id"),
                                          b.get("queue_id"), qid))
                F.check(a.get("instance") and
                        a.get("instance") == b.get("instance"),
                        "one instance for the whole message", (a, b))
            msgs = t.wait_maildir("prep", 1)
            if F.check(len(msgs) == 1, "the prepended message arrives"):
                names = [k for k, _ in ternlib.headers(msgs[0])]
                F.check(names[:1] != [] and "X-Policy" in names and
                        names.index("X-Policy") <
                        names.index("Received") and
                        ternlib.header(msgs[0], "X-Policy") == "checked",
                        "X-Policy: checked above Received:", names)
            F.check(ternlib.header((t.wait_maildir("other", 1) or [""])[0],
                                   "X-Policy") == "checked",
                    "the other recipient gets the same message")
            replies, data = session(t, ["nextmsg@example.test"],
                                    "Subject: next\n\nhi\n")
            F.check(fp.requests[-1].get("instance") not in
                    (None, "", reqs[0].get("instance") if reqs else None),
                    "a new message, a new instance")

            # REDIRECT: the message goes to the new address only.
            queued_after(t, "redir", "redirect",
                         "triggers REDIRECT elsewhere@example.test")
            msgs = t.wait_maildir("elsewhere", 1)
            F.check(len(msgs) == 1 and
                    ternlib.header(msgs[0], "Subject") == "redir",
                    "REDIRECT delivers to elsewhere@example.test")
            F.check(not t.maildir_files("redir"),
                    "and not to redir@example.test")
            # DISCARD: "queued", and nothing at all is delivered.
            dqid = queued_after(t, "disc", "discard", "gone")
            # HOLD: queued in the hold state, where the qmgr never looks.
            hqid = queued_after(t, "hold", "hold", "triggers HOLD action")
            # A later message is delivered: the qmgr ran past both.
            session(t, ["marker@example.test"], "Subject: marker\n\nhi\n")
            F.check(len(t.wait_maildir("marker", 1)) == 1,
                    "a later message is delivered")
            more = ternlib.wait_for(lambda: t.maildir_files("hold") or
                                    t.maildir_files("disc"), timeout=2)
            F.check(not more, "nothing for hold@ or disc@ is delivered")
            F.check(not t.log_lines(r": %s: (to=<|from=<)" % hqid),
                    "the qmgr never takes the held message")
            F.check(not t.log_lines(r": %s: (to=<|from=<)" % dqid),
                    "the discarded message is not in the queue")
            F.check(fp.connections <= 2,
                    "the connection is reused (%d connections for %d "
                    "requests)" % (fp.connections, fp.count()))


def slow_server():
    with FakePolicy({"slow": FakePolicy.SILENT}) as fp:
        timeout = 3
        t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
            fp.service), smtpd_policy_service_timeout="%ds" % timeout,
            smtpd_policy_service_try_limit="1"))
        with t:
            results = {}

            def slow(i):
                t0 = time.monotonic()
                r = rcpt(t, "slow@example.test")
                results[i] = (r, time.monotonic() - t0)
            n = 6
            start = time.monotonic()
            threads = [threading.Thread(target=slow, args=(i,))
                       for i in range(n)]
            for th in threads:
                th.start()
            F.check(ternlib.wait_for(lambda: fp.count() >= n),
                    "the %d slow queries reach the server" % n)
            t0 = time.monotonic()
            r = rcpt(t, "fast@example.test")
            took = time.monotonic() - t0
            F.expect(r, "250 2.1.5", "another session's recipient meanwhile")
            F.check(took < 2, "is answered at once, not after the slow "
                    "ones (%.2fs)" % took)
            F.check(len(results) == 0, "while the slow ones still wait")
            with SMTPConn(t.port) as c:
                t0 = time.monotonic()
                F.expect(c.cmd("EHLO " + HELO), "250", "EHLO meanwhile")
                F.expect(c.cmd("NOOP"), "250", "NOOP meanwhile")
                F.check(time.monotonic() - t0 < 2, "without delay")
            for th in threads:
                th.join(60)
            total = time.monotonic() - start
            F.check(len(results) == n and
                    all(r[0][0] == 451 for r in results.values()),
                    "each slow query ends in the default action",
                    results)
            F.check(all(r[1] >= timeout - 0.5 for r in results.values()),
                    "after smtpd_policy_service_timeout", results)
            F.check(total < timeout + 5,
                    "the slow ones waited side by side, not one after the "
                    "other (%.1fs for %d)" % (total, n))
            F.check(len(t.log_lines(r"problem talking to server \S+: read: "
                                    r"timeout$")) == n,
                    "log: problem talking to server ...: read: timeout",
                    t.log_lines(r"problem talking"))


def shutdown_while_waiting():
    with FakePolicy({"slow": FakePolicy.SILENT}) as fp:
        t = Ternd(dict(BASE, smtpd_recipient_restrictions=restrictions(
            fp.service), smtpd_policy_service_timeout="100s"))
        with t:
            c = SMTPConn(t.port, timeout=60)
            c.cmd("EHLO " + HELO)
            c.cmd("MAIL FROM:<%s>" % SENDER)
            c.send("RCPT TO:<slow@example.test>\r\n")
            F.check(ternlib.wait_for(lambda: fp.count() >= 1),
                    "the query reaches the silent server")
            t0 = time.monotonic()
            t.signal(signal.SIGTERM)
            status = t.wait_exit(15)
            F.check(status == 0 and time.monotonic() - t0 < 10,
                    "SIGTERM: ternd stops without waiting out the 100s "
                    "timeout (status %s, %.1fs)"
                    % (status, time.monotonic() - t0))
            F.expect(c.reply(), "451 4.3.5", "the waiting RCPT gets the "
                     "default action")
            F.expect(c.reply(), "421 4.3.2", "then 421 Service shutting "
                     "down")
            c.close()


def config_errors():
    t = Ternd(dict(BASE, smtpd_recipient_restrictions=(
        "reject_unauth_destination, check_policy_service 127.0.0.1:10023")),
        start=False)
    with t:
        st, out = ternlib.run([ternlib.ternd_path(), "-n", "-c", t.conf])
        F.check(st != 0 and "check_policy_service: \"127.0.0.1:10023\": "
                "expected inet:host:port, unix:path or /path" in out,
                "a service without inet: or unix: is refused at load",
                (st, out))


F.section("greylisting with postgrey", greylisting)
F.section("nobody listening", nobody_listening)
F.section("garbage answers", garbage)
F.section("actions", actions)
F.section("a slow server", slow_server)
F.section("shutdown while waiting", shutdown_while_waiting)
F.section("configuration errors", config_errors)
F.exit()
