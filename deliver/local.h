/* SPDX-License-Identifier: ISC */
/*
 * local: delivery to mailboxes on this machine.  mail_spool_directory
 * decides the format, as in Postfix: with a trailing "/" each user has a
 * Maildir under it, otherwise an mbox file named after the user.
 */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H

#include <stddef.h>

#include "deliver/delivery.h"
#include "lib/config.h"
#include "queue/envelope.h"

/* Deliver msg (len bytes, LF line endings, as stored) to the local
 * recipient rcpt; the outcome goes into r. */
void local_deliver(const config_t *cfg, const envelope_t *env,
                   const char *rcpt, const char *msg, size_t len,
                   struct delivery_result *r);

#endif
