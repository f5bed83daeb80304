/* SPDX-License-Identifier: ISC */
/*
 * stats: counters, per-minute rings and histograms shared by every
 * thread.  Totals and histogram buckets are atomic adds.  A minute's slot
 * in the ring is recycled by the first event of a new minute, under a
 * mutex taken only then; readers copy the ring under the same mutex, so
 * a reader never sees a slot half reset.  Counts are relaxed: a reader
 * may miss an event that is being counted at that instant, never more.
 */
#include "autoconf.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "lib/stats.h"

struct stats_slot {
    int64_t minute; /* Unix time / 60 this slot counts, -1 for none */
    uint64_t n[STATS_NCOUNTERS];
};

struct stats_histogram {
    const double *bounds;
    uint64_t bucket[STATS_HIST_BUCKETS + 1]; /* last: above every bound */
    uint64_t sum_us;
};

/* Delivery waits span seconds to days; acceptance takes milliseconds. */
static const double stats_delay_bounds[STATS_HIST_BUCKETS] = {
    0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 14400, 86400,
};
static const double stats_accept_bounds[STATS_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

static const char *const stats_names[STATS_NCOUNTERS] = {
    "received", "delivered", "deferred", "bounced", "rejected", "connections",
};

static uint64_t stats_totals[STATS_NCOUNTERS];
static struct stats_slot stats_ring[STATS_MINUTES];
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stats_histogram stats_hists[STATS_NHISTS] = {
    {stats_delay_bounds, {0}, 0},
    {stats_accept_bounds, {0}, 0},
};
static struct timespec stats_started;
static pthread_once_t stats_once = PTHREAD_ONCE_INIT;

static void
stats_init(void)
{
    int i;

    clock_gettime(CLOCK_MONOTONIC, &stats_started);
    for (i = 0; i < STATS_MINUTES; i++)
        stats_ring[i].minute = -1;
}

/* Note the start time. */
void
stats_start(void)
{
    pthread_once(&stats_once, stats_init);
}

static int64_t
stats_minute_now(void)
{
    return (int64_t)time(NULL) / 60;
}

/* The slot of minute m, recycled first if it holds an older minute. */
static struct stats_slot *
stats_slot(int64_t m)
{
    struct stats_slot *s = &stats_ring[m % STATS_MINUTES];

    if (__atomic_load_n(&s->minute, __ATOMIC_ACQUIRE) == m)
        return s;
    pthread_mutex_lock(&stats_lock);
    if (s->minute != m) {
        memset(s->n, 0, sizeof(s->n));
        __atomic_store_n(&s->minute, m, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&stats_lock);
    return s;
}

/* Count one event. */
void
stats_count(enum stats_counter c)
{
    stats_start();
    __atomic_add_fetch(&stats_totals[c], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&stats_slot(stats_minute_now())->n[c], 1,
                       __ATOMIC_RELAXED);
}

static int64_t
stats_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
stats_observe(enum stats_hist h, int64_t us)
{
    struct stats_histogram *hist = &stats_hists[h];
    double secs;
    int i;

    if (us < 0)
        us = 0;
    secs = (double)us / 1e6;
    for (i = 0; i < STATS_HIST_BUCKETS; i++)
        if (secs <= hist->bounds[i])
            break;
    __atomic_add_fetch(&hist->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&hist->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

/* A message was queued; its cleanup began at start_us. */
void
stats_received(int64_t start_us)
{
    stats_count(STATS_RECEIVED);
    if (start_us > 0)
        stats_observe(STATS_HIST_ACCEPT_LATENCY, stats_now_us() - start_us);
}

/* One recipient's delivery outcome, by the status word of its log line. */
void
stats_delivery(const char *status, int64_t arrival_us)
{
    if (strcmp(status, "sent") == 0) {
        stats_count(STATS_DELIVERED);
        if (arrival_us > 0)
            stats_observe(STATS_HIST_DELIVERY_DELAY,
                          stats_now_us() - arrival_us);
    } else if (strcmp(status, "deferred") == 0) {
        stats_count(STATS_DEFERRED);
    } else {
        stats_count(STATS_BOUNCED);
    }
}

uint64_t
stats_total(enum stats_counter c)
{
    return __atomic_load_n(&stats_totals[c], __ATOMIC_RELAXED);
}

/* The last STATS_MINUTES minutes of c, oldest first. */
void
stats_minutes(enum stats_counter c, uint64_t *out, int64_t *end_minute)
{
    int64_t now = stats_minute_now();
    int64_t m;
    int i;

    stats_start();
    pthread_mutex_lock(&stats_lock);
    for (i = 0; i < STATS_MINUTES; i++) {
        m = now - (STATS_MINUTES - 1) + i;
        out[i] = 0;
        if (m >= 0 && stats_ring[m % STATS_MINUTES].minute == m)
            out[i] = __atomic_load_n(&stats_ring[m % STATS_MINUTES].n[c],
                                     __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&stats_lock);
    if (end_minute != NULL)
        *end_minute = now;
}

void
stats_hist_get(enum stats_hist h, struct stats_hist_view *out)
{
    struct stats_histogram *hist = &stats_hists[h];
    uint64_t run = 0;
    int i;

    out->bounds = hist->bounds;
    for (i = 0; i < STATS_HIST_BUCKETS; i++) {
        run += __atomic_load_n(&hist->bucket[i], __ATOMIC_RELAXED);
        out->cum[i] = run;
    }
    run += __atomic_load_n(&hist->bucket[STATS_HIST_BUCKETS], __ATOMIC_RELAXED);
    /* Buckets are read one by one; the count must not fall below the
     * last cumulative bucket. */
    out->count = run;
    out->sum = (double)__atomic_load_n(&hist->sum_us, __ATOMIC_RELAXED) / 1e6;
}

double
stats_uptime(void)
{
    struct timespec now;

    stats_start();
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - stats_started.tv_sec) +
           (double)(now.tv_nsec - stats_started.tv_nsec) / 1e9;
}

const char *
stats_counter_name(enum stats_counter c)
{
    return c < STATS_NCOUNTERS ? stats_names[c] : "?";
}
