# SPDX-License-Identifier: ISC
"""Remote SMTP peers for the delivery tests.

Peer is Debian's aiosmtpd (python3-aiosmtpd) on a free loopback port,
run in this process: it records every message it accepts and answers
each RCPT with whatever the test's reply function says, so a test can
have one recipient accepted, one deferred and one refused in the same
transaction.  It offers PIPELINING on top of aiosmtpd's own keywords,
and STARTTLS when given a certificate.

    with peerlib.Peer(rcpt_reply=lambda addr, n: None) as p:
        ... p.port ...
        msgs = p.wait_messages(1)

Sink is Postfix's smtp-sink, taken from Debian's postfix package with
apt-get download and dpkg -x (no Postfix is installed or started).
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import ternlib

try:
    from aiosmtpd.controller import Controller
    HAVE_AIOSMTPD = True
except ImportError:  # pragma: no cover - reported by the tests
    HAVE_AIOSMTPD = False


class Message:
    """One message as the peer received it."""

    def __init__(self, mail_from, rcpts, content, tls, mail_options,
                 rcpt_options):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.content = content          # bytes, CRLF line ends as sent
        self.tls = tls
        self.mail_options = mail_options
        self.rcpt_options = rcpt_options

    def text(self):
        return self.content.decode("utf-8", "replace")


class _Handler:
    def __init__(self, peer):
        self.peer = peer

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        out = list(responses)
        # Offer PIPELINING: aiosmtpd reads commands one line at a time,
        # so a pipelined group is answered in order.
        out.insert(len(out) - 1, "250-PIPELINING")
        return out

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        with self.peer.lock:
            self.peer.sessions_seen.add(id(session))
            self.peer.mail_count += 1
        reply = self.peer.mail_reply(address) if self.peer.mail_reply \
            else None
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        with self.peer.lock:
            n = self.peer.rcpt_seen.get(address, 0) + 1
            self.peer.rcpt_seen[address] = n
        reply = self.peer.rcpt_reply(address, n) if self.peer.rcpt_reply \
            else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or b""
        if self.peer.data_delay:
            import asyncio
            with self.peer.lock:
                self.peer.in_data += 1
                self.peer.max_in_data = max(self.peer.max_in_data,
                                            self.peer.in_data)
            await asyncio.sleep(self.peer.data_delay)
            with self.peer.lock:
                self.peer.in_data -= 1
        msg = Message(envelope.mail_from, list(envelope.rcpt_tos), content,
                      session.ssl is not None, list(envelope.mail_options),
                      list(envelope.rcpt_options))
        with self.peer.lock:
            self.peer.messages.append(msg)
            n = len(self.peer.messages)
        if self.peer.data_reply:
            reply = self.peer.data_reply(msg)
            if reply:
                return reply
        return "250 2.0.0 Ok: queued as PEER%d" % n


class Peer:
    """aiosmtpd on 127.0.0.1; see the module comment.

    rcpt_reply(address, nth_time) returns a reply line to refuse the
    recipient ("451 4.3.0 later") or None to accept it; mail_reply(sender)
    the same for MAIL; data_reply(message) for the end of data.
    cert, key: offer STARTTLS with this certificate.  data_delay: wait
    that many seconds before answering the end of data (a slow server);
    max_in_data then says how many deliveries it held at once.
    auth=(user, password): offer AUTH and accept only those (over TLS
    when there is a certificate); auth_seen lists (mechanism, user, ok)."""

    def __init__(self, rcpt_reply=None, mail_reply=None, data_reply=None,
                 cert=None, key=None, hostname="peer.test", data_delay=0,
                 auth=None):
        if not HAVE_AIOSMTPD:
            raise RuntimeError("python3-aiosmtpd is not installed")
        self.rcpt_reply = rcpt_reply
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.data_delay = data_delay
        self.auth = auth
        self.auth_seen = []
        self.in_data = 0
        self.max_in_data = 0
        self.cert = cert
        self.key = key
        self.hostname = hostname
        self.lock = threading.Lock()
        self.messages = []
        self.rcpt_seen = {}
        self.sessions_seen = set()
        self.mail_count = 0
        self.controller = None
        self.port = None

    def start(self):
        kwargs = {"server_hostname": self.hostname, "ident": "peer"}
        if self.auth:
            from aiosmtpd.smtp import AuthResult

            def authenticator(server, session, envelope, mechanism, data):
                login = data.login.decode() if data.login else ""
                password = data.password.decode() if data.password else ""
                ok = (login, password) == tuple(self.auth)
                with self.lock:
                    self.auth_seen.append((mechanism, login, ok))
                return AuthResult(success=ok, handled=False)
            kwargs["authenticator"] = authenticator
            kwargs["auth_require_tls"] = bool(self.cert)
        if self.cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            kwargs["tls_context"] = ctx
        last = None
        for _ in range(5):
            self.port = ternlib.free_port()
            self.controller = Controller(_Handler(self), hostname="127.0.0.1",
                                         port=self.port, **kwargs)
            try:
                self.controller.start()
                return self
            except Exception as e:  # the port was taken in between
                last = e
                time.sleep(0.1)
        raise RuntimeError("aiosmtpd did not start: %r" % (last,))

    def stop(self):
        if self.controller is not None:
            try:
                self.controller.stop()
            except Exception:
                pass
            self.controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def hostport(self):
        return "[127.0.0.1]:%d" % self.port

    def wait_messages(self, n, timeout=ternlib.DEFAULT_TIMEOUT):
        """Wait until at least n messages arrived; returns them all."""
        ternlib.wait_for(lambda: len(self.messages) >= n, timeout)
        with self.lock:
            return list(self.messages)


def postfix_dir():
    """A directory with Debian's postfix package unpacked (downloaded
    with apt-get and unpacked with dpkg -x into a cache under /tmp on
    first use), or None when that cannot be done."""
    cache = os.path.join(tempfile.gettempdir(), "tern-postfix-pkg")
    sink = os.path.join(cache, "usr", "sbin", "smtp-sink")
    if os.access(sink, os.X_OK):
        return cache
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        return None
    work = tempfile.mkdtemp(prefix="tern-postfix-dl-")
    try:
        st, out = ternlib.run(["sh", "-c", "cd '%s' && apt-get download "
                               "postfix >/dev/null 2>&1" % work], timeout=120)
        debs = glob.glob(os.path.join(work, "postfix_*.deb"))
        if not debs:
            return None
        tmp = cache + ".tmp%d" % os.getpid()
        st, out = ternlib.run(["dpkg", "-x", debs[0], tmp])
        if st != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        try:
            os.rename(tmp, cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return cache if os.access(sink, os.X_OK) else None
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Sink(ternlib.Child):
    """Postfix's smtp-sink on a free loopback port, saving each message
    into a directory (-d); stopped by its own PID."""

    def __init__(self, directory, options=()):
        self.dir = directory
        self.options = list(options)
        self.proc = None
        self.port = None
        self.spool = os.path.join(directory, "sink")

    def start(self):
        pfx = postfix_dir()
        if pfx is None:
            raise RuntimeError("cannot unpack Debian's postfix package")
        os.makedirs(self.spool, exist_ok=True)
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.path.join(pfx, "usr", "lib", "postfix")
        user = []
        if os.geteuid() == 0:
            user = ["-u", "nobody"]
            # smtp-sink writes as nobody: let it reach its spool.
            os.chmod(self.dir, 0o755)
            os.chmod(self.spool, 0o777)
        for _ in range(5):
            self.port = ternlib.free_port()
            log = open(os.path.join(self.dir, "sink.log"), "ab")
            self.proc = subprocess.Popen(
                [os.path.join(pfx, "usr", "sbin", "smtp-sink")] + user +
                self.options + ["-d", self.spool + "/%M%S.",
                                "127.0.0.1:%d" % self.port, "64"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
            log.close()
            if ternlib.wait_for(lambda: self.proc.poll() is not None or
                                _accepts(self.port), 10):
                if self.proc.poll() is None:
                    return self
        raise RuntimeError("smtp-sink did not start")

    def files(self):
        out = []
        for root, _, names in os.walk(self.spool):
            out += [os.path.join(root, n) for n in names]
        return sorted(out)


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.recv(100)
        return True
    except OSError:
        return False
