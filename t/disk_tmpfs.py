# SPDX-License-Identifier: ISC
"""A queue on a small tmpfs that is filled up by another file.

With the usual reserve, MAIL gets "452 4.3.1 Insufficient system storage"
(the message's declared SIZE no longer fits beside message_size_limit's
reserve), what was accepted before is delivered, and mail is taken again
once the space returns.

Without a reserve the queue's own write fails instead: the message gets
"451 4.3.0" after DATA, RocksDB stops taking writes, and ternd reopens
the queue by itself once there is room again, without a restart and
without losing the deferred message it held all along."""

import os
import smtplib
import subprocess
import sys
import tempfile

import threading

import adminlib
import peerlib
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


def fill(mnt, leave):
    """Fill mnt with a file until about leave bytes are free."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def send_unsized(t, token, size):
    """Send without the SIZE parameter, so that MAIL cannot judge it."""
    body = "Subject: %s\r\n\r\ntoken=%s\r\n" % (token, token)
    return ternlib.try_send(t, body + ("z" * 998 + "\r\n") * size)


def queued_ids(t):
    return sorted(m["id"] for m in adminlib.Api(t).queue())


def commit_fails(mnt):
    closed = ternlib.free_port()
    with Ternd(params={"queue_directory": os.path.join(mnt, "queue2"),
                       "message_size_limit": "0", "queue_minfree": "0",
                       "relayhost": "[127.0.0.1]:%d" % closed}) as t:
        # One message stays deferred in the queue from start to end.
        deferred = adminlib.send(t, "a@example.org", ["far@example.net"])
        F.check(ternlib.wait_for(
            lambda: t.log_lines("%s: .*status=deferred" % deferred)),
            "a message to a dead relay host is deferred")

        filler = fill(mnt, 300 * 1024)
        code, text = send_unsized(t, "during", 2048)
        F.check(code == 451 and "4.3.0" in text,
                "a message the queue cannot write gets 451 4.3.0 after DATA",
                (code, text))
        F.check(t.wait_log("queue commit failed"),
                "the failed write is logged")
        os.unlink(filler)

        # The queue is reopened within a second or two of the space
        # coming back; poll with a bound rather than wait.
        got = []
        F.check(ternlib.wait_for(
            lambda: got.append(send(t, "after", 5)) or got[-1][0] == 250),
            "mail is taken again without a restart", got[-1:])
        F.check(t.wait_log("database .* reopened"),
                "the reopen is logged")
        F.check(ternlib.wait_for(lambda: delivered(t, "after")),
                "and delivered")
        F.check(not delivered(t, "during"), "the refused one never was")
        F.check(deferred in queued_ids(t),
                "the deferred message is still queued")
        t.restart()
        F.check(deferred in queued_ids(t),
                "and still there after a restart")


def fill_up(mnt):
    """Fill mnt to the last byte."""
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def outcome_written_late(mnt):
    """A delivery that ends while the queue cannot be written: its
    outcome is kept and written once the queue takes writes again, so
    the message is removed and not sent a second time."""
    gate = threading.Event()

    def hold(msg):
        gate.wait(60)
        return None

    with peerlib.Peer(data_reply=hold) as p, \
            Ternd(params={"queue_directory": os.path.join(mnt, "queue3"),
                          "message_size_limit": "0", "queue_minfree": "0",
                          "relayhost": "[127.0.0.1]:%d" % p.port}) as t:
        held = adminlib.send(t, "a@example.org", ["far@example.net"])
        F.check(p.wait_messages(1), "the peer holds the delivery")
        filler = fill_up(mnt)
        code, text = send_unsized(t, "breaks", 64)
        F.check(code == 451, "a message the queue cannot write gets 451",
                (code, text))
        F.check(t.wait_log("queue: open queue .*; trying again every"),
                "the reopen fails while the disk is full")
        gate.set()
        F.check(t.wait_log("%s: cannot update queue: .*trying again" % held),
                "the delivery's outcome cannot be written")
        os.unlink(filler)
        F.check(t.wait_log("%s: removed" % held),
                "and is written once the queue is reopened")
        F.check(ternlib.wait_for(lambda: held not in queued_ids(t)),
                "the message has left the queue")
        t.restart()
        F.check(held not in queued_ids(t), "and does not come back")
        F.check(len(p.messages) == 1, "the peer got it once",
                len(p.messages))


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
    F.section("a queue write that fails", commit_fails, mnt)
    F.section("an outcome written late", outcome_written_late, mnt)
finally:
    subprocess.run(["umount", mnt])
    os.rmdir(mnt)
F.exit()
