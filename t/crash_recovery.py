# SPDX-License-Identifier: ISC
"""Durability: a message that got "250 2.0.0 Ok: queued as ID" survives a
kill -9 of ternd and is delivered after the restart, at least once.

Three ways to crash:
  A. one client, delivery_threads=1, kill -9 right after the last 250;
  B. 20 messages from 4 threads, kill -9 once all are acknowledged;
  C. 4 threads sending without pause, kill -9 while they still send:
     every message acknowledged before the kill must arrive.
"""

import re
import smtplib
import threading
import traceback

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
SENDER = "a@example.org"
USER = "crash"
RCPT = USER + "@localhost"
DELIVERY_TIMEOUT = 30.0


def message(token):
    return ("Subject: %s\r\n\r\ntoken=%s\r\n" % (token, token))


def count_tokens(t, tokens):
    """How many files in the Maildir carry each token."""
    counts = dict((tok, 0) for tok in tokens)
    for m in t.maildir_messages(USER):
        for line in m.split("\n"):
            if line.startswith("token="):
                tok = line[len("token="):]
                if tok in counts:
                    counts[tok] += 1
    return counts


_QID_PATTERNS = {
    "sent": r"tern/local\[\d+\]: %s: to=<[^>]*>, .*status=sent",
    "removed": r"tern/qmgr\[\d+\]: %s: removed$",
}


def qid_lines(lines, qid, what):
    """The lines that log event what ("sent" or "removed") for qid."""
    rx = re.compile(_QID_PATTERNS[what] % qid)
    return [l for l in lines if rx.search(l)]


def check_delivered(t, acked, label, mark):
    """Every (token, queue ID) in acked is delivered at least once, and
    every message that ternd delivered after the restart leaves the queue.

    mark is the number of log lines written before the restart.  A
    message delivered just before the kill may have had its removal
    committed without its "removed" line reaching the log; the Maildir
    shows that it was delivered, and nothing delivers it again.  But its
    status=sent line must be there: a crash before that line leaves the
    message in the queue, to be delivered (and logged) again."""
    tokens = [tok for tok, _ in acked]

    def done():
        counts = count_tokens(t, tokens)
        if not all(n >= 1 for n in counts.values()):
            return False
        lines = t.log_lines()
        after = lines[mark:]
        for _, qid in acked:
            if not qid:
                continue
            # The Maildir file appears before its log line is written.
            if not qid_lines(lines, qid, "sent"):
                return False
            if qid_lines(after, qid, "sent") and \
                    not qid_lines(after, qid, "removed"):
                return False
        return True

    ternlib.wait_for(done, DELIVERY_TIMEOUT)
    counts = count_tokens(t, tokens)
    missing = sorted(tok for tok, n in counts.items() if n == 0)
    F.check(not missing,
            "%s: all %d acknowledged messages delivered after the restart"
            % (label, len(acked)), "missing: %s" % missing)
    dups = dict((tok, n) for tok, n in counts.items() if n > 1)
    if dups:
        print("note: %s: delivered more than once (allowed): %s"
              % (label, dups))
    lines = t.log_lines()
    before, after = lines[:mark], lines[mark:]
    no_id = [tok for tok, qid in acked if qid is None]
    F.check(not no_id, "%s: every 250 reply names a queue ID" % label, no_id)
    stuck = []
    unlogged = []
    for tok, qid in acked:
        if qid is None:
            continue
        if qid_lines(after, qid, "sent"):
            if not qid_lines(after, qid, "removed"):
                stuck.append(qid)
        elif not qid_lines(before, qid, "sent"):
            unlogged.append(qid)
        elif not qid_lines(before, qid, "removed"):
            print("note: %s: %s was delivered just before the kill; its "
                  "\"removed\" line did not reach the log" % (label, qid))
    F.check(not stuck, "%s: every message delivered after the restart "
            "leaves the queue (\"removed\")" % label, stuck)
    F.check(not unlogged, "%s: every delivery has a status=sent line"
            % label, unlogged)


def restart_after_kill(t, label):
    """Make sure ternd is dead, start it again; returns the number of log
    lines written before the restart, or None if it did not start."""
    t.kill9()
    F.check(not t.running(), "%s: ternd killed with SIGKILL" % label)
    mark = len(t.log_lines())
    try:
        t.start()
        F.check(True, "%s: ternd restarts on the crashed queue" % label)
        return mark
    except RuntimeError as e:
        F.check(False, "%s: ternd restarts on the crashed queue" % label, e)
        return None


def send_raw(c, token):
    """One transaction on an open SMTPConn; returns the queue ID or None."""
    if reply_text(c.cmd("MAIL FROM:<%s>" % SENDER)).startswith("250") and \
            reply_text(c.cmd("RCPT TO:<%s>" % RCPT)).startswith("250") and \
            c.cmd("DATA")[0] == 354:
        c.send(message(token) + ".\r\n")
        r = reply_text(c.reply())
        if r.startswith("250 2.0.0 Ok: queued as "):
            return ternlib.queued_id(r)
    return None


def variant_a():
    label = "A"
    with Ternd(args=["-o", "delivery_threads=1"]) as t:
        acked = []
        with SMTPConn(t.port) as c:
            c.cmd("EHLO client.example.org")
            for i in range(5):
                tok = "A-%d" % i
                qid = send_raw(c, tok)
                if qid is None:
                    F.check(False, "A: message %d acknowledged" % i)
                    break
                acked.append((tok, qid))
            # Kill before anything else happens on the connection.
            t.kill9()
        F.check(len(acked) == 5, "A: 5 messages got 250 before the kill",
                len(acked))
        mark = restart_after_kill(t, label)
        if mark is not None:
            check_delivered(t, acked, label, mark)
        st = t.stop()
        F.check(st == 0, "A: SIGTERM after recovery: exit status 0", st)


def sender_thread(port, prefix, count, acked, lock, stop=None):
    """Send count messages, one smtplib session each; record each
    acknowledged (token, queue ID).  Returns quietly on errors once the
    server is gone."""
    for i in range(count):
        if stop is not None and stop.is_set():
            return
        tok = "%s-%d" % (prefix, i)
        try:
            s = smtplib.SMTP("127.0.0.1", port,
                             local_hostname="client.example.org", timeout=20)
            try:
                s.ehlo()
                s.mail(SENDER)
                s.rcpt(RCPT)
                code, resp = s.data(message(tok))
                if code == 250:
                    with lock:
                        acked.append((tok, ternlib.queued_id(resp)))
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass
            finally:
                s.close()
        except (smtplib.SMTPException, OSError):
            if stop is not None:
                return
            raise


def variant_b():
    label = "B"
    with Ternd() as t:
        acked = []
        lock = threading.Lock()
        errors = []

        def run(prefix):
            try:
                sender_thread(t.port, prefix, 5, acked, lock)
            except Exception:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=run, args=("B%d" % n,))
                   for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        t.kill9()
        F.check(not errors, "B: the 4 sending threads had no errors",
                errors[:1])
        F.check(len(acked) == 20, "B: 20 messages got 250 before the kill",
                len(acked))
        mark = restart_after_kill(t, label)
        if mark is not None:
            check_delivered(t, acked, label, mark)
        st = t.stop()
        F.check(st == 0, "B: SIGTERM after recovery: exit status 0", st)


def variant_c():
    label = "C"
    with Ternd() as t:
        acked = []
        lock = threading.Lock()
        stop = threading.Event()
        threads = [threading.Thread(target=sender_thread,
                                    args=(t.port, "C%d" % n, 200, acked, lock,
                                          stop))
                   for n in range(4)]
        for th in threads:
            th.start()
        got = ternlib.wait_for(lambda: len(acked) >= 12, 30)
        t.kill9()
        stop.set()
        for th in threads:
            th.join(30)
        F.check(got, "C: at least 12 messages got 250 before the kill",
                len(acked))
        with lock:
            snapshot = list(acked)
        print("C: %d messages acknowledged before the kill" % len(snapshot))
        mark = restart_after_kill(t, label)
        if mark is not None:
            check_delivered(t, snapshot, label, mark)
        st = t.stop()
        F.check(st == 0, "C: SIGTERM after recovery: exit status 0", st)


def main():
    for name, fn in (("A: kill -9 right after the 250, one client", variant_a),
                     ("B: 20 messages from 4 threads, then kill -9", variant_b),
                     ("C: kill -9 while 4 threads send", variant_c)):
        print("checking " + name)
        try:
            fn()
        except Exception:
            F.check(False, name + " ran to the end", traceback.format_exc())
    F.exit()


if __name__ == "__main__":
    main()
