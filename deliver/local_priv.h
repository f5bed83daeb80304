/* SPDX-License-Identifier: ISC */
/*
 * local_priv: delivery into system accounts' mailboxes with the
 * account's own uid.  ternd runs as mail_owner, so a process that keeps
 * root is forked at start, before privileges are dropped, and each such
 * delivery is handed to it (local_priv.c says how).
 */
#ifndef TERN_LOCAL_PRIV_H
#define TERN_LOCAL_PRIV_H

#include <stddef.h>

#include "deliver/delivery.h"
#include "lib/config.h"

/* When running as root and local_user_delivery is set, fork the
 * privileged process for mail_spool_directory as cfg has it.  Call
 * while the process has one thread, before giving up root. */
void local_priv_start(const config_t *cfg);

/* Nonzero if deliveries to user can go through the privileged process
 * now: it runs, user is a system account other than root and
 * mail_owner, and mail_spool_directory is still what it was at start. */
int local_priv_wanted(const config_t *cfg, const char *user);

/* Deliver text (the mailbox's final form: mbox text with its From_
 * line, or the Maildir file) into user's mailbox under
 * mail_spool_directory, as user.  The outcome goes into r. */
void local_priv_deliver(const char *user, const char *id, const char *text,
                        size_t len, struct delivery_result *r);

#endif
