/* SPDX-License-Identifier: ISC */
/*
 * smtp: the SMTP delivery agent (RFC 5321), and the client engine that
 * the LMTP agent shares.  A request carries one message and a group of
 * its recipients for one next hop; the agent finds the mail exchangers,
 * talks to them and reports an outcome per recipient.
 *
 * Next hops, as Postfix's smtp(8) takes them: "domain" and
 * "domain:port" look up MX records (then A/AAAA when there are none);
 * "[host]" and "[host]:port" skip the MX lookup.
 *
 * Threads: smtp_deliver runs on delivery workers, many at once; the
 * connection cache is shared between them under its own lock.
 */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H

#include <stdint.h>

#include "deliver/delivery.h"

/* Where the engine connects; lmtp_deliver fills one in. */
struct smtp_target {
    int lmtp;              /* LHLO, one reply per recipient after DATA */
    const char *unix_path; /* a unix-domain socket, or NULL for TCP */
    const char *host;      /* TCP: a domain (mx set) or a host name or
                            * address literal */
    int port;
    int mx;                /* look up MX records for host */
};

/* Deliver req by SMTP to req->nexthop. */
void smtp_deliver(struct delivery_req *req);

/* Deliver req to target; the shared engine of smtp and lmtp. */
void smtp_deliver_target(struct delivery_req *req,
                         const struct smtp_target *target);

/* Parse "[host]:port", "[host]", "host:port" or "host" into host (at
 * most hostlen bytes), *port (dflt when none) and *mx (0 for brackets).
 * Returns 0, or -1 if it does not parse. */
int smtp_parse_nexthop(const char *nexthop, int dflt, char *host,
                       size_t hostlen, int *port, int *mx);

/* A cache of idle connections for reuse, and the TLS client contexts. */
smtp_cache_t *smtp_cache_new(void);

/* Close (with QUIT) connections idle for longer than max_idle seconds;
 * 0 closes them all.  Returns how many stay open. */
size_t smtp_cache_expire(smtp_cache_t *cache, int max_idle);

/* Close everything and free *cp; accepts NULL. */
void smtp_cache_free(smtp_cache_t **cp);

#endif
