/* SPDX-License-Identifier: ISC */
/*
 * Allocation that never returns NULL: running out of memory is fatal,
 * as it is for every daemon in the models we follow.  Sizes that are
 * products are checked for overflow before they reach malloc.
 */
#ifndef TERN_MEM_H
#define TERN_MEM_H

#include <stddef.h>

/* Allocate len bytes; never NULL. */
void *mem_alloc(size_t len);

/* Allocate n zeroed objects of size len; never NULL, overflow checked. */
void *mem_calloc(size_t n, size_t len);

/* Resize ptr to n objects of size len; never NULL, overflow checked. */
void *mem_reallocarray(void *ptr, size_t n, size_t len);

/* Duplicate a C string; never NULL.  The caller frees it. */
char *mem_strdup(const char *s);

/* Duplicate len bytes and add a NUL; never NULL. */
char *mem_strndup(const char *s, size_t len);

/* Format into a new string; never NULL.  The caller frees it. */
char *mem_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Free *pp and set it to NULL; accepts NULL and *pp == NULL. */
void mem_freep(void *pp);

#endif
