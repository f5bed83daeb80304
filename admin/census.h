/* SPDX-License-Identifier: ISC */
/*
 * census: how many messages the queue holds in each state, for /stats,
 * /metrics and the status page.  Counting reads every envelope, so the
 * result is kept and reused while it is fresh, and a sampler thread
 * records one count a minute for the last hour.
 */
#ifndef TERN_CENSUS_H
#define TERN_CENSUS_H

#include <stdint.h>

#include "queue/envelope.h"
#include "queue/store.h"

#define CENSUS_STATES (QS_CORRUPT + 1)
#define CENSUS_MINUTES 60

typedef struct census census_t;

struct census_count {
    uint64_t n[CENSUS_STATES]; /* messages per enum queue_state */
    uint64_t total;
    uint64_t bytes;            /* sum of message sizes */
    int64_t taken_us;          /* when the count was made (wall clock) */
};

/* Start counting store's queue, with the per-minute sampler thread. */
census_t *census_new(store_t *store);

/* A count at most a moment old (how long depends on how long counting
 * takes: a large queue is counted less often). */
void census_get(census_t *c, struct census_count *out);

/* Forget the kept count, after a change made through the API. */
void census_invalidate(census_t *c);

/* The per-minute samples of the last hour, oldest first, the current
 * minute last; a minute without a sample has taken_us 0.  out holds
 * CENSUS_MINUTES entries; *end_minute is the current minute (Unix time
 * / 60). */
void census_history(census_t *c, struct census_count *out,
                    int64_t *end_minute);

/* Stop the sampler and free *cp; accepts NULL. */
void census_free(census_t **cp);

#endif
