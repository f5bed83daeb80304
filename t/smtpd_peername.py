# SPDX-License-Identifier: ISC
"""The client's name, looked up before the greeting against a private
dnsmasq (smtpd_peername_lookup): a PTR name whose address record points
back is the name in the log, in Received: and for check_client_access;
reject_unknown_client_hostname refuses a client whose PTR name does not
point back, reject_unknown_reverse_client_hostname one without a PTR
name.  Clients connect from different loopback addresses (127.0.0.1,
.3 and .4) to get the three cases."""

import os
import smtplib
import sys
import tempfile

import ternlib
from ternlib import Ternd

F = ternlib.Failures()


def rcpt(t, source, rcpt="user@localhost"):
    """MAIL and RCPT from the loopback address source; RCPT's reply."""
    with smtplib.SMTP("127.0.0.1", t.port, timeout=20,
                      source_address=(source, 0)) as s:
        s.ehlo("client.example.org")
        s.mail("a@example.org")
        code, text = s.rcpt(rcpt)
        return code, text.decode()


def named(dns, restrictions):
    """A ternd that looks client names up in dns."""
    return Ternd({"dns_server": dns.server, "smtpd_peername_lookup": "yes",
                  "smtpd_client_restrictions": restrictions})


def run(tmp):
    records = [
        # 127.0.0.1 is ready.test, which dnsmasq's own record points back
        # at; 127.0.0.3 claims a name that does not; 127.0.0.4 has none.
        "--ptr-record=3.0.0.127.in-addr.arpa,liar.test",
        "--host-record=liar.test,192.0.2.1",
    ]
    with ternlib.Dnsmasq(tmp, records) as dns:
        access = os.path.join(tmp, "clients")
        with open(access, "w") as f:
            f.write("banned.test REJECT go away\n")
        with named(dns, "check_client_access texthash:" + access) as t:
            with smtplib.SMTP("127.0.0.1", t.port, timeout=20) as s:
                s.ehlo("client.example.org")
                s.sendmail("a@example.org", ["user@localhost"],
                           "Subject: named\r\n\r\nbody\r\n")
            F.check(t.wait_log(r"connect from ready\.test\[127\.0\.0\.1\]"),
                    "the verified name is in the connect line",
                    t.log_lines("connect from"))
            msgs = t.wait_maildir("user", 1)
            F.check(msgs and "Received: from client.example.org "
                    "(ready.test [127.0.0.1])" in msgs[0],
                    "and in Received:", msgs[:1])
            code, _ = rcpt(t, "127.0.0.3")
            F.check(code == 250, "an unverified name is no name for the "
                    "restrictions", code)
            F.check(t.wait_log(r"connect from unknown\[127\.0\.0\.3\]"),
                    "a PTR name that does not point back is unknown")
        with open(access, "w") as f:
            f.write("ready.test REJECT go away\n")
        with named(dns, "check_client_access texthash:" + access) as t:
            code, text = rcpt(t, "127.0.0.1")
            F.check(code == 554 and "go away" in text,
                    "check_client_access matches the name", (code, text))
        with named(dns, "reject_unknown_reverse_client_hostname, "
                        "reject_unknown_client_hostname") as t:
            F.check(rcpt(t, "127.0.0.1")[0] == 250,
                    "a verified name passes both")
            code, text = rcpt(t, "127.0.0.3")
            F.check(code == 450 and text.startswith("4.7.25 ") and
                    "Client host rejected: cannot find your hostname, "
                    "[127.0.0.3]" in text,
                    "a name that does not point back: 450 4.7.25",
                    (code, text))
            code, text = rcpt(t, "127.0.0.4")
            F.check(code == 450 and "cannot find your reverse hostname, "
                    "[127.0.0.4]" in text,
                    "no PTR name at all: 450 4.7.25", (code, text))


def main():
    if ternlib.Dnsmasq.program() is None:
        print("SKIP: dnsmasq is not installed")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="tern-peer-")
    os.chmod(tmp, 0o755)
    try:
        F.section("client names", run, tmp)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    F.exit()


if __name__ == "__main__":
    main()
