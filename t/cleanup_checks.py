# SPDX-License-Identifier: ISC
"""header_checks, body_checks and address rewriting, end to end through
SMTP: what the client is told, what lands in which Maildir, and the log
lines cleanup writes in Postfix's shape.

Every action of header_checks(5) is tried: REJECT (the 550 reply, nothing
delivered), DISCARD ("queued as", nothing delivered), HOLD (queued, a
"hold:" line, never delivered while a later control message is), WARN,
IGNORE, REDIRECT, PREPEND, REPLACE, a pattern across a folded header, and
body_checks.  The MIME structure: an attachment rule of header_checks
catches the headers of a part at any depth and of an attached message
(mime_header_checks and nested_header_checks default to it), but not the
same text in a part's body, and IGNORE works inside a part.  Then
header_size_limit, canonical and virtual alias
rewriting (with a loop that is refused), and a pcre table that does not
compile, refused with FILE:LINE at start and at reload.
"""

import email
import email.message
import email.policy
import os
import re
import signal

import ternlib
from ternlib import SMTPConn, Ternd, reply_text

F = ternlib.Failures()
SENDER = "a@example.org"
HELO = "client.example.org"
QID = ternlib.QUEUE_ID

HEADER_CHECKS = r"""# header_checks for the test
/^Subject: tern-reject/         REJECT rejected by test
/^Subject: tern-discard/        DISCARD discarded by test
/^Subject: tern-hold/           HOLD held by test
/^Subject: tern-warn/           WARN warned by test
/^X-Tern-Ignore:/               IGNORE
/^Subject: tern-redirect/       REDIRECT redirected@localhost
/^Subject: tern-prepend/        PREPEND X-Tern-Prepended: yes
/^Subject: tern-bcc/            BCC bccbox@localhost
/^Subject: tern-replace (.*)/   REPLACE Subject: replaced $1
/^Subject: tern-multi\s+line2/  REJECT folded header matched
/^Content-(Type|Disposition):.*name="?[^"]*\.exe"?$/ REJECT 5.7.4 no programs
if /^X-Tern-If:/
/ inner$/                       REJECT 5.7.3 nested rule
endif
"""

BODY_CHECKS = r"""/^tern-body-reject/    REJECT 5.7.2 body says no
/^tern-body-ignore/    IGNORE
/^tern-body-replace/   REPLACE replaced body line
"""

CANONICAL = """canon-old@localhost     canon-new@localhost
old-sender@example.org  new-sender@example.org
"""

VIRTUAL = """virt@virtual.test       vuser1@localhost, vuser2@localhost
@wild.test              wuser@localhost
chain@virtual.test      virt@virtual.test
loopa@virtual.test      loopb@virtual.test
loopb@virtual.test      loopa@virtual.test
"""

BCC = """bccsender@example.org   archive-s@localhost
bccrcpt@localhost        archive-r@localhost
"""

LOG_CONTEXT = (r" from unknown\[127\.0\.0\.1\]; from=<%s> to=<%s> "
               r"proto=ESMTP helo=<%s>")


def context(rcpt, sender=SENDER):
    return LOG_CONTEXT % (re.escape(sender), re.escape(rcpt),
                          re.escape(HELO))


def wire(msg):
    """A message with LF line ends as it goes after DATA: CRLF, dots
    doubled, and the end-of-data line."""
    lines = msg.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = ["." + l if l.startswith(".") else l for l in lines]
    return "\r\n".join(out) + "\r\n.\r\n"


def send(t, rcpts, msg, sender=SENDER):
    """One SMTP transaction; returns the reply to the end of data."""
    with SMTPConn(t.port) as c:
        F.check(c.cmd("EHLO " + HELO)[0] == 250, "EHLO accepted")
        F.check(c.cmd("MAIL FROM:<%s>" % sender)[0] == 250,
                "MAIL FROM:<%s> accepted" % sender)
        for r in rcpts:
            F.check(c.cmd("RCPT TO:<%s>" % r)[0] == 250,
                    "RCPT TO:<%s> accepted" % r)
        F.check(c.cmd("DATA")[0] == 354, "DATA accepted")
        c.send(wire(msg))
        reply = c.reply()
        c.cmd("QUIT")
    return reply


def send_queued(t, rcpts, msg, what, sender=SENDER):
    """Send and check for "250 ... queued as ID"; returns the ID."""
    r = send(t, rcpts, msg, sender)
    F.expect(r, "250 2.0.0 Ok: queued as ", what)
    return ternlib.queued_id(reply_text(r))


def control(t, user, count):
    """Send a plain message to user and wait until user's Maildir holds
    count messages; returns them."""
    send_queued(t, [user + "@localhost"],
                "Subject: control for %s\n\ncontrol\n" % user,
                "control message to " + user)
    return t.wait_maildir(user, count)


def subjects(msgs):
    return [ternlib.header(m, "Subject") for m in msgs]


def check_log(t, pattern, what):
    lines = t.wait_log(pattern)
    F.check(len(lines) == 1, "log: " + what,
            "pattern %s matched %r" % (pattern, lines))
    return lines


def reject(t):
    r = send(t, ["rej@localhost"], "Subject: tern-reject now\n\nbody\n")
    F.expect(r, "550 5.7.1 rejected by test", "REJECT reply")
    check_log(t, r"tern/cleanup\[\d+\]: %s: reject: header Subject: "
              r"tern-reject now%s: 5\.7\.1 rejected by test$"
              % (QID, context("rej@localhost")),
              "reject: header Subject: ... from ...; from=<> to=<> proto= "
              "helo=<>: 5.7.1 text")
    msgs = control(t, "rej", 1)
    F.check(subjects(msgs) == ["control for rej"],
            "nothing of the rejected message is delivered", subjects(msgs))


def discard(t):
    qid = send_queued(t, ["disc@localhost"],
                      "Subject: tern-discard it\n\nbody\n", "DISCARD reply")
    check_log(t, r"tern/cleanup\[\d+\]: %s: discard: header Subject: "
              r"tern-discard it%s: discarded by test$"
              % (qid, context("disc@localhost")), "discard: header ...")
    msgs = control(t, "disc", 1)
    F.check(subjects(msgs) == ["control for disc"],
            "the discarded message is not delivered", subjects(msgs))
    F.check(not t.log_lines(r": %s: to=<" % qid),
            "no delivery is logged for the discarded message")


def hold(t):
    qid = send_queued(t, ["holder@localhost"],
                      "Subject: tern-hold me\n\nbody\n", "HOLD reply")
    check_log(t, r"tern/cleanup\[\d+\]: %s: hold: header Subject: "
              r"tern-hold me%s: held by test$"
              % (qid, context("holder@localhost")), "hold: header ...")
    msgs = control(t, "holder", 1)
    F.check(subjects(msgs) == ["control for holder"],
            "the control message arrives, the held one does not",
            subjects(msgs))
    more = ternlib.wait_for(lambda: len(t.maildir_files("holder")) > 1,
                            timeout=2)
    F.check(not more, "the held message stays undelivered")
    F.check(not t.log_lines(r": %s: (to=<|from=<)" % qid),
            "the qmgr never takes the held message")


def warn(t):
    qid = send_queued(t, ["warner@localhost"],
                      "Subject: tern-warn x\n\nbody\n", "WARN reply")
    check_log(t, r"tern/cleanup\[\d+\]: %s: warning: header Subject: "
              r"tern-warn x%s: warned by test$"
              % (qid, context("warner@localhost")), "warning: header ...")
    msgs = t.wait_maildir("warner", 1)
    F.check(subjects(msgs) == ["tern-warn x"],
            "the warned message is delivered as it was", subjects(msgs))


def ignore(t):
    send_queued(t, ["ignorer@localhost"],
                "Subject: ignore test\nX-Tern-Ignore: secret\n"
                "X-Keep: yes\n\nbody\n", "IGNORE reply")
    msgs = t.wait_maildir("ignorer", 1)
    if not F.check(len(msgs) == 1, "the message with IGNORE is delivered"):
        return
    m = msgs[0]
    F.check(ternlib.header(m, "X-Tern-Ignore") is None,
            "IGNORE removed X-Tern-Ignore:", ternlib.header_block(m))
    F.check(ternlib.header(m, "X-Keep") == "yes",
            "the other headers stay", ternlib.header_block(m))


def redirect(t):
    qid = send_queued(t, ["orig@localhost"],
                      "Subject: tern-redirect me\n\nbody\n", "REDIRECT reply")
    check_log(t, r"tern/cleanup\[\d+\]: %s: redirect: header Subject: "
              r"tern-redirect me%s: redirected@localhost$"
              % (qid, context("orig@localhost")), "redirect: header ...")
    msgs = t.wait_maildir("redirected", 1)
    F.check(subjects(msgs) == ["tern-redirect me"],
            "REDIRECT delivers to redirected@localhost", subjects(msgs))
    F.check(ternlib.header(msgs[0] if msgs else "", "Delivered-To") ==
            "redirected@localhost", "Delivered-To: redirected@localhost")
    msgs = control(t, "orig", 1)
    F.check(subjects(msgs) == ["control for orig"],
            "the original recipient gets nothing", subjects(msgs))


def prepend_replace(t):
    send_queued(t, ["prep@localhost"],
                "X-First: 1\nSubject: tern-prepend x\n\nbody\n",
                "PREPEND reply")
    msgs = t.wait_maildir("prep", 1)
    if F.check(len(msgs) == 1, "the message with PREPEND is delivered"):
        names = [n for n, _ in ternlib.headers(msgs[0])]
        i = names.index("Subject") if "Subject" in names else -1
        F.check(i > 0 and names[i - 1] == "X-Tern-Prepended" and
                names[i - 2] == "X-First",
                "PREPEND put X-Tern-Prepended: right before Subject:", names)
        F.check(ternlib.header(msgs[0], "X-Tern-Prepended") == "yes",
                "X-Tern-Prepended: yes")
    send_queued(t, ["repl@localhost"],
                "Subject: tern-replace hello\n\nbody\n", "REPLACE reply")
    msgs = t.wait_maildir("repl", 1)
    F.check(subjects(msgs) == ["replaced hello"],
            "REPLACE: Subject: replaced hello", subjects(msgs))
    check_log(t, r"tern/cleanup\[\d+\]: %s: replace: header Subject: "
              r"tern-replace hello%s: Subject: replaced hello$"
              % (QID, context("repl@localhost")), "replace: header ...")


def folded_and_nested(t):
    r = send(t, ["fold@localhost"],
             "Subject: tern-multi\n line2\n\nbody\n")
    F.expect(r, "550 5.7.1 folded header matched",
             "a pattern across a folded header matches")
    check_log(t, r": reject: header Subject: tern-multi\\012 line2 from ",
              "the folded header is logged with its newline escaped")
    r = send(t, ["nest@localhost"], "X-Tern-If: inner\n\nbody\n")
    F.expect(r, "550 5.7.3 nested rule", "a rule inside if/endif")
    send_queued(t, ["nest@localhost"], "X-Tern-Other: inner\n\nbody\n",
                "the if/endif rule does not match another header")


def body_checks(t):
    r = send(t, ["bodyrej@localhost"],
             "Subject: body\n\nfirst line\ntern-body-reject here\nlast\n")
    F.expect(r, "550 5.7.2 body says no", "body_checks REJECT")
    check_log(t, r"tern/cleanup\[\d+\]: %s: reject: body tern-body-reject "
              r"here%s: 5\.7\.2 body says no$"
              % (QID, context("bodyrej@localhost")), "reject: body ...")
    send_queued(t, ["bodyed@localhost"],
                "Subject: body edits\n\nkeep 1\ntern-body-ignore me\n"
                "tern-body-replace me\n.dot line\nkeep 2\n",
                "body_checks IGNORE and REPLACE")
    msgs = t.wait_maildir("bodyed", 1)
    if F.check(len(msgs) == 1, "the edited body is delivered"):
        body = msgs[0].split("\n\n", 1)[1]
        F.check(body == "keep 1\nreplaced body line\n.dot line\nkeep 2\n",
                "IGNORE dropped a line, REPLACE replaced one", repr(body))
    msgs = control(t, "bodyrej", 1)
    F.check(subjects(msgs) == ["control for bodyrej"],
            "nothing of the body-rejected message is delivered")


def mime_message(subject, parts):
    """A multipart/mixed message with parts, each an EmailMessage."""
    m = email.message.EmailMessage()
    m["Subject"] = subject
    m["From"] = SENDER
    m.set_content("the text part\n")
    m.make_mixed()
    for p in parts:
        m.attach(p)
    return m.as_string(policy=email.policy.SMTP.clone(linesep="\n"))


def attachment(name, data=b"MZ\x90\x00binary"):
    p = email.message.EmailMessage()
    p.set_content(data, maintype="application", subtype="octet-stream",
                  filename=name)
    return p


def mime(t):
    r = send(t, ["mime1@localhost"],
             mime_message("tern-mime exe", [attachment("evil.exe")]))
    F.expect(r, "550 5.7.4 no programs", "an .exe attachment is refused")
    check_log(t, r"%s: reject: header Content-Disposition: attachment; "
              r"filename=\"evil\.exe\"%s: 5\.7\.4 no programs$"
              % (QID, context("mime1@localhost")),
              "reject: header Content-Disposition: ... of the part")

    inner = email.message.EmailMessage()
    inner.set_content("alternative text\n")
    inner.add_alternative("<p>html</p>\n", subtype="html")
    inner.attach(attachment("deep.exe"))
    r = send(t, ["mime1@localhost"], mime_message("tern-mime deep", [inner]))
    F.expect(r, "550 5.7.4 no programs",
             "an .exe in a multipart inside the multipart is refused")

    attached = email.message.EmailMessage()
    attached["Subject"] = "tern-reject inner"
    attached.set_content("forwarded\n")
    fwd = email.message.EmailMessage()
    fwd.set_content(attached)
    r = send(t, ["mime1@localhost"], mime_message("tern-mime fwd", [fwd]))
    F.expect(r, "550 5.7.1 rejected by test",
             "an attached message's Subject goes through header_checks")

    text = email.message.EmailMessage()
    text.set_content("Content-Type: application/x; name=\"quoted.exe\"\n")
    text["X-Tern-Ignore"] = "in a part"
    pdf = attachment("report.pdf", bytes(range(256)) * 8)
    send_queued(t, ["mime2@localhost"],
                mime_message("tern-mime ok", [text, pdf]),
                "a .pdf and a body line that looks like a header pass")
    msgs = t.wait_maildir("mime2", 1)
    if F.check(len(msgs) == 1, "and are delivered"):
        got = email.message_from_string(msgs[0], policy=email.policy.default)
        names = [p.get_filename() for p in got.iter_attachments()]
        F.check("report.pdf" in names, "the attachment is there", names)
        data = [p.get_content() for p in got.iter_attachments()
                if p.get_filename() == "report.pdf"]
        F.check(data == [bytes(range(256)) * 8],
                "byte for byte")
        F.check("X-Tern-Ignore" not in msgs[0],
                "IGNORE left a header of a part out")
        F.check('name="quoted.exe"' in msgs[0],
                "the body line is left alone")

    # mime_nesting_limit (100): deeper parts would go unchecked.
    deep = "Subject: tern-mime nesting\n"
    for i in range(101):
        deep += ("Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n"
                 % (i, i))
    deep += "Content-Type: text/plain\n\ndeep\n"
    r = send(t, ["mime1@localhost"], deep)
    F.expect(r, "552 5.6.0 Message content rejected: MIME nesting exceeds "
             "safety limit", "nesting past mime_nesting_limit is refused")


def bcc(t):
    qid = send_queued(t, ["bcc1@localhost"],
                      "Subject: bcc by sender\n\nbody\n",
                      "sender_bcc_maps", sender="bccsender@example.org")
    msgs = t.wait_maildir("archive-s", 1)
    F.check(len(msgs) == 1 and "Subject: bcc by sender" in msgs[0],
            "sender_bcc_maps: the archive gets a copy")
    F.check(len(t.wait_maildir("bcc1", 1)) == 1, "and the recipient too")
    F.check("archive-s" not in t.wait_maildir("bcc1", 1)[0],
            "the copy is blind: no header names it")
    send_queued(t, ["bccrcpt@localhost"], "Subject: bcc by rcpt\n\nbody\n",
                "recipient_bcc_maps")
    msgs = t.wait_maildir("archive-r", 1)
    F.check(len(msgs) == 1 and "Subject: bcc by rcpt" in msgs[0],
            "recipient_bcc_maps: the archive gets a copy")
    F.check(t.log_lines(r"%s: from=<bccsender@example\.org>, size=\d+, "
                        r"nrcpt=2 " % qid), "the copy is one more recipient")


def bcc_action(t):
    send_queued(t, ["bccto@localhost"], "Subject: tern-bcc me\n\nbody\n",
                "header_checks BCC")
    F.check(len(t.wait_maildir("bccbox", 1)) == 1 and
            len(t.wait_maildir("bccto", 1)) == 1,
            "BCC: the copy and the message are delivered")
    check_log(t, r"%s: bcc: header Subject: tern-bcc me%s: bccbox@localhost$"
              % (QID, context("bccto@localhost")), "bcc: header ...")


def always_bcc():
    with Ternd({"always_bcc": "all@localhost",
                "transport_maps": "inline:{nowhere.test=error:5.1.1 gone}"}
               ) as t:
        send_queued(t, ["x@nowhere.test"], "Subject: to nowhere\n\nbody\n",
                    "always_bcc", sender="sender@localhost")
        F.check(t.wait_log(r"to=<x@nowhere\.test>.*status=bounced"),
                "the recipient bounces")
        F.check(len(t.wait_maildir("sender", 1)) == 1,
                "the sender gets the bounce")
        msgs = t.wait_maildir("all", 1)
        F.check(len(msgs) == 1 and "Subject: to nowhere" in msgs[0],
                "always_bcc gets the message")
        F.check(len(t.maildir_messages("all")) == 1,
                "but not the bounce, which this server made itself")


def header_limit(t):
    folded = "X-Big: " + "\n ".join(["x" * 100] * 50)
    r = send(t, ["big@localhost"], "Subject: big\n%s\n\nbody\n" % folded)
    F.expect(r, "552 5.3.4 Message header size exceeds limit",
             "a header over header_size_limit")
    check_log(t, r": reject: header X-Big: x+\\012 x+.* from .*: 5\.3\.4 "
              r"Message header size exceeds limit$",
              "reject: header X-Big: ... 5.3.4 ...")
    send_queued(t, ["big@localhost"],
                "Subject: small\nX-Small: %s\n\nbody\n" % ("y" * 1000),
                "a header under the limit passes")


def canonical(t):
    send_queued(t, ["canon-old@localhost"],
                "From: Old <old-sender@example.org>\nSubject: canonical\n\n"
                "body\n", "canonical recipient",
                sender="old-sender@example.org")
    msgs = t.wait_maildir("canon-new", 1)
    if F.check(len(msgs) == 1, "canonical_maps: delivered to canon-new"):
        m = msgs[0]
        F.check(m.startswith("Return-Path: <new-sender@example.org>\n"),
                "canonical_maps rewrote the envelope sender", m[:60])
        F.check(ternlib.header(m, "From") ==
                "Old <old-sender@example.org>",
                "the headers of SMTP mail are not rewritten",
                ternlib.header(m, "From"))
    F.check(not t.maildir_files("canon-old"), "nothing for canon-old")


def virtual(t):
    send_queued(t, ["virt@virtual.test"], "Subject: virtual\n\nbody\n",
                "virtual alias with two results")
    for u in ("vuser1", "vuser2"):
        msgs = t.wait_maildir(u, 1)
        F.check(subjects(msgs) == ["virtual"],
                "virtual_alias_maps: delivered to " + u, subjects(msgs))
    send_queued(t, ["someone@wild.test"], "Subject: wildcard\n\nbody\n",
                "virtual alias for @domain")
    msgs = t.wait_maildir("wuser", 1)
    F.check(subjects(msgs) == ["wildcard"], "@wild.test goes to wuser",
            subjects(msgs))
    send_queued(t, ["chain@virtual.test"], "Subject: chain\n\nbody\n",
                "virtual alias of a virtual alias")
    msgs = t.wait_maildir("vuser1", 2)
    F.check(subjects(msgs) == ["virtual", "chain"] or
            sorted(subjects(msgs)) == ["chain", "virtual"],
            "the recursive expansion reaches vuser1", subjects(msgs))
    r = send(t, ["loopa@virtual.test"], "Subject: loop\n\nbody\n")
    F.expect(r, "451 4.3.0 ", "a virtual alias loop is refused for now")
    check_log(t, r"warning: %s: unreasonable virtual_alias_maps map nesting "
              r"for loopa@virtual\.test -- message not accepted, try again "
              r"later" % QID, "the loop is logged")


def bad_table_at_start():
    t = Ternd(start=False)
    try:
        bad = os.path.join(t.dir, "bad_checks")
        with open(bad, "w") as f:
            f.write("/^Subject: fine/ DUNNO\n/unclosed(/ REJECT x\n")
        t.params["header_checks"] = "pcre:" + bad
        t.write_config()
        status, out = ternlib.run([ternlib.ternd_path(), "-f", "-c", t.conf],
                                  timeout=30)
        F.check(status not in (0, None), "ternd refuses to start with a bad "
                "pcre table", status)
        F.check("%s:2:" % bad in out, "the error names FILE:LINE (%s:2)"
                % bad, out)
        F.check("missing closing parenthesis" in out,
                "the error gives PCRE2's message", out)
    finally:
        t.cleanup()


def bad_table_at_reload(t, path):
    with open(path + ".tmp", "w") as f:
        f.write(HEADER_CHECKS + "/(?<bad/ REJECT x\n")
    os.rename(path + ".tmp", path)
    lines = HEADER_CHECKS.count("\n") + 1
    t.signal(signal.SIGHUP)
    F.check(t.wait_log(r"reload failed"), "SIGHUP with a bad table: the "
            "reload is refused")
    F.check(t.wait_log(re.escape("%s:%d:" % (path, lines))),
            "the reload error names FILE:LINE (%s:%d)" % (path, lines),
            t.log_lines(r"header_checks"))
    F.check(t.running(), "ternd still runs")
    r = send(t, ["rej@localhost"], "Subject: tern-reject again\n\nbody\n")
    F.expect(r, "550 5.7.1 rejected by test",
             "the tables in force still apply")


def main():
    t = Ternd(start=False)
    try:
        paths = {}
        for name, text in (("bcc", BCC),
                           ("header_checks", HEADER_CHECKS),
                           ("body_checks", BODY_CHECKS),
                           ("canonical", CANONICAL),
                           ("virtual", VIRTUAL)):
            paths[name] = os.path.join(t.dir, name)
            with open(paths[name], "w") as f:
                f.write(text)
        t.params.update({
            "header_checks": "pcre:" + paths["header_checks"],
            "body_checks": "regexp:" + paths["body_checks"],
            "canonical_maps": "texthash:" + paths["canonical"],
            "virtual_alias_maps": "texthash:" + paths["virtual"],
            "header_size_limit": "4096",
            "sender_bcc_maps": "texthash:" + paths["bcc"],
            "recipient_bcc_maps": "texthash:" + paths["bcc"],
        })
        t.write_config()
        t.start()
    except BaseException:
        t.cleanup()
        raise
    with t:
        F.section("REJECT", reject, t)
        F.section("DISCARD", discard, t)
        F.section("HOLD", hold, t)
        F.section("WARN", warn, t)
        F.section("IGNORE", ignore, t)
        F.section("REDIRECT", redirect, t)
        F.section("PREPEND and REPLACE", prepend_replace, t)
        F.section("folded headers and if/endif", folded_and_nested, t)
        F.section("body_checks", body_checks, t)
        F.section("MIME parts", mime, t)
        F.section("sender_bcc_maps and recipient_bcc_maps", bcc, t)
        F.section("the BCC action", bcc_action, t)
        F.section("header_size_limit", header_limit, t)
        F.section("canonical_maps", canonical, t)
        F.section("virtual_alias_maps", virtual, t)
        F.section("a bad table at reload", bad_table_at_reload, t,
                  paths["header_checks"])
        F.check(t.running(), "ternd still running after all the checks")
        if F.failed:
            print("--- ternd log\n" + t.log_text())
    F.section("a bad table at start", bad_table_at_start)
    F.section("always_bcc", always_bcc)
    F.exit()


if __name__ == "__main__":
    main()
