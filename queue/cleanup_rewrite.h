/* SPDX-License-Identifier: ISC */
/*
 * cleanup_rewrite: the address rewriting of cleanup, with Postfix's
 * parameters and meaning: append_at_myorigin, canonical_maps,
 * sender_canonical_maps, recipient_canonical_maps, masquerade_domains
 * and virtual_alias_maps.  It works on single addresses and on the
 * address headers of a message; cleanup decides which mail gets what.
 */
#ifndef TERN_CLEANUP_REWRITE_H
#define TERN_CLEANUP_REWRITE_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"

/* The classes that canonical_classes, sender_canonical_classes,
 * recipient_canonical_classes and masquerade_classes name. */
#define CLEANUP_REWRITE_ENV_SENDER 1 /* envelope_sender */
#define CLEANUP_REWRITE_ENV_RCPT 2   /* envelope_recipient */
#define CLEANUP_REWRITE_HDR_SENDER 4 /* header_sender */
#define CLEANUP_REWRITE_HDR_RCPT 8   /* header_recipient */

/* A list of addresses, each a string the list owns. */
typedef struct cleanup_rewrite_list {
    char **addr;
    size_t n;
    size_t cap;
} cleanup_rewrite_list_t;

/* Register the load-time checks of the class and extension lists. */
void cleanup_rewrite_register(void);

/* Rewrite one address of class cls (one CLEANUP_REWRITE_* bit): a bare
 * local part gets "@$myorigin" when append_at_myorigin is on, then
 * sender_canonical_maps or recipient_canonical_maps, canonical_maps and
 * masquerade_domains apply as their class lists allow.  The null
 * address "" is left alone.  The result is appended to out.  Returns 1
 * if it differs from addr, 0 if not. */
int cleanup_rewrite_addr(const config_t *cfg, int cls, const char *addr,
                         buf_t *out);

/* Look addr up in the maps parameter id (sender_bcc_maps, ...) with the
 * keys of canonical(5): user@domain, user for our own domains, @domain.
 * Returns 1 and appends the result's addresses to out on a hit. */
int cleanup_rewrite_lookup(const config_t *cfg, enum param_id id,
                           const char *addr, cleanup_rewrite_list_t *out);

/* Expand addr through virtual_alias_maps, recursively, and append the
 * final addresses that out does not already hold (compared without
 * regard to case).  Returns 0, or -1 when virtual_alias_recursion_limit
 * or virtual_alias_expansion_limit is exceeded; then a reason (without
 * a status code) is appended to why and out may hold part of the
 * expansion. */
int cleanup_rewrite_virtual(const config_t *cfg, const char *addr,
                            cleanup_rewrite_list_t *out, buf_t *why);

/* smtp_generic_maps (generic(5), with canonical(5)'s keys): rewrite
 * addr into out; returns 1 if it changed. */
int cleanup_rewrite_generic(const config_t *cfg, const char *addr,
                            buf_t *out);

/* The message msg with the addresses of its header block rewritten by
 * smtp_generic_maps, into out (the body copied as it is); returns 1 if
 * a header changed. */
int cleanup_rewrite_generic_message(const config_t *cfg, const char *msg,
                                    size_t len, buf_t *out);

/* The class of the header named by the len bytes at name:
 * CLEANUP_REWRITE_HDR_SENDER (From:, Sender:, Reply-To:, ...),
 * CLEANUP_REWRITE_HDR_RCPT (To:, Cc:, Bcc:, ...) or 0. */
int cleanup_rewrite_header_class(const char *name, size_t len);

/* Rewrite every address in one logical header (name, colon, value and
 * continuation lines, without the final newline) as cleanup_rewrite_addr
 * does for the header's class.  Returns 1 and appends the new header to
 * out when an address changed; returns 0 and leaves out alone when
 * nothing did or the header is not an address header. */
int cleanup_rewrite_header(const config_t *cfg, const char *hdr, size_t len,
                           buf_t *out);

/* Append a copy of addr to list. */
void cleanup_rewrite_list_add(cleanup_rewrite_list_t *list, const char *addr);

/* Nonzero if list holds addr, compared without regard to case. */
int cleanup_rewrite_list_has(const cleanup_rewrite_list_t *list,
                             const char *addr);

/* Free the addresses and the array; the list is left empty. */
void cleanup_rewrite_list_free(cleanup_rewrite_list_t *list);

#endif
