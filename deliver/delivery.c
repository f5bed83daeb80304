/* SPDX-License-Identifier: ISC */
/*
 * delivery: filling in the outcomes that transports report to the qmgr.
 * Pure functions on a request owned by the calling worker.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deliver/delivery.h"

void
delivery_set(struct delivery_result *r, enum delivery_status status,
             const char *dsn, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

void
delivery_set_rest(struct delivery_req *req, enum delivery_status status,
                  const char *dsn, const char *relay, const char *fmt, ...)
{
    char text[sizeof(((struct delivery_result *)0)->text)];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (i = 0; i < req->nrcpt; i++) {
        struct delivery_result *r = &req->rcpts[i].result;

        if (r->status != DELIVERY_UNDECIDED)
            continue;
        delivery_set(r, status, dsn, "%s", text);
        snprintf(r->relay, sizeof(r->relay), "%s", relay);
    }
}

void
delivery_reset(struct delivery_req *req)
{
    size_t i;

    for (i = 0; i < req->nrcpt; i++) {
        memset(&req->rcpts[i].result, 0, sizeof(req->rcpts[i].result));
        req->rcpts[i].result.status = DELIVERY_UNDECIDED;
        snprintf(req->rcpts[i].result.relay,
                 sizeof(req->rcpts[i].result.relay), "none");
    }
}

int
delivery_undecided(const struct delivery_result *r)
{
    return r->status == DELIVERY_UNDECIDED;
}

const char *
delivery_default_dsn(int code)
{
    if (code >= 500)
        return "5.0.0";
    if (code >= 400)
        return "4.0.0";
    return "2.0.0";
}
