# SPDX-License-Identifier: ISC
"""Started as root, ternd gives its directories to mail_owner and runs as
that account before it accepts mail; the queue is not readable by
others, and delivered mail belongs to mail_owner.  A mail_owner that
does not exist stops it with a clear error."""

import os
import pwd
import smtplib
import stat
import subprocess
import sys

import ternlib
from ternlib import Ternd

F = ternlib.Failures()


def proc_uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def drops_to_owner():
    owner = pwd.getpwnam("nobody")
    with Ternd(params={"mail_owner": "nobody"}, start=False) as t:
        # The temporary directory must be reachable by the mail owner.
        os.chmod(t.dir, 0o755)
        t.start()
        uids = proc_uids(t.pid)
        F.check(uids and all(u == owner.pw_uid for u in uids),
                "ternd runs as nobody (real, effective, saved, fs)",
                str(uids))
        F.check(t.wait_log(r"running as nobody"), "the log says so")
        for sub in ("queue", "data"):
            st = os.stat(os.path.join(t.dir, sub))
            F.check(st.st_uid == owner.pw_uid, "%s belongs to nobody" % sub)
            F.check(stat.S_IMODE(st.st_mode) & 0o077 == 0,
                    "%s is not readable by others" % sub,
                    oct(st.st_mode))
        s = smtplib.SMTP("127.0.0.1", t.port, timeout=20)
        s.sendmail("a@example.org", ["user@localhost"],
                   "Subject: owned\n\nbody\n")
        s.quit()
        F.check(ternlib.wait_for(lambda: t.maildir_files("user")),
                "the message is delivered")
        for path in t.maildir_files("user"):
            F.check(os.stat(path).st_uid == owner.pw_uid,
                    "the mailbox file belongs to nobody")


def unknown_owner():
    t = Ternd(params={"mail_owner": "no-such-user-tern"}, start=False)
    try:
        r = subprocess.run([ternlib.ternd_path(), "-f", "-c", t.conf],
                           capture_output=True, text=True, timeout=20)
        F.check(r.returncode == 1, "ternd exits 1", str(r.returncode))
        F.check("mail_owner no-such-user-tern: no such user" in r.stderr,
                "the error names mail_owner", r.stderr)
    finally:
        t.cleanup()


if os.geteuid() != 0:
    print("SKIP: dropping privileges needs root")
    sys.exit(77)
F.section("drops to mail_owner", drops_to_owner)
F.section("unknown mail_owner", unknown_owner)
F.exit()
