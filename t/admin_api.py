# SPDX-License-Identifier: ISC
"""The admin API against a running ternd: authentication, the queue
listing with its filters and cursors, one message's envelope, headers
and content, hold/release/requeue/delete one at a time and in bulk,
flush, config and reload, stats, readiness, a unix-socket listener, and
bad input (malformed JSON, wrong types, huge bodies, unknown IDs, path
tricks, wrong tokens, floods) after which the queue is as it was and
mail still flows.  curl is used where an operator would use it.

The checks that only read or make valid changes are also run through a
Prism proxy by t/admin_openapi.py: see run_valid()."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import adminlib
import ternlib
from adminlib import Api

F = ternlib.Failures()
REMOTE = "remote.test"


def ids(msgs):
    return [m["id"] for m in msgs]


def fill(t, n, sender_fmt="a%d@sender.test", rcpts=("b@remote.test",)):
    """Queue n messages to remote domains; returns their IDs in order."""
    return [adminlib.send(t, sender_fmt % i, list(rcpts),
                          subject="msg %d" % i) for i in range(n)]


def wait_all_deferred(api, qids):
    def probe():
        msgs = {m["id"]: m for m in api.queue()}
        return all(q in msgs and msgs[q]["state"] == "deferred" for q in qids)
    return ternlib.wait_for(probe, 30)


def check_error(r, status, what, code=None, field=None):
    """A JSON error with the right status (and code and field)."""
    body = r.json
    ok = (r.status == status and isinstance(body, dict) and
          isinstance(body.get("error"), dict) and
          isinstance(body["error"].get("code"), str) and
          isinstance(body["error"].get("message"), str) and
          r.header("Content-Type") == "application/json")
    if ok:
        # The shape admin/openapi.yaml gives every error.
        ok = set(body) == {"error"} and set(body["error"]) <= {
            "code", "message", "field", "details"}
    if ok and code:
        ok = body["error"]["code"] == code
    if ok and field:
        ok = body["error"].get("field") == field
    return F.check(ok, "%s: %d %s" % (what, status, code or ""), repr(r))


# Checks whose requests are all valid by admin/openapi.yaml; api may talk
# to ternd directly or through a proxy.

def check_listing(t, api, qids):
    msgs = api.queue()
    F.check(ids(msgs) == qids, "the listing has every message in ID order",
            ids(msgs))
    m = msgs[0]
    F.check(m["state"] == "deferred" and m["sender"] == "a0@sender.test" and
            m["size"] > 0 and isinstance(m["arrival_time"], int) and
            re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", m["arrival"]),
            "a message shows state, sender, size and arrival", m)
    rc = m["recipients"][0]
    F.check(rc["address"] == "b@remote.test" and rc["state"] == "deferred"
            and rc["attempts"] >= 1 and rc["reason"] and rc["next_attempt"],
            "a recipient shows address, state, attempts, reason and next "
            "attempt", rc)

    # Pages: limit and cursor, stable while mail arrives.
    r = api.get("/api/v1/queue?limit=2")
    F.check(r.status == 200 and len(r.json["messages"]) == 2 and
            r.json["next_cursor"], "limit=2 gives two and a cursor", r)
    first = r.json
    late = adminlib.send(t, "late@sender.test", ["b@remote.test"])
    seen = ids(first["messages"])
    cursor = first["next_cursor"]
    while cursor:
        r = api.get("/api/v1/queue?limit=2&cursor=" + cursor)
        seen += ids(r.json["messages"])
        cursor = r.json["next_cursor"]
    F.check(seen == qids + [late],
            "paging sees each message once, new mail at the end", seen)
    # Once it has been tried: a message being delivered is left alone.
    r = ternlib.wait_for(lambda: (lambda x: x if x.status != 409 else None)(
        api.delete("/api/v1/queue/" + late)), 30)
    F.check(r and r.status == 200, "the late message is deleted", r)


def check_filters(t, api, qids):
    def count(q):
        r = api.get("/api/v1/queue?" + q)
        F.check(r.status == 200, "filter %s answers 200" % q, r)
        return len(r.json["messages"]) if r.status == 200 else -1

    n = len(qids)
    F.check(count("state=deferred") == n, "state=deferred matches all")
    F.check(count("state=hold") == 0, "state=hold matches none")
    F.check(count("state=hold,deferred") == n, "a list of states")
    F.check(count("sender=A1%40SENDER") == 1, "sender substring, any case")
    F.check(count("sender=re:%5Ea%5B12%5D%40") == 2, "sender re: pattern")
    F.check(count("recipient=b%40remote") == n, "recipient substring")
    F.check(count("recipient=re:%5Ec%40") == 1, "recipient re: pattern")
    F.check(count("domain=other.test") == 1, "domain of a recipient")
    F.check(count("domain=REMOTE.test") == n, "domain ignores case")
    F.check(count("older_than=1h") == 0, "older_than=1h matches none")
    time.sleep(1.1)
    F.check(count("older_than=1s&state=deferred") == n,
            "older_than=1s matches all")


def check_show(t, api, qid):
    r = api.get("/api/v1/queue/" + qid)
    F.check(r.status == 200 and r.json["id"] == qid, "show one message", r)
    hdrs = {h["name"].lower(): h["value"] for h in r.json.get("headers", [])}
    F.check(hdrs.get("subject") == "msg 0", "its headers are listed", hdrs)
    F.check("received" in hdrs and "message-id" in hdrs,
            "with the headers cleanup added", hdrs)
    F.check(r.json.get("protocol") == "ESMTP" and
            r.json.get("client_addr") == "127.0.0.1",
            "and the client it came from", r.json)
    r = api.get("/api/v1/queue/%s/message" % qid)
    F.check(r.status == 200 and
            r.header("Content-Type") == "message/rfc822" and
            b"Subject: msg 0\n" in r.data and b"\nhello\n" in r.data,
            "the raw message as message/rfc822", r)
    check_error(api.get("/api/v1/queue/0000000000"), 404, "an unknown ID",
                "not_found")
    check_error(api.get("/api/v1/queue/0000000000/message"), 404,
                "the content of an unknown ID", "not_found")


def check_changes(t, api, qid):
    r = api.post("/api/v1/queue/%s/hold" % qid)
    F.check(r.status == 200 and r.json["state"] == "hold", "hold", r)
    check_error(api.post("/api/v1/queue/%s/hold" % qid), 409,
                "hold on hold", "conflict")
    F.check(t.wait_log(qid + r": placed on hold, token=admin, "
                       r"client=127\.0\.0\.1"),
            "the hold is logged with the token's name")
    r = api.get("/api/v1/queue?state=hold")
    F.check(ids(r.json["messages"]) == [qid], "it is listed as held", r)
    r = api.post("/api/v1/queue/%s/release" % qid, body={})
    F.check(r.status == 200 and r.json["state"] in ("deferred", "incoming"),
            "release", r)
    check_error(api.post("/api/v1/queue/%s/release" % qid), 409,
                "release of a message not on hold", "conflict")
    F.check(t.wait_log(qid + r": released from hold, token=admin"),
            "the release is logged")
    before = r.json["attempts"]
    F.check(ternlib.wait_for(lambda: api.get("/api/v1/queue/" + qid).json[
        "attempts"] > before, 30), "the released message is tried again")
    adminlib.wait_state(api, qid, "deferred")
    r = api.post("/api/v1/queue/%s/requeue" % qid)
    F.check(r.status == 200 and r.json["state"] == "incoming", "requeue", r)
    F.check(t.wait_log(qid + r": requeued, token=admin"),
            "the requeue is logged")
    F.check(adminlib.wait_state(api, qid, "deferred"),
            "the requeued message is tried again")


def check_bulk(t, api, qids):
    r = api.post("/api/v1/queue/hold", body={"domain": "other.test"})
    F.check(r.status == 200 and r.json == {"matched": 1, "changed": 1},
            "bulk hold by domain", r)
    r = api.post("/api/v1/queue/hold", body={"state": "deferred,hold"})
    F.check(r.status == 200 and r.json["matched"] == len(qids) and
            r.json["changed"] == len(qids) - 1,
            "bulk hold counts what matched and what changed", r)
    r = api.post("/api/v1/queue/release", body={"sender": "re:^a0@"})
    F.check(r.status == 200 and r.json["changed"] == 1,
            "bulk release by sender pattern", r)
    before = {m["id"]: m["attempts"] for m in api.queue()
              if m["state"] == "hold"}
    r = api.post("/api/v1/queue/release", body={"all": True})
    F.check(r.status == 200 and r.json["changed"] == len(qids) - 1,
            "bulk release of all", r)
    F.check(t.wait_log(r"bulk release: matched=%d, changed=%d, token=admin"
                       % (len(qids), len(qids) - 1)),
            "the bulk change is logged")
    F.check(adminlib.wait_retried(api, before),
            "released messages are tried again")
    r = api.post("/api/v1/queue/requeue", body={"recipient": "c@other"})
    F.check(r.status == 200 and r.json["changed"] == 1, "bulk requeue", r)


def check_flush(t, api, qids):
    # The requeued message must have been tried before the flush.
    ternlib.wait_for(lambda: all(m["state"] == "deferred"
                                 for m in api.queue()), 30)
    before = adminlib.attempts(api)
    mark = len(t.log_lines())
    r = api.post("/api/v1/flush")
    F.check(r.status == 200 and r.json["domain"] is None and
            r.json["messages"] >= 0, "flush everything", r)

    def retried():
        lines = t.log_lines()[mark:]
        return all(any(q + ": to=<b@remote.test>" in l and
                       "status=deferred" in l for l in lines) for q in qids)
    F.check(ternlib.wait_for(retried, 30), "flush makes every message retry")
    adminlib.wait_retried(api, before)
    r = api.post("/api/v1/flush", body={"domain": "other.test"})
    F.check(r.status == 200 and r.json == {"domain": "other.test",
                                           "messages": 1},
            "flush one domain", r)


def check_config(t, api):
    r = api.get("/api/v1/config")
    F.check(r.status == 200 and
            r.json["parameters"].get("myhostname") == "mx.example.test" and
            "myhostname" in r.json["set"] and
            r.json["path"] == t.conf, "config shows effective values", r)
    for name, value in r.json["parameters"].items():
        if any(w in name for w in ("password", "secret", "passphrase")):
            F.check(value in ("", "********"), name + " is masked", value)
    t.write_config({"smtpd_banner": "$myhostname ESMTP changed"})
    r = api.post("/api/v1/config/reload")
    F.check(r.status == 200 and r.json["changed"] == ["smtpd_banner"],
            "reload names what changed", r)
    with ternlib.SMTPConn(t.port) as c:
        F.check("ESMTP changed" in c.banner[1][0],
                "the reloaded banner is in force", c.banner)
    t.write_config({"smtpd_banner": "$myhostname ESMTP changed",
                    "smtpd_recipient_limit": "many"})
    r = api.post("/api/v1/config/reload")
    check_error(r, 400, "a bad config is refused", "invalid_config")
    det = (r.json or {}).get("error", {}).get("details", [])
    F.check(any(t.conf + ":" in d and "smtpd_recipient_limit" in d
                for d in det), "with file:line", det)
    with ternlib.SMTPConn(t.port) as c:
        F.check("ESMTP changed" in c.banner[1][0],
                "the old config stays in force", c.banner)
    t.write_config({"smtpd_banner": "$myhostname ESMTP changed"})


def check_stats(t, api, n):
    r = api.get("/api/v1/stats")
    s = r.json
    F.check(r.status == 200, "stats answers", r)
    F.check(s["version"] and s["uptime"] > 0, "version and uptime", s)
    F.check(s["totals"]["received"] >= n and s["totals"]["deferred"] >= n and
            s["totals"]["connections"] >= n, "totals since start",
            s["totals"])
    F.check(all(len(v) == 60 for k, v in s["per_minute"].items()
                if k != "end") and sum(s["per_minute"]["received"]) >= n,
            "per-minute counts for the last hour", s["per_minute"])
    F.check(s["queue"]["deferred"] + s["queue"]["incoming"] +
            s["queue"]["active"] == n and s["queue"]["total"] == n,
            "queue counts per state", s["queue"])
    F.check(len(s["queue_history"]["deferred"]) == 60 and
            s["queue_history"]["deferred"][-1] is not None,
            "queue sizes of the last hour", s["queue_history"])
    F.check(s["pools"]["delivery"]["threads"] >= 1 and
            s["pools"]["cleanup"]["threads"] >= 1 and
            "open" in s["connections"], "pools and connections", s["pools"])
    r = api.get("/readyz")
    F.check(r.status == 200 and r.json == {"status": "ready"}, "readyz", r)
    r = api.get("/healthz")
    F.check(r.status == 200 and r.json == {"status": "ok"}, "healthz", r)


def check_metrics(t, api):
    r = api.get("/metrics")
    F.check(r.status == 200 and r.header("Content-Type").startswith(
        "text/plain; version=0.0.4"), "metrics in Prometheus text", r)
    for fam in ("tern_messages_received_total", "tern_queue_messages",
                "tern_delivery_delay_seconds_bucket",
                "tern_acceptance_latency_seconds_count"):
        F.check(fam in r.text, "metrics have " + fam)
    return r.text


def check_delete(t, api, qid):
    r = api.delete("/api/v1/queue/" + qid)
    F.check(r.status == 200 and r.json == {"id": qid, "result": "removed"},
            "delete", r)
    check_error(api.delete("/api/v1/queue/" + qid), 404,
                "delete of a deleted message", "not_found")
    F.check(t.wait_log(qid + r": removed, token=admin"),
            "the removal is logged")
    r = api.post("/api/v1/queue/delete", body={"sender": "a1@"})
    F.check(r.status == 200 and r.json["changed"] == 1, "bulk delete", r)


def run_valid(t, api, direct):
    """The checks with valid requests: through api (maybe a proxy), with
    direct a client of ternd itself for setup."""
    qids = fill(t, 4)
    qids.append(adminlib.send(t, "a4@sender.test",
                              ["b@remote.test", "c@other.test"],
                              subject="msg 4"))
    F.check(wait_all_deferred(direct, qids), "five messages are deferred")
    F.section("listing", check_listing, t, api, qids)
    F.section("filters", check_filters, t, api, qids)
    F.section("one message", check_show, t, api, qids[0])
    F.section("changes", check_changes, t, api, qids[0])
    F.section("bulk changes", check_bulk, t, api, qids)
    F.section("flush", check_flush, t, api, qids)
    F.section("config", check_config, t, api)
    F.section("stats", check_stats, t, api, len(qids))
    F.section("metrics", check_metrics, t, api)
    F.section("delete", check_delete, t, api, qids[0])


# Bad input, straight to ternd.

def raw_request(port, text, timeout=10):
    """Send text as the whole request; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(text.encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d+)", head)
    return (int(m.group(1)) if m else None, body)


def check_auth(t, api):
    anon = Api(t, token="")
    r = anon.get("/api/v1/stats")
    check_error(r, 401, "no token", "unauthorized")
    F.check((r.header("WWW-Authenticate") or "").startswith("Bearer"),
            "401 names the Bearer scheme", r.headers)
    check_error(Api(t, token="x" * 64).get("/api/v1/queue"), 401,
                "a wrong token", "invalid_token")
    check_error(anon.get("/api/v1/queue",
                         headers={"Authorization": "Basic YWRtaW46YWRtaW4="}),
                401, "Basic authorization", "unauthorized")
    check_error(anon.get("/api/v1/queue?access_token=" + api.token), 400,
                "a token in the query string", "token_in_query",
                "access_token")
    check_error(api.get("/api/v1/queue?token=" + api.token), 400,
                "a token in the query string, even with the header",
                "token_in_query", "token")
    check_error(anon.get("/metrics"), 401, "metrics need the token")
    check_error(anon.get("/readyz"), 401, "readyz needs the token")
    F.check(anon.get("/healthz").status == 200, "healthz needs no token")
    r = anon.get("/")
    F.check(r.status == 200 and b"<html" in r.data.lower(),
            "the status page needs no token", r)

    # A second, read-only token; the file is read again when it changes.
    path = adminlib.token_path(t)
    with open(path) as f:
        text = f.read()
    with open(path, "a") as f:
        f.write("grafana %s read\n" % ("r" * 40))
    ro = Api(t, token="r" * 40)
    F.check(ro.get("/api/v1/stats").status == 200,
            "a read-only token may read")
    check_error(ro.post("/api/v1/flush"), 403, "a read-only token may not "
                "change things", "forbidden")
    check_error(ro.get("/api/v1/queue/0000000000/message"), 403,
                "nor read message content", "forbidden")
    with open(path, "w") as f:
        f.write(text)
    check_error(ro.get("/api/v1/stats"), 401, "a removed token is refused")

    # curl, as the recipes show it.
    status, out = ternlib.run(["curl", "-sS", "-H", "Authorization: Bearer "
                               + api.token, "http://127.0.0.1:%d/api/v1/stats"
                               % t.admin_port])
    F.check(status == 0 and '"totals"' in out, "curl with the token", out)


def check_bad_input(t, api):
    before = ids(api.queue())
    P = "/api/v1/queue/"
    check_error(api.post("/api/v1/flush", body="{bad json",
                         ctype="application/json"), 400, "malformed JSON",
                "malformed_json")
    check_error(api.post("/api/v1/flush", body="[1,2]",
                         ctype="application/json"), 400,
                "a body that is not an object", "malformed_json")
    check_error(api.post("/api/v1/flush", body='{"domain":"a","domain":"b"}',
                         ctype="application/json"), 400,
                "a duplicate key", "malformed_json")
    check_error(api.post("/api/v1/flush", body={"domain": 5}), 400,
                "a domain of the wrong type", "invalid_field", "domain")
    check_error(api.post("/api/v1/flush", body={"domian": "x"}), 400,
                "an unknown field", "unknown_field", "domian")
    check_error(api.post("/api/v1/flush", body="domain=x",
                         ctype="application/x-www-form-urlencoded"), 415,
                "a form body", "unsupported_media_type")
    check_error(api.post("/api/v1/queue/hold", body={"state": 3}), 400,
                "bulk with a number for a state", "invalid_field", "state")
    check_error(api.post("/api/v1/queue/hold", body={"state": "lost"}), 400,
                "bulk with an unknown state", "invalid_field", "state")
    check_error(api.post("/api/v1/queue/delete", body={}), 400,
                "bulk delete without a filter", "missing_filter")
    check_error(api.post("/api/v1/queue/delete"), 400,
                "bulk delete without a body", "missing_body")
    check_error(api.post("/api/v1/queue/delete", body={"all": "yes"}), 400,
                "all of the wrong type", "invalid_field", "all")
    check_error(api.post("/api/v1/queue/delete",
                         body={"older_than": "soon"}), 400,
                "a bad older_than", "invalid_field", "older_than")
    check_error(api.post("/api/v1/config/reload", body={"force": True}), 400,
                "reload with an unknown field", "unknown_field", "force")
    check_error(api.post("/api/v1/flush", body="x" * 200000,
                         ctype="application/json"), 413, "a huge body",
                "body_too_large")
    r = api.request("POST", "/api/v1/flush", body=b"{" + b" " * 100000 + b"}",
                    headers={"Transfer-Encoding": "chunked",
                             "Content-Type": "application/json"})
    F.check(r.status in (413, 400), "a huge chunked body is refused", r)
    for q in ("limit=0", "limit=1001", "limit=ten", "limit=-1",
              "state=lost", "sender=re:(", "older_than=x", "cursor=..%2F",
              "bogus=1", "domain="):
        r = api.get("/api/v1/queue?" + q)
        check_error(r, 400, "listing with " + q)
    check_error(api.get(P + "short"), 400, "a malformed ID", "invalid_id",
                "id")
    check_error(api.get(P + "0000000000"), 404, "an unknown ID",
                "not_found")
    check_error(api.post(P + "0000000000/hold"), 404, "hold of an unknown ID")
    check_error(api.post(P + "0000000000/hold", body={"x": 1}), 400,
                "hold with an unknown field", "unknown_field")
    check_error(api.delete(P + "0000000000"), 404, "delete of an unknown ID")
    check_error(api.request("PUT", "/api/v1/flush"), 405, "PUT on flush",
                "method_not_allowed")
    F.check(api.request("PUT", "/api/v1/flush").header("Allow") == "POST",
            "405 says Allow: POST")
    r = api.request("PATCH", P + before[0])
    check_error(r, 405, "PATCH on a message")
    F.check(r.header("Allow") == "GET, HEAD, DELETE", "with Allow",
            r.header("Allow"))
    check_error(api.get("/api/v1/nothing"), 404, "an unknown path",
                "not_found")
    check_error(api.get("/api/v2/queue"), 404, "another version")

    # Paths that try to climb out.  http.client and raw requests send
    # them exactly as written.
    for path in ("/api/v1/queue/../../etc", "/api/v1/queue/%2e%2e/%2e%2e/etc",
                 "/api/v1/queue/..%2F..%2Fetc%2Fpasswd", "/../etc/passwd",
                 "/api/v1/./queue"):
        status, body = raw_request(
            t.admin_port, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: "
            "Bearer %s\r\nConnection: close\r\n\r\n" % (path, api.token))
        F.check(status in (400, 404) and b'"error"' in body,
                "path %s is refused" % path, (status, body[:200]))
    status, out = ternlib.run(["curl", "-sS", "--path-as-is", "-o",
                               "/dev/null", "-w", "%{http_code}", "-H",
                               "Authorization: Bearer " + api.token,
                               "http://127.0.0.1:%d/api/v1/queue/../../etc"
                               % t.admin_port])
    F.check(out.strip() == "400", "curl --path-as-is with ..", out)
    F.check(ids(api.queue()) == before, "bad input changed nothing")


def check_flood(t, api):
    """Many clients at once, some without tokens: every answer is one
    of the expected ones, and SMTP still works meanwhile."""
    results = []
    lock = threading.Lock()

    def worker(i):
        a = Api(t, token=api.token if i % 3 else "wrong-token-" + "x" * 20)
        for _ in range(25):
            try:
                r = a.get("/api/v1/stats" if i % 2 else "/api/v1/queue")
                st = r.status
            except OSError as e:
                st = str(e)
            with lock:
                results.append(st)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for th in threads:
        th.start()
    qid = adminlib.send(t, "during@flood.test", ["user@mx.example.test"])
    for th in threads:
        th.join(120)
    bad = [s for s in results if s not in (200, 401, 503)]
    F.check(len(results) == 600 and not bad,
            "600 requests in a flood get 200 or 401", bad[:5])
    F.check(t.wait_maildir("user", 1), "mail sent during the flood is "
            "delivered (%s)" % qid)
    F.check(api.get("/healthz").status == 200, "the API still answers")


def check_shutdown():
    """Requests while ternd stops get 200 or 503 (or find the port
    closed), never anything else, and ternd exits cleanly."""
    with ternlib.Ternd(adminlib.params()) as t:
        api = Api(t)
        fill(t, 3)
        results = []
        stop = threading.Event()

        def worker():
            while not stop.is_set():
                try:
                    r = api.get("/api/v1/queue" if len(results) % 2
                                else "/api/v1/stats")
                    results.append(r.status)
                    if r.status == 503:
                        results.append(r.json["error"]["code"])
                except OSError:
                    results.append("closed")
                    return

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        ternlib.wait_for(lambda: len(results) > 20, 10)
        status = t.stop()
        stop.set()
        for th in threads:
            th.join(30)
        odd = [r for r in results
               if r not in (200, 503, "shutting_down", "closed")]
        F.check(status == 0, "ternd stops cleanly under API load", status)
        print("answers while stopping: %r" % sorted(set(map(str, results))))
        F.check(not odd, "answers while stopping are 200 or 503 "
                "shutting_down", odd[:5])


def check_unix_socket():
    d = ternlib.tempfile.mkdtemp(prefix="tern-sock-")
    os.chmod(d, 0o777)
    sock = os.path.join(d, "admin.sock")
    with ternlib.Ternd(adminlib.params()) as t:
        t.write_config({"admin_listen": "127.0.0.1:%d, unix:%s"
                        % (t.admin_port, sock)})
        t.restart()
        F.check(os.path.exists(sock), "the unix socket is created")
        u = Api(token="", unix_path=sock)
        r = u.get("/api/v1/stats")
        F.check(r.status == 200, "root may use the socket without a token", r)
        qid = adminlib.send(t, "u@sender.test", ["x@remote.test"])
        adminlib.wait_state(u, qid, "deferred")
        r = u.post("/api/v1/queue/%s/hold" % qid)
        F.check(r.status == 200, "and change things through it", r)
        F.check(t.wait_log(qid + r": placed on hold, token=uid=0, "
                           r"client=unix"), "the peer's uid is logged")
        status, out = ternlib.run(["curl", "-sS", "--unix-socket", sock,
                                   "http://localhost/api/v1/queue"])
        F.check(status == 0 and qid in out, "curl --unix-socket", out)
        t.stop()
        F.check(not os.path.exists(sock), "the socket is removed at stop")
    subprocess.run(["rm", "-rf", d])


def check_refuse_open():
    """A non-loopback admin_listen without tokens is refused at start."""
    t = ternlib.Ternd(start=False)
    try:
        t.write_config({"admin_listen": "0.0.0.0:%d" % t.admin_port,
                        "admin_token_file": ""})
        try:
            t.start(timeout=10)
            started = True
        except RuntimeError:
            started = False
        F.check(not started and
                t.log_lines("admin_token_file is empty"),
                "ternd refuses an open admin_listen without a token",
                t.log_text()[-500:])
        t.write_config({"admin_listen": "127.0.0.1:%d" % t.admin_port,
                        "admin_token_file": ""})
        t.start()
        r = Api(t, token="").get("/api/v1/stats")
        F.check(r.status == 200, "on loopback, no token file means no "
                "token needed", r)
    finally:
        t.cleanup()


def check_token_file(t):
    path = adminlib.token_path(t)
    st = os.stat(path)
    F.check(st.st_mode & 0o777 == 0o600, "the token file is mode 0600",
            oct(st.st_mode))
    F.check(t.log_lines(r"created admin_token_file .*admin\.token"),
            "its creation is logged")
    F.check(not t.log_lines(adminlib.read_token(t)),
            "the token itself is not logged")


def main():
    with ternlib.Ternd(adminlib.params()) as t:
        api = Api(t)
        F.section("token file", check_token_file, t)
        run_valid(t, api, api)
        F.section("authentication", check_auth, t, api)
        F.section("bad input", check_bad_input, t, api)
        F.section("flood", check_flood, t, api)
        F.check(t.stop() == 0, "ternd stops cleanly")
    F.section("shutdown", check_shutdown)
    F.section("unix socket", check_unix_socket)
    F.section("open listener refused", check_refuse_open)
    F.exit()


if __name__ == "__main__":
    main()
