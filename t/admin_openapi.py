# SPDX-License-Identifier: ISC
"""admin/openapi.yaml against the server: the document passes
`redocly lint`, and the API checks of t/admin_api.py that send valid
requests run through a Prism proxy (`prism proxy --errors`) in front of
ternd, which turns any response that breaks its schema into an error
that the checks see.  The npm packages go into a cache directory
outside the source tree (adminlib.CACHE_DIR)."""

import os
import re
import signal
import subprocess
import sys

import adminlib
import admin_api
import ternlib

F = admin_api.F
SPEC = os.path.join(os.environ.get("TERN_SRCDIR",
                                   os.path.dirname(os.path.dirname(
                                       os.path.abspath(__file__)))),
                    "admin", "openapi.yaml")


def lint():
    status, out = ternlib.run([adminlib.npm_bin("redocly"), "lint",
                               "--format", "stylish", SPEC], timeout=300)
    F.check(status == 0, "redocly lint passes", out[-3000:])
    F.check(not re.search(r"You have \d+ warning", out), "without warnings",
            out[-3000:])


class Prism:
    """prism proxy on a free port in front of ternd's admin port."""

    def __init__(self, t, directory):
        self.port = ternlib.free_port()
        self.log_path = os.path.join(directory, "prism.log")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [adminlib.npm_bin("prism"), "proxy", "--errors",
                 "-h", "127.0.0.1", "-p", str(self.port), SPEC,
                 "http://127.0.0.1:%d" % t.admin_port],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("prism exited:\n" + self.log())
        try:
            r = adminlib.Api(token="", port=self.port).get("/healthz")
            return r.status == 200
        except OSError:
            return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class CheckedApi(adminlib.Api):
    """An Api whose every response is also checked for Prism's verdict:
    with --errors a response that breaks the document becomes a 500
    naming the violation, and a softer one carries sl-violations."""

    def request(self, *a, **kw):
        r = adminlib.Api.request(self, *a, **kw)
        violations = r.header("sl-violations")
        bad = violations or (r.status >= 500 and b"Violation" in r.data) \
            or (r.status == 422 and b"Invalid request" in r.data)
        F.check(not bad, "%s %s matches admin/openapi.yaml" % (a[0], a[1]),
                "%d %s %s" % (r.status, violations, r.data[:800]))
        return r


def main():
    mods = adminlib.npm_install("@redocly/cli", "@stoplight/prism-cli")
    if not F.check(mods is not None, "the npm packages are installed"):
        F.exit()
    F.section("lint", lint)
    with ternlib.Ternd(adminlib.params()) as t:
        direct = adminlib.Api(t)
        prism = Prism(t, t.dir)
        try:
            if not F.check(ternlib.wait_for(prism.ready, 120),
                           "prism proxy starts", prism.log()[-2000:]):
                F.exit()
            api = CheckedApi(t, port=prism.port)
            admin_api.run_valid(t, api, direct)
            anon = CheckedApi(t, token="", port=prism.port)
            r = anon.get("/")
            F.check(r.status == 200, "the status page through prism", r)
            anon.get("/status.js")
            anon.get("/status.css")
        finally:
            prism.stop()
            if F.failed:
                print("prism log:\n" + prism.log()[-4000:])
    F.exit()


if __name__ == "__main__":
    main()
