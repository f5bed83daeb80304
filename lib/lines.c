/* SPDX-License-Identifier: ISC */
/*
 * lines: reading logical lines; see lines.h.  Threads: any.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/lines.h"

int
lines_each(const char *text, size_t len, int flags, lines_fn fn, void *ctx)
{
    buf_t logical;
    size_t pos = 0;
    int lineno = 0;
    int start = 0;
    int orphan = 0;
    int rc = 0;

    buf_init(&logical);
    while (pos < len && rc >= 0) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        size_t i = 0;

        pos += llen + (nl != NULL);
        lineno++;
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (flags & LINES_TRIM)
            while (llen > 0 && (line[llen - 1] == ' ' ||
                                line[llen - 1] == '\t' ||
                                line[llen - 1] == '\r' ||
                                line[llen - 1] == '\f' ||
                                line[llen - 1] == '\v'))
                llen--;
        while (i < llen && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == llen || line[i] == '#')
            continue;
        if ((flags & LINES_JOIN) && i > 0 && start != 0) {
            buf_putc(&logical, ' ');
            buf_append(&logical, line + i, llen - i);
            continue;
        }
        if (start != 0)
            rc = fn(ctx, start, logical.data, orphan);
        buf_reset(&logical);
        buf_append(&logical, line + i, llen - i);
        start = lineno;
        orphan = (flags & LINES_JOIN) && i > 0;
    }
    if (rc >= 0 && start != 0)
        rc = fn(ctx, start, logical.data, orphan);
    buf_free(&logical);
    return rc < 0 ? rc : 0;
}

int
lines_read(const char *path, buf_t *out, const char **what)
{
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ssize_t n;

    if (fd < 0) {
        *what = "cannot open";
        return -1;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;

            close(fd);
            errno = e;
            *what = "read error";
            return -1;
        }
        buf_append(out, chunk, (size_t)n);
    }
    close(fd);
    return 0;
}
