/* SPDX-License-Identifier: ISC */
/*
 * resolve: which transport and next hop a recipient goes to, decided as
 * Postfix's trivial-rewrite decides it: transport_maps first (the
 * address, its domain, each parent domain as ".parent", then "*"), else
 * the address class: mydestination goes to local_transport,
 * virtual_mailbox_domains to virtual_transport, everything else to
 * default_transport with relayhost (or the domain) as next hop.
 */
#ifndef TERN_RESOLVE_H
#define TERN_RESOLVE_H

#include <stddef.h>

#include "lib/config.h"

/* Resolve addr: the transport name into transport (at most tlen bytes)
 * and the next hop into nexthop (at most nlen bytes, "" for none). */
void resolve_rcpt(const config_t *cfg, const char *addr, char *transport,
                  size_t tlen, char *nexthop, size_t nlen);

/* Nonzero if domain is one of virtual_mailbox_domains: listed by name,
 * or found in a table the list names. */
int resolve_virtual_domain(const config_t *cfg, const char *domain);

#endif
