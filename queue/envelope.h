/* SPDX-License-Identifier: ISC */
/*
 * envelope: what the queue knows about a message besides its content:
 * sender, recipients with their delivery state, arrival, attempts, next
 * attempt, client and DSN parameters.  It is stored in the meta column
 * family as a JSON object (jansson), which keeps the record readable
 * with ldb and lets later versions add fields; decoding checks every
 * field's type and never trusts the stored bytes.
 */
#ifndef TERN_ENVELOPE_H
#define TERN_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue_id.h"

/* Postfix's queue states. */
enum queue_state {
    QS_INCOMING,
    QS_ACTIVE,
    QS_DEFERRED,
    QS_HOLD,
    QS_CORRUPT,
};

enum rcpt_state {
    RCPT_PENDING,  /* not yet tried, or to be tried again */
    RCPT_DEFERRED, /* failed temporarily; tried again later */
    RCPT_SENT,     /* delivered: done */
    RCPT_BOUNCED,  /* failed permanently: done */
};

/* DSN NOTIFY bits (RFC 3461 section 4.1); 0 means not given. */
#define DSN_NOTIFY_NEVER 1
#define DSN_NOTIFY_SUCCESS 2
#define DSN_NOTIFY_FAILURE 4
#define DSN_NOTIFY_DELAY 8

/* DSN RET (RFC 3461 section 4.3). */
enum dsn_ret {
    DSN_RET_DEFAULT,
    DSN_RET_FULL,
    DSN_RET_HDRS,
};

typedef struct rcpt {
    char *addr;          /* envelope recipient, never NULL */
    char *orcpt;         /* DSN ORCPT or NULL */
    char *orig;          /* the address as received, when rewriting
                          * changed it (logged as orig_to), or NULL */
    int notify;          /* DSN_NOTIFY_* bits */
    enum rcpt_state state;
    char *dsn;           /* last enhanced status, e.g. "4.4.1", or NULL */
    char *reason;        /* last reply or error text, or NULL */
    int attempts;
} rcpt_t;

typedef struct envelope {
    char id[QUEUE_ID_SIZE];
    enum queue_state state;
    char *sender;          /* "" for the null sender, never NULL */
    int64_t arrival_us;    /* when the message was queued */
    int64_t size;          /* bytes of the stored message */
    int64_t next_us;       /* next attempt, when deferred */
    int64_t sched_us;      /* time of this message's key in sched, 0 none */
    int attempts;          /* delivery attempts so far */
    int64_t max_lifetime;  /* seconds, from maximal_queue_lifetime */
    int64_t bounce_lifetime; /* seconds, from bounce_queue_lifetime */
    char *client_name;     /* NULL for local submissions */
    char *client_addr;
    char *helo;
    char *protocol;        /* "SMTP", "ESMTP", "ESMTPS", "LOCAL", ... */
    char *sasl_user;
    char *message_id;
    char *envid;           /* DSN ENVID or NULL */
    enum dsn_ret ret;
    int body_8bit;         /* BODY=8BITMIME */
    int smtputf8;
    int warned;            /* a delay warning went to the sender */
    char *reason;          /* last deferral reason for mailq */
    char *filter;          /* content_filter "transport:nexthop" that
                            * every recipient goes to, or NULL */
    size_t nrcpt;
    size_t rcpt_cap;
    rcpt_t *rcpts;
} envelope_t;

/* A new empty envelope; sender is "" and state QS_INCOMING. */
envelope_t *envelope_new(void);

/* Free an envelope and everything it owns; accepts NULL. */
void envelope_free(envelope_t **envp);

/* Append a recipient (state RCPT_PENDING); returns it. */
rcpt_t *envelope_add_rcpt(envelope_t *env, const char *addr);

/* Replace *field with a copy of value (NULL allowed). */
void envelope_set(char **field, const char *value);

/* Encode as JSON; returns a NUL-terminated string the caller frees and
 * stores its length in *len. */
char *envelope_encode(const envelope_t *env, size_t *len);

/* Decode len bytes.  Returns a new envelope, or NULL with a message in
 * err (at most errlen bytes) if the record is malformed. */
envelope_t *envelope_decode(const char *data, size_t len, char *err,
                            size_t errlen);

/* Number of recipients not yet done (RCPT_PENDING or RCPT_DEFERRED). */
size_t envelope_pending(const envelope_t *env);

/* "incoming", "active", ... */
const char *queue_state_name(enum queue_state state);
const char *rcpt_state_name(enum rcpt_state state);

/* Parse a state name; returns 0 and sets *state, or -1. */
int queue_state_parse(const char *name, enum queue_state *state);

#endif
