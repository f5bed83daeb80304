# SPDX-License-Identifier: ISC
"""ternctl and postqueue against a running ternd: every ternctl command
in text and --json, errors with the API's message and a non-zero exit,
the config found as ternd finds it (-c, $TERN_CONFIG), the unix-socket
listener, and postqueue -p / -j in Postfix's formats, -f and -s."""

import json
import os
import re
import subprocess
import tempfile

import adminlib
import ternlib

F = ternlib.Failures()
HERE = os.path.dirname(os.path.abspath(ternlib.ternd_path()))
TERNCTL = os.path.join(HERE, "ternctl")
POSTQUEUE = os.path.join(HERE, "postqueue")


def run(prog, conf, *args, env=None):
    """Run prog -c conf args; returns (status, stdout, stderr)."""
    argv = [prog] + (["-c", conf] if conf else []) + list(args)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ctl(t, *args, **kw):
    return run(TERNCTL, t.conf, *args, **kw)


def check_ternctl(t, api, qids):
    st, out, err = ctl(t, "stats")
    F.check(st == 0 and "queue:" in out and "deferred=3" in out,
            "ternctl stats", out + err)
    st, out, err = ctl(t, "--json", "stats")
    F.check(st == 0 and json.loads(out)["queue"]["deferred"] == 3,
            "ternctl --json stats", out + err)
    st, out, err = ctl(t, "queue", "list")
    F.check(st == 0 and all(q in out for q in qids) and
            "3 messages" in out and "Host or domain name not found" in out,
            "ternctl queue list", out + err)
    st, out, err = ctl(t, "queue", "list", "--domain", "other.test", "--json")
    F.check(st == 0 and [m["id"] for m in json.loads(out)] == [qids[2]],
            "ternctl queue list with a filter, --json after the words",
            out + err)
    st, out, err = ctl(t, "queue", "show", qids[0])
    F.check(st == 0 and "Subject: msg 0" in out and "client:" in out,
            "ternctl queue show", out + err)
    st, out, err = ctl(t, "--json", "queue", "show", qids[0])
    F.check(st == 0 and json.loads(out)["id"] == qids[0],
            "ternctl --json queue show", out + err)
    st, out, err = ctl(t, "queue", "show", "0000000000")
    F.check(st == 1 and "no message 0000000000" in err,
            "an unknown ID: exit 1 with the API's message", (st, err))
    st, out, err = ctl(t, "queue", "hold", qids[0])
    F.check(st == 0 and out.strip() == qids[0] + ": hold",
            "ternctl queue hold", out + err)
    st, out, err = ctl(t, "queue", "hold", qids[0])
    F.check(st == 1 and "already on hold" in err, "hold twice fails",
            (st, out, err))
    st, out, err = ctl(t, "queue", "release", qids[0])
    F.check(st == 0 and qids[0] in out, "ternctl queue release", out + err)
    F.check(ternlib.wait_for(lambda: api.get("/api/v1/queue/" + qids[0]).json[
        "state"] == "deferred", 20), "it is deferred again")
    # A message may be in the middle of a retry, and a hold does not
    # take a message out of a delivery under way: hold until all are.
    st, out, err = ctl(t, "queue", "hold", "--domain", "remote.test")
    F.check(st == 0 and "3 matched" in out, "ternctl queue hold by filter",
            out + err)

    def all_held():
        ctl(t, "queue", "hold", "--domain", "remote.test")
        return all(m["state"] == "hold" for m in api.queue())
    F.check(ternlib.wait_for(all_held, 20), "all three end up on hold")
    before = adminlib.attempts(api)
    st, out, err = ctl(t, "queue", "release", "--all")
    F.check(st == 0 and "3 changed" in out, "ternctl queue release --all",
            out + err)
    F.check(adminlib.wait_retried(api, before), "they are tried again")
    st, out, err = ctl(t, "queue", "requeue", qids[1])
    F.check(st == 0 and "incoming" in out, "ternctl queue requeue",
            out + err)
    st, out, err = ctl(t, "queue", "hold")
    F.check(st == 2 and "usage" in err, "hold without IDs or filter is a "
            "usage error", (st, err))
    ternlib.wait_for(lambda: all(m["state"] == "deferred"
                                 for m in api.queue()), 30)
    before = adminlib.attempts(api)
    st, out, err = ctl(t, "queue", "flush")
    F.check(st == 0 and out.startswith("flush:"), "ternctl queue flush",
            out + err)
    F.check(adminlib.wait_retried(api, before), "the flush retries them")
    st, out, err = ctl(t, "--json", "queue", "flush", "other.test")
    F.check(st == 0 and json.loads(out) == {"domain": "other.test",
                                            "messages": 1},
            "ternctl queue flush DOMAIN", out + err)
    t.write_config({"smtpd_banner": "$myhostname ESMTP via ternctl"})
    st, out, err = ctl(t, "reload")
    F.check(st == 0 and out.strip() == "reloaded; smtpd_banner",
            "ternctl reload", out + err)
    t.write_config({"smtpd_banner": "$myhostname ESMTP via ternctl",
                    "delivery_threads": "zero"})
    st, out, err = ctl(t, "--json", "reload")
    F.check(st == 1 and t.conf + ":" in err and "delivery_threads" in err,
            "a bad reload: exit 1 with file:line", (st, out, err))
    t.write_config({"smtpd_banner": "$myhostname ESMTP via ternctl"})
    st, out, err = ctl(t, "config")
    F.check(st == 0 and "myhostname = mx.example.test" in out,
            "ternctl config", out[:200] + err)
    env = dict(os.environ, TERN_CONFIG=t.conf)
    st, out, err = run(TERNCTL, None, "stats", env=env)
    F.check(st == 0 and "queue:" in out, "ternctl finds $TERN_CONFIG",
            out + err)
    st, out, err = ctl(t, "--token", "x" * 40, "stats")
    F.check(st == 1 and "not valid" in err, "a wrong --token", err)
    st, out, err = ctl(t, "queue", "delete", qids[1])
    F.check(st == 0 and out.strip() == qids[1] + ": removed",
            "ternctl queue delete", out + err)
    qids.remove(qids[1])


def check_postqueue(t, api, qids):
    # A flush may have made it active for a moment: hold it once it is
    # deferred again.
    F.check(ternlib.wait_for(lambda: api.post("/api/v1/queue/%s/hold"
                                              % qids[0]).status == 200, 20),
            "the message is put on hold")
    st, out, err = run(POSTQUEUE, t.conf, "-p")
    lines = out.split("\n")
    F.check(st == 0 and lines[0] == "-Queue ID- --Size-- ----Arrival Time---- "
            "-Sender/Recipient-------", "postqueue -p header", out + err)
    F.check(re.match(r"^%s!\s+\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  "
                     r"a0@sender\.test$" % qids[0], lines[1]),
            "a held message has '!', size, arrival and sender", lines[1:3])
    F.check(any(l.startswith("(Host or domain name not found") for l in lines),
            "reasons in parentheses", out)
    F.check(" " * 41 + "b@remote.test" in lines, "recipients at column 41",
            out)
    F.check(re.search(r"\n\n-- \d+ Kbytes in 2 Requests\.\n$", out),
            "the footer", out[-80:])
    st, out, err = run(POSTQUEUE, t.conf, "-j")
    objs = [json.loads(l) for l in out.splitlines()]
    F.check(st == 0 and len(objs) == 2 and
            {o["queue_id"] for o in objs} == set(qids),
            "postqueue -j: one object per line", out + err)
    o = [x for x in objs if x["queue_id"] == qids[0]][0]
    F.check(o["queue_name"] == "hold" and o["sender"] == "a0@sender.test" and
            isinstance(o["arrival_time"], int) and o["message_size"] > 0 and
            o["recipients"][0]["address"] == "b@remote.test" and
            "delay_reason" in o["recipients"][0],
            "with Postfix's fields", o)
    api.post("/api/v1/queue/%s/release" % qids[0])
    st, out, err = run(POSTQUEUE, t.conf, "-f")
    F.check(st == 0 and out == "", "postqueue -f", out + err)
    F.check(t.wait_log(r"flush, token=admin"), "the flush reached ternd")
    st, out, err = run(POSTQUEUE, t.conf, "-s", "other.test")
    F.check(st == 0, "postqueue -s", out + err)
    F.check(t.wait_log(r"flush domain=other\.test"), "for that domain")
    st, out, err = run(POSTQUEUE, t.conf)
    F.check(st == 64 and "usage" in err, "postqueue without a mode", err)


def check_empty_and_down():
    with ternlib.Ternd(adminlib.params()) as t:
        st, out, err = run(POSTQUEUE, t.conf, "-p")
        F.check(st == 0 and out == "Mail queue is empty\n",
                "an empty queue", out + err)
        t.stop()
        st, out, err = run(POSTQUEUE, t.conf, "-p")
        F.check(st == 69 and "mail system is down" in err,
                "postqueue says when ternd is not running", (st, err))
        st, out, err = ctl(t, "stats")
        F.check(st == 69 and "is ternd running?" in err,
                "so does ternctl", (st, err))


def check_unix():
    d = tempfile.mkdtemp(prefix="tern-sock-")
    os.chmod(d, 0o777)
    sock = os.path.join(d, "a.sock")
    with ternlib.Ternd(adminlib.params({"admin_listen": "unix:" + sock})) as t:
        adminlib.send(t, "u@sender.test", ["x@remote.test"])
        st, out, err = ctl(t, "queue", "list")
        F.check(st == 0 and "1 message" in out,
                "ternctl uses the unix socket", out + err)
        st, out, err = run(POSTQUEUE, t.conf, "-j")
        F.check(st == 0 and "u@sender.test" in out,
                "postqueue uses it too", out + err)
    subprocess.run(["rm", "-rf", d])


def main():
    for p in (TERNCTL, POSTQUEUE):
        if not F.check(os.access(p, os.X_OK), p + " is built"):
            F.exit()
    with ternlib.Ternd(adminlib.params()) as t:
        api = adminlib.Api(t)
        qids = [adminlib.send(t, "a%d@sender.test" % i, ["b@remote.test"]
                              + (["c@other.test"] if i == 2 else []),
                              subject="msg %d" % i) for i in range(3)]
        for q in qids:
            adminlib.wait_state(api, q, "deferred")
        F.section("ternctl", check_ternctl, t, api, qids)
        F.section("postqueue", check_postqueue, t, api, qids)
    F.section("empty queue and ternd down", check_empty_and_down)
    F.section("unix socket", check_unix)
    F.exit()


if __name__ == "__main__":
    main()
