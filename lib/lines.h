/* SPDX-License-Identifier: ISC */
/*
 * lines: the logical lines of main.cf-style files (tern.conf, lookup
 * table sources, aliases): a line that begins with white space
 * continues the one before it, "#" lines and empty lines are skipped.
 */
#ifndef TERN_LINES_H
#define TERN_LINES_H

#include <stddef.h>

#include "lib/buf.h"

#define LINES_JOIN 1 /* join continuation lines (else each stands alone) */
#define LINES_TRIM 2 /* drop white space at the end of each line */

/* One logical line: the number of its first line, its text (the lines
 * joined with one space, the leading white space of each dropped), and
 * orphan set when it began with white space with no line before it to
 * continue.  A negative return stops the reading. */
typedef int (*lines_fn)(void *ctx, int lineno, char *line, int orphan);

/* Call fn for each logical line of the len bytes at text; a CR before a
 * line's LF is dropped.  Returns 0, or what fn returned to stop. */
int lines_each(const char *text, size_t len, int flags, lines_fn fn,
               void *ctx);

/* Append the whole file at path to out.  Returns 0, or -1 with errno
 * set and *what saying which step failed ("cannot open", "read
 * error"). */
int lines_read(const char *path, buf_t *out, const char **what);

#endif
