/* SPDX-License-Identifier: ISC */
/*
 * cleanup_mime: the MIME structure of a message (RFC 2045, RFC 2046),
 * followed line by line as cleanup reads the body, so that the headers
 * of body parts and of attached messages go to mime_header_checks and
 * nested_header_checks and the rest to body_checks, as with Postfix's
 * MIME input processing.
 *
 * The caller hands over every header of the block it is reading
 * (cleanup_mime_header) and says where the block ends; a Content-Type
 * of multipart/... with a boundary opens a level whose boundary lines
 * start the headers of each part, and message/rfc822 or message/global
 * makes the next lines the headers of the attached message.  Boundaries
 * are matched innermost first; a closing "--boundary--" closes the
 * levels inside it too, as RFC 2046 section 5.1.2 lets it.
 */
#ifndef TERN_CLEANUP_MIME_H
#define TERN_CLEANUP_MIME_H

#include <stddef.h>

/* Whose header block is being read. */
enum cleanup_mime_part {
    CLEANUP_MIME_PRIMARY,   /* the message's own headers */
    CLEANUP_MIME_MULTIPART, /* the headers of a body part */
    CLEANUP_MIME_NESTED,    /* the headers of an attached message */
};

/* What a header block announces for the lines after it (follows). */
enum {
    CLEANUP_MIME_FOLLOWS_BODY,      /* a leaf: text, an image, ... */
    CLEANUP_MIME_FOLLOWS_MULTIPART, /* parts between boundaries */
    CLEANUP_MIME_FOLLOWS_MESSAGE,   /* an attached message */
};

typedef struct cleanup_mime {
    char **bounds; /* open multipart levels, outermost first */
    size_t nbounds;
    size_t limit;             /* mime_nesting_limit */
    int in_headers;           /* the lines read now are a header block */
    enum cleanup_mime_part part;
    int follows;              /* what the block's Content-Type announces */
    char *boundary;           /* its boundary, for a multipart */
    int too_deep;             /* nesting went past the limit */
} cleanup_mime_t;

/* Start at the primary headers, with at most limit levels of nesting. */
void cleanup_mime_init(cleanup_mime_t *m, size_t limit);

void cleanup_mime_free(cleanup_mime_t *m);

/* One logical header of the block being read (continuation lines
 * joined, no final newline). */
void cleanup_mime_header(cleanup_mime_t *m, const char *hdr, size_t len);

/* The block being read ended; what follows is the body it announced or
 * the headers of an attached message.  Sets too_deep past the limit. */
void cleanup_mime_headers_end(cleanup_mime_t *m);

/* A line of body (without its newline).  Returns 1 if it is a boundary
 * of an open level: then in_headers says whether a part's headers
 * follow (0 after a closing boundary). */
int cleanup_mime_body_line(cleanup_mime_t *m, const char *line, size_t len);

/* Length of the logical header at msg + pos (of len bytes), its
 * continuation lines and their newlines included, or 0 where a header
 * block ends: an empty line, a line that is not a header (a body starts
 * there, as does a continuation line with no header before it), or the
 * end. */
size_t cleanup_mime_header_len(const char *msg, size_t len, size_t pos);

/* Nonzero if the logical header of len bytes at hdr is named name
 * (without regard to case). */
int cleanup_mime_named(const char *hdr, size_t len, const char *name);

/* Nonzero for the MIME headers: MIME-Version: and Content-*: */
int cleanup_mime_is_mime_header(const char *hdr, size_t len);

#endif
