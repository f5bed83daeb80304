/* SPDX-License-Identifier: ISC */
/*
 * hdr_addr: find the addresses in the value of an address header
 * (From:, To:, Cc:, ...), RFC 5322 section 3.4, so that a caller can
 * look at or replace each one and leave every other byte as it was.
 */
#ifndef TERN_HDR_ADDR_H
#define TERN_HDR_ADDR_H

#include <stddef.h>

/* Called for each address found: the addr-spec is the len bytes at
 * value + off (no angle brackets, no comments, no display name). */
typedef void (*hdr_addr_fn)(void *arg, size_t off, size_t len);

/* Scan the len bytes of value (the text after "Name:", continuation
 * lines included) and call fn for every address in it, in order.
 * Returns how many were found. */
size_t hdr_addr_scan(const char *value, size_t len, hdr_addr_fn fn, void *arg);

#endif
