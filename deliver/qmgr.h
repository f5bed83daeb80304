/* SPDX-License-Identifier: ISC */
/*
 * qmgr: the queue manager.  One thread finds due mail with a range scan
 * of the schedule, marks it active, and hands it to a pool of delivery
 * workers; the workers record each recipient's outcome and either remove
 * the message or schedule its next attempt.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include "queue/cleanup.h"
#include "queue/store.h"

typedef struct qmgr qmgr_t;

/* Register the load-time checks of the delivery parameters
 * (smtp_tls_security_level, relayhost, the transports); call before
 * the first config_load. */
void qmgr_register(void);

/* Start the qmgr thread and threads delivery workers.  The qmgr first
 * puts back to incoming whatever a previous run left active. */
qmgr_t *qmgr_start(store_t *store, int threads);

/* Give the qmgr the cleanup service through which notices (bounces,
 * delay warnings, success notices) are queued; NULL takes it away (before
 * cleanup stops), after which recipients that need a notice stay
 * deferred.  Waits for notices being queued to finish. */
void qmgr_set_cleanup(qmgr_t *q, cleanup_t *cleanup);

/* Look at the queue now (new mail arrived); thread-safe, cheap. */
void qmgr_wakeup(qmgr_t *q);

/* Make every deferred message due now, and forget which destinations
 * were failing; thread-safe. */
void qmgr_flush(qmgr_t *q);

/* Make deferred messages with a recipient in domain due now; thread-safe,
 * done on the qmgr thread soon after. */
void qmgr_flush_domain(qmgr_t *q, const char *domain);

/* Stop: deliveries under way finish, messages handed out but not
 * started go back to incoming.  Frees *qp; accepts NULL. */
void qmgr_stop(qmgr_t **qp);

/* Messages in memory: being delivered or waiting for a worker. */
size_t qmgr_busy(qmgr_t *q);

#endif
