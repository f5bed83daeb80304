/* SPDX-License-Identifier: ISC */
/*
 * maildrop: the files that sendmail leaves in $queue_directory/maildrop
 * for pickup.  A file is a small versioned header of "name value" lines
 * (who submitted it, the envelope, the DSN requests), an empty line, and
 * the message with LF line endings; server/README describes every
 * field.  The writer makes a file appear whole or not at all; the
 * reader trusts none of its bytes.
 */
#ifndef TERN_MAILDROP_H
#define TERN_MAILDROP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "queue/envelope.h"

#define MAILDROP_VERSION 1

/* The header, not counting the message, is at most this long. */
#define MAILDROP_HEADER_MAX (4 * 1024 * 1024)

/* Final names are "M" and 30 more characters; temporary ones start
 * with "T".  Both fit in this. */
#define MAILDROP_NAME_SIZE 64

typedef struct maildrop_rcpt {
    char *addr;  /* never NULL or empty */
    char *orcpt; /* DSN ORCPT as "type;address", or NULL */
    int notify;  /* DSN_NOTIFY_* bits, 0 if not given */
} maildrop_rcpt_t;

typedef struct maildrop {
    long uid;         /* real uid of the submitting process */
    char *user;       /* its login name */
    int64_t time_us;  /* when it was submitted */
    char *sender;     /* envelope sender, "" for the null sender */
    char *fullname;   /* -F, or NULL */
    char *envid;      /* DSN ENVID (decoded), or NULL */
    enum dsn_ret ret; /* DSN RET */
    int body_8bit;    /* BODY=8BITMIME */
    size_t nrcpt;
    size_t rcpt_cap;
    maildrop_rcpt_t *rcpts;
} maildrop_t;

/* Make m empty (no allocation). */
void maildrop_init(maildrop_t *m);

/* Free what m owns and make it empty again. */
void maildrop_clear(maildrop_t *m);

/* Set *field (user, sender, fullname, envid) to a copy of value. */
void maildrop_set(char **field, const char *value);

/* Append a recipient (a copy of addr); returns it for notify/orcpt. */
maildrop_rcpt_t *maildrop_add_rcpt(maildrop_t *m, const char *addr);

/* Nonzero if s may be a field value: no control characters (bytes below
 * 32 and 127) and valid UTF-8. */
int maildrop_text_ok(const char *s);

/* Append the header of m, for a message of msglen bytes, to out.
 * Returns 0, or -1 with a reason in *why when a field cannot be
 * written (a control character, no recipient). */
int maildrop_format(const maildrop_t *m, size_t msglen, buf_t *out,
                    const char **why);

/* Parse a whole file of len bytes into m (which the caller has
 * initialised).  Returns 0 and sets *body to the offset of the message,
 * which runs to the end of data; or -1 with a reason ("line 3: ...") in
 * err, leaving m to be cleared by the caller. */
int maildrop_parse(const char *data, size_t len, maildrop_t *m, size_t *body,
                   char *err, size_t errlen);

/* Write m and the message into dir: a temporary file, fsync, rename to
 * a final name, and the rename made durable.  Returns 0 with the final
 * name in name; or -1 with errno-based text in err and nothing left
 * behind in dir; errno is kept from the failing call. */
int maildrop_write(const char *dir, const maildrop_t *m, const char *msg,
                   size_t len, char name[MAILDROP_NAME_SIZE], buf_t *err);

/* Nonzero if name is a final maildrop name, one that pickup takes. */
int maildrop_name_final(const char *name);

/* Nonzero if name is a temporary name that a writer may still use. */
int maildrop_name_temp(const char *name);

#endif
