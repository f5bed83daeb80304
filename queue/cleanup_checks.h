/* SPDX-License-Identifier: ISC */
/*
 * cleanup_checks: header_checks and body_checks, the content inspection
 * of Postfix's header_checks(5).  A table's result is an action ("REJECT
 * text", "HOLD", "PREPEND X-Tag: 1", ...); cleanup asks once per logical
 * header or body line and is told what to do with that line, while the
 * actions that concern the whole message are collected here.
 */
#ifndef TERN_CLEANUP_CHECKS_H
#define TERN_CLEANUP_CHECKS_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/table.h"
#include "queue/envelope.h"

/* What becomes of the line that was checked. */
enum cleanup_checks_verdict {
    CLEANUP_CHECKS_KEEP,    /* it stays as it is */
    CLEANUP_CHECKS_DROP,    /* IGNORE: it is left out */
    CLEANUP_CHECKS_REPLACE, /* REPLACE: the replacement text stands in */
};

/* The state of one message's inspection.  Zero it with
 * cleanup_checks_init; the outcome fields are read by cleanup. */
typedef struct cleanup_checks {
    const envelope_t *env; /* queue ID and the context of log lines */
    int stop;              /* REJECT or DISCARD: inspect nothing more */
    int reject;            /* REJECT: refuse the message with code, reason */
    int code;              /* the SMTP reply code of a reject: 550, 451 */
    int discard;           /* DISCARD: say queued, keep nothing */
    int hold;              /* HOLD: queue it in the hold state */
    char *reason;          /* REJECT's "5.7.1 text", owned */
    char *redirect;        /* the last REDIRECT address, owned, or NULL */
    char *filter;          /* the last FILTER transport:nexthop, or NULL */
    char *bcc;             /* the last BCC address, or NULL */
    buf_t key;             /* scratch: the line as a C string */
    buf_t result;          /* scratch: the table's result */
} cleanup_checks_t;

/* Prepare cc for a message whose envelope is env (borrowed). */
void cleanup_checks_init(cleanup_checks_t *cc, const envelope_t *env);

/* Free what cc owns; it may be initialised again. */
void cleanup_checks_free(cleanup_checks_t *cc);

/* Look one line up in maps (the tables of the parameter named
 * map_name) and act on the result.  cls is "header" or "body"; line is
 * a logical header (continuation lines included) or a body line,
 * without its final newline.  A PREPEND's text is appended to prepend
 * with a newline; a REPLACE's text is appended to replace, without one.
 * Returns what becomes of the line. */
enum cleanup_checks_verdict
cleanup_checks_apply(cleanup_checks_t *cc, table_t *const *maps,
                     const char *map_name, const char *cls, const char *line,
                     size_t len, buf_t *prepend, buf_t *replace);

/* Refuse the message for a reason of cleanup's own (a size limit):
 * sets reject and stop and, unless cls is NULL, logs "reject: cls
 * content from ...; ...: reason" as a table's REJECT would.  code is the
 * SMTP reply code and reason its text with the enhanced status ("5.3.4
 * text"). */
void cleanup_checks_reject(cleanup_checks_t *cc, int code, const char *cls,
                           const char *content, size_t len, const char *reason);

/* The SMTP reply for a rejected message ("550 5.7.1 text"), at most
 * outlen bytes with the NUL. */
void cleanup_checks_reply(const cleanup_checks_t *cc, char *out, size_t outlen);

#endif
