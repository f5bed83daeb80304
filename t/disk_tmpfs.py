# SPDX-License-Identifier: ISC
"""A queue on a small tmpfs that is filled up by another file: MAIL gets
"452 4.3.1 Insufficient system storage" (the message's declared SIZE no
longer fits beside message_size_limit's reserve), what was accepted
before is delivered, and mail is taken again once the space returns."""

import os
import smtplib
import subprocess
import sys
import tempfile

import ternlib
from ternlib import Ternd

F = ternlib.Failures()


def send(t, token, size=200):
    s = smtplib.SMTP("127.0.0.1", t.port, timeout=30)
    try:
        s.ehlo("client.example.org")
        body = "Subject: %s\n\ntoken=%s\n" % (token, token)
        body += ("y" * 999 + "\n") * size
        try:
            s.sendmail("a@example.org", ["user@localhost"], body)
            return 250, ""
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code, e.smtp_error.decode()
    finally:
        s.close()


def delivered(t, token):
    return any(("token=%s\n" % token) in m
               for m in t.maildir_messages("user"))


def full_disk(mnt):
    with Ternd(params={"queue_directory": os.path.join(mnt, "queue"),
                       "message_size_limit": "2000000"}) as t:
        code, _ = send(t, "before")
        F.check(code == 250, "a message is accepted while there is room")
        F.check(ternlib.wait_for(lambda: delivered(t, "before")),
                "and delivered")
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        filler = os.path.join(mnt, "filler")
        # Leave less than one and a half message_size_limit free.
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 2500000))
        code, text = send(t, "during")
        F.check(code == 452 and "4.3.1" in text,
                "MAIL gets 452 4.3.1 on a full file system", (code, text))
        os.unlink(filler)
        code, _ = send(t, "after")
        F.check(code == 250, "mail is taken again once there is room")
        F.check(ternlib.wait_for(lambda: delivered(t, "after")),
                "and delivered")
        F.check(not delivered(t, "during"), "the refused one never was")


if os.geteuid() != 0:
    print("SKIP: mounting a tmpfs needs root")
    sys.exit(77)
mnt = tempfile.mkdtemp(prefix="tern-tmpfs-")
r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755",
                    "tmpfs", mnt], capture_output=True, text=True)
if r.returncode != 0:
    print("SKIP: cannot mount a tmpfs here: %s" % r.stderr.strip())
    os.rmdir(mnt)
    sys.exit(77)
try:
    F.section("full file system", full_disk, mnt)
finally:
    subprocess.run(["umount", mnt])
    os.rmdir(mnt)
F.exit()
