/* SPDX-License-Identifier: ISC */
/*
 * buf: counted byte buffers.  Growth doubles the capacity; every size
 * computation is checked through mem_reallocarray.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

void
buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
buf_free(buf_t *b)
{
    mem_freep(&b->data);
    b->len = 0;
    b->cap = 0;
}

void
buf_reserve(buf_t *b, size_t extra)
{
    size_t need;

    if (extra > (size_t)-1 - b->len - 1)
        msg_panic("buffer size overflow");
    need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    if (b->cap == 0)
        b->cap = 64;
    while (b->cap < need)
        b->cap = b->cap > ((size_t)-1) / 2 ? need : b->cap * 2;
    b->data = mem_reallocarray(b->data, b->cap, 1);
}

void
buf_append(buf_t *b, const void *p, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void
buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_putc(buf_t *b, int c)
{
    char ch = (char)c;

    buf_append(b, &ch, 1);
}

void
buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        msg_panic("bad format string \"%s\"", fmt);
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void
buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void
buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void
buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *
buf_steal(buf_t *b)
{
    char *p;

    if (b->data == NULL)
        return mem_strdup("");
    p = b->data;
    buf_init(b);
    return p;
}

void
buf_escape(buf_t *b, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf_putc(b, c);
        else
            buf_printf(b, "\\%03o", c);
    }
}
