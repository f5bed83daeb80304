/* SPDX-License-Identifier: ISC */
/*
 * delivery: what every transport reports about one recipient, for the
 * qmgr to record and log.
 */
#ifndef TERN_DELIVERY_H
#define TERN_DELIVERY_H

enum delivery_status {
    DELIVERY_SENT,
    DELIVERY_DEFER,
    DELIVERY_BOUNCE,
};

struct delivery_result {
    enum delivery_status status;
    char dsn[16];    /* enhanced status code, "2.0.0" */
    char relay[128]; /* "local", "host[addr]:port" */
    char text[512];  /* the reason, for the log and notices */
};

/* Fill r; fmt describes the outcome. */
void delivery_set(struct delivery_result *r, enum delivery_status status,
                  const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
