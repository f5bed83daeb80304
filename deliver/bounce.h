/* SPDX-License-Identifier: ISC */
/*
 * bounce: delivery status notifications (RFC 3464) to a message's
 * sender: non-delivery reports, delay warnings and success notices.
 * Each is a new message from the null sender (MAILER-DAEMON), written
 * through cleanup like any other, so it is queued, retried and logged
 * the same way.  A message whose sender is null never gets one, so a
 * notice can never cause another.
 */
#ifndef TERN_BOUNCE_H
#define TERN_BOUNCE_H

#include <stddef.h>

#include "lib/config.h"
#include "queue/cleanup.h"
#include "queue/envelope.h"
#include "queue/store.h"

enum bounce_kind {
    BOUNCE_FAILED,    /* Action: failed, a non-delivery report */
    BOUNCE_DELAYED,   /* Action: delayed, a warning */
    BOUNCE_DELIVERED, /* Action: delivered (or relayed), NOTIFY=SUCCESS */
};

/* One recipient for a notice. */
struct bounce_rcpt {
    const rcpt_t *rcpt;
    const char *action; /* "failed", "delayed", "delivered", "relayed" */
    const char *dsn;    /* "5.1.1" */
    const char *reason; /* the reason as logged ("host X said: ...") */
};

/* Build the notice of kind about rcpts of env (content read from store
 * for the copy it returns) and queue it through c, waiting until it is
 * durable.  Returns 0 and writes the new queue ID into newid, 1 when
 * nothing is to be sent (null sender), -1 if it could not be queued. */
int bounce_send(cleanup_t *c, store_t *store, const config_t *cfg,
                const envelope_t *env, enum bounce_kind kind,
                const struct bounce_rcpt *rcpts, size_t n,
                char newid[QUEUE_ID_SIZE]);

/* Build the notice's message text into out (for tests and for
 * bounce_send): headers, the human-readable part, the
 * message/delivery-status part and the returned content taken from
 * msg (len bytes). */
void bounce_build(const config_t *cfg, const envelope_t *env,
                  enum bounce_kind kind, const struct bounce_rcpt *rcpts,
                  size_t n, const char *msg, size_t len, buf_t *out);

#endif
