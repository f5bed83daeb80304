# SPDX-License-Identifier: ISC
"""Shared code for the admin API tests: an HTTP client for a private ternd's
admin port, mail that stays deferred, and the outside programs the tests
check the API with (promtool from Debian's prometheus package, and npm
packages installed into a cache directory outside the source tree).

    with ternlib.Ternd(adminlib.params()) as t:
        api = adminlib.Api(t)
        status, body = api.get("/api/v1/stats")
"""

import glob
import http.client
import json
import os
import smtplib
import socket
import subprocess

import ternlib

# npm packages and Debian packages fetched for the tests live here, not
# in the source tree (which is read-only during distcheck).
CACHE_DIR = os.environ.get("TERN_TEST_CACHE",
                           os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                        "tern-test-cache"))


def params(extra=None):
    """Config for a ternd whose mail to other domains stays deferred: the
    DNS server it asks is a closed loopback port."""
    p = {"dns_server": "127.0.0.1:%d" % closed_udp_port()}
    if extra:
        p.update(extra)
    return p


def closed_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def token_path(t):
    return os.path.join(t.dir, "data", "admin.token")


def read_token(t):
    """The token ternd created in its data directory."""
    path = token_path(t)
    ternlib.wait_for(lambda: os.path.exists(path), 10)
    with open(path) as f:
        for line in f:
            words = line.split()
            if words and not words[0].startswith("#"):
                return words[-1] if len(words) == 1 else words[1]
    raise RuntimeError("no token in " + path)


class Response:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def json(self):
        try:
            return json.loads(self.data.decode("utf-8"))
        except ValueError:
            return None

    @property
    def text(self):
        return self.data.decode("utf-8", "replace")

    def __repr__(self):
        return "<%d %r>" % (self.status, self.data[:300])


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=20):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Api:
    """A client for the admin API of t (a ternlib.Ternd), with its token
    unless token is given ("" for none); port overrides the admin port
    (to go through a proxy), unix_path talks over a unix socket."""

    def __init__(self, t=None, token=None, port=None, unix_path=None):
        self.t = t
        self.port = port or (t.admin_port if t else None)
        self.unix_path = unix_path
        if token is None:
            token = read_token(t)
        self.token = token

    def conn(self):
        if self.unix_path:
            return UnixHTTPConnection(self.unix_path)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, ctype=None):
        """Send one request; body may be a dict/list (sent as JSON), str
        or bytes (sent as given).  Returns a Response."""
        h = {}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        if ctype is not None:
            h["Content-Type"] = ctype
        if headers:
            h.update(headers)
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def queue(self, query=""):
        """Every message of the listing, following cursors."""
        out = []
        cursor = None
        while True:
            q = query
            if cursor:
                q += ("&" if q else "") + "cursor=" + cursor
            r = self.get("/api/v1/queue" + ("?" + q if q else ""))
            if r.status != 200:
                raise RuntimeError("queue listing: %r" % r)
            out += r.json["messages"]
            cursor = r.json["next_cursor"]
            if not cursor:
                return out


def send(t, sender, rcpts, subject="test", body="hello\n", extra=""):
    """Send one message over SMTP; returns its queue ID."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s"
           % (sender, ", ".join("<%s>" % r for r in rcpts), subject, extra,
              body))
    with smtplib.SMTP("127.0.0.1", t.port, timeout=30) as s:
        s.ehlo("client.example.test")
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        code, reply = s.data(msg.encode("utf-8"))
    qid = ternlib.queued_id(reply)
    if code != 250 or not qid:
        raise RuntimeError("not queued: %d %r" % (code, reply))
    return qid


def wait_state(api, qid, state, timeout=20):
    """Wait until message qid is in state; returns its listing entry."""
    def probe():
        r = api.get("/api/v1/queue/" + qid)
        return r.json if r.status == 200 and r.json["state"] == state else None
    return ternlib.wait_for(probe, timeout)


def attempts(api):
    """{id: attempts} of every message."""
    return {m["id"]: m["attempts"] for m in api.queue()}


def wait_retried(api, before, timeout=30):
    """Wait until every message of before ({id: attempts}) has been tried
    again and is deferred, not active: a released message is deferred at
    once, before the qmgr takes it."""
    def probe():
        now = {m["id"]: m for m in api.queue()}
        return all(q in now and now[q]["attempts"] > n and
                   now[q]["state"] == "deferred" for q, n in before.items())
    return ternlib.wait_for(probe, timeout)


# Outside programs

def promtool():
    """Path of promtool: on PATH, or unpacked from Debian's prometheus
    package into CACHE_DIR (apt-get download, dpkg -x).  None if neither
    works."""
    p = ternlib.have("promtool")
    if p:
        return p
    unpacked = os.path.join(CACHE_DIR, "prometheus", "usr", "bin", "promtool")
    if os.access(unpacked, os.X_OK):
        return unpacked
    work = os.path.join(CACHE_DIR, "prometheus-deb")
    os.makedirs(work, exist_ok=True)
    subprocess.run(["apt-get", "download", "prometheus"], cwd=work,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    debs = glob.glob(os.path.join(work, "prometheus_*.deb"))
    if not debs:
        return None
    subprocess.run(["dpkg", "-x", debs[0],
                    os.path.join(CACHE_DIR, "prometheus")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return unpacked if os.access(unpacked, os.X_OK) else None


NPM_PACKAGES = {
    "@redocly/cli": "2.77.0",
    "@stoplight/prism-cli": "5.16.0",
    "playwright-core": "1.65.2",
}


def npm_dir():
    return os.path.join(CACHE_DIR, "npm")


def npm_install(*names):
    """Install the named npm packages (versions from NPM_PACKAGES) into
    CACHE_DIR/npm unless they are there; returns the node_modules path,
    or None if npm failed."""
    d = npm_dir()
    mods = os.path.join(d, "node_modules")
    missing = [n for n in names
               if not os.path.exists(os.path.join(mods, n, "package.json"))]
    if missing:
        os.makedirs(d, exist_ok=True)
        specs = ["%s@%s" % (n, NPM_PACKAGES[n]) for n in missing]
        status, out = ternlib.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", d,
             "--cache", os.path.join(CACHE_DIR, "npm-cache")] + specs,
            timeout=900)
        if status != 0:
            print("npm install failed:\n" + out[-3000:])
            return None
    return mods


def npm_bin(name):
    return os.path.join(npm_dir(), "node_modules", ".bin", name)
