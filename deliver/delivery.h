/* SPDX-License-Identifier: ISC */
/*
 * delivery: what the qmgr hands a transport (one message, one next hop,
 * a group of its recipients) and what every transport reports about
 * each recipient, for the qmgr to record, log and notify about.
 *
 * Threads: a request is built by the qmgr and used by one delivery
 * worker; the transport writes only its results and the request's
 * site_* and conn_us fields.
 */
#ifndef TERN_DELIVERY_H
#define TERN_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "queue/cleanup.h"
#include "queue/envelope.h"

enum delivery_status {
    DELIVERY_UNDECIDED, /* no outcome yet */
    DELIVERY_SENT,
    DELIVERY_DEFER,
    DELIVERY_BOUNCE,
};

/* What a success means for a DSN NOTIFY=SUCCESS request (RFC 3464
 * section 2.3.3): delivered here, relayed to a server that cannot pass
 * the request on, or passed on to one that can (then it notifies). */
enum delivery_notice {
    DELIVERY_NOTICE_DELIVERED,
    DELIVERY_NOTICE_RELAYED,
    DELIVERY_NOTICE_PASSED,
};

struct delivery_result {
    enum delivery_status status;
    enum delivery_notice notice;
    char dsn[16];    /* enhanced status code, "2.0.0" */
    char relay[512]; /* "local", "none", "host[addr]:port" */
    char text[1024]; /* the reason, for the log and notices */
};

/* One recipient of a request: the envelope's record and its outcome. */
struct delivery_rcpt {
    rcpt_t *rcpt;
    struct delivery_result result;
};

/* A transport's opaque state kept between deliveries (connections). */
typedef struct smtp_cache smtp_cache_t;

/* Queues a new message on behalf of a transport (a forward from an
 * alias): sender, recipients and content as given.  Returns 0 once the
 * message is durable, with its queue ID in newid; -1 if it could not be
 * queued. */
typedef int (*delivery_submit_fn)(void *arg, const config_t *cfg,
                                  const char *sender, char *const *rcpts,
                                  size_t nrcpt, const char *msg, size_t len,
                                  char newid[QUEUE_ID_SIZE]);

struct delivery_req {
    const config_t *cfg;
    const envelope_t *env;
    const char *msg;       /* the stored message, LF line endings */
    size_t len;
    const char *transport; /* "smtp", "lmtp", "local", ... */
    const char *nexthop;   /* the part after "transport:", may be "" */
    struct delivery_rcpt *rcpts;
    size_t nrcpt;
    smtp_cache_t *cache;   /* connection reuse for smtp and lmtp */
    delivery_submit_fn submit;
    void *submit_arg;
    int64_t start_us;      /* when the attempt began */
    int64_t conn_us;       /* when the connection was ready (0: none) */
    int site_fail;         /* set by the transport: the destination itself
                            * failed (no connection, bad greeting) */
};

/* Fill r; fmt describes the outcome. */
void delivery_set(struct delivery_result *r, enum delivery_status status,
                  const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Give every recipient of req that has no outcome yet the same one. */
void delivery_set_rest(struct delivery_req *req, enum delivery_status status,
                       const char *dsn, const char *relay, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

/* Mark every recipient of req undecided (before a transport runs). */
void delivery_reset(struct delivery_req *req);

/* Nonzero if the recipient has no outcome yet. */
int delivery_undecided(const struct delivery_result *r);

/* Hand req to cleanup and wait until it is durable (or failed); a full
 * cleanup queue is retried for a few seconds.  Takes ownership of req
 * (its done and arg are set here).  Returns 0 when queued, -1 if not. */
int delivery_submit_wait(cleanup_t *c, cleanup_req_t *req);

/* The default enhanced status for a reply code without one: "2.0.0",
 * "4.0.0" or "5.0.0". */
const char *delivery_default_dsn(int code);

#endif
