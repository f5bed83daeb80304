/* SPDX-License-Identifier: ISC */
/*
 * buf: the one counted byte buffer used for everything that comes from
 * the network or goes to disk.  The data is always followed by a NUL
 * that is not counted in len, so a buffer holding text can be passed to
 * functions that want a C string; binary data may hold NULs of its own.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

/* Initialise an empty buffer in place (no allocation yet). */
void buf_init(buf_t *b);

/* Release the storage of b; b is left empty and reusable. */
void buf_free(buf_t *b);

/* Make room for at least extra more bytes. */
void buf_reserve(buf_t *b, size_t extra);

/* Append len bytes. */
void buf_append(buf_t *b, const void *p, size_t len);

/* Append a C string. */
void buf_puts(buf_t *b, const char *s);

/* Append one byte. */
void buf_putc(buf_t *b, int c);

/* Append formatted text. */
void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);

/* Set the length to zero, keeping the storage. */
void buf_reset(buf_t *b);

/* Take ownership of the storage: returns a NUL-terminated string the
 * caller frees, and leaves b empty. */
char *buf_steal(buf_t *b);

/* Append s with every byte outside printable ASCII written as \ooo, so
 * that text from the network can go into a log line. */
void buf_escape(buf_t *b, const char *s, size_t len);

#endif
