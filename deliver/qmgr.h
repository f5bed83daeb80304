/* SPDX-License-Identifier: ISC */
/*
 * qmgr: the queue manager.  One thread finds due mail with a range scan
 * of the schedule, marks it active, and hands it to a pool of delivery
 * workers; the workers record each recipient's outcome and either remove
 * the message or schedule its next attempt.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include "queue/store.h"

typedef struct qmgr qmgr_t;

/* Start the qmgr thread and threads delivery workers.  The qmgr first
 * puts back to incoming whatever a previous run left active. */
qmgr_t *qmgr_start(store_t *store, int threads);

/* Look at the queue now (new mail arrived); thread-safe, cheap. */
void qmgr_wakeup(qmgr_t *q);

/* Make every deferred message due now; thread-safe. */
void qmgr_flush(qmgr_t *q);

/* Stop: deliveries under way finish, messages handed out but not
 * started go back to incoming.  Frees *qp; accepts NULL. */
void qmgr_stop(qmgr_t **qp);

/* Deliveries under way and waiting. */
size_t qmgr_busy(qmgr_t *q);

#endif
