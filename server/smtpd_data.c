/* SPDX-License-Identifier: ISC */
/*
 * smtpd_data: DATA and BDAT content.
 *
 * DATA: lines may end in CRLF or in a bare LF (read as CRLF, as
 * Postfix's "normalize" does), but only CRLF "." CRLF ends the message:
 * a "." line that ends in a bare LF, or follows a line that did, is
 * content, which defeats the SMTP smuggling attacks of 2023.  A leading
 * dot is removed (RFC 5321 section 4.5.2).  A bare CR anywhere in the
 * content also ends a line, so that no CR leaves tern except in a CRLF,
 * and a receiver that took "\r.\r" for the end of data cannot be fed a
 * second message through tern.
 *
 * BDAT: a chunk is counted, not terminated, so it needs only the line
 * ending rules; a CR at the end of a chunk waits for the next chunk to
 * say whether an LF follows.
 *
 * The output is the message with LF line endings, as tern stores it.
 */
#include "autoconf.h"

#include <string.h>

#include "server/smtpd_data.h"

/* Pass on text with every CR made a line end; the last piece ends the
 * line only if newline is set. */
static void
smtpd_data_put(const char *p, size_t len, int newline, smtpd_data_fn fn,
               void *arg)
{
    const char *cr;

    while ((cr = memchr(p, '\r', len)) != NULL) {
        fn(arg, p, (size_t)(cr - p), 1);
        len -= (size_t)(cr - p) + 1;
        p = cr + 1;
    }
    if (len > 0 || newline)
        fn(arg, p, len, newline);
}

void
smtpd_data_begin(struct smtpd_data_reader *r)
{
    /* The DATA command line ended in CRLF: a "." right away ends. */
    r->prev_crlf = 1;
    r->mid_line = 0;
}

int
smtpd_data_feed(struct smtpd_data_reader *r, buf_t *in, size_t chunk,
                smtpd_data_fn fn, void *arg)
{
    for (;;) {
        char *p = in->data;
        char *nl = in->len ? memchr(p, '\n', in->len) : NULL;
        size_t llen;
        size_t start = 0;
        int crlf;

        if (nl == NULL) {
            /* A very long line goes on in parts, keeping a final CR
             * back in case the LF follows. */
            if (in->len >= chunk && in->len > 1) {
                size_t take = in->len - (p[in->len - 1] == '\r');

                if (!r->mid_line && p[0] == '.')
                    start = 1;
                smtpd_data_put(p + start, take - start, 0, fn, arg);
                buf_consume(in, take);
                r->mid_line = 1;
            }
            return 0;
        }
        llen = (size_t)(nl - p);
        crlf = llen > 0 && p[llen - 1] == '\r';
        if (crlf)
            llen--;
        if (!r->mid_line && r->prev_crlf && crlf && llen == 1 &&
            p[0] == '.') {
            buf_consume(in, 3);
            return 1;
        }
        if (!r->mid_line && llen > 0 && p[0] == '.')
            start = 1;
        smtpd_data_put(p + start, llen - start, 1, fn, arg);
        r->prev_crlf = crlf;
        r->mid_line = 0;
        buf_consume(in, (size_t)(nl - p) + 1);
    }
}

void
smtpd_bdat_begin(struct smtpd_bdat_reader *r)
{
    r->cr = 0;
}

void
smtpd_bdat_feed(struct smtpd_bdat_reader *r, const char *p, size_t len,
                smtpd_data_fn fn, void *arg)
{
    size_t i;
    size_t start = 0;

    if (len == 0)
        return;
    if (r->cr) {
        /* CR then LF across chunks is one line end; CR alone is too. */
        if (p[0] != '\n')
            fn(arg, "", 0, 1);
        r->cr = 0;
    }
    for (i = 0; i < len; i++) {
        if (p[i] != '\r')
            continue;
        if (i + 1 == len) {
            fn(arg, p + start, i - start, 0);
            r->cr = 1;
            return;
        }
        fn(arg, p + start, i - start, p[i + 1] != '\n');
        start = i + 1;
    }
    fn(arg, p + start, len - start, 0);
}

void
smtpd_bdat_end(struct smtpd_bdat_reader *r, smtpd_data_fn fn, void *arg)
{
    if (r->cr)
        fn(arg, "", 0, 1);
    r->cr = 0;
}
