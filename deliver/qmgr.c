/* SPDX-License-Identifier: ISC */
/*
 * qmgr: scheduling and running deliveries.
 *
 * Threads: the qmgr thread is the only one that moves messages from the
 * schedule to active; delivery workers (a pool) own a message from the
 * moment they take it until they write its next state.  A message is in
 * at most one of these places, so no two workers ever hold the same one.
 *
 * State changes are single batches: taking a message off the schedule
 * and marking it active is one; recording the outcome of an attempt
 * (recipient states, next attempt and its schedule key, or removal) is
 * another.  A crash between the two leaves the message active, and start
 * moves active mail back to incoming, so a crash can cause a second
 * delivery to a recipient but never a lost one.
 *
 * Retries follow Postfix: the wait before the next attempt is the
 * message's age, kept between minimal_backoff_time and
 * maximal_backoff_time, so the gaps double until they reach the maximum.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "deliver/delivery.h"
#include "deliver/local.h"
#include "deliver/qmgr.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"

#define QMGR_SCAN_MAX 1000
#define QMGR_IDLE_MAX_US (60 * 1000000LL)

struct qmgr {
    store_t *store;
    pool_t *pool;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wake;
    int flush;
    int stop;
};

struct qmgr_job {
    qmgr_t *q;
    envelope_t *env;
    int64_t active_us;
};

struct qmgr_due {
    char (*ids)[QUEUE_ID_SIZE];
    int64_t *when;
    size_t n;
};

static int64_t
qmgr_now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Commit a batch, logging a failure; returns 0 on success. */
static int
qmgr_commit(qmgr_t *q, store_batch_t *b, const char *id)
{
    char *err = NULL;

    if (store_commit(q->store, b, &err) == 0)
        return 0;
    msg_warn("%s: cannot update queue: %s", id, err ? err : "?");
    free(err);
    return -1;
}

/* Postfix's compact delay format: two digits below ten seconds. */
static void
qmgr_fmt_delay(char *out, size_t len, double secs)
{
    if (secs < 0)
        secs = 0;
    if (secs >= 10)
        snprintf(out, len, "%.0f", secs);
    else if (secs < 0.01)
        snprintf(out, len, "%s", secs == 0 ? "0" : "0.01");
    else
        snprintf(out, len, "%.2g", secs);
}

static void
qmgr_log_delivery(const struct qmgr_job *job, const char *rcpt,
                  const struct delivery_result *r, int64_t start_us,
                  const char *status)
{
    const envelope_t *env = job->env;
    int64_t now = qmgr_now_us();
    char total[16];
    char a[16];
    char b[16];
    char d[16];

    qmgr_fmt_delay(total, sizeof(total), (now - env->arrival_us) / 1e6);
    qmgr_fmt_delay(a, sizeof(a), (job->active_us - env->arrival_us) / 1e6);
    qmgr_fmt_delay(b, sizeof(b), (start_us - job->active_us) / 1e6);
    qmgr_fmt_delay(d, sizeof(d), (now - start_us) / 1e6);
    msg_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/0/%s, dsn=%s, "
             "status=%s (%s)",
             env->id, rcpt, r->relay, total, a, b, d, r->dsn, status,
             r->text);
}

/* Choose the transport for a recipient and run it. */
static void
qmgr_route(const config_t *cfg, const envelope_t *env, const char *rcpt,
           const buf_t *body, struct delivery_result *r)
{
    const char *domain = addr_domain(rcpt);

    if (domain[0] == '\0' ||
        addr_domain_listed(domain, config_list(cfg, P_MYDESTINATION, NULL))) {
        local_deliver(cfg, env, rcpt, body->data ? body->data : "",
                      body->len, r);
        return;
    }
    snprintf(r->relay, sizeof(r->relay), "none");
    delivery_set(r, DELIVERY_DEFER, "4.3.5",
                 "delivery temporarily suspended: no transport for %s",
                 domain);
}

/* Record the attempt: remove the message when every recipient is done,
 * else schedule the next try. */
static void
qmgr_finish(qmgr_t *q, const config_t *cfg, envelope_t *env)
{
    store_batch_t *b = store_batch_new();
    int64_t now = qmgr_now_us();
    int64_t age = now - env->arrival_us;
    int64_t wait;

    if (envelope_pending(env) == 0) {
        store_batch_remove(b, env);
        if (qmgr_commit(q, b, env->id) == 0) {
            /* Postfix's qmgr logs the removal; log it under that name. */
            log_set_role("qmgr");
            msg_info("%s: removed", env->id);
            log_set_role("local");
        }
        return;
    }
    wait = age;
    if (wait < config_num(cfg, P_MINIMAL_BACKOFF_TIME) * 1000000LL)
        wait = config_num(cfg, P_MINIMAL_BACKOFF_TIME) * 1000000LL;
    if (wait > config_num(cfg, P_MAXIMAL_BACKOFF_TIME) * 1000000LL)
        wait = config_num(cfg, P_MAXIMAL_BACKOFF_TIME) * 1000000LL;
    env->state = QS_DEFERRED;
    env->attempts++;
    env->next_us = now + wait;
    store_batch_update(b, env, env->next_us);
    qmgr_commit(q, b, env->id);
}

/* Expire what is still pending once the message is older than its
 * lifetime (bounce_queue_lifetime for notices with the null sender). */
static void
qmgr_expire(const struct qmgr_job *job, int64_t now)
{
    envelope_t *env = job->env;
    int64_t life = env->sender[0] ? env->max_lifetime : env->bounce_lifetime;
    size_t i;

    if (life <= 0 || now - env->arrival_us < life * 1000000LL)
        return;
    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *rc = &env->rcpts[i];
        struct delivery_result r;

        if (rc->state != RCPT_PENDING && rc->state != RCPT_DEFERRED)
            continue;
        memset(&r, 0, sizeof(r));
        snprintf(r.relay, sizeof(r.relay), "none");
        delivery_set(&r, DELIVERY_BOUNCE, rc->dsn ? rc->dsn : "4.4.7",
                     "message expired: %s", rc->reason ? rc->reason : "");
        /* XXX Expired and bounced recipients are logged but no
         * non-delivery report goes to the sender yet: that needs the
         * bounce service, which writes notices through cleanup. */
        qmgr_log_delivery(job, rc->addr, &r, now, "expired");
        rc->state = RCPT_BOUNCED;
    }
}

static void
qmgr_deliver(void *ctx, void *item)
{
    struct qmgr_job *job = item;
    qmgr_t *q = ctx;
    envelope_t *env = job->env;
    config_t *cfg = config_current();
    buf_t body;
    size_t i;
    int rc;

    buf_init(&body);
    rc = store_get_body(q->store, env->id, &body);
    if (rc != 1) {
        store_batch_t *b = store_batch_new();

        msg_warn("%s: message content %s; marked corrupt", env->id,
                 rc == 0 ? "missing" : "unreadable");
        env->state = QS_CORRUPT;
        store_batch_update(b, env, 0);
        qmgr_commit(q, b, env->id);
        goto done;
    }
    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *rc2 = &env->rcpts[i];
        struct delivery_result r;
        int64_t start = qmgr_now_us();

        if (rc2->state != RCPT_PENDING && rc2->state != RCPT_DEFERRED)
            continue;
        memset(&r, 0, sizeof(r));
        qmgr_route(cfg, env, rc2->addr, &body, &r);
        rc2->attempts++;
        envelope_set(&rc2->dsn, r.dsn);
        envelope_set(&rc2->reason, r.text);
        switch (r.status) {
        case DELIVERY_SENT:
            rc2->state = RCPT_SENT;
            qmgr_log_delivery(job, rc2->addr, &r, start, "sent");
            break;
        case DELIVERY_DEFER:
            rc2->state = RCPT_DEFERRED;
            envelope_set(&env->reason, r.text);
            qmgr_log_delivery(job, rc2->addr, &r, start, "deferred");
            break;
        case DELIVERY_BOUNCE:
            rc2->state = RCPT_BOUNCED;
            qmgr_log_delivery(job, rc2->addr, &r, start, "bounced");
            break;
        }
    }
    qmgr_expire(job, qmgr_now_us());
    qmgr_finish(q, cfg, env);
done:
    buf_free(&body);
    config_unref(&cfg);
    envelope_free(&job->env);
    free(job);
}

/* A job handed out but not started when the pool stops goes back to
 * incoming so that the next start delivers it. */
static void
qmgr_handback(void *ctx, void *item)
{
    struct qmgr_job *job = item;
    qmgr_t *q = ctx;
    store_batch_t *b = store_batch_new();

    job->env->state = QS_INCOMING;
    store_batch_update(b, job->env, qmgr_now_us());
    qmgr_commit(q, b, job->env->id);
    envelope_free(&job->env);
    free(job);
}

static int
qmgr_collect(void *arg, const char *id, int64_t sched_us)
{
    struct qmgr_due *due = arg;

    snprintf(due->ids[due->n], QUEUE_ID_SIZE, "%s", id);
    due->when[due->n] = sched_us;
    due->n++;
    return due->n == QMGR_SCAN_MAX;
}

/* Hand a job to the pool, waiting while it is full; returns -1 if the
 * qmgr is stopping. */
static int
qmgr_dispatch(qmgr_t *q, struct qmgr_job *job)
{
    while (pool_submit(q->pool, job, 0) < 0) {
        struct timespec pause = {0, 20 * 1000 * 1000};

        if (__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE))
            return -1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* Take one due entry off the schedule and start its delivery. */
static void
qmgr_activate(qmgr_t *q, const char *id, int64_t sched_us)
{
    envelope_t *env = NULL;
    store_batch_t *b;
    struct qmgr_job *job;
    buf_t raw;
    char *err = NULL;
    int rc;

    buf_init(&raw);
    rc = store_get_envelope(q->store, id, &env, &raw, &err);
    b = store_batch_new();
    if (rc == -2) {
        msg_warn("%s: corrupt queue record moved to corrupt: %s", id,
                 err ? err : "?");
        store_batch_corrupt(b, id, raw.data ? raw.data : "", raw.len,
                            sched_us);
        qmgr_commit(q, b, id);
        goto done;
    }
    if (rc <= 0) {
        if (rc == 0)
            store_batch_unschedule(b, id, sched_us);
        if (rc == 0)
            qmgr_commit(q, b, id);
        else
            store_batch_free(&b);
        goto done;
    }
    if (env->sched_us != sched_us ||
        (env->state != QS_INCOMING && env->state != QS_DEFERRED)) {
        /* A key left over from an earlier state: just drop it. */
        store_batch_unschedule(b, id, sched_us);
        qmgr_commit(q, b, id);
        goto done;
    }
    env->state = QS_ACTIVE;
    store_batch_update(b, env, 0);
    if (qmgr_commit(q, b, id) < 0)
        goto done;
    msg_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)", id,
             env->sender, (long long)env->size, env->nrcpt);
    job = mem_calloc(1, sizeof(*job));
    job->q = q;
    job->env = env;
    job->active_us = qmgr_now_us();
    env = NULL;
    if (qmgr_dispatch(q, job) < 0)
        qmgr_handback(q, job);
done:
    envelope_free(&env);
    buf_free(&raw);
    free(err);
}

/* Put back what a previous run left active; set corrupt records aside. */
static int
qmgr_recover_one(void *arg, const char *id, envelope_t *env, const char *raw,
                 size_t rawlen)
{
    qmgr_t *q = arg;
    store_batch_t *b;

    if (env == NULL) {
        msg_warn("%s: corrupt queue record moved to corrupt", id);
        b = store_batch_new();
        store_batch_corrupt(b, id, raw, rawlen, 0);
        qmgr_commit(q, b, id);
        return 0;
    }
    if (env->state == QS_ACTIVE) {
        b = store_batch_new();
        env->state = QS_INCOMING;
        store_batch_update(b, env, qmgr_now_us());
        qmgr_commit(q, b, id);
    }
    return __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
}

/* Make deferred mail due now. */
static int
qmgr_flush_one(void *arg, const char *id, envelope_t *env, const char *raw,
               size_t rawlen)
{
    qmgr_t *q = arg;
    store_batch_t *b;

    if (env == NULL || env->state != QS_DEFERRED)
        return 0;
    b = store_batch_new();
    store_batch_update(b, env, qmgr_now_us());
    qmgr_commit(q, b, id);
    return 0;
}

static void *
qmgr_main(void *arg)
{
    qmgr_t *q = arg;
    struct qmgr_due due;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role("qmgr");
    due.ids = mem_calloc(QMGR_SCAN_MAX, QUEUE_ID_SIZE);
    due.when = mem_calloc(QMGR_SCAN_MAX, sizeof(int64_t));
    store_foreach(q->store, qmgr_recover_one, q);
    while (!__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        int64_t next = 0;
        int64_t now = qmgr_now_us();
        struct timespec ts;
        size_t i;
        int flush;

        pthread_mutex_lock(&q->lock);
        flush = q->flush;
        q->flush = 0;
        q->wake = 0;
        pthread_mutex_unlock(&q->lock);
        if (flush)
            store_foreach(q->store, qmgr_flush_one, q);
        due.n = 0;
        store_scan_due(q->store, now, QMGR_SCAN_MAX, qmgr_collect, &due);
        for (i = 0; i < due.n && !__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
             i++)
            qmgr_activate(q, due.ids[i], due.when[i]);
        if (due.n == QMGR_SCAN_MAX)
            continue;
        /* Sleep until the next entry is due or somebody wakes us. */
        if (!store_next_due(q->store, &next) || next - now > QMGR_IDLE_MAX_US)
            next = now + QMGR_IDLE_MAX_US;
        ts.tv_sec = (time_t)(next / 1000000);
        ts.tv_nsec = (long)(next % 1000000) * 1000;
        pthread_mutex_lock(&q->lock);
        while (!q->wake && !q->stop && !q->flush) {
            if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&q->lock);
    }
    free(due.ids);
    free(due.when);
    return NULL;
}

qmgr_t *
qmgr_start(store_t *store, int threads)
{
    qmgr_t *q = mem_calloc(1, sizeof(*q));
    pthread_condattr_t ca;
    int err;

    q->store = store;
    pthread_mutex_init(&q->lock, NULL);
    /* Deadlines are wall-clock times, as the schedule keys are. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->pool = pool_new("local", threads, (size_t)threads * 4, qmgr_deliver, q);
    err = pthread_create(&q->thread, NULL, qmgr_main, q);
    if (err != 0)
        msg_fatal("cannot start qmgr thread: %s", strerror(err));
    return q;
}

static void
qmgr_signal(qmgr_t *q, int flush)
{
    pthread_mutex_lock(&q->lock);
    q->wake = 1;
    if (flush)
        q->flush = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void
qmgr_wakeup(qmgr_t *q)
{
    qmgr_signal(q, 0);
}

void
qmgr_flush(qmgr_t *q)
{
    qmgr_signal(q, 1);
}

void
qmgr_stop(qmgr_t **qp)
{
    qmgr_t *q = qp ? *qp : NULL;

    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pool_stop(&q->pool, qmgr_handback);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q);
    *qp = NULL;
}

size_t
qmgr_busy(qmgr_t *q)
{
    return pool_busy(q->pool) + pool_queued(q->pool);
}
