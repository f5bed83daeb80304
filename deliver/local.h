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

/* Deliver each recipient of req to its local mailbox (or its aliases). */
void local_deliver(struct delivery_req *req);

/* Deliver each recipient of req to its virtual mailbox:
 * virtual_mailbox_maps gives the path under virtual_mailbox_base (a
 * trailing "/" means Maildir). */
void local_virtual_deliver(struct delivery_req *req);

#endif
