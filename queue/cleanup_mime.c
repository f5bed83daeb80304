/* SPDX-License-Identifier: ISC */
/*
 * cleanup_mime: following the MIME structure of a message; see
 * cleanup_mime.h.
 *
 * Only Content-Type: matters here: its type and subtype, and for a
 * multipart its boundary parameter (a token or a quoted string, RFC
 * 2045 section 5.1).  Comments and folding between the parts are
 * skipped.  A multipart without a boundary, or with an empty one, opens
 * nothing: its body is plain body, as it is to any reader.
 *
 * Threads: one cleanup_mime_t per message on one worker.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mem.h"
#include "queue/cleanup_mime.h"

/* RFC 2046 section 5.1.1 allows 70; longer ones are still matched. */
#define CLEANUP_MIME_BOUNDARY_MAX 256

void
cleanup_mime_init(cleanup_mime_t *m, size_t limit)
{
    memset(m, 0, sizeof(*m));
    m->limit = limit;
    m->in_headers = 1;
    m->part = CLEANUP_MIME_PRIMARY;
}

void
cleanup_mime_free(cleanup_mime_t *m)
{
    size_t i;

    for (i = 0; i < m->nbounds; i++)
        free(m->bounds[i]);
    mem_freep(&m->bounds);
    mem_freep(&m->boundary);
    m->nbounds = 0;
}

/* Skip white space, line breaks and (nested) comments. */
static const char *
cleanup_mime_cfws(const char *p, const char *end)
{
    int depth = 0;

    for (; p < end; p++) {
        if (depth > 0) {
            if (*p == '\\' && p + 1 < end)
                p++;
            else if (*p == '(')
                depth++;
            else if (*p == ')')
                depth--;
        } else if (*p == '(') {
            depth = 1;
        } else if (!isspace((unsigned char)*p)) {
            break;
        }
    }
    return p;
}

/* A token (RFC 2045 section 5.1) at p into out; returns what follows. */
static const char *
cleanup_mime_token(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;

    while (p < end && (unsigned char)*p > 32 && (unsigned char)*p < 127 &&
           strchr("()<>@,;:\\\"/[]?=", *p) == NULL) {
        if (n + 1 < outlen)
            out[n++] = *p;
        p++;
    }
    out[n] = '\0';
    return p;
}

/* A parameter value, token or quoted string, into out. */
static const char *
cleanup_mime_value(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;

    if (p >= end || *p != '"')
        return cleanup_mime_token(p, end, out, outlen);
    for (p++; p < end && *p != '"'; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        if (*p == '\r' || *p == '\n')
            continue; /* folding inside the quotes */
        if (n + 1 < outlen)
            out[n++] = *p;
    }
    out[n] = '\0';
    return p < end ? p + 1 : p;
}

/* Read a Content-Type: header into m->follows and m->boundary. */
static void
cleanup_mime_content_type(cleanup_mime_t *m, const char *hdr, size_t len)
{
    const char *end = hdr + len;
    const char *p = hdr + strlen("Content-Type:");
    char type[64];
    char subtype[64];
    char name[64];
    char value[CLEANUP_MIME_BOUNDARY_MAX];

    p = cleanup_mime_token(cleanup_mime_cfws(p, end), end, type,
                           sizeof(type));
    p = cleanup_mime_cfws(p, end);
    if (p >= end || *p != '/')
        return; /* not a type: RFC 2045 section 5.2 says text/plain */
    p = cleanup_mime_token(cleanup_mime_cfws(p + 1, end), end, subtype,
                           sizeof(subtype));
    mem_freep(&m->boundary);
    m->follows = CLEANUP_MIME_FOLLOWS_BODY;
    if (strcasecmp(type, "message") == 0 &&
        (strcasecmp(subtype, "rfc822") == 0 ||
         strcasecmp(subtype, "global") == 0)) {
        m->follows = CLEANUP_MIME_FOLLOWS_MESSAGE;
        return;
    }
    if (strcasecmp(type, "multipart") != 0)
        return;
    for (;;) {
        p = cleanup_mime_cfws(p, end);
        if (p >= end || *p != ';')
            return;
        p = cleanup_mime_token(cleanup_mime_cfws(p + 1, end), end, name,
                               sizeof(name));
        p = cleanup_mime_cfws(p, end);
        if (p >= end || *p != '=')
            return;
        p = cleanup_mime_value(cleanup_mime_cfws(p + 1, end), end, value,
                               sizeof(value));
        if (strcasecmp(name, "boundary") == 0 && value[0] != '\0') {
            m->follows = CLEANUP_MIME_FOLLOWS_MULTIPART;
            m->boundary = mem_strdup(value);
            return;
        }
    }
}

size_t
cleanup_mime_header_len(const char *msg, size_t len, size_t pos)
{
    const char *line = msg + pos;
    const char *nl;
    size_t llen;
    size_t name;
    size_t end;

    if (pos >= len || line[0] == '\n' || line[0] == ' ' || line[0] == '\t')
        return 0;
    nl = memchr(line, '\n', len - pos);
    llen = nl ? (size_t)(nl - line) : len - pos;
    for (name = 0; name < llen && line[name] != ':' && line[name] > 32 &&
                   line[name] < 127;
         name++)
        ;
    if (name == 0 || name == llen || line[name] != ':')
        return 0;
    end = pos + llen + (nl != NULL);
    while (end < len && (msg[end] == ' ' || msg[end] == '\t')) {
        nl = memchr(msg + end, '\n', len - end);
        end = nl ? (size_t)(nl - msg) + 1 : len;
    }
    return end - pos;
}

int
cleanup_mime_named(const char *hdr, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && hdr[n] == ':' && strncasecmp(hdr, name, n) == 0;
}

int
cleanup_mime_is_mime_header(const char *hdr, size_t len)
{
    return (len > 8 && strncasecmp(hdr, "Content-", 8) == 0 &&
            memchr(hdr, ':', len) != NULL) ||
           cleanup_mime_named(hdr, len, "MIME-Version");
}

void
cleanup_mime_header(cleanup_mime_t *m, const char *hdr, size_t len)
{
    if (cleanup_mime_named(hdr, len, "Content-Type"))
        cleanup_mime_content_type(m, hdr, len);
}

void
cleanup_mime_headers_end(cleanup_mime_t *m)
{
    m->in_headers = 0;
    if (m->follows == CLEANUP_MIME_FOLLOWS_MESSAGE) {
        /* The attached message's own headers come next. */
        m->in_headers = 1;
        m->part = CLEANUP_MIME_NESTED;
    } else if (m->follows == CLEANUP_MIME_FOLLOWS_MULTIPART) {
        if (m->nbounds >= m->limit) {
            m->too_deep = 1;
        } else {
            m->bounds = mem_reallocarray(m->bounds, m->nbounds + 1,
                                         sizeof(char *));
            m->bounds[m->nbounds++] = m->boundary;
            m->boundary = NULL;
        }
    }
    m->follows = CLEANUP_MIME_FOLLOWS_BODY;
    mem_freep(&m->boundary);
}

int
cleanup_mime_body_line(cleanup_mime_t *m, const char *line, size_t len)
{
    size_t i;

    if (len < 3 || line[0] != '-' || line[1] != '-' || m->nbounds == 0)
        return 0;
    for (i = m->nbounds; i-- > 0;) {
        size_t blen = strlen(m->bounds[i]);
        const char *rest = line + 2 + blen;
        const char *end = line + len;
        int closing;

        if (len < 2 + blen || memcmp(line + 2, m->bounds[i], blen) != 0)
            continue;
        closing = end - rest >= 2 && rest[0] == '-' && rest[1] == '-';
        if (closing)
            rest += 2;
        /* Transport padding: white space may follow (section 5.1.1). */
        while (rest < end && (*rest == ' ' || *rest == '\t' || *rest == '\r'))
            rest++;
        if (rest != end)
            continue;
        while (m->nbounds > i + (closing ? 0 : 1))
            free(m->bounds[--m->nbounds]);
        m->in_headers = !closing;
        m->part = CLEANUP_MIME_MULTIPART;
        m->follows = CLEANUP_MIME_FOLLOWS_BODY;
        return 1;
    }
    return 0;
}
