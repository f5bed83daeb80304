/* SPDX-License-Identifier: ISC */
/*
 * census: counting the queue by state.
 *
 * One count walks the meta column family on a snapshot, reading the
 * state and size from the start of each record as envelope_encode writes
 * it, and decoding only records that start otherwise.  Only one count
 * runs at a time: callers that come meanwhile wait for it and share its
 * result.  A count that took CENSUS_CHEAP_US or more is reused for ten
 * times as long as it took, so that a queue of a million messages is
 * not walked on every poll of a dashboard; a small queue is counted
 * afresh every time, so its counts are exact.
 *
 * The sampler thread wakes every few seconds and, once per minute,
 * stores a count in a ring of CENSUS_MINUTES slots.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/census.h"
#include "lib/log.h"
#include "lib/mem.h"

#define CENSUS_CHEAP_US 20000LL
#define CENSUS_SAMPLER_WAKE 5

struct census {
    store_t *store;
    pthread_mutex_t lock;
    pthread_cond_t done;   /* a count finished */
    pthread_cond_t wake;   /* the sampler waits here */
    pthread_t sampler;
    int counting;
    int stop;
    struct census_count last;
    int64_t last_cost_us;  /* how long the last count took */
    struct census_count ring[CENSUS_MINUTES];
    int64_t ring_minute[CENSUS_MINUTES];
};

struct census_walk {
    struct census_count *out;
};

static int64_t
census_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The state and size from the fixed start of a record as
 * envelope_encode writes it: {"v":1,"id":"ID","state":"S","sender":...
 * Returns 0, or -1 when the record does not start so. */
static int
census_quick(const char *key, size_t klen, const char *raw, size_t len,
             enum queue_state *st, uint64_t *size)
{
    static const char head[] = "{\"v\":1,\"id\":\"";
    static const char mid[] = "\",\"state\":\"";
    static const char skey[] = ",\"size\":";
    size_t pos = sizeof(head) - 1;
    const char *p;
    char name[16];
    size_t i;

    if (len < pos + klen + sizeof(mid) || memcmp(raw, head, pos) != 0 ||
        memcmp(raw + pos, key, klen) != 0 ||
        memcmp(raw + pos + klen, mid, sizeof(mid) - 1) != 0)
        return -1;
    pos += klen + sizeof(mid) - 1;
    for (i = 0; i + 1 < sizeof(name) && pos + i < len && raw[pos + i] != '"';
         i++)
        name[i] = raw[pos + i];
    name[i] = '\0';
    if (queue_state_parse(name, st) < 0)
        return -1;

    /* The size follows the sender and the arrival time.  A quote inside
     * a JSON string is always escaped, so no string can hold ,"size":
     * and the first match is the field itself. */
    *size = 0;
    p = memmem(raw + pos, len - pos, skey, sizeof(skey) - 1);
    if (p == NULL)
        return 0;
    for (p += sizeof(skey) - 1; p < raw + len && *p >= '0' && *p <= '9'; p++)
        *size = *size * 10 + (uint64_t)(*p - '0');
    return 0;
}

static int
census_one(void *arg, const char *key, size_t klen, const char *raw,
           size_t rawlen)
{
    struct census_walk *w = arg;
    enum queue_state st = QS_CORRUPT;
    uint64_t size = 0;
    envelope_t *env;
    char why[128];

    if (census_quick(key, klen, raw, rawlen, &st, &size) < 0) {
        env = envelope_decode(raw, rawlen, why, sizeof(why));
        if (env != NULL) {
            st = env->state;
            size = env->size > 0 ? (uint64_t)env->size : 0;
        }
        envelope_free(&env);
    }
    w->out->n[st]++;
    w->out->bytes += size;
    w->out->total++;
    return 0;
}

/* Walk the queue now. */
static void
census_count_now(census_t *c, struct census_count *out)
{
    struct census_walk w;

    memset(out, 0, sizeof(*out));
    w.out = out;
    store_foreach_raw(c->store, census_one, &w);
    out->taken_us = census_now_us();
}

/* A recent count. */
void
census_get(census_t *c, struct census_count *out)
{
    struct census_count fresh;
    int64_t start;
    int64_t now;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        now = census_now_us();
        if (c->last.taken_us > 0 && c->last_cost_us >= CENSUS_CHEAP_US &&
            now - c->last.taken_us < c->last_cost_us * 10) {
            *out = c->last;
            pthread_mutex_unlock(&c->lock);
            return;
        }
        if (!c->counting)
            break;
        pthread_cond_wait(&c->done, &c->lock);
        if (c->last.taken_us > 0) {
            *out = c->last;
            pthread_mutex_unlock(&c->lock);
            return;
        }
    }
    c->counting = 1;
    pthread_mutex_unlock(&c->lock);

    start = census_now_us();
    census_count_now(c, &fresh);

    pthread_mutex_lock(&c->lock);
    c->last = fresh;
    c->last_cost_us = fresh.taken_us - start;
    c->counting = 0;
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->lock);
    *out = fresh;
}

void
census_invalidate(census_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->last.taken_us = 0;
    pthread_mutex_unlock(&c->lock);
}

void
census_history(census_t *c, struct census_count *out, int64_t *end_minute)
{
    int64_t now = census_now_us() / 60000000;
    int64_t m;
    int i;

    pthread_mutex_lock(&c->lock);
    for (i = 0; i < CENSUS_MINUTES; i++) {
        m = now - (CENSUS_MINUTES - 1) + i;
        if (m >= 0 && c->ring_minute[m % CENSUS_MINUTES] == m)
            out[i] = c->ring[m % CENSUS_MINUTES];
        else
            memset(&out[i], 0, sizeof(out[i]));
    }
    pthread_mutex_unlock(&c->lock);
    *end_minute = now;
}

static void *
census_sampler(void *arg)
{
    census_t *c = arg;
    struct census_count cc;
    struct timespec ts;
    int64_t m;

    log_set_role("admin");
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        m = census_now_us() / 60000000;
        if (c->ring_minute[m % CENSUS_MINUTES] != m) {
            pthread_mutex_unlock(&c->lock);
            census_get(c, &cc);
            pthread_mutex_lock(&c->lock);
            c->ring[m % CENSUS_MINUTES] = cc;
            c->ring_minute[m % CENSUS_MINUTES] = m;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += CENSUS_SAMPLER_WAKE;
        while (!c->stop &&
               pthread_cond_timedwait(&c->wake, &c->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

census_t *
census_new(store_t *store)
{
    census_t *c = mem_calloc(1, sizeof(*c));
    sigset_t all;
    sigset_t old;
    int e;
    int i;

    c->store = store;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->done, NULL);
    pthread_cond_init(&c->wake, NULL);
    for (i = 0; i < CENSUS_MINUTES; i++)
        c->ring_minute[i] = -1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&c->sampler, NULL, census_sampler, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        msg_fatal("cannot start the queue census thread: %s", strerror(e));
    return c;
}

void
census_free(census_t **cp)
{
    census_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->sampler, NULL);
    pthread_cond_destroy(&c->done);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    *cp = NULL;
}
