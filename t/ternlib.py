# SPDX-License-Identifier: ISC
"""Harness for the integration tests: run a private ternd and talk to it.

A Ternd owns a scratch directory with its own config, queue, data and
mail spool, listens on ports picked by the kernel, and is stopped (by its
own PID) when the with-block ends.  Nothing here sleeps a fixed time to
wait for an event: wait_for() polls with a bound.

    with ternlib.Ternd({"smtpd_recipient_limit": "3"}) as t:
        s = smtplib.SMTP("127.0.0.1", t.port)
        ...
        msgs = t.wait_maildir("user", 1)
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

POLL_INTERVAL = 0.05
DEFAULT_TIMEOUT = 20.0

QUEUE_ID = r"[0-9A-Za-z]{10}"


def free_port():
    """Return a TCP port on 127.0.0.1 that nobody was listening on."""
    return free_ports(1)[0]


def free_ports(n):
    """Return n distinct free ports (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=POLL_INTERVAL):
    """Call predicate until it returns something true or timeout seconds
    pass; returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def ternd_path():
    path = os.environ.get("TERND")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(os.path.dirname(here), "ternd")
    # ternd runs in its scratch directory: a relative path would break.
    return os.path.abspath(path)


def sendmail_path():
    """The sendmail built beside ternd."""
    return os.path.join(os.path.dirname(ternd_path()), "sendmail")


def submit(t, sender, rcpt, data):
    """Submit data (bytes) from sender to rcpt with sendmail -C t.conf;
    returns (exit status, output) as run() does."""
    return run([sendmail_path(), "-C", t.conf, "-f", sender, rcpt],
               input=data)


class Failures:
    """Collects check results so that one run reports every failure."""

    def __init__(self):
        self.failed = 0

    def check(self, cond, what, detail=""):
        if cond:
            print("ok: " + what)
        else:
            self.failed += 1
            print("FAIL: " + what + (": " + str(detail) if detail else ""))
        sys.stdout.flush()
        return cond

    def expect(self, reply, prefix, what):
        """Check that the last line of reply (as SMTPConn.reply() returns
        it) starts with prefix."""
        text = reply_text(reply)
        return self.check(text.startswith(prefix),
                          "%s: \"%s\"" % (what, prefix),
                          "got %r" % (reply[1],))

    def section(self, name, fn, *args):
        """Run fn(*args) as one named group of checks; an exception is a
        failure of the group, and the next group still runs."""
        print("checking " + name)
        sys.stdout.flush()
        try:
            return fn(*args)
        except Exception:
            import traceback
            self.check(False, name + " ran to the end",
                       traceback.format_exc())
            return None

    def exit(self):
        if self.failed:
            print("%d check(s) failed" % self.failed)
            sys.exit(1)
        print("all checks passed")
        sys.exit(0)


class SMTPConn:
    """A plain SMTP client for exact replies: one command, one reply.

    Unlike smtplib it sends bytes exactly as given (no dot-stuffing, no
    SIZE= added), which the protocol tests need."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rbuf = b""
        self.banner = self.reply()

    def readline(self):
        """One line without CRLF, or None at end of file."""
        while b"\n" not in self.rbuf:
            data = self.sock.recv(65536)
            if not data:
                if self.rbuf:
                    line, self.rbuf = self.rbuf, b""
                    return line.decode("utf-8", "replace")
                return None
            self.rbuf += data
        line, self.rbuf = self.rbuf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply: (code, [lines]).  code is
        None when the server closed the connection first."""
        lines = []
        while True:
            line = self.readline()
            if line is None:
                return (None, lines)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            code = None
        return (code, lines)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def cmd(self, line):
        """Send one command line and return its reply."""
        self.send(line + "\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def reply_text(reply):
    """The last line of a reply as returned by SMTPConn.reply()."""
    code, lines = reply
    return lines[-1] if lines else ""


class Ternd:
    """A private ternd instance.

    params: extra config parameters (name -> value) written to the file;
    args: extra command-line arguments (e.g. ["-o", "delivery_threads=1"]);
    start: start the daemon at once (otherwise call start()).
    """

    def __init__(self, params=None, args=(), start=True,
                 hostname="mx.example.test"):
        self.dir = tempfile.mkdtemp(prefix="tern-test-")
        self.port, self.admin_port = free_ports(2)
        self.conf = os.path.join(self.dir, "tern.conf")
        self.log_path = os.path.join(self.dir, "log")
        self.args = list(args)
        self.proc = None
        self.params = {
            "myhostname": hostname,
            "queue_directory": os.path.join(self.dir, "queue"),
            "data_directory": os.path.join(self.dir, "data"),
            "mail_spool_directory": os.path.join(self.dir, "mail") + "/",
            "smtp_listen": "127.0.0.1:%d" % self.port,
            "admin_listen": "127.0.0.1:%d" % self.admin_port,
            # The host's resolver is not the test's: a client's name is
            # looked up only where a test brings its own nameserver.
            "smtpd_peername_lookup": "no",
        }
        if params:
            self.params.update(params)
        self.write_config()
        if start:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise

    # Configuration

    def config_text(self, params=None, extra_lines=()):
        p = dict(self.params)
        if params:
            p.update(params)
        lines = ["# test instance"]
        lines += ["%s = %s" % (k, v) for k, v in p.items()]
        lines += list(extra_lines)
        return "\n".join(lines) + "\n"

    def write_config(self, params=None, extra_lines=(), text=None):
        """Rewrite the config file from self.params plus params, or with
        text exactly.  Returns the text written."""
        if text is None:
            text = self.config_text(params, extra_lines)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)
        return text

    # Process control

    def start(self, timeout=DEFAULT_TIMEOUT):
        """Start ternd and wait until the SMTP port sends a 220 banner.

        A port picked by free_ports() is in the kernel's ephemeral range,
        so while no ternd listens on it another program's outgoing
        connection may hold it for a moment: when ternd exits saying
        "Address already in use", it is started again, for up to
        timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            mark = len(self.log_text())
            try:
                return self._start_once(timeout)
            except RuntimeError:
                busy = "Address already in use" in self.log_text()[mark:]
                if not busy or time.monotonic() >= deadline:
                    raise
                print("a listening port is busy; starting ternd again")
                time.sleep(0.2)

    def _open_to_owner(self):
        """Started as root, ternd runs as mail_owner: let that account
        reach the test directory and read the files the test wrote there
        (certificates, tables).  ternd's own directories are left alone."""
        if os.geteuid() != 0:
            return
        os.chmod(self.dir, 0o755)
        own = {os.path.join(self.dir, d) for d in ("queue", "data", "mail")}
        for root, dirs, files in os.walk(self.dir):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in own]
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                path = os.path.join(root, f)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o044)

    def _start_once(self, timeout):
        if self.running():
            raise RuntimeError("ternd already running")
        self._open_to_owner()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [ternd_path(), "-f", "-c", self.conf] + self.args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.dir)
        finally:
            log.close()
        if not wait_for(self._banner_ready, timeout):
            status = self.proc.poll()
            if status is None:
                self.kill9()
            raise RuntimeError(
                "ternd did not send a 220 banner within %gs (exit status %s); "
                "log:\n%s" % (timeout, status, self.log_text()))

    def _banner_ready(self):
        if self.proc.poll() is not None:
            # It exited: stop polling and let start() report it.
            raise RuntimeError("ternd exited with status %d before it was "
                               "ready; log:\n%s"
                               % (self.proc.returncode, self.log_text()))
        try:
            with SMTPConn(self.port, timeout=5) as c:
                ok = c.banner[0] == 220
                if ok:
                    c.cmd("QUIT")
                return ok
        except OSError:
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        """Wait for the process to end; returns its exit status, or None if
        it is still running after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM and wait; returns the exit status (None if it had to be
        killed because it did not stop within timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        status = self.wait_exit(timeout)
        if status is None:
            self.kill9()
        return status

    def kill9(self):
        """Kill ternd with SIGKILL and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout=DEFAULT_TIMEOUT):
        """Stop ternd (SIGTERM) if it runs, then start it again."""
        if self.running():
            self.stop()
        self.start(timeout)

    def cleanup(self):
        self.kill9()
        if os.environ.get("TERN_KEEP_TESTDIR"):
            print("test directory kept: " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not SystemExit:
            print("ternd log at the failure:\n" + self.log_text())
        self.cleanup()
        return False

    # What it wrote

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self, pattern=None):
        """Log lines, only those matching the regexp pattern if given."""
        lines = self.log_text().splitlines()
        if pattern is None:
            return lines
        rx = re.compile(pattern)
        return [l for l in lines if rx.search(l)]

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        """Wait until a log line matches the regexp; returns the matching
        lines (empty list on timeout)."""
        return wait_for(lambda: self.log_lines(pattern), timeout)

    def maildir(self, user):
        return os.path.join(self.dir, "mail", user)

    def maildir_files(self, user, sub="new"):
        d = os.path.join(self.maildir(user), sub)
        try:
            names = sorted(n for n in os.listdir(d) if not n.startswith("."))
        except FileNotFoundError:
            return []
        return [os.path.join(d, n) for n in names]

    def maildir_messages(self, user):
        """Contents of every message in user's Maildir new/, sorted by file
        name."""
        out = []
        for path in self.maildir_files(user):
            with open(path, "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
        return out

    def wait_maildir(self, user, count, timeout=DEFAULT_TIMEOUT):
        """Wait until user's new/ holds at least count messages; returns
        the messages (fewer on timeout)."""
        wait_for(lambda: len(self.maildir_files(user)) >= count, timeout)
        return self.maildir_messages(user)


def header_block(message):
    """The header section of a message (text before the first empty
    line), with continuation lines kept."""
    return message.split("\n\n", 1)[0]


def headers(message):
    """List of (name, value) in order, continuation lines unfolded with
    their line breaks kept."""
    out = []
    for line in header_block(message).split("\n"):
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + "\n" + line)
        elif ":" in line:
            name, value = line.split(":", 1)
            out.append((name, value.lstrip(" ")))
    return out


def header(message, name):
    """The first value of header name (case-insensitive), or None."""
    for n, v in headers(message):
        if n.lower() == name.lower():
            return v
    return None


def queued_id(reply):
    """The queue ID from a '250 2.0.0 Ok: queued as ID' reply text (str or
    bytes), or None."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    m = re.search(r"queued as (" + QUEUE_ID + r")\b", reply)
    return m.group(1) if m else None


def try_send(t, body, sender="a@example.org", rcpt="user@localhost",
             timeout=30):
    """Send one message over SMTP, MAIL without parameters (so without
    SIZE); returns (code, text) of the first reply that is not a
    success, or of DATA."""
    import smtplib
    s = smtplib.SMTP("127.0.0.1", t.port, timeout=timeout)
    try:
        s.ehlo("client.example.org")
        for cmd in (lambda: s.mail(sender), lambda: s.rcpt(rcpt),
                    lambda: s.data(body)):
            code, text = cmd()
            if code >= 400:
                break
        return code, text.decode()
    finally:
        s.close()


# Programs, certificates and TLS

def have(program):
    """The full path of program if it is on PATH (or given as a path and
    executable), else None."""
    return shutil.which(program)


def run(argv, input=None, timeout=60):
    """Run a program to its end; returns (exit status, stdout + stderr as
    text).  input may be str or bytes."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    try:
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.output or b""
        return (None, out.decode("utf-8", "replace") + "\n(timed out)")
    return (p.returncode, p.stdout.decode("utf-8", "replace"))


def make_cert(directory, name="server", cn="localhost"):
    """Make a self-signed certificate for cn with openssl; returns the
    paths (cert, key).  The certificate is its own CA file."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    status, out = run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                       "-nodes", "-subj", "/CN=" + cn, "-days", "1",
                       "-keyout", key, "-out", cert])
    if status != 0:
        raise RuntimeError("openssl req failed:\n" + out)
    return cert, key


def tls_client_context(cafile=None, minimum=None, maximum=None):
    """An ssl.SSLContext for a test client: it verifies the server against
    cafile when one is given and checks nothing otherwise; minimum and
    maximum are ssl.TLSVersion values."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def _smtpconn_starttls(self, context=None, server_hostname="localhost"):
    """Start TLS on the connection after the server's 220 to STARTTLS.
    Raises ValueError if the server sent bytes the client has not read
    (a server must not answer anything before the handshake)."""
    if self.rbuf:
        raise ValueError("unread bytes before the TLS handshake: %r"
                         % self.rbuf)
    if context is None:
        context = tls_client_context()
    self.sock = context.wrap_socket(self.sock,
                                    server_hostname=server_hostname)
    return self.sock


SMTPConn.starttls = _smtpconn_starttls


class TLSConn(SMTPConn):
    """An SMTPConn for an implicit-TLS (smtps) port: the handshake comes
    first, then the banner."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT,
                 context=None, server_hostname="localhost"):
        if context is None:
            context = tls_client_context()
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = context.wrap_socket(raw,
                                            server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        self.rbuf = b""
        self.banner = self.reply()


def read_replies(conn, n):
    """Read n replies from conn; a reply with code None means the server
    closed the connection, and reading stops there."""
    out = []
    for _ in range(n):
        r = conn.reply()
        out.append(r)
        if r[0] is None:
            break
    return out


def closed_by_server(conn, timeout=DEFAULT_TIMEOUT):
    """True if the server closes conn (end of file or a reset) within
    timeout seconds, reading and dropping whatever it still sends."""
    conn.sock.settimeout(timeout)
    try:
        while conn.readline() is not None:
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except OSError:
        return False


# A private nameserver

def _dns_query(name, qtype=1):
    """A DNS query packet for name (type A by default), ID 0x7e57."""
    import struct
    q = struct.pack(">HHHHHH", 0x7e57, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def dns_rcode(port, name, qtype=1, timeout=1.0):
    """Ask the server on 127.0.0.1:port about name over UDP; returns the
    response code (0 NOERROR, 3 NXDOMAIN, ...) or None without an
    answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(_dns_query(name, qtype), ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 4 or data[:2] != b"\x7e\x57":
        return None
    return data[3] & 0x0f


class Child:
    """A server program a test runs for itself: the subclass's start()
    sets self.proc (a Popen) and returns self; stop() ends it by its own
    PID, and a with-block does both."""

    proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Dnsmasq(Child):
    """Debian's dnsmasq on a free loopback UDP port, authoritative for
    names under .test: the records given as its options
    ("--host-record=...", ...) and NXDOMAIN for every other .test name.
    Use as a with-block; it is stopped by its own PID.  dnsmasq_program()
    says whether it can run at all."""

    def __init__(self, directory, records=()):
        self.dir = directory
        self.records = list(records)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(directory, "dnsmasq.log")

    @staticmethod
    def program():
        for p in ("/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq"):
            if os.access(p, os.X_OK):
                return p
        return have("dnsmasq")

    @property
    def server(self):
        """The value for ternd's dns_server."""
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=DEFAULT_TIMEOUT):
        prog = self.program()
        if prog is None:
            raise RuntimeError("dnsmasq is not installed")
        deadline = time.monotonic() + timeout
        while True:
            self.port = _free_udp_port()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [prog, "--keep-in-foreground", "--conf-file=/dev/null",
                     "--port=%d" % self.port, "--listen-address=127.0.0.1",
                     "--bind-interfaces", "--no-resolv", "--no-hosts",
                     "--user=" + _dnsmasq_user(),
                     "--pid-file=" + os.path.join(self.dir, "dnsmasq.pid"),
                     "--local=/test/",
                     "--host-record=ready.test,127.0.0.1"] + self.records,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            finally:
                log.close()
            if wait_for(lambda: self.proc.poll() is not None or
                        dns_rcode(self.port, "ready.test") == 0, timeout):
                if self.proc.poll() is None:
                    return self
            self.stop()
            if time.monotonic() >= deadline:
                with open(self.log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                raise RuntimeError("dnsmasq did not start; log:\n" + text)


def _free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _dnsmasq_user():
    """dnsmasq drops root for this user; the current one otherwise."""
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "nobody"
