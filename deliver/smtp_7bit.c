/* SPDX-License-Identifier: ISC */
/*
 * smtp_7bit: 8-bit content made 7-bit for a server without 8BITMIME.
 *
 * The message is walked part by part, the whole of it in memory: a
 * part's header block is read with cleanup_mime (its Content-Type and
 * boundary) and its Content-Transfer-Encoding noted; a multipart's body
 * is split at its own boundary lines and each part converted in turn,
 * an attached message is converted as a message, and a leaf with a byte
 * above 127 in its body is re-encoded as quoted-printable (RFC 2045
 * section 6.7), its Content-Transfer-Encoding: replaced or added.  A
 * composite that declared 8bit declares 7bit afterwards.  Parts nested
 * deeper than SMTP_7BIT_DEPTH are copied as they are.
 *
 * Threads: any; nothing is shared.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_7bit.h"
#include "queue/cleanup_mime.h"

#define SMTP_7BIT_DEPTH 32
#define SMTP_7BIT_LINE 76

/* One logical header: where it is in the message. */
struct smtp_7bit_hdr {
    size_t start;
    size_t len; /* without its final newline */
    size_t next;
};

int
smtp_7bit_needed(const char *msg, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)msg[i] > 127)
            return 1;
    return 0;
}

/* The logical header at pos (before end) into h, or 0 where the block
 * ends (see cleanup_mime_header_len). */
static int
smtp_7bit_next_header(const char *msg, size_t pos, size_t end,
                      struct smtp_7bit_hdr *h)
{
    size_t n = cleanup_mime_header_len(msg, end, pos);

    if (n == 0)
        return 0;
    h->start = pos;
    h->next = pos + n;
    h->len = n - (msg[pos + n - 1] == '\n');
    return 1;
}

/* The encoding a Content-Transfer-Encoding: header names, lower case,
 * into enc (empty for a header that names nothing). */
static void
smtp_7bit_encoding(const char *hdr, size_t len, char *enc, size_t enclen)
{
    const char *p = hdr + strlen("Content-Transfer-Encoding:");
    const char *end = hdr + len;
    size_t n = 0;

    while (p < end && isspace((unsigned char)*p))
        p++;
    while (p < end && n + 1 < enclen && !isspace((unsigned char)*p) &&
           *p != ';' && *p != '(')
        enc[n++] = (char)tolower((unsigned char)*p++);
    enc[n] = '\0';
}

/* The body lines from pos to end as quoted-printable. */
static void
smtp_7bit_qp(const char *msg, size_t pos, size_t end, buf_t *out)
{
    static const char hex[] = "0123456789ABCDEF";

    while (pos < end) {
        const char *nl = memchr(msg + pos, '\n', end - pos);
        size_t stop = nl ? (size_t)(nl - msg) : end;
        size_t col = 0;
        size_t i;

        for (i = pos; i < stop; i++) {
            unsigned char c = (unsigned char)msg[i];
            int last = i + 1 == stop;
            char tok[4];
            size_t tlen;

            if ((c >= 33 && c <= 126 && c != '=') ||
                ((c == ' ' || c == '\t') && !last)) {
                tok[0] = (char)c;
                tlen = 1;
            } else {
                tok[0] = '=';
                tok[1] = hex[c >> 4];
                tok[2] = hex[c & 15];
                tlen = 3;
            }
            /* A soft line break keeps lines within 76 characters. */
            if (col + tlen > SMTP_7BIT_LINE - 1) {
                buf_append(out, "=\n", 2);
                col = 0;
            }
            buf_append(out, tok, tlen);
            col += tlen;
        }
        if (nl)
            buf_putc(out, '\n');
        pos = nl ? stop + 1 : end;
    }
}

static size_t smtp_7bit_part(const char *msg, size_t pos, size_t end,
                             int depth, int primary, buf_t *out);

/* The body of a multipart from pos to end, split at its boundary. */
static size_t
smtp_7bit_multipart(const char *msg, size_t pos, size_t end,
                    const char *boundary, int depth, buf_t *out)
{
    size_t blen = strlen(boundary);
    size_t part = (size_t)-1; /* start of the part being read */
    size_t done = 0;
    int closed = 0;

    while (pos < end) {
        const char *nl = memchr(msg + pos, '\n', end - pos);
        size_t next = nl ? (size_t)(nl - msg) + 1 : end;
        size_t llen = next - pos - (nl != NULL);
        const char *rest = msg + pos + 2 + blen;
        const char *lend = msg + pos + llen;
        int close;

        if (closed || llen < 2 + blen || msg[pos] != '-' ||
            msg[pos + 1] != '-' || memcmp(msg + pos + 2, boundary, blen) != 0) {
            if (part == (size_t)-1)
                buf_append(out, msg + pos, next - pos);
            pos = next;
            continue;
        }
        close = lend - rest >= 2 && rest[0] == '-' && rest[1] == '-';
        if (close)
            rest += 2;
        while (rest < lend && (*rest == ' ' || *rest == '\t' || *rest == '\r'))
            rest++;
        if (rest != lend) {
            if (part == (size_t)-1)
                buf_append(out, msg + pos, next - pos);
            pos = next;
            continue;
        }
        /* A boundary: the part before it ends with the line break that
         * belongs to the boundary (RFC 2046 section 5.1.1). */
        if (part != (size_t)-1) {
            size_t pend = pos > part && msg[pos - 1] == '\n' ? pos - 1 : pos;

            done += smtp_7bit_part(msg, part, pend, depth + 1, 0, out);
            if (pend < pos)
                buf_putc(out, '\n');
        }
        buf_append(out, msg + pos, next - pos);
        part = close ? (size_t)-1 : next;
        closed = close;
        pos = next;
    }
    if (part != (size_t)-1 && part < end)
        done += smtp_7bit_part(msg, part, end, depth + 1, 0, out);
    return done;
}

/* One part from pos to end; primary for a message (the whole one, or
 * an attached one). */
static size_t
smtp_7bit_part(const char *msg, size_t pos, size_t end, int depth,
               int primary, buf_t *out)
{
    struct smtp_7bit_hdr h;
    cleanup_mime_t m;
    char enc[32] = "";
    size_t cte = (size_t)-1; /* the header's start */
    size_t body = pos;
    size_t done = 0;
    int has_type = 0;
    int has_version = 0;
    int follows;
    int leaf8;

    if (depth > SMTP_7BIT_DEPTH) {
        buf_append(out, msg + pos, end - pos);
        return 0;
    }
    cleanup_mime_init(&m, 1);
    while (smtp_7bit_next_header(msg, body, end, &h)) {
        cleanup_mime_header(&m, msg + h.start, h.len);
        if (cleanup_mime_named(msg + h.start, h.len, "Content-Transfer-Encoding")) {
            smtp_7bit_encoding(msg + h.start, h.len, enc, sizeof(enc));
            cte = h.start;
        }
        has_type |= cleanup_mime_named(msg + h.start, h.len, "Content-Type");
        has_version |= cleanup_mime_named(msg + h.start, h.len, "MIME-Version");
        body = h.next;
    }
    follows = m.follows;
    leaf8 = follows == CLEANUP_MIME_FOLLOWS_BODY &&
            (enc[0] == '\0' || strcmp(enc, "7bit") == 0 ||
             strcmp(enc, "8bit") == 0) &&
            smtp_7bit_needed(msg + body, end - body);

    /* The header block, with the encoding corrected where it changes. */
    for (h.next = pos; smtp_7bit_next_header(msg, h.next, end, &h);) {
        if (h.start == cte && leaf8) {
            buf_puts(out, "Content-Transfer-Encoding: quoted-printable\n");
            continue;
        }
        if (h.start == cte && follows != CLEANUP_MIME_FOLLOWS_BODY &&
            strcmp(enc, "8bit") == 0) {
            buf_puts(out, "Content-Transfer-Encoding: 7bit\n");
            continue;
        }
        buf_append(out, msg + h.start, h.next - h.start);
        if (h.next == end && msg[end - 1] != '\n')
            buf_putc(out, '\n');
    }
    if (leaf8 && cte == (size_t)-1) {
        if (primary && !has_version)
            buf_puts(out, "MIME-Version: 1.0\n");
        if (!has_type)
            buf_puts(out, "Content-Type: text/plain; charset=unknown-8bit\n");
        buf_puts(out, "Content-Transfer-Encoding: quoted-printable\n");
    }
    /* The empty line, if there is one. */
    if (body < end && msg[body] == '\n') {
        buf_putc(out, '\n');
        body++;
    }

    if (leaf8) {
        smtp_7bit_qp(msg, body, end, out);
        done = 1;
    } else if (follows == CLEANUP_MIME_FOLLOWS_MULTIPART && m.boundary) {
        done = smtp_7bit_multipart(msg, body, end, m.boundary, depth, out);
    } else if (follows == CLEANUP_MIME_FOLLOWS_MESSAGE) {
        /* A message of its own, which may need MIME-Version: too. */
        done = smtp_7bit_part(msg, body, end, depth + 1, 1, out);
    } else {
        buf_append(out, msg + body, end - body);
    }
    cleanup_mime_free(&m);
    return done;
}

size_t
smtp_7bit_convert(const char *msg, size_t len, buf_t *out)
{
    return smtp_7bit_part(msg, 0, len, 0, 1, out);
}
