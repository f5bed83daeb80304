# SPDX-License-Identifier: ISC
"""LMTP delivery to Dovecot (Debian's dovecot-core and dovecot-lmtpd),
started with a private configuration in a scratch directory: a
passwd-file user database, Maildirs under the scratch directory, an
LMTP listener on a loopback port and one on a unix socket.

Checks delivery over TCP and over the unix socket, that an unknown user
is refused at RCPT and bounced, and RFC 2033's per-recipient replies
after DATA: in one transaction a user within quota gets the message
while a user over quota is refused (and bounced) after the end of data.

Then mailbox_transport: local mail that no alias took, and the local
names an alias gives, go to Dovecot over LMTP, as in the usual Postfix
and Dovecot setup; a command alias still runs here.
"""

import glob
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile

import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@localhost"

DOVECOT_CONF = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
protocols = lmtp
listen = 127.0.0.1
auth_username_format = %Ln
mail_location = maildir:~/Maildir
mail_plugins = quota
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
plugin {{
  quota = maildir:User quota
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener {d}/lmtp.sock {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    def __init__(self, directory):
        self.dir = directory
        self.proc = None
        self.port = None

    def start(self):
        os.chmod(self.dir, 0o755)
        home = os.path.join(self.dir, "home")
        os.makedirs(home, exist_ok=True)
        os.chmod(home, 0o777)
        uid = 65534 if os.geteuid() == 0 else os.getuid()
        gid = 65534 if os.geteuid() == 0 else os.getgid()
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for user, extra in (("alice", ""), ("carol", ""),
                                ("bob", "userdb_quota_rule=*:storage=1")):
                f.write("%s:{PLAIN}x:%d:%d::%s/%s::%s\n"
                        % (user, uid, gid, home, user, extra))
        for _ in range(5):
            self.port = ternlib.free_port()
            conf = os.path.join(self.dir, "dovecot.conf")
            with open(conf, "w") as f:
                f.write(DOVECOT_CONF.format(d=self.dir, port=self.port))
            log = open(os.path.join(self.dir, "dovecot.out"), "ab")
            self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
            log.close()
            if ternlib.wait_for(lambda: self.proc.poll() is not None or
                                self._ready(), 15) and \
                    self.proc.poll() is None:
                return self
            self.stop()
        raise RuntimeError("dovecot did not start: " + self.log())

    def _ready(self):
        try:
            with ternlib.SMTPConn(self.port, timeout=2) as c:
                return c.banner[0] == 220 and \
                    os.path.exists(os.path.join(self.dir, "lmtp.sock"))
        except OSError:
            return False

    def log(self):
        out = ""
        for name in ("dovecot.log", "dovecot.out"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def maildir(self, user):
        return sorted(glob.glob(os.path.join(self.dir, "home", user,
                                             "Maildir", "new", "*")))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def send(t, rcpts, body):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        return s.sendmail(SENDER, rcpts, body)


def run(dv):
    with Ternd({}, start=False) as t:
        path = os.path.join(t.dir, "transport")
        with open(path, "w") as f:
            f.write("lmtp.test lmtp:inet:127.0.0.1:%d\n" % dv.port)
            f.write("sock.test lmtp:unix:%s/lmtp.sock\n" % dv.dir)
        t.params["transport_maps"] = "texthash:" + path
        t.write_config()
        t.start()

        # A big body, so that the one-byte quota of bob is exceeded.
        body = ("Subject: lmtp test\r\n\r\n" + "x" * 2000 + "\r\n" +
                ".dot line\r\n")
        send(t, ["alice@lmtp.test", "bob@lmtp.test", "nosuch@lmtp.test"],
             body)
        F.check(t.wait_log(r"tern/lmtp\[\d+\]: " + ternlib.QUEUE_ID +
                           r": to=<alice@lmtp\.test>, relay=127\.0\.0\.1"
                           r"\[127\.0\.0\.1\]:%d, .*dsn=2\.0\.0, "
                           r"status=sent \(250 2\.0\.0 <alice@lmtp\.test>"
                           % dv.port),
                "TCP: alice is delivered", t.log_lines("alice"))
        F.check(t.wait_log(r"to=<bob@lmtp\.test>.*status=bounced \(host "
                           r"127\.0\.0\.1\[127\.0\.0\.1\] said: 552 5\.2\.2 "
                           r".*\(in reply to end of DATA command\)\)"),
                "TCP: bob over quota is refused after DATA, alone",
                t.log_lines("bob"))
        F.check(t.wait_log(r"to=<nosuch@lmtp\.test>.*dsn=5\.1\.1, "
                           r"status=bounced .*\(in reply to RCPT TO "
                           r"command\)"),
                "TCP: an unknown user is refused at RCPT",
                t.log_lines("nosuch"))
        files = ternlib.wait_for(lambda: dv.maildir("alice"), 10)
        F.check(len(files or []) == 1, "alice's Maildir has the message",
                files)
        if files:
            with open(files[0], "rb") as f:
                data = f.read()
            F.check(b"\n.dot line" in data and b"x" * 2000 in data,
                    "the body arrives intact")
        F.check(not dv.maildir("bob"), "bob's Maildir stays empty")
        msgs = t.wait_maildir("sender", 1)
        F.check(len(msgs) == 1, "one bounce for bob and nosuch", len(msgs))
        if msgs:
            F.check("Final-Recipient: rfc822; bob@lmtp.test" in msgs[0] and
                    "Final-Recipient: rfc822; nosuch@lmtp.test" in msgs[0],
                    "the report names both refused recipients")
            F.check("alice@lmtp.test" not in msgs[0].split(
                "Content-Type: message/rfc822")[0].split(
                "message/delivery-status")[1],
                "the report leaves out the delivered recipient")

        send(t, ["carol@sock.test"], "Subject: socket\r\n\r\nvia unix\r\n")
        F.check(t.wait_log(r"to=<carol@sock\.test>, relay=localhost\[%s/"
                           r"lmtp\.sock\], .*status=sent" % dv.dir),
                "unix socket: carol is delivered", t.log_lines("carol"))
        F.check(ternlib.wait_for(lambda: dv.maildir("carol"), 10),
                "carol's Maildir has the message")


def mailbox_transport(dv):
    with Ternd({"mailbox_transport": "lmtp:unix:%s/lmtp.sock" % dv.dir},
               start=False) as t:
        os.chmod(t.dir, 0o755)
        out = os.path.join(t.dir, "out")
        os.makedirs(out)
        aliases = os.path.join(t.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("team: alice, carol\n"
                    "log: \"|cat > %s/logged\"\n" % out)
        t.params["alias_maps"] = aliases
        t.write_config()
        t.start()
        # After the start, which leaves the test directory read-only to
        # mail_owner: the command runs as default_privs.
        os.chmod(out, 0o777)
        before = {u: len(dv.maildir(u)) for u in ("alice", "carol")}
        send(t, ["alice@localhost"], "Subject: direct\r\n\r\nto alice\r\n")
        F.check(t.wait_log(r"tern/local\[\d+\]: %s: to=<alice@localhost>, "
                           r"relay=localhost\[%s/lmtp\.sock\], .*"
                           r"status=sent \(250 2\.0\.0 <alice@localhost>"
                           % (ternlib.QUEUE_ID, dv.dir)),
                "a local user's mail goes to Dovecot by mailbox_transport",
                t.log_lines("alice@"))
        send(t, ["team@localhost"], "Subject: team\r\n\r\nto team\r\n")
        F.check(ternlib.wait_for(
            lambda: len(dv.maildir("alice")) == before["alice"] + 2 and
            len(dv.maildir("carol")) == before["carol"] + 1, 20),
            "the names of an alias go there too",
            {u: len(dv.maildir(u)) for u in ("alice", "carol")})
        F.check(t.wait_log(r"to=<team@localhost>, .*status=sent \(250 "
                           r"2\.0\.0 <.*@mx\.example\.test> .*Saved\)"),
                "logged for the alias, with Dovecot's reply")
        send(t, ["log@localhost"], "Subject: log\r\n\r\nlogged\r\n")
        F.check(ternlib.wait_for(
            lambda: os.path.exists(os.path.join(out, "logged"))),
            "a command alias still runs here")


def main():
    if shutil.which("dovecot") is None and \
            not os.path.exists("/usr/sbin/dovecot"):
        print("SKIP: dovecot is not installed "
              "(apt-get install dovecot-core dovecot-lmtpd)")
        sys.exit(77)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    tmp = tempfile.mkdtemp(prefix="tern-lmtp-")
    dv = Dovecot(tmp)
    try:
        dv.start()
        F.section("LMTP to Dovecot", run, dv)
        F.section("mailbox_transport", mailbox_transport, dv)
    except RuntimeError as e:
        F.check(False, "dovecot starts", e)
    finally:
        dv.stop()
        if F.failed:
            print(dv.log())
        shutil.rmtree(tmp, ignore_errors=True)
    F.exit()


if __name__ == "__main__":
    main()
