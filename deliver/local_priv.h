/* SPDX-License-Identifier: ISC */
/*
 * local_priv: delivery into system accounts' mailboxes with the
 * account's own uid, and the commands and files of aliases with
 * default_privs.  ternd runs as mail_owner, so a process that keeps
 * root is forked at start, before privileges are dropped, and each such
 * delivery is handed to it (local_priv.c says how).
 */
#ifndef TERN_LOCAL_PRIV_H
#define TERN_LOCAL_PRIV_H

#include <stddef.h>

#include "deliver/delivery.h"
#include "lib/config.h"

/* When running as root, fork the privileged process for
 * mail_spool_directory, local_user_delivery and default_privs as cfg
 * has them.  Call while the process has one thread, before giving up
 * root. */
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

/* Deliver text (mbox form, or the Maildir file for a path that ends in
 * "/") into path below user's home directory, as user: home_mailbox.
 * user is a system account local_priv_wanted accepted. */
void local_priv_deliver_home(const char *user, const char *path,
                             const char *id, const char *text, size_t len,
                             struct delivery_result *r);

/* Nonzero if commands and files of aliases can run as default_privs
 * now: the privileged process runs, and default_privs is the account it
 * accepted at start. */
int local_priv_default_ok(const config_t *cfg);

/* Run cmd as user, a system account local_priv_wanted accepted, or as
 * default_privs when user is NULL (see local_cmd_run), with envp and
 * text on its standard input, for at most limit seconds; the outcome
 * into r. */
void local_priv_command(const char *cmd, char *const *envp, const char *id,
                        const char *user, const char *text, size_t len,
                        long long limit, struct delivery_result *r);

/* Append text (mbox form) to the file path as default_privs, or write
 * it into the Maildir path names with a trailing "/". */
void local_priv_file(const char *path, const char *id, const char *text,
                     size_t len, struct delivery_result *r);

#endif
