/* SPDX-License-Identifier: ISC */
/*
 * resolve: which transport and next hop a recipient goes to, decided as
 * Postfix's trivial-rewrite decides it: transport_maps first (the
 * address, its domain, each parent domain as ".parent", then "*"), else
 * the address class: mydestination goes to local_transport,
 * virtual_alias_domains bounce (an alias that matched was rewritten by
 * cleanup already), virtual_mailbox_domains go to virtual_transport,
 * relay_domains to relay_transport and everything else to
 * default_transport, the last two with relayhost (or the domain) as
 * next hop.
 */
#ifndef TERN_RESOLVE_H
#define TERN_RESOLVE_H

#include <stddef.h>

#include "lib/config.h"

/* Resolve addr, of mail from sender (NULL when it does not matter):
 * the transport name into transport (at most tlen bytes) and the next
 * hop into nexthop (at most nlen bytes, "" for none). */
void resolve_rcpt(const config_t *cfg, const char *sender, const char *addr,
                  char *transport, size_t tlen, char *nexthop, size_t nlen);

/* The new address of addr in relocated_maps (looked up as user@domain,
 * as user for a local domain, then as @domain), or NULL.  The value
 * belongs to the table: see table_lookup. */
const char *resolve_relocated(const config_t *cfg, const char *addr);

/* Postfix's address classes, in the order a domain is tested. */
enum resolve_class {
    RESOLVE_LOCAL,           /* no domain, or in mydestination */
    RESOLVE_VIRTUAL_ALIAS,   /* in virtual_alias_domains */
    RESOLVE_VIRTUAL_MAILBOX, /* in virtual_mailbox_domains */
    RESOLVE_RELAY,           /* in relay_domains */
    RESOLVE_DEFAULT,         /* anywhere else */
};

/* The class of a recipient's domain ("" for none). */
enum resolve_class resolve_class(const config_t *cfg, const char *domain);

/* The class's name in Postfix's messages ("local", "virtual alias",
 * "virtual mailbox", "relay" or "default"). */
const char *resolve_class_name(enum resolve_class c);

#endif
