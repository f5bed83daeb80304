# SPDX-License-Identifier: ISC
"""A queue on an ext4 file system that the kernel turns read-only under
ternd, as errors=remount-ro does after an I/O error (here triggered
through /sys/fs/ext4/DEV/trigger_fs_error).

Mail gets "451 4.3.0" while the file system is read-only (after DATA
first, when the queue write fails; at MAIL from then on), ternd keeps
running and answering the admin API, and stops cleanly.  Started on the
read-only file system it refuses with the reason.  Once the file system
is checked and mounted again, the deferred message it held is still
there."""

import os
import smtplib
import subprocess
import sys
import tempfile

import adminlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True)


def mail_reply(t):
    s = smtplib.SMTP("127.0.0.1", t.port, timeout=30)
    try:
        s.ehlo("client.example.org")
        code, text = s.mail("a@example.org")
        return code, text.decode()
    finally:
        s.close()


def writable(path):
    try:
        with open(os.path.join(path, "probe"), "w"):
            pass
        os.unlink(os.path.join(path, "probe"))
        return True
    except OSError:
        return False


def queued_ids(t):
    return sorted(m["id"] for m in adminlib.Api(t).queue())


def read_only(image, mnt, dev):
    closed = ternlib.free_port()
    params = {"queue_directory": os.path.join(mnt, "queue"),
              "relayhost": "[127.0.0.1]:%d" % closed}
    with Ternd(params=params) as t:
        deferred = adminlib.send(t, "a@example.org", ["far@example.net"])
        F.check(ternlib.wait_for(
            lambda: t.log_lines("%s: .*status=deferred" % deferred)),
            "a message to a dead relay host is deferred")

        trigger = "/sys/fs/ext4/%s/trigger_fs_error" % dev
        with open(trigger, "w") as f:
            f.write("tern test\n")
        F.check(not writable(mnt), "the kernel made the file system read-only")

        # The kernel's emergency read-only state does not show in
        # statvfs, so the first message learns it from the queue write.
        code, text = ternlib.try_send(t, "Subject: ro\r\n\r\nhello\r\n")
        F.check(code == 451 and "4.3.0" in text,
                "a message gets 451 4.3.0 on a read-only queue",
                (code, text))
        code, text = mail_reply(t)
        F.check(code == 451 and "4.3.0" in text,
                "after that, MAIL itself gets 451 4.3.0", (code, text))
        # The reason is the write's error (EROFS, or EIO from a journal
        # that stopped) or, once the reopen failed, the open's.
        F.check(t.wait_log(r"queue .* cannot be written \(.*(Read-only file "
                           r"system|Input/output error).*\); refusing mail"),
                "the refusal is logged with its reason",
                t.log_lines("refusing|commit failed|queue:"))
        F.check(t.wait_log("queue: open queue .*Read-only file system; "
                           "trying again every"),
                "the failing reopen is logged")
        F.check(deferred in queued_ids(t),
                "the deferred message is still listed")
        api = adminlib.Api(t)
        r = api.get("/readyz")
        F.check(r.status == 503 and "cannot be written" in
                r.json["error"]["message"], "/readyz says 503 and why",
                r)
        r = api.get("/metrics")
        F.check("\ntern_queue_writable 0\n" in r.data.decode(),
                "/metrics has tern_queue_writable 0")
        F.check(t.stop() == 0, "ternd stops cleanly", t.log_text()[-2000:])

        mark = len(t.log_text())
        try:
            t.start(timeout=5)
            started = True
        except RuntimeError:
            started = False
        F.check(not started, "ternd will not start on a read-only queue")
        F.check("Read-only file system" in t.log_text()[mark:],
                "and says why", t.log_text()[mark:][-1000:])

        # What an administrator does: unmount, check, mount again.
        r = sh("umount", mnt)
        F.check(r.returncode == 0, "umount", r.stderr)
        r = sh("e2fsck", "-fy", image)
        F.check(r.returncode in (0, 1), "e2fsck repairs the file system",
                r.stdout + r.stderr)
        r = sh("mount", "-o", "loop,errors=remount-ro", image, mnt)
        F.check(r.returncode == 0, "mounted again", r.stderr)
        t.start()
        F.check(deferred in queued_ids(t),
                "the deferred message survived the read-only spell")
        F.check(mail_reply(t)[0] == 250, "and mail is taken again")
        F.check("\ntern_queue_writable 1\n" in
                adminlib.Api(t).get("/metrics").data.decode(),
                "/metrics has tern_queue_writable 1")


if os.geteuid() != 0:
    print("SKIP: mounting a file system needs root")
    sys.exit(77)
for tool in ("mkfs.ext4", "e2fsck", "losetup"):
    if not ternlib.have(tool):
        print("SKIP: %s is missing" % tool)
        sys.exit(77)
work = tempfile.mkdtemp(prefix="tern-ro-")
os.chmod(work, 0o755)  # for mail_owner, which ternd runs as
image = os.path.join(work, "queue.img")
mnt = os.path.join(work, "mnt")
os.mkdir(mnt)
with open(image, "wb") as f:
    f.truncate(64 * 1024 * 1024)
r = sh("mkfs.ext4", "-q", "-F", image)
if r.returncode == 0:
    r = sh("mount", "-o", "loop,errors=remount-ro", image, mnt)
if r.returncode != 0:
    print("SKIP: cannot make and mount an ext4 image here: %s"
          % r.stderr.strip())
    os.unlink(image)
    os.rmdir(mnt)
    os.rmdir(work)
    sys.exit(77)
try:
    loop = sh("findmnt", "-n", "-o", "SOURCE", mnt).stdout.strip()
    dev = os.path.basename(loop)
    if not os.path.exists("/sys/fs/ext4/%s/trigger_fs_error" % dev):
        print("SKIP: this kernel cannot be told to fail %s" % dev)
        sys.exit(77)
    F.section("read-only queue file system", read_only, image, mnt, dev)
finally:
    if os.path.ismount(mnt):
        sh("umount", mnt)
    os.unlink(image)
    os.rmdir(mnt)
    os.rmdir(work)
F.exit()
