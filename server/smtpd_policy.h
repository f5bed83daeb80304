/* SPDX-License-Identifier: ISC */
/*
 * smtpd_policy: the client side of Postfix's SMTP access policy
 * delegation (SMTPD_POLICY_README), for check_policy_service.  A request
 * is "name=value" lines and an empty line; the answer is the same, with
 * an "action" attribute whose value smtpd_check applies as an access(5)
 * table result.
 *
 * Connections are kept in a cache shared by the threads that ask (the
 * policy job pool of server/smtpd_session.c), at most
 * SMTPD_POLICY_CONCURRENCY idle ones per service; smtpd_policy_sweep
 * closes those idle longer than smtpd_policy_service_max_idle or older
 * than smtpd_policy_service_max_ttl.  A query blocks its thread: every
 * wait is a poll() bounded by smtpd_policy_service_timeout, and
 * smtpd_policy_stop ends all waits at once.  It never runs on an I/O
 * thread.
 */
#ifndef TERN_SMTPD_POLICY_H
#define TERN_SMTPD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/config.h"

/* Queries run on a pool of this many threads, so that no more
 * connections to one service are ever in use, and no more are kept. */
#define SMTPD_POLICY_CONCURRENCY 16

/* The most an answer may hold, attributes and newlines included. */
#define SMTPD_POLICY_ANSWER_MAX 8192

typedef struct smtpd_policy smtpd_policy_t;

/* A new client with an empty connection cache. */
smtpd_policy_t *smtpd_policy_new(void);

/* Make every wait under way and every later query fail at once, for a
 * shutdown that must not wait for a slow server.  Thread-safe. */
void smtpd_policy_stop(smtpd_policy_t *p);

/* Close the cached connections that are past their time; now is
 * clock_mono_ms().  Thread-safe. */
void smtpd_policy_sweep(smtpd_policy_t *p, int64_t now);

/* Close every connection and free p; accepts NULL and clears *pp.  No
 * query may be under way. */
void smtpd_policy_free(smtpd_policy_t **pp);

/* Check the syntax of a service name: "inet:host:port",
 * "inet:[v6addr]:port", "unix:/path" or a path (relative ones are below
 * queue_directory, as Postfix has them).  Returns 0, or -1 with why. */
int smtpd_policy_service_valid(const char *service, const char **why);

/* Append the attribute "name=value\n" to req.  A CR or LF in value
 * (which would end the attribute early) is sent as "?". */
void smtpd_policy_attr(buf_t *req, const char *name, const char *value);

/* Send req (attributes made with smtpd_policy_attr; the empty line is
 * added here) to service, with cfg's smtpd_policy_service_* limits.
 * Returns 0 with the action in action, or -1 with why in why (the
 * caller then applies smtpd_policy_service_default_action).  Both
 * buffers are the caller's and are reset first. */
int smtpd_policy_query(smtpd_policy_t *p, const config_t *cfg,
                       const char *service, const buf_t *req, buf_t *action,
                       buf_t *why);

/* The blocking socket steps of a query, for the other clients of
 * services of this kind (server/smtpd_milter), so that
 * smtpd_policy_stop ends their waits too.  Each returns 0 (connect: the
 * non-blocking socket), or -1 with why appended; deadline is
 * clock_mono_ms() based.  Service names are as for
 * smtpd_policy_service_valid. */
int smtpd_policy_connect(smtpd_policy_t *p, const config_t *cfg,
                         const char *service, int64_t deadline, buf_t *why);
int smtpd_policy_send(smtpd_policy_t *p, int fd, const char *data, size_t len,
                      int64_t deadline, buf_t *why);
/* Wait until fd has something to read. */
int smtpd_policy_wait_read(smtpd_policy_t *p, int fd, int64_t deadline,
                           buf_t *why);

/* An answer being read: feed it what arrives, in pieces of any size. */
struct smtpd_policy_reader {
    buf_t line;   /* the attribute being read */
    buf_t action; /* the action, once seen */
    int have_action;
    size_t total; /* bytes taken so far */
};

void smtpd_policy_reader_init(struct smtpd_policy_reader *r);
void smtpd_policy_reader_free(struct smtpd_policy_reader *r);

/* Take bytes of the answer from p.  Returns 1 once the empty line that
 * ends it is taken, with *used the bytes taken from p (what follows
 * belongs to no request); 0 when all of p was taken and more is due;
 * -1 when the answer is malformed (a line without "=", a NUL, no action
 * or an empty one, two actions, or more than SMTPD_POLICY_ANSWER_MAX
 * bytes), with why. */
int smtpd_policy_feed(struct smtpd_policy_reader *r, const char *p, size_t len,
                      size_t *used, const char **why);

#endif
