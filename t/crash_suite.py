# SPDX-License-Identifier: ISC
"""Crash suite: kill -9 ternd at random moments, many times, under load.

Several SMTP clients (threads with smtplib, local recipient) and a
sendmail submitter send without pause while ternd is killed with SIGKILL
at a random moment 50-500 ms after each restart, and started again.  A
message counts as accepted when it got a 250 reply to the end of DATA or
when sendmail exited 0 (its maildrop file got its final name).  At the
end ternd runs once more until its queue and maildrop are empty, and
every accepted message must be in the Maildir at least once: zero lost.
Duplicates are allowed (a crash between delivery and removal delivers
again) and their number is printed.  Messages that got no 250 (the
connection was cut) may or may not arrive and are not counted.

KILLS (environment) sets the number of kills, 20 by default;
contrib/crash-suite runs it with 200.  CRASH_SEED fixes the random
delays.
"""

import os
import random
import smtplib
import subprocess
import sys
import threading
import time
import traceback

import adminlib
import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "load@example.org"
USER = "crash"
RCPT = USER + "@localhost"
CLIENTS = 4
SENDMAILS = 1
DRAIN_TIMEOUT = 120.0


def message(token):
    return "Subject: %s\r\n\r\nload message\r\ntoken=%s\r\n" % (token, token)


class Load:
    """The clients and what they were told."""

    def __init__(self, t):
        self.t = t
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.accepted = []         # tokens acknowledged
        self.tried = 0             # transactions started
        self.smtp_ok = 0
        self.sendmail_ok = 0
        self.sendmail_fail = 0
        self.errors = []           # unexpected exceptions (a test bug)
        self.threads = []

    def accept(self, token, via):
        with self.lock:
            self.accepted.append(token)
            if via == "smtp":
                self.smtp_ok += 1
            else:
                self.sendmail_ok += 1

    def smtp_client(self, n):
        i = 0
        while not self.stop.is_set():
            s = None
            try:
                s = smtplib.SMTP("127.0.0.1", self.t.port,
                                 local_hostname="client.example.org",
                                 timeout=10)
                s.ehlo()
                # A few transactions per connection, then a new one.
                for _ in range(5):
                    if self.stop.is_set():
                        break
                    tok = "S%d-%d" % (n, i)
                    i += 1
                    with self.lock:
                        self.tried += 1
                    s.mail(SENDER)
                    s.rcpt(RCPT)
                    code, _ = s.data(message(tok))
                    if code == 250:
                        self.accept(tok, "smtp")
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass
            except (smtplib.SMTPException, OSError):
                # ternd is down or was killed mid-session: try again soon.
                self.stop.wait(0.02)
            except Exception:
                self.errors.append(traceback.format_exc())
                return
            finally:
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def sendmail_client(self, n):
        env = dict(os.environ)
        env["TERN_CONFIG"] = self.t.conf
        i = 0
        while not self.stop.is_set():
            tok = "M%d-%d" % (n, i)
            i += 1
            with self.lock:
                self.tried += 1
            try:
                p = subprocess.run(
                    [ternlib.sendmail_path(), "-i", "-f", SENDER, USER],
                    input=message(tok).replace("\r\n", "\n").encode(),
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    env=env, timeout=30, cwd=self.t.dir)
            except subprocess.TimeoutExpired:
                with self.lock:
                    self.sendmail_fail += 1
                continue
            except Exception:
                self.errors.append(traceback.format_exc())
                return
            if p.returncode == 0:
                self.accept(tok, "sendmail")
            else:
                with self.lock:
                    self.sendmail_fail += 1
                    if self.sendmail_fail <= 3:
                        print("note: sendmail exited %d: %s"
                              % (p.returncode,
                                 p.stderr.decode("utf-8", "replace").strip()))

    def start(self):
        for n in range(CLIENTS):
            self.threads.append(threading.Thread(target=self.smtp_client,
                                                 args=(n,), daemon=True))
        for n in range(SENDMAILS):
            self.threads.append(threading.Thread(target=self.sendmail_client,
                                                 args=(n,), daemon=True))
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(60)
        return not any(th.is_alive() for th in self.threads)


class Delivered:
    """The tokens in the Maildir (new/ and cur/), read incrementally:
    each file is read once."""

    def __init__(self, t):
        self.t = t
        self.seen = {}             # file name -> token (None if none)

    def counts(self):
        """token -> number of files holding it."""
        for sub in ("new", "cur"):
            d = os.path.join(self.t.maildir(USER), sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                # A file moved from new/ to cur/ keeps its base name.
                base = name.split(":", 1)[0]
                if name.startswith(".") or base in self.seen:
                    continue
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        text = f.read().decode("utf-8", "replace")
                except OSError:
                    continue
                tok = None
                for line in text.split("\n"):
                    if line.startswith("token="):
                        tok = line[len("token="):].strip()
                        break
                self.seen[base] = tok
        out = {}
        for tok in self.seen.values():
            if tok is not None:
                out[tok] = out.get(tok, 0) + 1
        return out


def maildrop_files(t):
    d = os.path.join(t.dir, "queue", "maildrop")
    try:
        return [n for n in os.listdir(d) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def queue_size(api):
    try:
        return len(api.queue())
    except Exception as e:
        print("note: queue listing failed: %s" % e)
        return None


def main():
    if not os.access(ternlib.sendmail_path(), os.X_OK):
        print("SKIP: no sendmail program at " + ternlib.sendmail_path())
        sys.exit(77)
    kills = int(os.environ.get("KILLS", "20"))
    seed = os.environ.get("CRASH_SEED")
    seed = int(seed) if seed else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("crash suite: %d kills, seed %d (CRASH_SEED=%d repeats the delays)"
          % (kills, seed, seed))
    began = time.monotonic()
    with Ternd() as t:
        load = Load(t)
        load.start()
        done = 0
        restart_failed = None
        for k in range(kills):
            time.sleep(rng.uniform(0.05, 0.5))
            if not t.running():
                restart_failed = "ternd exited by itself before kill %d" \
                    % (k + 1)
                break
            t.kill9()
            done += 1
            try:
                t.start(timeout=60)
            except RuntimeError as e:
                restart_failed = "restart after kill %d: %s" % (done, e)
                break
        stopped = load.finish()
        F.check(stopped, "the load threads stopped")
        F.check(not load.errors, "the load threads had no unexpected "
                "errors", load.errors[:1])
        F.check(restart_failed is None, "ternd restarted after each of "
                "%d kills" % kills, restart_failed)
        F.check(done == kills, "%d kills done" % kills, done)
        if not t.running():
            try:
                t.start(timeout=60)
            except RuntimeError as e:
                F.check(False, "ternd starts for the final run", e)
                F.exit()
        with load.lock:
            accepted = list(load.accepted)
        F.check(len(accepted) >= kills,
                "messages were accepted during the run (%d; %d by SMTP, "
                "%d by sendmail)" % (len(accepted), load.smtp_ok,
                                     load.sendmail_ok), len(accepted))
        F.check(load.sendmail_ok > 0, "some sendmail submissions exited 0",
                load.sendmail_fail)
        api = adminlib.Api(t)
        want = set(accepted)
        delivered = Delivered(t)

        def drained():
            counts = delivered.counts()
            if any(counts.get(tok, 0) == 0 for tok in want):
                return False
            if maildrop_files(t):
                return False
            return queue_size(api) == 0

        # Local delivery of the backlog takes its time: allow for at
        # least 100 messages a second on top of the fixed bound.
        ternlib.wait_for(drained, DRAIN_TIMEOUT + len(want) / 100.0,
                         interval=0.2)
        counts = delivered.counts()
        lost = sorted(tok for tok in want if counts.get(tok, 0) == 0)
        dup_tokens = [tok for tok in want if counts.get(tok, 0) > 1]
        extra_copies = sum(counts[tok] - 1 for tok in dup_tokens)
        unacked = [tok for tok in counts if tok not in want]
        left_drop = maildrop_files(t)
        left_queue = queue_size(api)
        elapsed = time.monotonic() - began
        print("kills: %d" % done)
        print("accepted: %d (smtp %d, sendmail %d); attempts %d"
              % (len(want), load.smtp_ok, load.sendmail_ok, load.tried))
        print("lost: %d" % len(lost))
        print("duplicates: %d messages delivered more than once, %d extra "
              "copies" % (len(dup_tokens), extra_copies))
        print("delivered without a 250 (allowed): %d" % len(unacked))
        print("elapsed: %.1fs" % elapsed)
        F.check(not lost, "zero lost: every accepted message is in the "
                "Maildir", "%d lost: %s" % (len(lost), lost[:20]))
        F.check(not left_drop, "maildrop is empty at the end", left_drop[:5])
        F.check(left_queue == 0, "the queue is empty at the end", left_queue)
        if lost:
            print("log lines for the first lost tokens:")
            for tok in lost[:3]:
                for line in t.log_lines(tok):
                    print("  " + line)
            os.environ["TERN_KEEP_TESTDIR"] = "1"
        st = t.stop()
        F.check(st == 0, "SIGTERM at the end: exit status 0", st)
    F.exit()


if __name__ == "__main__":
    main()
