# SPDX-License-Identifier: ISC
"""Local delivery: mbox files (From_ line, >From quoting, dotlock left
behind by nobody), aliases from alias_maps to several mailboxes, to a
command (clean environment, exit status 75 defers, other failures
bounce with the command's output, a time limit), to a file, and to a
remote address (a forward through cleanup to an aiosmtpd peer),
virtual mailboxes (Maildir and mbox under virtual_mailbox_base), and,
as root, a system account's Maildir and mbox written with its uid.
"""

import os
import pwd
import smtplib
import stat
import subprocess
import sys

import peerlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@example.org"


def send(t, rcpts, body):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.sendmail(SENDER, rcpts, body)


def open_dir(path):
    """A directory ternd may write to.  Started as root, ternd runs as
    mail_owner, and Ternd.start() makes the test directory readable but
    not writable to it: call this after the start."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)


def mbox():
    with Ternd({}, start=False) as t:
        os.chmod(t.dir, 0o755)
        spool = os.path.join(t.dir, "mail", "spool")
        t.params["mail_spool_directory"] = spool
        t.write_config()
        t.start()
        for i in range(2):
            send(t, ["mboxuser@localhost"],
                 "Subject: mbox %d\r\n\r\nFrom the start\r\nline\r\n" % i)
        t.wait_log(r"to=<mboxuser@localhost>.*status=sent")
        ternlib.wait_for(lambda: len(t.log_lines(
            r"to=<mboxuser@localhost>.*status=sent")) == 2)
        path = os.path.join(spool, "mboxuser")
        with open(path) as f:
            text = f.read()
        F.check(text.startswith("From sender@example.org "),
                "the mbox starts with a From_ line", text[:60])
        F.check(text.count("\nFrom sender@example.org ") == 1,
                "two messages, each with its From_ line")
        F.check("\n>From the start\n" in text, "body From is quoted")
        F.check("Return-Path: <sender@example.org>\nDelivered-To: "
                "mboxuser@localhost\n" in text,
                "Return-Path: and Delivered-To: are added")
        F.check(not os.path.exists(path + ".lock"),
                "no dotlock is left behind")
        F.check(t.log_lines(r"relay=local, .*status=sent \(delivered to "
                            r"mailbox\)"),
                "log: delivered to mailbox")


def aliases(peer):
    with Ternd({"minimal_backoff_time": "1s",
                "maximal_backoff_time": "1s",
                "queue_run_delay": "1s",
                "command_time_limit": "2s",
                "relayhost": peer.hostport}, start=False) as t:
        os.chmod(t.dir, 0o755)
        out = os.path.join(t.dir, "out")
        prog = os.path.join(t.dir, "prog.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\ncat > %s/piped.$$\nenv | sort > %s/env\n"
                    "exit 0\n" % (out, out))
        os.chmod(prog, 0o755)
        alias_file = os.path.join(t.dir, "aliases")
        with open(alias_file, "w") as f:
            f.write("team: alice, bob\n"
                    "pipe: \"|%s\"\n"
                    "tempfail: \"|exit 75\"\n"
                    "broken: \"|echo no such list; exit 1\"\n"
                    "slow: \"|sleep 30\"\n"
                    "tofile: %s/file.mbox\n"
                    "fwd: far@remote.test\n" % (prog, out))
        t.params["alias_maps"] = alias_file
        t.write_config()
        t.start()
        open_dir(out)

        send(t, ["team@localhost"], "Subject: team\r\n\r\nto both\r\n")
        F.check(len(t.wait_maildir("alice", 1)) == 1 and
                len(t.wait_maildir("bob", 1)) == 1,
                "team: alice and bob each get the message")

        send(t, ["pipe@localhost"], "Subject: pipe\r\n\r\npiped body\r\n")
        F.check(t.wait_log(r"to=<pipe@localhost>, relay=local, .*"
                           r"status=sent \(delivered to command: %s\)"
                           % prog), "pipe: delivered to command",
                t.log_lines("pipe@"))
        ternlib.wait_for(lambda: os.path.exists(os.path.join(out, "env")))
        piped = [n for n in os.listdir(out) if n.startswith("piped.")]
        F.check(len(piped) == 1, "pipe: the command got the message")
        if piped:
            with open(os.path.join(out, piped[0])) as f:
                body = f.read()
            F.check(body.startswith("From sender@example.org ") and
                    "piped body" in body, "pipe: From_ line and body")
        with open(os.path.join(out, "env")) as f:
            env = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
        F.check(env.get("SENDER") == SENDER, "pipe: SENDER is set",
                env.get("SENDER"))
        F.check(env.get("RECIPIENT") == "pipe@localhost",
                "pipe: RECIPIENT is set")
        F.check(env.get("PATH") == "/usr/bin:/bin", "pipe: a clean PATH")
        F.check("PYTHONPATH" not in env and "TERND" not in env,
                "pipe: nothing of ternd's environment leaks",
                sorted(env))
        if os.geteuid() == 0:
            # Started as root, commands and files run as default_privs,
            # not as mail_owner, who owns the queue.
            nobody = pwd.getpwnam("nobody")
            F.check(env.get("USER") == "nobody" and
                    env.get("HOME") == nobody.pw_dir,
                    "pipe: runs as default_privs (nobody)",
                    (env.get("USER"), env.get("HOME")))
            F.check(piped and os.stat(os.path.join(out, piped[0])).st_uid ==
                    nobody.pw_uid, "pipe: what it writes belongs to nobody")

        send(t, ["tempfail@localhost"], "Subject: t\r\n\r\nx\r\n")
        F.check(t.wait_log(r"to=<tempfail@localhost>.*status=deferred "
                           r"\(temporary failure"),
                "exit 75 defers")
        send(t, ["broken@localhost"], "Subject: b\r\n\r\nx\r\n")
        F.check(t.wait_log(r"to=<broken@localhost>.*dsn=5\.3\.0, "
                           r"status=bounced \(Command died with status 1: "
                           r".*Command output: no such list\)"),
                "exit 1 bounces with the output", t.log_lines("broken@"))
        send(t, ["slow@localhost"], "Subject: s\r\n\r\nx\r\n")
        F.check(t.wait_log(r"to=<slow@localhost>.*status=deferred "
                           r"\(Command time limit exceeded", 15),
                "command_time_limit: the command is killed and deferred")

        send(t, ["tofile@localhost"], "Subject: file\r\n\r\nFrom file\r\n")
        F.check(t.wait_log(r"to=<tofile@localhost>.*status=sent "
                           r"\(delivered to file: %s/file\.mbox\)" % out),
                "file: delivered to file", t.log_lines("tofile"))
        with open(os.path.join(out, "file.mbox")) as f:
            text = f.read()
        F.check(text.startswith("From sender@example.org ") and
                ">From file" in text, "file: mbox form")
        if os.geteuid() == 0:
            F.check(os.stat(os.path.join(out, "file.mbox")).st_uid ==
                    pwd.getpwnam("nobody").pw_uid,
                    "file: written as default_privs (nobody)")

        send(t, ["fwd@localhost"], "Subject: forward\r\n\r\nfar away\r\n")
        F.check(t.wait_log(r"to=<fwd@localhost>.*status=sent \(forwarded "
                           r"as " + ternlib.QUEUE_ID + r"\)"),
                "forward: queued as a new message", t.log_lines("fwd@"))
        ternlib.wait_for(lambda: [m for m in peer.messages
                                  if m.rcpts == ["far@remote.test"]])
        msgs = [m for m in peer.messages if m.rcpts == ["far@remote.test"]]
        F.check(msgs and msgs[0].rcpts == ["far@remote.test"] and
                msgs[0].mail_from == SENDER,
                "forward: the peer gets it from the original sender",
                msgs and (msgs[0].mail_from, msgs[0].rcpts))
        F.check(msgs and b"Delivered-To: fwd@localhost" in msgs[0].content,
                "forward: Delivered-To: of the alias goes along")
        bounces = [m for m in peer.messages if m.mail_from in ("", "<>")]
        F.check(len(bounces) == 1 and b"broken@localhost" in
                bounces[0].content,
                "the bounce for broken@ goes to the remote sender",
                len(bounces))


def virtual():
    with Ternd({"virtual_mailbox_domains": "virt.test"},
               start=False) as t:
        os.chmod(t.dir, 0o755)
        base = os.path.join(t.dir, "vmail")
        maps = os.path.join(t.dir, "vmaps")
        with open(maps, "w") as f:
            f.write("v1@virt.test virt.test/v1/\n"
                    "v2@virt.test virt.test/v2\n"
                    "bad@virt.test ../escape/\n")
        t.params["virtual_mailbox_base"] = base
        t.params["virtual_mailbox_maps"] = "texthash:" + maps
        t.write_config()
        t.start()
        open_dir(base)
        with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
            refused = s.sendmail(SENDER, ["v1@virt.test", "v2@virt.test",
                                          "nobody@virt.test", "bad@virt.test"],
                                 "Subject: virtual\r\n\r\nhello\r\n")
        F.check(list(refused) == ["nobody@virt.test"] and
                refused["nobody@virt.test"][0] == 550 and
                b"User unknown in virtual mailbox table" in
                refused["nobody@virt.test"][1],
                "RCPT refuses an unknown virtual user", refused)
        # What a local program submits is bounced at delivery instead.
        st, out = ternlib.submit(t, SENDER, "nobody@virt.test",
                                 b"Subject: virtual\n\nhello\n")
        F.check(st == 0, "sendmail takes mail for an unknown virtual user",
                out)
        F.check(t.wait_log(r"tern/virtual\[\d+\]: " + ternlib.QUEUE_ID +
                           r": to=<v1@virt\.test>, relay=virtual, .*"
                           r"status=sent \(delivered to maildir\)"),
                "v1: delivered to its Maildir", t.log_lines("v1@"))
        new = os.path.join(base, "virt.test", "v1", "new")
        F.check(os.path.isdir(new) and len(os.listdir(new)) == 1,
                "v1: one file in new/")
        F.check(t.wait_log(r"to=<v2@virt\.test>.*status=sent \(delivered "
                           r"to mailbox\)"), "v2: delivered to its mbox")
        F.check(os.path.isfile(os.path.join(base, "virt.test", "v2")),
                "v2: the mbox file exists")
        F.check(t.wait_log(r"to=<nobody@virt\.test>.*dsn=5\.1\.1, "
                           r"status=bounced"),
                "an unknown virtual user bounces")
        F.check(t.wait_log(r"to=<bad@virt\.test>.*status=deferred "
                           r"\(bad virtual mailbox"),
                "a path with .. is refused")
        F.check(not os.path.exists(os.path.join(t.dir, "escape")),
                "nothing is written outside virtual_mailbox_base")


def system_account():
    """Started as root, ternd writes a system account's mailbox with the
    account's uid (here nobody), through its privileged process."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    with Ternd({}) as t:
        F.check(t.wait_log(r"privileged local delivery started"),
                "the privileged process is started")
        send(t, ["nobody@localhost"], "Subject: sys\r\n\r\nto nobody\r\n")
        F.check(t.wait_log(r"to=<nobody@localhost>, relay=local, .*"
                           r"status=sent \(delivered to maildir\)"),
                "Maildir: delivered", t.log_lines("nobody@"))
        files = t.maildir_files("nobody")
        F.check(len(files) == 1 and os.stat(files[0]).st_uid ==
                nobody.pw_uid, "Maildir: the file belongs to nobody",
                [(f, os.stat(f).st_uid) for f in files])
        F.check(os.stat(t.maildir("nobody")).st_uid == nobody.pw_uid,
                "Maildir: the directory belongs to nobody")
        send(t, ["user@localhost"], "Subject: not sys\r\n\r\nx\r\n")
        files = t.wait_maildir("user", 1) and t.maildir_files("user")
        F.check(files and os.stat(files[0]).st_uid != nobody.pw_uid and
                os.stat(files[0]).st_uid != 0,
                "a name that is no account stays with mail_owner")
    with Ternd({}, start=False) as t:
        spool = os.path.join(t.dir, "mail", "spool")
        t.params["mail_spool_directory"] = spool
        t.write_config()
        t.start()
        for i in range(2):
            send(t, ["nobody@localhost"],
                 "Subject: sys %d\r\n\r\nFrom me\r\n" % i)
        ternlib.wait_for(lambda: len(t.log_lines(
            r"to=<nobody@localhost>.*status=sent")) == 2)
        F.check(len(t.log_lines(r"to=<nobody@localhost>.*status=sent \("
                                r"delivered to mailbox\)")) == 2,
                "mbox: both delivered", t.log_lines("nobody@"))
        path = os.path.join(spool, "nobody")
        st = os.stat(path)
        F.check(st.st_uid == nobody.pw_uid and
                stat.S_IMODE(st.st_mode) == 0o600,
                "mbox: the file belongs to nobody, mode 0600",
                (st.st_uid, oct(st.st_mode)))
        with open(path) as f:
            text = f.read()
        F.check(text.count("From sender@example.org ") == 2 and
                ">From me" in text, "mbox: two messages in mbox form")
        F.check(not os.path.exists(path + ".lock"), "mbox: no dotlock left")


def mailbox_command():
    """mailbox_command: a system account's mail is piped to the command
    as that account (here "mail"), any other name's as default_privs."""
    mail = pwd.getpwnam("mail")
    nobody = pwd.getpwnam("nobody")
    with Ternd({}, start=False) as t:
        os.chmod(t.dir, 0o755)
        out = os.path.join(t.dir, "out")
        t.params["mailbox_command"] = "cat > %s/$USER.$$" % out
        t.write_config()
        t.start()
        open_dir(out)
        send(t, ["mail@localhost", "someone@localhost"],
             "Subject: mc\r\n\r\nby command\r\n")
        F.check(len(t.wait_log(r"relay=local, .*status=sent \(delivered to "
                               r"command: cat > ")) == 2,
                "both are delivered to the command", t.log_lines("to=<"))
        files = {}
        for name in os.listdir(out):
            files[name.split(".")[0]] = os.stat(os.path.join(out, name))
        F.check("mail" in files and files["mail"].st_uid == mail.pw_uid,
                "the system account's command ran as that account",
                sorted(files))
        F.check("nobody" in files and files["nobody"].st_uid ==
                nobody.pw_uid, "another name's ran as default_privs")
        with open(os.path.join(out, [n for n in os.listdir(out)
                                     if n.startswith("mail.")][0])) as f:
            text = f.read()
        F.check(text.startswith("From sender@example.org ") and
                "Delivered-To: mail@localhost" in text and "by command" in text,
                "the command gets the message in mbox form")


def home_mailbox():
    """home_mailbox: a Maildir below a system account's home, written as
    the account.  The account is made for the test and removed after."""
    name = "terntest%d" % os.getpid()
    with Ternd({"home_mailbox": "Mail/box/"}, start=False) as t:
        home = os.path.join(t.dir, "home")
        r = subprocess.run(["useradd", "--no-create-home", "--home-dir",
                            home, "--shell", "/usr/sbin/nologin", name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("skip: home_mailbox: cannot add an account: " + r.stderr)
            return
        try:
            pw = pwd.getpwnam(name)
            os.makedirs(home)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            os.chmod(home, 0o700)
            t.start()
            send(t, [name + "@localhost", "nosuchaccount@localhost"],
                 "Subject: home\r\n\r\nto the home\r\n")
            box = os.path.join(home, "Mail", "box", "new")
            F.check(ternlib.wait_for(lambda: os.path.isdir(box) and
                                     os.listdir(box)),
                    "the message is in the home Maildir",
                    t.log_lines("to=<"))
            files = os.listdir(box) if os.path.isdir(box) else []
            F.check(files and os.stat(os.path.join(box, files[0])).st_uid ==
                    pw.pw_uid, "written as the account")
            F.check(t.wait_maildir("nosuchaccount", 1),
                    "a name that is no account still gets the spool")
        finally:
            subprocess.run(["userdel", name], capture_output=True)
    with Ternd({"home_mailbox": "../escape"}, start=False) as t:
        try:
            t.start(timeout=5)
            started = True
        except RuntimeError:
            started = False
        F.check(not started and "is not a path below the home directory" in
                t.log_text(), "a home_mailbox with .. is refused")


def main():
    F.section("mbox", mbox)
    if peerlib.HAVE_AIOSMTPD:
        with peerlib.Peer() as peer:
            F.section("aliases: mailboxes, commands, files, forwards",
                      aliases, peer)
    else:
        print("skip: aliases (python3-aiosmtpd is not installed)")
    F.section("virtual mailboxes", virtual)
    if os.geteuid() == 0:
        F.section("a system account's own mailbox", system_account)
        F.section("mailbox_command", mailbox_command)
        F.section("home_mailbox", home_mailbox)
    else:
        print("skip: system accounts (needs root)")
    F.exit()


if __name__ == "__main__":
    main()
