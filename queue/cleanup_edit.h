/* SPDX-License-Identifier: ISC */
/*
 * cleanup_edit: changes that a receiving side asks cleanup to make to a
 * message before it is stored, in the order they were asked for: the
 * header, body and envelope edits of a Milter's end-of-message replies
 * (add, insert, change or delete a header, replace the body, add or
 * delete a recipient, change the sender) and its quarantine.
 *
 * Header positions and indexes refer to the header block of the message
 * as the receiving side handed it over, which is what a Milter saw:
 * cleanup applies the edits before it adds headers of its own.
 */
#ifndef TERN_CLEANUP_EDIT_H
#define TERN_CLEANUP_EDIT_H

#include <stddef.h>

#include "lib/buf.h"
#include "queue/envelope.h"

enum cleanup_edit_op {
    CLEANUP_EDIT_ADD_HEADER, /* name, value: after the last header */
    CLEANUP_EDIT_INS_HEADER, /* name, value: at position index (0: top) */
    CLEANUP_EDIT_CHG_HEADER, /* the index-th (from 1) name header gets
                              * value; an empty value deletes it */
    CLEANUP_EDIT_ADD_RCPT,   /* name: a recipient to add */
    CLEANUP_EDIT_DEL_RCPT,   /* name: a recipient to remove */
    CLEANUP_EDIT_CHG_FROM,   /* name: the new envelope sender */
};

struct cleanup_edit {
    enum cleanup_edit_op op;
    size_t index;
    char *name;
    char *value; /* NULL for the envelope edits */
    struct cleanup_edit *next;
};

typedef struct cleanup_edits {
    struct cleanup_edit *head;
    struct cleanup_edit **tail;
    buf_t body;       /* the replacement body (CRLF or LF lines) */
    int replace_body; /* the body is to be replaced by body */
    int hold;         /* keep the message in the hold queue */
    char *hold_reason; /* why, for the log, or NULL */
} cleanup_edits_t;

/* The logical header (a header line and its continuation lines) at
 * msg + pos: returns its length, newlines included, with the length of
 * its name in *name_len; 0 where the header block ends (an empty line,
 * a line that is not a header, the end). */
size_t cleanup_edits_header(const char *msg, size_t len, size_t pos,
                            size_t *name_len);

/* A new empty list. */
cleanup_edits_t *cleanup_edits_new(void);

/* Free the list; accepts NULL and clears *ep. */
void cleanup_edits_free(cleanup_edits_t **ep);

/* Append an edit; name and value (either may be NULL) are copied, and a
 * CRLF in value becomes an LF. */
void cleanup_edits_add(cleanup_edits_t *e, enum cleanup_edit_op op,
                       size_t index, const char *name, const char *value);

/* Apply the header and body edits to msg (LF line endings), in place. */
void cleanup_edits_message(const cleanup_edits_t *e, buf_t *msg);

/* Apply the recipient and sender edits to env; addresses may come in
 * angle brackets.  A deleted recipient that env does not have is
 * ignored. */
void cleanup_edits_envelope(const cleanup_edits_t *e, envelope_t *env);

#endif
