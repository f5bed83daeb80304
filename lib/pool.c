/* SPDX-License-Identifier: ISC */
/*
 * pool: worker threads.  The queue is a ring of queue_max slots under
 * one mutex with two condition variables (not empty, not full).
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"

struct pool {
    char *role;
    pool_work_fn fn;
    void *ctx;
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    pthread_cond_t nonfull;
    void **ring;
    size_t cap;
    size_t head;
    size_t count;
    size_t busy;
    int stopping;
    time_t last_overflow;
};

static void *
pool_main(void *arg)
{
    pool_t *p = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role(p->role);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        void *item;

        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->nonempty, &p->lock);
        if (p->stopping)
            break;
        item = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->busy++;
        pthread_cond_signal(&p->nonfull);
        pthread_mutex_unlock(&p->lock);
        p->fn(p->ctx, item);
        pthread_mutex_lock(&p->lock);
        p->busy--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

pool_t *
pool_new(const char *role, int threads, size_t queue_max, pool_work_fn fn,
         void *ctx)
{
    pool_t *p = mem_calloc(1, sizeof(*p));
    int i;
    int err;

    p->role = mem_strdup(role);
    p->fn = fn;
    p->ctx = ctx;
    p->cap = queue_max ? queue_max : 1;
    p->ring = mem_calloc(p->cap, sizeof(void *));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->nonempty, NULL);
    pthread_cond_init(&p->nonfull, NULL);
    p->threads = mem_calloc((size_t)threads, sizeof(pthread_t));
    for (i = 0; i < threads; i++) {
        err = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (err != 0)
            msg_fatal("cannot start %s thread: %s", role, strerror(err));
        p->nthreads++;
    }
    return p;
}

int
pool_submit(pool_t *p, void *item, int wait)
{
    pthread_mutex_lock(&p->lock);
    while (p->count == p->cap && wait && !p->stopping)
        pthread_cond_wait(&p->nonfull, &p->lock);
    if (p->stopping || p->count == p->cap) {
        time_t now = time(NULL);

        if (!p->stopping && now - p->last_overflow >= 60) {
            p->last_overflow = now;
            msg_warn("%s pool queue full (%zu waiting): work refused",
                     p->role, p->count);
        }
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    p->ring[(p->head + p->count) % p->cap] = item;
    p->count++;
    pthread_cond_signal(&p->nonempty);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void
pool_stop(pool_t **pp, pool_work_fn drop)
{
    pool_t *p = pp ? *pp : NULL;
    int i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->nonempty);
    pthread_cond_broadcast(&p->nonfull);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (p->count > 0) {
        void *item = p->ring[p->head];

        p->head = (p->head + 1) % p->cap;
        p->count--;
        if (drop)
            drop(p->ctx, item);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->nonempty);
    pthread_cond_destroy(&p->nonfull);
    free(p->threads);
    free(p->ring);
    free(p->role);
    free(p);
    *pp = NULL;
}

size_t
pool_busy(pool_t *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->busy;
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t
pool_queued(pool_t *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int
pool_threads(pool_t *p)
{
    return p->nthreads;
}
