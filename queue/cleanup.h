/* SPDX-License-Identifier: ISC */
/*
 * cleanup: the only writer of new messages.  A receiving side (smtpd,
 * later pickup) hands over an envelope and the message as received;
 * cleanup applies header_checks and body_checks, rewrites addresses
 * (canonical, masquerading, virtual aliases), adds the headers a message
 * must carry, records the size and times, and commits message and
 * envelope to the queue in one batch.
 * The request's completion runs once the commit is durable, or has
 * failed: only then may the sender be told "queued".
 */
#ifndef TERN_CLEANUP_H
#define TERN_CLEANUP_H

#include "lib/buf.h"
#include "lib/config.h"
#include "queue/cleanup_edit.h"
#include "queue/envelope.h"
#include "queue/store.h"

typedef struct cleanup cleanup_t;
typedef struct cleanup_req cleanup_req_t;

/* Called once per request, on a cleanup or committer thread.  status is
 * 0 when the message is queued; otherwise reply holds the SMTP reply to
 * give ("451 4.3.0 ..."). */
typedef void (*cleanup_done_fn)(cleanup_req_t *req, int status,
                                const char *reply);

struct cleanup_req {
    envelope_t *env;    /* owned by the request; id, sender, rcpts set */
    buf_t msg;          /* the message, LF line endings, owned */
    config_t *cfg;      /* a reference held by the request */
    int local;          /* a local submission rather than SMTP */
    int internal;       /* made or forwarded by this server itself (a
                         * notice, an alias's forward): no automatic
                         * BCC and no content_filter, as in Postfix */
    int nofilter;       /* from a listener that takes mail back from
                         * the content filter */
    char *tls_info;     /* "TLSv1.3 with cipher X (256/256 bits)" or NULL */
    char *fullname;     /* sendmail -F, for an added From:, or NULL; owned */
    /* What the receiving side's access restrictions asked for (PREPEND,
     * REDIRECT, HOLD, DISCARD in access(5)), as header_checks would. */
    char *prepend;      /* headers for the top, each ending in "\n"; owned */
    char *redirect;     /* the one recipient instead of all, or NULL; owned */
    char *filter;       /* a FILTER action's transport:nexthop, or NULL */
    char *bcc;          /* a BCC action's address, or NULL; owned */
    int hold;
    int discard;
    /* What smtpd's Milters asked for at the end of the message, applied
     * before anything else is done to it, or NULL; owned. */
    cleanup_edits_t *edits;
    cleanup_done_fn done;
    void *arg;
    char reply[256];
};

/* Called after each message is queued, so that delivery can look. */
typedef void (*cleanup_notify_fn)(void *arg);

/* Register the load-time checks of cleanup's parameters; call before
 * the first config_load. */
void cleanup_register(void);

/* Start threads cleanup workers writing to store. */
cleanup_t *cleanup_new(store_t *store, int threads, cleanup_notify_fn notify,
                       void *notify_arg);

/* Hand over a request (ownership passes until done runs).  Returns -1 if
 * the pool is full or stopping; the caller still owns req then. */
int cleanup_submit(cleanup_t *c, cleanup_req_t *req);

/* Finish the requests already handed over, then stop; frees *cp. */
void cleanup_stop(cleanup_t **cp);

/* Free a request's contents and the request; accepts NULL. */
void cleanup_req_free(cleanup_req_t **reqp);

/* 1 if the queue takes writes, else 0 with *why (caller frees; why may
 * be NULL): see store_healthy. */
int cleanup_healthy(cleanup_t *c, char **why);

/* Workers busy and requests waiting. */
size_t cleanup_busy(cleanup_t *c);

#endif
