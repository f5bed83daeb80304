# SPDX-License-Identifier: ISC
"""Faults of the remote SMTP peer: each time the message is deferred
with Postfix's reason, then delivered on a later try, once.

The peer is a small scripted SMTP server in this process (a raw socket,
so that it can misbehave in ways a real server library will not): the
first connection misbehaves, the ones after it are served normally.

  drop:  the connection is closed in the middle of DATA (a large body);
  stall: no reply to the end of data, past smtp_data_done_timeout;
  4xx:   451 to the end of data, then 250 on the next try;
  421:   421 as the greeting, then a normal greeting on the next try.

The sender is local and must get no notice: a deferral within the
queue lifetime sends no bounce.
"""

import smtplib
import socket
import threading
import time

import ternlib
from ternlib import Ternd

F = ternlib.Failures()
SENDER = "sender@localhost"
RETRY = {"minimal_backoff_time": "1s",
         "maximal_backoff_time": "2s",
         "queue_run_delay": "1s",
         "smtp_data_done_timeout": "2s",
         "smtp_data_xfer_timeout": "2s"}
STALL_LIMIT = 30.0


class ScriptedPeer:
    """An SMTP server on 127.0.0.1 whose n-th connection (from 0) does
    script[n]; connections past the script are served normally.  Messages
    that got a 250 to the end of data are in messages."""

    def __init__(self, script):
        self.script = list(script)
        self.lock = threading.Lock()
        self.messages = []
        self.connections = 0
        self.done = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def hostport(self):
        return "[127.0.0.1]:%d" % self.port

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        return False

    def _accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                n = self.connections
                self.connections += 1
                self.conns.append(conn)
            what = self.script[n] if n < len(self.script) else "ok"
            threading.Thread(target=self._serve, args=(conn, what),
                             daemon=True).start()

    def _serve(self, conn, what):
        try:
            conn.settimeout(STALL_LIMIT)
            self._session(conn, what)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _session(self, conn, what):
        buf = [b""]

        def line():
            while b"\n" not in buf[0]:
                data = conn.recv(65536)
                if not data:
                    return None
                buf[0] += data
            l, buf[0] = buf[0].split(b"\n", 1)
            return l.rstrip(b"\r").decode("utf-8", "replace")

        def send(text):
            conn.sendall(text.encode("utf-8") + b"\r\n")

        if what == "421":
            send("421 4.3.2 peer.test Service not available, closing")
            return
        send("220 peer.test ESMTP scripted")
        sender, rcpts = None, []
        while True:
            cmd = line()
            if cmd is None:
                return
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                send("250-peer.test")
                send("250-8BITMIME")
                send("250 SIZE 52428800")
            elif verb == "HELO":
                send("250 peer.test")
            elif verb == "MAIL":
                sender, rcpts = cmd, []
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(cmd)
                send("250 2.1.5 Ok")
            elif verb == "DATA":
                send("354 End data with <CR><LF>.<CR><LF>")
                if what == "drop":
                    # Read a little of the body, then hang up.
                    got = len(buf[0])
                    while got < 65536:
                        data = conn.recv(65536)
                        if not data:
                            break
                        got += len(data)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\1\0\0\0\0\0\0\0")
                    return
                body = self._read_data(conn, buf)
                if body is None:
                    return
                if what == "stall":
                    # Say nothing until the client gives up.
                    deadline = time.monotonic() + STALL_LIMIT
                    while time.monotonic() < deadline:
                        if not conn.recv(65536):
                            return
                    return
                if what == "4xx":
                    send("451 4.3.0 Error: queue file write error")
                    what = "ok"
                    continue
                with self.lock:
                    self.messages.append((sender, rcpts, body))
                    n = len(self.messages)
                send("250 2.0.0 Ok: queued as PEER%d" % n)
            elif verb in ("RSET", "NOOP"):
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Error: command not recognized")

    @staticmethod
    def _read_data(conn, buf):
        while True:
            if buf[0].startswith(b".\r\n"):
                buf[0] = buf[0][3:]
                return b""
            end = buf[0].find(b"\r\n.\r\n")
            if end >= 0:
                body = buf[0][:end + 2]
                buf[0] = buf[0][end + 5:]
                return body
            data = conn.recv(65536)
            if not data:
                return None
            buf[0] += data


def send(t, rcpt, body):
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
        s.sendmail(SENDER, [rcpt], body)


def fault(name, script, rcpt, reason_rx, big=False):
    with ScriptedPeer(script) as peer:
        params = dict(RETRY)
        params["relayhost"] = peer.hostport
        with Ternd(params) as t:
            token = "fault-" + name
            body = "Subject: %s\r\n\r\ntoken=%s\r\n" % (token, token)
            if big:
                body += ("x" * 76 + "\r\n") * 8000
            began = time.monotonic()
            send(t, rcpt, body)
            rrx = rcpt.replace(".", r"\.")
            deferred = t.wait_log(r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1"
                                  r"\]:%d, .*dsn=4\.[0-9.]+, status=deferred "
                                  r"\(%s" % (rrx, peer.port, reason_rx), 30)
            F.check(deferred, "%s: deferred with the reason \"%s\""
                    % (name, reason_rx), t.log_lines(r"to=<%s>" % rrx))
            sent = t.wait_log(r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
                              r":%d, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 "
                              r"Ok: queued as PEER1\)" % (rrx, peer.port), 40)
            F.check(sent, "%s: delivered on a later try" % name,
                    t.log_lines(r"to=<%s>" % rrx))
            print("%s: sent %.1fs after the submission, %d connections"
                  % (name, time.monotonic() - began, peer.connections))
            lines = t.log_lines(r"to=<%s>" % rrx)
            order = [l for l in lines if "status=" in l]
            F.check(order and "status=deferred" in order[0] and
                    "status=sent" in order[-1] and
                    len([l for l in order if "status=sent" in l]) == 1,
                    "%s: deferred first, sent once, last" % name, order)
            F.check(t.wait_log(r"removed"), "%s: the message leaves the "
                    "queue" % name)
            with peer.lock:
                got = list(peer.messages)
            F.check(len(got) == 1 and ("token=" + token).encode() in got[0][2],
                    "%s: the peer accepted the message once" % name,
                    len(got))
            F.check(not t.log_lines(r"status=bounced|non-delivery"),
                    "%s: nothing bounced" % name,
                    t.log_lines(r"status=bounced|non-delivery"))
            F.check(not t.maildir_files("sender"),
                    "%s: the sender got no notice" % name)


def main():
    F.section("connection dropped in the middle of DATA", fault, "drop",
              ["drop"], "drop@remote.test",
              r"lost connection with 127\.0\.0\.1\[127\.0\.0\.1\] while "
              r"sending (message body|end of data)", True)
    F.section("no reply to the end of data", fault, "stall",
              ["stall"], "stall@remote.test",
              r"conversation with 127\.0\.0\.1\[127\.0\.0\.1\] timed out "
              r"while sending end of data -- message may be sent more than "
              r"once\)")
    F.section("451 to the end of data, then 250", fault, "4xx", ["4xx"],
              "soft@remote.test",
              r"host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.3\.0 Error: "
              r"queue file write error \(in reply to end of DATA command\)\)")
    F.section("421 as the greeting", fault, "421", ["421"],
              "busy@remote.test",
              r"host 127\.0\.0\.1\[127\.0\.0\.1\] refused to talk to me: "
              r"421 4\.3\.2 peer\.test Service not available, closing\)")
    F.section("two faults in a row", fault, "421+drop", ["421", "drop"],
              "twice@remote.test",
              r"host 127\.0\.0\.1\[127\.0\.0\.1\] refused to talk to me", True)
    F.exit()


if __name__ == "__main__":
    main()
