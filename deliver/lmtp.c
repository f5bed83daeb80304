/* SPDX-License-Identifier: ISC */
/*
 * lmtp: LMTP delivery on the SMTP client engine.
 *
 * LMTP differs from SMTP where RFC 2033 says: LHLO instead of EHLO, no
 * MX lookup, and after the end of data one reply for each accepted
 * recipient (section 4.2), so that one mailbox over quota defers only
 * that recipient.  Everything else (pipelining, timeouts, connection
 * reuse, outcomes and their wording) is the engine's, in smtp.c.
 *
 * Threads: as smtp, any number of workers at once.  Crashes: as smtp;
 * a message whose end of data was sent but not answered is deferred,
 * and may be delivered twice.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "deliver/lmtp.h"
#include "deliver/smtp.h"

void
lmtp_deliver(struct delivery_req *req)
{
    const char *hop = req->nexthop;
    struct smtp_target t;
    char host[256];

    memset(&t, 0, sizeof(t));
    t.lmtp = 1;
    if (strncmp(hop, "unix:", 5) == 0 || hop[0] == '/') {
        t.unix_path = hop[0] == '/' ? hop : hop + 5;
        smtp_deliver_target(req, &t);
        return;
    }
    if (strncmp(hop, "inet:", 5) == 0)
        hop += 5;
    if (smtp_parse_nexthop(hop, 24, host, sizeof(host), &t.port, &t.mx) < 0) {
        delivery_set_rest(req, DELIVERY_DEFER, "4.3.5", "none",
                          "bad next hop \"%s\" for transport lmtp",
                          req->nexthop);
        return;
    }
    /* LMTP servers are named, never found by MX (RFC 2033 section 5). */
    t.mx = 0;
    t.host = host;
    smtp_deliver_target(req, &t);
}
