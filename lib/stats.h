/* SPDX-License-Identifier: ISC */
/*
 * stats: process-wide event counters for the admin API and /metrics.
 * Each counter is a total since start plus a ring of the last
 * STATS_MINUTES whole minutes; two histograms record how long messages
 * wait before delivery and how long acceptance takes.  Every function is
 * thread-safe and cheap enough to call once per message or recipient.
 */
#ifndef TERN_STATS_H
#define TERN_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_MINUTES 60
#define STATS_HIST_BUCKETS 12

enum stats_counter {
    STATS_RECEIVED,    /* messages queued by smtpd (250 sent) */
    STATS_DELIVERED,   /* recipients delivered */
    STATS_DEFERRED,    /* recipients deferred */
    STATS_BOUNCED,     /* recipients bounced or expired */
    STATS_REJECTED,    /* SMTP commands refused by policy */
    STATS_CONNECTIONS, /* SMTP connections accepted */
    STATS_NCOUNTERS
};

enum stats_hist {
    STATS_HIST_DELIVERY_DELAY, /* arrival to delivery, seconds */
    STATS_HIST_ACCEPT_LATENCY, /* start of cleanup to the 250, seconds */
    STATS_NHISTS
};

/* A histogram's contents: cumulative counts per upper bound. */
struct stats_hist_view {
    const double *bounds;          /* STATS_HIST_BUCKETS upper bounds */
    uint64_t cum[STATS_HIST_BUCKETS]; /* observations <= bounds[i] */
    uint64_t count;                /* all observations (+Inf) */
    double sum;                    /* seconds */
};

/* Count one event of kind c now. */
void stats_count(enum stats_counter c);

/* smtpd queued a message whose cleanup started at start_us (wall clock,
 * microseconds): counts it and records the acceptance latency. */
void stats_received(int64_t start_us);

/* A delivery outcome as the qmgr logs it ("sent", "deferred",
 * "bounced", "expired") for a message that arrived at arrival_us. */
void stats_delivery(const char *status, int64_t arrival_us);

/* Total of counter c since start. */
uint64_t stats_total(enum stats_counter c);

/* The last STATS_MINUTES minutes of counter c, oldest first, the
 * current (partial) minute last; out holds STATS_MINUTES entries.
 * *end_minute is the current minute (Unix time / 60). */
void stats_minutes(enum stats_counter c, uint64_t *out, int64_t *end_minute);

/* Copy histogram h into *out. */
void stats_hist_get(enum stats_hist h, struct stats_hist_view *out);

/* Seconds since the process started counting (its first stats call or
 * stats_start). */
double stats_uptime(void);

/* Note the start time; call once early in main. */
void stats_start(void);

/* The counter's name in snake case ("received", ...). */
const char *stats_counter_name(enum stats_counter c);

#endif
