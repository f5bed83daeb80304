/* SPDX-License-Identifier: ISC */
/*
 * sendmail_rcpt: the recipients of a local submission, from sendmail's
 * arguments and, with -t, from the message's To:, Cc: and Bcc: headers
 * (RFC 5322 section 3.4 address lists: display names, angle addresses,
 * groups, comments and quoted strings).
 */
#ifndef TERN_SENDMAIL_RCPT_H
#define TERN_SENDMAIL_RCPT_H

#include <stddef.h>

#include "lib/buf.h"

typedef struct sendmail_rcpt_list {
    char **v; /* the addresses, each owned by the list */
    size_t n;
    size_t cap;
} sendmail_rcpt_list_t;

/* Append addr to list unless it is there already (compared without
 * regard to case). */
void sendmail_rcpt_add(sendmail_rcpt_list_t *list, const char *addr);

/* Free the addresses and the array; the list is left empty. */
void sendmail_rcpt_free(sendmail_rcpt_list_t *list);

/* Append the addresses of the address list text (len bytes, folded or
 * not) to list.  An empty group ("undisclosed-recipients:;") adds
 * nothing.  Returns the number of addresses found, duplicates
 * included. */
size_t sendmail_rcpt_parse(const char *text, size_t len,
                           sendmail_rcpt_list_t *list);

/* With msg a message with LF line endings: append the addresses of its
 * To:, Cc: and Bcc: headers to list (of Resent-To:, Resent-Cc: and
 * Resent-Bcc: instead when it has any of those, RFC 5322 section
 * 3.6.6) and delete the Bcc: (or Resent-Bcc:) headers from msg. */
void sendmail_rcpt_extract(buf_t *msg, sendmail_rcpt_list_t *list);

#endif
