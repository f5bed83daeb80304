/* SPDX-License-Identifier: ISC */
/*
 * smtpd_parse: the SMTP command line parser, kept apart from the session
 * so that it can be tested and fuzzed on its own.  It knows RFC 5321's
 * grammar for command verbs, paths and ESMTP parameters; it knows
 * nothing of policy.
 */
#ifndef TERN_SMTPD_PARSE_H
#define TERN_SMTPD_PARSE_H

#include <stddef.h>

#include "lib/buf.h"

enum smtp_verb {
    SMTP_UNKNOWN,
    SMTP_HELO,
    SMTP_EHLO,
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_RSET,
    SMTP_NOOP,
    SMTP_QUIT,
    SMTP_VRFY,
    SMTP_EXPN,
    SMTP_HELP,
    SMTP_STARTTLS,
    SMTP_AUTH,
    SMTP_BDAT,
};

/* A command line split into verb and argument.  arg points into the
 * parsed line and is NUL-terminated there. */
struct smtp_cmd {
    enum smtp_verb verb;
    const char *name; /* the verb as the table spells it, "" if unknown */
    char *arg;        /* text after the verb and its space, "" if none */
};

#define SMTP_PARAMS_MAX 16

struct smtp_param {
    char *key;   /* upper-cased in place */
    char *value; /* NULL for a keyword without "=" */
};

/* A MAIL FROM or RCPT TO argument. */
struct smtp_path {
    char *addr; /* the mailbox, without brackets or source route; "" for <> */
    size_t nparams;
    struct smtp_param params[SMTP_PARAMS_MAX];
};

/* Split line (without its line ending; modified in place) into a
 * command.  Returns 0; cmd->verb is SMTP_UNKNOWN for an unknown verb. */
int smtpd_parse_command(char *line, struct smtp_cmd *cmd);

/* Parse the argument of MAIL (prefix "FROM:") or RCPT ("TO:") in place.
 * Returns 0, or -1 with *why set to a short reason for the 501 reply.
 * null_ok allows "<>"; a missing domain is allowed only for postmaster
 * (RFC 5321 section 4.1.1.3). */
int smtpd_parse_path(char *arg, const char *prefix, int null_ok,
                     struct smtp_path *path, const char **why);

/* Nonzero if s is a syntactically valid RFC 5321 mailbox
 * (local-part@domain). */
int smtpd_valid_mailbox(const char *s, size_t len);

/* Decode RFC 3461 xtext ("+2B" for "+") into out.  Returns 0, or -1 if
 * in is not valid xtext. */
int smtpd_parse_xtext(const char *in, buf_t *out);

/* Parse a DSN NOTIFY value (NEVER, or a list of SUCCESS, FAILURE and
 * DELAY); returns the DSN_NOTIFY_* bits, or -1. */
int smtpd_parse_notify(const char *value);

/* Parse a BDAT argument "size [LAST]"; returns 0 and sets *size and
 * *last, or -1. */
int smtpd_parse_bdat(const char *arg, long long *size, int *last);

/* The verb's name for the log ("ehlo", "mail", ...). */
const char *smtpd_verb_name(enum smtp_verb verb);

#endif
