/* SPDX-License-Identifier: ISC */
/*
 * mem: allocation wrappers.  Every allocation in tern goes through here,
 * so that an exhausted heap ends the process with one clear log line
 * instead of a NULL dereference somewhere far away.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"

void *
mem_alloc(size_t len)
{
    void *p = malloc(len ? len : 1);

    if (p == NULL)
        msg_fatal("out of memory allocating %zu bytes", len);
    return p;
}

void *
mem_calloc(size_t n, size_t len)
{
    void *p = calloc(n ? n : 1, len ? len : 1);

    if (p == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", n, len);
    return p;
}

void *
mem_reallocarray(void *ptr, size_t n, size_t len)
{
    void *p;

    if (len != 0 && n > SIZE_MAX / len)
        msg_panic("allocation overflow: %zu x %zu", n, len);
    p = realloc(ptr, n * len != 0 ? n * len : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", n, len);
    return p;
}

char *
mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *
mem_strndup(const char *s, size_t len)
{
    char *p = mem_alloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
mem_printf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg_fatal("out of memory formatting a string");
    return p;
}

void
mem_freep(void *pp)
{
    void **p = pp;

    if (p != NULL) {
        free(*p);
        *p = NULL;
    }
}
