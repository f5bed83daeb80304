/* SPDX-License-Identifier: ISC */
/*
 * pool: a fixed set of worker threads over one bounded FIFO queue.
 * Items start in the order they were submitted; with more than one
 * worker they may finish in any order.  Workers block every signal, so
 * signals reach only the thread that waits for them.
 */
#ifndef TERN_POOL_H
#define TERN_POOL_H

#include <stddef.h>

typedef struct pool pool_t;

/* The work: called on a worker thread for each item. */
typedef void (*pool_work_fn)(void *ctx, void *item);

/* Start threads workers that call fn(ctx, item); at most queue_max items
 * wait.  role names the workers in the log ("cleanup", "local"). */
pool_t *pool_new(const char *role, int threads, size_t queue_max,
                 pool_work_fn fn, void *ctx);

/* Queue an item.  With wait set, blocks while the queue is full;
 * otherwise returns -1 when it is full (and logs the overflow once a
 * minute).  Returns -1 as well once the pool is stopping. */
int pool_submit(pool_t *p, void *item, int wait);

/* Stop: running items finish; items still waiting are passed to
 * drop(ctx, item) (which may be NULL) on the calling thread.  Frees *pp
 * and sets it to NULL; accepts NULL. */
void pool_stop(pool_t **pp, pool_work_fn drop);

/* Workers busy now, and items waiting. */
size_t pool_busy(pool_t *p);
size_t pool_queued(pool_t *p);
int pool_threads(pool_t *p);

#endif
