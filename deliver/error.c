/* SPDX-License-Identifier: ISC */
/*
 * error: outcomes without delivery.  The next hop is the reason; an
 * enhanced status code in front of it (RFC 3463) is used when its class
 * fits the outcome, otherwise the generic one for the class.
 *
 * Threads: any; nothing is shared.  Nothing is written, so a crash
 * leaves nothing behind: the qmgr records the outcome.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "deliver/error.h"

/* Split an optional "X.Y.Z " off text into dsn when its class is cls. */
static const char *
error_text(const char *text, char cls, char *dsn, size_t dsnlen,
           const char *dflt)
{
    size_t n = 0;
    int dots = 0;

    snprintf(dsn, dsnlen, "%s", dflt);
    if (text[0] != cls || text[1] != '.')
        return text;
    while (text[n] && (isdigit((unsigned char)text[n]) || text[n] == '.')) {
        dots += text[n] == '.';
        n++;
    }
    if (dots != 2 || (text[n] != ' ' && text[n] != '\0') || n >= dsnlen)
        return text;
    snprintf(dsn, dsnlen, "%.*s", (int)n, text);
    text += n;
    while (*text == ' ')
        text++;
    return text;
}

static void
error_all(struct delivery_req *req, enum delivery_status st, char cls,
          const char *dflt_dsn, const char *dflt_text)
{
    char dsn[16];
    const char *text = error_text(req->nexthop, cls, dsn, sizeof(dsn),
                                  dflt_dsn);

    delivery_set_rest(req, st, dsn, "none", "%s",
                      text[0] ? text : dflt_text);
}

void
error_deliver(struct delivery_req *req)
{
    error_all(req, DELIVERY_BOUNCE, '5', "5.0.0", "mail delivery failed");
}

void
error_retry(struct delivery_req *req)
{
    error_all(req, DELIVERY_DEFER, '4', "4.0.0",
              "delivery temporarily suspended");
}

void
error_discard(struct delivery_req *req)
{
    error_all(req, DELIVERY_SENT, '2', "2.0.0", "discarded");
}
