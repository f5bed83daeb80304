/* SPDX-License-Identifier: ISC */
/*
 * utf8: well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no
 * surrogates, nothing above U+10FFFF.
 */
#ifndef TERN_UTF8_H
#define TERN_UTF8_H

#include <stddef.h>

/* The length of the well-formed character at p, of which at most avail
 * bytes may be read, or 0 if there is none.  A NUL-terminated string
 * may pass (size_t)-1: the NUL ends any sequence. */
size_t utf8_len(const unsigned char *p, size_t avail);

/* Nonzero if the NUL-terminated s is well-formed UTF-8. */
int utf8_valid(const char *s);

#endif
