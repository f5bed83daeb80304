/* SPDX-License-Identifier: ISC */
/*
 * smtpd_rate: per-client event rates, as Postfix's anvil counts them for
 * smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit
 * and smtpd_client_recipient_rate_limit: events of each kind in the
 * current window of anvil_rate_time_unit seconds, which starts with the
 * client's first event after the last window ended.
 */
#ifndef TERN_SMTPD_RATE_H
#define TERN_SMTPD_RATE_H

#include <time.h>

enum smtpd_rate_event {
    SMTPD_RATE_CONNECT,
    SMTPD_RATE_MESSAGE,
    SMTPD_RATE_RCPT,
    SMTPD_RATE_EVENTS
};

typedef struct smtpd_rate smtpd_rate_t;

smtpd_rate_t *smtpd_rate_new(void);

void smtpd_rate_free(smtpd_rate_t **rp);

/* Count one event of addr at now in windows of unit seconds; returns
 * the events of that kind in the window, this one included (0 when the
 * table is full and addr is not in it: no limit applies then). */
long smtpd_rate_add(smtpd_rate_t *r, const char *addr,
                    enum smtpd_rate_event ev, long unit, time_t now);

#endif
