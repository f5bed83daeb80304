/* SPDX-License-Identifier: ISC */
/*
 * pickup: takes the files sendmail leaves in $queue_directory/maildrop
 * and feeds them to cleanup, as Postfix's pickup daemon does.
 */
#ifndef TERN_PICKUP_H
#define TERN_PICKUP_H

#include "queue/cleanup.h"

typedef struct pickup pickup_t;

/* Watch queue_directory/maildrop (created, mode 1730, if missing) and
 * submit what appears there to cleanup, starting with what is there
 * now.  Fatal if the directory cannot be created or watched. */
pickup_t *pickup_start(const char *queue_directory, cleanup_t *cleanup);

/* Stop watching and wait until every file handed to cleanup has been
 * committed (cleanup must still run); frees *pp.  Accepts NULL. */
void pickup_stop(pickup_t **pp);

#endif
