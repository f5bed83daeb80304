/* SPDX-License-Identifier: ISC */
/*
 * lmtp: the LMTP delivery agent (RFC 2033), for mailbox servers such as
 * Dovecot.  Next hops as Postfix's lmtp(8) takes them: "unix:/path" (or
 * a bare "/path"), "inet:host:port", "host:port" or "[host]:port"; the
 * default port is 24.
 */
#ifndef TERN_LMTP_H
#define TERN_LMTP_H

#include "deliver/delivery.h"

/* Deliver req by LMTP to req->nexthop. */
void lmtp_deliver(struct delivery_req *req);

#endif
