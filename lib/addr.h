/* SPDX-License-Identifier: ISC */
/*
 * addr: small operations on RFC 5321 addresses as tern stores them
 * (local-part@domain, without angle brackets; "" is the null sender).
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stddef.h>

/* The domain of addr (after the last '@'), or "" if it has none. */
const char *addr_domain(const char *addr);

/* A copy of the local part of addr with the quotes of a quoted local
 * part removed; the caller frees it. */
char *addr_localpart(const char *addr);

/* The mailbox name for a local recipient: the local part folded to lower
 * case, without the extension after the first of the delimiter
 * characters.  Returns NULL when the local part cannot safely name a
 * mailbox file (empty, "." or "..", a leading '.', '/', or a control
 * character).  The caller frees it. */
char *addr_mailbox_name(const char *addr, const char *delimiters);

struct sockaddr;

/* Nonzero if the client address sa matches one of the network items
 * ("127.0.0.0/8", "[::1]/128", "192.0.2.7", "[2001:db8::1]").  Items
 * that do not parse are skipped with a warning. */
int addr_in_networks(const struct sockaddr *sa, char *const *items);

/* Write sa's numeric address (without brackets or port) into out. */
void addr_numeric(const struct sockaddr *sa, char *out, size_t outlen);

/* Nonzero if the item parses as a network (for config checks). */
int addr_network_valid(const char *item);

#endif
