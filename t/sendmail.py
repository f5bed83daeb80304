# SPDX-License-Identifier: ISC
"""Local submission: sendmail -> maildrop -> pickup -> cleanup.

Runs the real sendmail program the way its users run it: cron's and
mutt's command lines with the message on standard input, -f/-F/-N/-R/-V,
an SMTP dialogue with -bs, mail dropped while ternd is stopped, bad files
in maildrop (moved to corrupt/ with a log line while ternd goes on),
Debian's bsd-mailx pointed at our sendmail, newaliases (-bi) on a good and
a bad alias file, the messages of -bp and -q, and a kill -9 of ternd
while pickup takes a backlog: every message arrives at least once.
"""

import os
import re
import signal
import subprocess

import ternlib
from ternlib import Ternd

F = ternlib.Failures()
HOST = "mx.example.test"
NAME_RX = re.compile(r"^M[0-9a-f]{30}$")


def sendmail(t, args, data=b"", prog=None, extra_env=None, timeout=60):
    """Run sendmail with the instance's config in TERN_CONFIG; returns
    (exit status, stdout, stderr) as text."""
    env = dict(os.environ)
    env["TERN_CONFIG"] = t.conf
    if extra_env:
        env.update(extra_env)
    if isinstance(data, str):
        data = data.encode("utf-8")
    p = subprocess.run([prog or ternlib.sendmail_path()] + list(args),
                       input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout, cwd=t.dir)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def maildrop(t):
    return os.path.join(t.dir, "queue", "maildrop")


def maildrop_names(t):
    try:
        return sorted(os.listdir(maildrop(t)))
    except FileNotFoundError:
        return []


def corrupt_names(t):
    try:
        return sorted(os.listdir(os.path.join(t.dir, "queue", "corrupt")))
    except FileNotFoundError:
        return []


def wait_messages(t, user, count, timeout=30):
    return t.wait_maildir(user, count, timeout)


def body_of(message):
    return message.split("\n\n", 1)[1] if "\n\n" in message else ""


def check_dropped_while_stopped(t):
    """Files written while ternd is down wait in maildrop, and are
    delivered when it starts."""
    cron = ("From: root (Cron Daemon)\n"
            "To: cronuser\n"
            "Subject: Cron <root@%s> /usr/local/bin/job\n"
            "\n"
            "job output\n"
            ".\n"
            "after the dot\n" % HOST)
    st, out, err = sendmail(t, ["-FCronDaemon", "-i", "-t"], cron)
    F.check(st == 0, "sendmail -t -i exits 0 while ternd is stopped", err)
    st, out, err = sendmail(
        t, ["-f", "owner@%s" % HOST, "-F", "Owner Example", "-N",
            "success,failure", "-R", "hdrs", "-V", "ENV-42", "--",
            "dsnuser"], "Subject: dsn\n\nplease notify\n")
    F.check(st == 0, "sendmail -f -F -N -R -V exits 0", err)
    names = maildrop_names(t)
    F.check(len(names) == 2 and all(NAME_RX.match(n) for n in names),
            "maildrop holds two files under final names", names)
    texts = []
    for n in names:
        with open(os.path.join(maildrop(t), n), "rb") as f:
            texts.append(f.read().decode("utf-8", "replace"))
    dsn = [x for x in texts if "dsnuser" in x]
    F.check(dsn and dsn[0].startswith("tern-maildrop 1\n"),
            "a maildrop file starts with its version line", texts)
    if dsn:
        head = dsn[0].split("\n\n", 1)[0].split("\n")
        for line in ("uid %d" % os.getuid(), "sender owner@%s" % HOST,
                     "fullname Owner Example", "envid ENV-42", "ret hdrs",
                     "rcpt dsnuser", "notify success,failure"):
            F.check(line in head, "the maildrop file records \"%s\"" % line,
                    head)
    t.start()
    msgs = wait_messages(t, "cronuser", 1)
    F.check(len(msgs) == 1, "the cron message is delivered after the start",
            t.log_text())
    if msgs:
        m = msgs[0]
        F.check("job output\n.\nafter the dot\n" in body_of(m),
                "with -i a line holding only \".\" stays in the message",
                m)
        F.check(ternlib.header(m, "Subject") ==
                "Cron <root@%s> /usr/local/bin/job" % HOST,
                "the Subject: is kept", m)
        froms = [v for n, v in ternlib.headers(m) if n.lower() == "from"]
        F.check(len(froms) == 1 and froms[0].endswith("(Cron Daemon)"),
                "the message's own From: is kept, and no other added", m)
    msgs = wait_messages(t, "dsnuser", 1)
    F.check(len(msgs) == 1, "the -N message is delivered", t.log_text())
    if msgs:
        F.check(ternlib.header(msgs[0], "Return-Path") ==
                "<owner@%s>" % HOST, "-f sets the envelope sender", msgs[0])
        F.check(ternlib.header(msgs[0], "From") ==
                "Owner Example <owner@%s>" % HOST,
                "a message without From: gets one with -F's name", msgs[0])
    # NOTIFY=SUCCESS: the sender hears of the delivery, with its ENVID.
    notes = wait_messages(t, "owner", 1)
    F.check(len(notes) >= 1 and "ENV-42" in notes[0],
            "the -N success notice reaches the sender with the -V envelope "
            "ID", notes or t.log_text())
    uid_lines = t.log_lines(r"tern/pickup\[\d+\]: %s: uid=%d from=<"
                            % (ternlib.QUEUE_ID, os.getuid()))
    F.check(len(uid_lines) == 2,
            "pickup logs \"ID: uid=N from=<sender>\" for each file",
            t.log_text())
    for line in uid_lines:
        qid = re.search(r": (%s): uid=" % ternlib.QUEUE_ID, line).group(1)
        F.check(t.log_lines(r"tern/cleanup\[\d+\]: %s: message-id=<" % qid),
                "cleanup logs message-id= for %s" % qid)
    F.check(ternlib.wait_for(lambda: maildrop_names(t) == [], 10),
            "maildrop is empty once the messages are queued",
            maildrop_names(t))


def check_cron_and_mutt(t):
    # mutt: recipients on the command line, -oi, -oem ignored, "--".
    msg = ("From: Mutt User <mutt@%s>\n"
           "To: header-only@%s\n"
           "Subject: from mutt\n"
           "\n"
           "hello from mutt\n" % (HOST, HOST))
    st, out, err = sendmail(t, ["-oem", "-oi", "--", "bob@%s" % HOST,
                                "Carol <carol@%s>" % HOST], msg)
    F.check(st == 0, "mutt's command line exits 0", err)
    F.check(len(wait_messages(t, "bob", 1)) == 1 and
            len(wait_messages(t, "carol", 1)) == 1,
            "mutt's message reaches the recipients named as arguments",
            t.log_text())
    F.check(t.maildir_files("header-only") == [],
            "without -t a To: header names no recipient")

    # -t: To, Cc and Bcc, Bcc removed; recipients also on the line.
    msg = ("To: tuser1, T User 2 <tuser2@%s>\n"
           "Cc: tuser3@%s\n"
           "Bcc: hidden@%s,\n"
           "  hidden2\n"
           "Subject: extracted\n"
           "\n"
           "x\n" % (HOST, HOST, HOST))
    st, out, err = sendmail(t, ["-t", "-i", "extra"], msg)
    F.check(st == 0, "sendmail -t exits 0", err)
    for user in ("tuser1", "tuser2", "tuser3", "hidden", "hidden2",
                 "extra"):
        got = wait_messages(t, user, 1)
        F.check(len(got) == 1, "-t delivers to %s" % user, t.log_text())
        if got:
            F.check(ternlib.header(got[0], "Bcc") is None,
                    "the Bcc: header is gone at %s" % user, got[0])

    # Without -i a lone dot ends the message; CRLF becomes LF.
    st, out, err = sendmail(t, ["dotuser"],
                            b"Subject: dot\r\n\r\nbefore\r\n.\r\nafter\r\n")
    F.check(st == 0, "sendmail without -i exits 0", err)
    got = wait_messages(t, "dotuser", 1)
    if F.check(len(got) == 1, "the message without -i is delivered"):
        F.check(body_of(got[0]) == "before\n" and "\r" not in got[0],
                "without -i the message ends at the lone dot, CRLF made LF",
                got[0])

    # A leading "From " line is an mbox separator, not a header.
    st, out, err = sendmail(t, ["fromline"],
                            "From someone Thu Jan  1 00:00:00 1970\n"
                            "Subject: mbox\n\nbody\n")
    got = wait_messages(t, "fromline", 1)
    if F.check(st == 0 and len(got) == 1, "a message with a From_ line"):
        F.check(ternlib.header(got[0], "Subject") == "mbox" and
                "From someone" not in got[0],
                "a leading From_ line is dropped", got[0])

    # The null sender, and the login name as the default sender.
    st, out, err = sendmail(t, ["-f", "<>", "nulluser"], "Subject: n\n\nx\n")
    got = wait_messages(t, "nulluser", 1)
    if F.check(st == 0 and len(got) == 1, "-f '<>' is accepted"):
        F.check(ternlib.header(got[0], "Return-Path") == "<>",
                "-f '<>' submits with the null sender", got[0])
    import pwd
    login = pwd.getpwuid(os.getuid()).pw_name
    st, out, err = sendmail(t, ["loginuser"], "Subject: l\n\nx\n")
    got = wait_messages(t, "loginuser", 1)
    if F.check(st == 0 and len(got) == 1, "a message without -f"):
        F.check(ternlib.header(got[0], "Return-Path") ==
                "<%s@%s>" % (login, HOST),
                "without -f the sender is the login name", got[0])


def check_errors(t):
    st, out, err = sendmail(t, [], "x\n")
    F.check(st == 64 and "no recipients specified" in err,
            "no recipients: exit 64 with a reason", (st, err))
    st, out, err = sendmail(t, ["-t"], "Subject: none\n\nx\n")
    F.check(st == 64 and "no recipient addresses found" in err,
            "-t without recipient headers: exit 64", (st, err))
    st, out, err = sendmail(t, ["-N", "sometimes", "u"], "x\n")
    F.check(st == 64 and "-N" in err, "a bad -N: exit 64", (st, err))
    st, out, err = sendmail(t, ["-R", "most", "u"], "x\n")
    F.check(st == 64, "a bad -R: exit 64", (st, err))
    st, out, err = sendmail(t, ["-bv", "u"], "")
    F.check(st == 64 and "not supported" in err, "-bv: exit 64", (st, err))
    st, out, err = sendmail(t, ["-bp"])
    F.check(st == 0 and "Mail queue is empty" in out,
            "-bp asks the running ternd for the queue", (st, out, err))
    st, out, err = sendmail(t, ["-q"])
    F.check(st == 0, "-q has the running ternd flush the queue", (st, err))
    link = os.path.join(t.dir, "mailq")
    if not os.path.exists(link):
        os.symlink(ternlib.sendmail_path(), link)
    st, out, err = sendmail(t, [], prog=link)
    F.check(st == 0 and "Mail queue is empty" in out,
            "run as mailq it behaves as sendmail -bp", (st, out, err))
    F.check(ternlib.wait_for(lambda: maildrop_names(t) == [], 10),
            "refused submissions leave no file", maildrop_names(t))
    big = "x" * 999 + "\n"
    st, out, err = sendmail(t, ["u"], big * 30,
                            extra_env={"TERN_CONFIG": small_limit_conf(t)})
    F.check(st == 65 and "too big" in err,
            "a message over message_size_limit: exit 65", (st, err))


def small_limit_conf(t):
    path = os.path.join(t.dir, "small.conf")
    with open(path, "w") as f:
        f.write(t.config_text({"message_size_limit": "10000"}))
    return path


def smtp_replies(text):
    """Split -bs output into replies: lists of lines."""
    replies, cur = [], []
    for line in text.split("\r\n"):
        if not line:
            continue
        cur.append(line)
        if len(line) < 4 or line[3] != "-":
            replies.append(cur)
            cur = []
    return replies


def check_bs(t):
    session = ("EHLO client.example\r\n"
               "RCPT TO:<early@%s>\r\n"
               "MAIL FROM:<bs-sender@%s> BODY=8BITMIME ENVID=BS+2B1\r\n"
               "DATA\r\n"
               "RCPT TO:<bsuser@%s> NOTIFY=NEVER\r\n"
               "RCPT TO:<bad address>\r\n"
               "FROB\r\n"
               "DATA\r\n"
               "Subject: over bs\r\n"
               "\r\n"
               "..leading dot\r\n"
               "line\r\n"
               ".\r\n"
               "NOOP\r\n"
               "QUIT\r\n" % (HOST, HOST, HOST))
    st, out, err = sendmail(t, ["-bs"], session)
    F.check(st == 0, "sendmail -bs exits 0", err)
    r = smtp_replies(out)
    codes = [x[-1][:3] for x in r]
    F.check(codes == ["220", "250", "503", "250", "554", "250", "501", "502",
                      "354", "250", "250", "221"],
            "the -bs replies, pipelined", r)
    if len(r) > 1:
        F.check("250-DSN" in r[1] and "250-8BITMIME" in r[1] and
                "250-PIPELINING" in r[1], "EHLO lists DSN, 8BITMIME and "
                "PIPELINING", r[1])
    if len(r) > 9:
        F.check(re.match(r"250 2\.0\.0 Ok: queued as M[0-9a-f]{30}$",
                         r[9][0]) is not None,
                "the end of data is answered \"250 2.0.0 Ok: queued as "
                "NAME\"", r[9])
    got = wait_messages(t, "bsuser", 1)
    if F.check(len(got) == 1, "the -bs message is delivered", t.log_text()):
        F.check(body_of(got[0]) == ".leading dot\nline\n",
                "-bs removes the dot-stuffing", got[0])
        F.check(ternlib.header(got[0], "Return-Path") ==
                "<bs-sender@%s>" % HOST, "-bs takes MAIL FROM as the sender",
                got[0])
    # The end of input in DATA queues nothing.
    st, out, err = sendmail(t, ["-bs"], "HELO x\r\nMAIL FROM:<a@b.example>"
                            "\r\nRCPT TO:<cut@%s>\r\nDATA\r\nSubject: c"
                            "\r\n" % HOST)
    F.check(st == 0 and ternlib.wait_for(lambda: maildrop_names(t) == [],
                                         10),
            "input that ends inside DATA queues nothing", (out, err))


def check_corrupt(t):
    """Bad files go to corrupt/ with a log line; ternd goes on."""
    d = maildrop(t)
    good = ("tern-maildrop 1\nuid %d\nuser x\ntime 1\nsender a\nrcpt "
            "never-delivered\nsize 6\n\nhello\n" % os.getuid())
    cases = {
        "M" + "1" * 30: "tern-maildrop 1\nuid 0\nbogus field\n\n",
        "M" + "2" * 30: good[:-3],  # cut short
        "M" + "3" * 30: "random junk\n",
        "junk-name": good,
    }
    for name, text in cases.items():
        tmp = os.path.join(t.dir, "tmp-" + name)
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(d, name))
    # A symbolic link, renamed in as a writer would rename a file.
    tmp = os.path.join(t.dir, "tmp-link")
    os.symlink("/etc/passwd", tmp)
    os.rename(tmp, os.path.join(d, "M" + "4" * 30))
    if os.getuid() == 0:
        # A file that claims another uid than its owner's.
        path = os.path.join(d, "M" + "5" * 30)
        with open(path, "w") as f:
            f.write(good.replace("uid 0\n", "uid 4242\n"))
    for name in list(cases) + ["M" + "4" * 30]:
        F.check(t.wait_log(r"warning: maildrop/%s: .*: moved to .*/corrupt/%s"
                           % (re.escape(name), re.escape(name))),
                "a bad file is moved to corrupt/ with a warning: %s" % name,
                t.log_text()[-2000:])
    if os.getuid() == 0:
        F.check(t.wait_log(r"maildrop/M5{30}: the file says uid 4242, but "
                           r"uid 0 owns it: moved"),
                "a file whose uid is not its owner's goes to corrupt/",
                t.log_text()[-2000:])
    F.check(t.running(), "ternd still runs after the bad files")
    F.check(t.maildir_files("never-delivered") == [],
            "nothing from a bad file is delivered")
    F.check(len(corrupt_names(t)) >= 5, "corrupt/ holds the bad files",
            corrupt_names(t))
    st, out, err = sendmail(t, ["aftercorrupt"], "Subject: ok\n\nx\n")
    F.check(st == 0 and len(wait_messages(t, "aftercorrupt", 1)) == 1,
            "mail submitted after the bad files is delivered", err)


def check_mailx(t):
    prog = "/usr/bin/bsd-mailx"
    if not os.access(prog, os.X_OK):
        print("SKIP: bsd-mailx is not installed (apt-get install bsd-mailx)")
        return
    rc = os.path.join(t.dir, "mailrc")
    with open(rc, "w") as f:
        f.write("set sendmail=%s\n" % ternlib.sendmail_path())
    env = dict(os.environ, TERN_CONFIG=t.conf, MAILRC=rc, HOME=t.dir)
    argv = [prog, "-s", "sent with mailx", "mailxuser@%s" % HOST]
    p = subprocess.run(argv, input=b"written by %s\n" % prog.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=60, cwd=t.dir)
    F.check(p.returncode == 0, "%s exits 0" % prog, p.stdout)
    got = wait_messages(t, "mailxuser", 1)
    if F.check(len(got) == 1, "%s's message is delivered" % prog,
               t.log_text()[-2000:]):
        F.check(ternlib.header(got[0], "Subject") == "sent with mailx" and
                "written by" in got[0],
                "the subject and the text arrive as written", got[0])


def check_newaliases(t):
    path = os.path.join(t.dir, "aliases")
    with open(path, "w") as f:
        f.write("# aliases\npostmaster: root\nstaff alice, bob\n"
                "root: admin\n")
    conf = os.path.join(t.dir, "aliases.conf")
    with open(conf, "w") as f:
        f.write(t.config_text({"alias_database": path}))
    env = {"TERN_CONFIG": conf}
    st, out, err = sendmail(t, ["-bi"], extra_env=env)
    F.check(st != 0 and "%s:3: " % path in err and "missing \":\"" in err,
            "newaliases reports a bad line as FILE:LINE", (st, err))
    link = os.path.join(t.dir, "newaliases")
    os.symlink(ternlib.sendmail_path(), link)
    st, out, err = sendmail(t, [], prog=link, extra_env=env)
    F.check(st != 0 and err.startswith("newaliases: %s:3: " % path),
            "run as newaliases it does the same", (st, err))
    with open(path, "w") as f:
        f.write("postmaster: root\nstaff: alice,\n  bob\nroot: admin\n")
    mark = len(t.log_lines())
    st, out, err = sendmail(t, ["-bi"], extra_env=env)
    F.check(st == 0 and "newaliases: 3 aliases" in out,
            "newaliases counts the aliases of a good file", (st, out, err))
    F.check("reloads" in out, "newaliases asks the running ternd to reload",
            out)
    F.check(ternlib.wait_for(
        lambda: any("reload --" in l for l in t.log_lines()[mark:]), 10),
        "ternd reloads after newaliases", t.log_text()[-1500:])
    st, out, err = sendmail(t, ["-bi", "-oA" + path],
                            extra_env={"TERN_CONFIG": t.conf})
    F.check(st == 0 and "3 aliases" in out, "-oA names the alias file",
            (st, out, err))


def check_bad_aliases_refused(t):
    """ternd refuses to start, and to reload, with a bad alias file."""
    path = os.path.join(t.dir, "bad-aliases")
    with open(path, "w") as f:
        f.write("ok: a\nnot an alias\n")
    t.stop()
    t.write_config({"alias_maps": path})
    p = subprocess.run([ternlib.ternd_path(), "-f", "-c", t.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, cwd=t.dir)
    out = p.stdout.decode("utf-8", "replace")
    F.check(p.returncode != 0 and "%s:2: " % path in out,
            "ternd refuses to start on a bad alias file, with FILE:LINE",
            (p.returncode, out))
    t.write_config({"alias_maps": ""})
    t.start()
    mark = len(t.log_lines())
    t.write_config({"alias_maps": path})
    t.signal(signal.SIGHUP)
    F.check(t.wait_log(r"%s:2: " % re.escape(path)) and
            any("reload failed" in l for l in t.log_lines()[mark:]),
            "a reload with a bad alias file is refused with FILE:LINE",
            t.log_text()[-1500:])
    F.check(t.running(), "ternd still runs after the refused reload")
    t.write_config({"alias_maps": ""})


def check_kill9_backlog(t):
    """A backlog in maildrop survives a kill -9 of ternd while pickup
    takes it: at the first pickup line (nothing committed yet), at the
    first commit, and at the first delivery (files committed, perhaps
    not yet removed).  Every message arrives at least once, and maildrop
    is empty in the end."""
    n = 30
    for rnd, trigger in enumerate((r"tern/pickup\[\d+\]: \S+: uid=",
                                   r"tern/cleanup\[\d+\]: \S+: message-id=",
                                   r"tern/qmgr\[\d+\]: \S+: removed")):
        t.stop()
        for i in range(n):
            st, out, err = sendmail(t, ["backlog"],
                                    "Subject: r%d-%d\n\ntoken=r%d-%d\n"
                                    % (rnd, i, rnd, i))
            if st != 0:
                F.check(False, "backlog message %d submitted" % i, err)
        F.check(len(maildrop_names(t)) == n, "the backlog waits in maildrop",
                len(maildrop_names(t)))
        mark = len(t.log_lines())
        # Started by hand, not by t.start(), which waits for the banner:
        # by then pickup may have taken the whole backlog.
        log = open(t.log_path, "ab")
        try:
            t.proc = subprocess.Popen(
                [ternlib.ternd_path(), "-f", "-c", t.conf],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=t.dir)
        finally:
            log.close()
        rx = re.compile(trigger)
        ternlib.wait_for(lambda: any(rx.search(l)
                                     for l in t.log_lines()[mark:]), 10,
                         interval=0.001)
        t.kill9()
        print("kill -9 at /%s/: %d files were left in maildrop"
              % (trigger, len(maildrop_names(t))))
        t.start()
        ternlib.wait_for(lambda: maildrop_names(t) == [], 30)
        F.check(maildrop_names(t) == [],
                "maildrop is empty after the restart", maildrop_names(t))

        def tokens():
            seen = set()
            for m in t.maildir_messages("backlog"):
                for line in m.split("\n"):
                    if line.startswith("token="):
                        seen.add(line[6:])
            return seen
        want = set("r%d-%d" % (rnd, i) for i in range(n))
        ternlib.wait_for(lambda: tokens() >= want, 30)
        F.check(tokens() >= want,
                "every backlog message is delivered at least once",
                sorted(want - tokens()))


def main():
    with Ternd(start=False) as t:
        F.section("mail dropped while ternd is stopped",
                  check_dropped_while_stopped, t)
        if not t.running():
            t.start()
        F.section("cron, mutt and -t", check_cron_and_mutt, t)
        F.section("errors and the -bp/-q messages", check_errors, t)
        F.section("sendmail -bs", check_bs, t)
        F.section("bad files in maildrop", check_corrupt, t)
        F.section("bsd-mailx or mailutils mail", check_mailx, t)
        F.section("newaliases", check_newaliases, t)
        F.section("bad alias files", check_bad_aliases_refused, t)
        F.section("kill -9 with a backlog", check_kill9_backlog, t)
    F.exit()


main()
