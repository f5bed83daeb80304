/* SPDX-License-Identifier: ISC */
/*
 * qmgr: scheduling and running deliveries.
 *
 * Flow: the qmgr thread finds due mail with a range scan of the
 * schedule, marks each message active (a batch of its own, committed
 * together with those of the other due messages so that they share one
 * synced write), resolves each of its
 * pending recipients to a transport and next hop, and splits them into
 * entries: at most the transport's recipient limit of recipients for one
 * destination (transport plus next hop; the recipient itself when the
 * limit is 1, as local's is).  Entries wait in their destination's
 * queue; destinations with waiting entries form a ring that the
 * scheduler walks round-robin, handing one entry at a time to the pool
 * of delivery workers while
 *   - fewer than delivery_threads deliveries run (the global limit);
 *   - the destination runs fewer than its window, which starts at
 *     initial_destination_concurrency, grows by 1/window with each
 *     delivery that reaches the destination and shrinks by one with
 *     each that cannot (connection refused, bad greeting), never past
 *     the transport's destination_concurrency_limit;
 *   - the destination runs fewer than four fifths of the workers, so
 *     that one slow domain leaves room for the others.
 * A destination whose window is down to one and that fails
 * default_destination_concurrency_failed_cohort_limit times more is
 * dead for minimal_backoff_time: its entries are deferred at once
 * ("delivery temporarily suspended"), as Postfix's qmgr does.
 *
 * When the last entry of a message is done, the worker that finished
 * it sends the notices the outcomes call for (bounce.c) and records the
 * attempt: the message is removed when no recipient is left, else
 * deferred until its next try.  Retries follow Postfix: the wait before
 * the next attempt is the message's age, kept between
 * minimal_backoff_time and maximal_backoff_time.
 *
 * Threads: the qmgr thread alone moves messages from the schedule to
 * active; a message in memory is owned by its entries, each recipient
 * by exactly one entry, so workers write disjoint recipients (message
 * fields under the message's lock).  Scheduling state (destinations,
 * the ring, counters) is under the qmgr's lock, which is never held
 * across a delivery or a queue write.
 *
 * Crashes: activation is one batch, the outcome of an attempt another.
 * A crash between them leaves the message active, and start moves
 * active mail back to incoming, so a crash can cause a second delivery
 * to a recipient but never a lost one.  A notice is durable in the
 * queue before the batch that ends the recipients it is about, so a
 * crash can at worst send a notice twice.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver/bounce.h"
#include "deliver/delivery.h"
#include "deliver/error.h"
#include "deliver/lmtp.h"
#include "deliver/local.h"
#include "deliver/qmgr.h"
#include "deliver/resolve.h"
#include "deliver/smtp.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"
#include "queue/queue_id.h"
#include "lib/stats.h"

#define QMGR_SCAN_MAX 1000
#define QMGR_IDLE_MAX_US (60 * 1000000LL)
#define QMGR_HASH_SIZE 1024
#define QMGR_NAME_MAX 256
#define QMGR_ACT_GROUP 256

/* A transport the qmgr can hand entries to. */
struct qmgr_transport {
    const char *name;
    enum param_id concurrency; /* *_destination_concurrency_limit */
    enum param_id rcpt_limit;  /* *_destination_recipient_limit */
    void (*deliver)(struct delivery_req *req);
};

static const struct qmgr_transport qmgr_transports[] = {
    {"smtp", P_SMTP_DESTINATION_CONCURRENCY_LIMIT,
     P_SMTP_DESTINATION_RECIPIENT_LIMIT, smtp_deliver},
    {"relay", P_SMTP_DESTINATION_CONCURRENCY_LIMIT,
     P_SMTP_DESTINATION_RECIPIENT_LIMIT, smtp_deliver},
    {"lmtp", P_LMTP_DESTINATION_CONCURRENCY_LIMIT,
     P_LMTP_DESTINATION_RECIPIENT_LIMIT, lmtp_deliver},
    {"local", P_LOCAL_DESTINATION_CONCURRENCY_LIMIT,
     P_LOCAL_DESTINATION_RECIPIENT_LIMIT, local_deliver},
    {"virtual", P_VIRTUAL_DESTINATION_CONCURRENCY_LIMIT,
     P_VIRTUAL_DESTINATION_RECIPIENT_LIMIT, local_virtual_deliver},
    {"error", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT,
     P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, error_deliver},
    {"retry", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT,
     P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, error_retry},
    {"discard", P_DEFAULT_DESTINATION_CONCURRENCY_LIMIT,
     P_DEFAULT_DESTINATION_RECIPIENT_LIMIT, error_discard},
};

#define QMGR_NTRANSPORTS                                                       \
    (sizeof(qmgr_transports) / sizeof(qmgr_transports[0]))

/* What happened to a recipient in this attempt, for the notices. */
enum qmgr_outcome {
    QMGR_OUT_NONE,
    QMGR_OUT_SENT,
    QMGR_OUT_DEFERRED,
    QMGR_OUT_BOUNCED,
};

struct qmgr_msg {
    envelope_t *env;
    int64_t active_us;
    int entries;          /* entries not yet done (qmgr lock) */
    int handback;         /* an entry was never run: back to incoming */
    int corrupt;          /* the content could not be read */
    pthread_mutex_t lock; /* env and the arrays below */
    enum qmgr_outcome *outcome;
    enum delivery_notice *notice;
};

struct qmgr_dest;

struct qmgr_entry {
    struct qmgr_entry *next;
    struct qmgr_msg *msg;
    struct qmgr_dest *dest;
    size_t n;
    size_t cap;
    size_t *idx;   /* recipient indexes in msg->env */
    int suspended; /* defer at once: the destination is dead */
    char *suspend_reason;
};

struct qmgr_dest {
    struct qmgr_dest *hnext;
    struct qmgr_dest *rnext; /* the ring of destinations with entries */
    struct qmgr_dest *rprev;
    int in_ring;
    char *key;
    char *transport;
    char *nexthop;
    const struct qmgr_transport *tp;
    struct qmgr_entry *head;
    struct qmgr_entry *tail;
    size_t queued;
    int active;
    int limit;
    double window;
    int cohorts;
    int64_t dead_until;
    char *dead_reason;
};

/* The end of a delivery attempt that the queue did not take (it was
 * failing or being reopened), tried again until it does.  Until then the
 * message stays active on disk, where nothing else touches it. */
struct qmgr_retry {
    envelope_t *env; /* as it is to be written */
    int remove;      /* every recipient done: remove the message */
    int64_t next_us; /* else its next sched key, 0 for none */
    struct qmgr_retry *next;
};

struct qmgr {
    store_t *store;
    pool_t *pool;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wake;
    int flush;
    char **flush_domains;
    size_t nflush_domains;
    int stop;
    int draining;
    int threads;
    int running;
    size_t nmsgs;
    struct qmgr_dest *hash[QMGR_HASH_SIZE];
    struct qmgr_dest *ring;
    smtp_cache_t *cache;
    struct qmgr_retry *retries; /* under lock */
    pthread_rwlock_t cleanup_lock;
    cleanup_t *cleanup;
};

struct qmgr_due {
    char (*ids)[QUEUE_ID_SIZE];
    int64_t *when;
    size_t n;
};

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

/* The Postfix delivery line; delays are a/b/c/d: before the active
 * queue, in it before the attempt, connection setup, transmission. */
static void
qmgr_log_delivery(const struct qmgr_msg *m, const rcpt_t *rc,
                  const struct delivery_result *r, int64_t start_us,
                  int64_t conn_us, const char *status)
{
    const envelope_t *env = m->env;
    int64_t now = clock_wall_us();
    char total[16];
    char a[16];
    char b[16];
    char c[16];
    char d[16];

    if (conn_us < start_us || conn_us > now)
        conn_us = start_us;
    qmgr_fmt_delay(total, sizeof(total), (now - env->arrival_us) / 1e6);
    qmgr_fmt_delay(a, sizeof(a), (m->active_us - env->arrival_us) / 1e6);
    qmgr_fmt_delay(b, sizeof(b), (start_us - m->active_us) / 1e6);
    qmgr_fmt_delay(c, sizeof(c), (conn_us - start_us) / 1e6);
    qmgr_fmt_delay(d, sizeof(d), (now - conn_us) / 1e6);
    /* Postfix names the address as received too when it was rewritten. */
    msg_info("%s: to=<%s>, %s%s%srelay=%s, delay=%s, delays=%s/%s/%s/%s, "
             "dsn=%s, status=%s (%s)",
             env->id, rc->addr, rc->orig ? "orig_to=<" : "",
             rc->orig ? rc->orig : "", rc->orig ? ">, " : "", r->relay, total,
             a, b, c, d, r->dsn, status, r->text);
    stats_delivery(status, env->arrival_us);
}

static const struct qmgr_transport *
qmgr_find_transport(const char *name)
{
    size_t i;

    for (i = 0; i < QMGR_NTRANSPORTS; i++)
        if (strcmp(qmgr_transports[i].name, name) == 0)
            return &qmgr_transports[i];
    return NULL;
}

/* ---- destinations and the ring (qmgr lock held) ------------------- */

static unsigned
qmgr_hash(const char *s)
{
    unsigned h = 5381;

    while (*s)
        h = h * 33 + (unsigned char)tolower((unsigned char)*s++);
    return h % QMGR_HASH_SIZE;
}

static void
qmgr_ring_add(qmgr_t *q, struct qmgr_dest *d)
{
    if (d->in_ring)
        return;
    d->in_ring = 1;
    if (q->ring == NULL) {
        d->rnext = d->rprev = d;
        q->ring = d;
        return;
    }
    /* Behind the cursor: the last to be served in this round. */
    d->rnext = q->ring;
    d->rprev = q->ring->rprev;
    q->ring->rprev->rnext = d;
    q->ring->rprev = d;
}

static void
qmgr_ring_remove(qmgr_t *q, struct qmgr_dest *d)
{
    if (!d->in_ring)
        return;
    d->in_ring = 0;
    if (d->rnext == d) {
        q->ring = NULL;
    } else {
        d->rprev->rnext = d->rnext;
        d->rnext->rprev = d->rprev;
        if (q->ring == d)
            q->ring = d->rnext;
    }
    d->rnext = d->rprev = NULL;
}

static struct qmgr_dest *
qmgr_dest_get(qmgr_t *q, const config_t *cfg,
              const struct qmgr_transport *tp, const char *key,
              const char *nexthop)
{
    unsigned h = qmgr_hash(key);
    struct qmgr_dest *d;
    long long init = config_num(cfg, P_INITIAL_DESTINATION_CONCURRENCY);

    for (d = q->hash[h]; d; d = d->hnext)
        if (strcasecmp(d->key, key) == 0)
            break;
    if (d == NULL) {
        d = mem_calloc(1, sizeof(*d));
        d->key = mem_strdup(key);
        d->transport = mem_strdup(tp->name);
        d->nexthop = mem_strdup(nexthop);
        d->tp = tp;
        d->window = init < 1 ? 1 : (double)init;
        d->hnext = q->hash[h];
        q->hash[h] = d;
    }
    d->limit = (int)config_num(cfg, tp->concurrency);
    if (d->limit < 1)
        d->limit = 1;
    return d;
}

static void
qmgr_dest_free_if_idle(qmgr_t *q, struct qmgr_dest *d)
{
    struct qmgr_dest **pp;

    if (d->queued > 0 || d->active > 0 || d->dead_until > clock_wall_us())
        return;
    for (pp = &q->hash[qmgr_hash(d->key)]; *pp; pp = &(*pp)->hnext) {
        if (*pp != d)
            continue;
        *pp = d->hnext;
        break;
    }
    qmgr_ring_remove(q, d);
    free(d->key);
    free(d->transport);
    free(d->nexthop);
    free(d->dead_reason);
    free(d);
}

/* How many deliveries d may run at once now. */
static int
qmgr_dest_room(const qmgr_t *q, const struct qmgr_dest *d)
{
    int cap = (int)d->window;
    int fair = q->threads >= 5 ? q->threads - q->threads / 5 : q->threads;

    if (cap > d->limit)
        cap = d->limit;
    if (cap > fair)
        cap = fair;
    if (cap < 1)
        cap = 1;
    return d->active < cap;
}

static void
qmgr_entry_suspend(struct qmgr_entry *e, const char *reason)
{
    e->suspended = 1;
    free(e->suspend_reason);
    e->suspend_reason = mem_strdup(reason ? reason : "");
}

static void
qmgr_dest_append(qmgr_t *q, struct qmgr_dest *d, struct qmgr_entry *e)
{
    int64_t now = clock_wall_us();

    if (d->dead_until > now) {
        qmgr_entry_suspend(e, d->dead_reason);
    } else if (d->dead_until != 0) {
        /* The back-off is over: start again with a small window. */
        d->dead_until = 0;
        d->cohorts = 0;
        d->window = 1;
    }
    e->next = NULL;
    e->dest = d;
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
    d->queued++;
    qmgr_ring_add(q, d);
}

static struct qmgr_entry *
qmgr_dest_pop(struct qmgr_dest *d)
{
    struct qmgr_entry *e = d->head;

    if (e == NULL)
        return NULL;
    d->head = e->next;
    if (d->head == NULL)
        d->tail = NULL;
    d->queued--;
    e->next = NULL;
    return e;
}

/* Hand out entries while there is room.  Called with the lock held. */
static void
qmgr_schedule(qmgr_t *q)
{
    while (!q->draining && q->running < q->threads && q->ring) {
        struct qmgr_dest *d = q->ring;
        struct qmgr_dest *start = d;
        struct qmgr_entry *e;

        /* The next destination in the round with room, or a suspended
         * entry, which costs no connection. */
        while (!qmgr_dest_room(q, d) &&
               !(d->head && d->head->suspended)) {
            d = d->rnext;
            if (d == start)
                return;
        }
        e = qmgr_dest_pop(d);
        q->ring = d->rnext;
        if (d->queued == 0)
            qmgr_ring_remove(q, d);
        d->active++;
        q->running++;
        if (pool_submit(q->pool, e, 0) < 0) {
            /* Only when the pool is stopping: leave it queued. */
            d->active--;
            q->running--;
            e->next = d->head;
            d->head = e;
            if (d->tail == NULL)
                d->tail = e;
            d->queued++;
            qmgr_ring_add(q, d);
            return;
        }
    }
}

/* Concurrency feedback after an entry of d ended. */
static void
qmgr_feedback(qmgr_t *q, const config_t *cfg, struct qmgr_dest *d,
              int site_fail, const char *reason)
{
    long long cohort_limit =
        config_num(cfg, P_DEFAULT_DESTINATION_CONCURRENCY_FAILED_COHORT_LIMIT);
    struct qmgr_entry *e;

    if (!site_fail) {
        d->cohorts = 0;
        d->window += 1.0 / (d->window < 1 ? 1 : d->window);
        if (d->window > d->limit)
            d->window = d->limit;
        return;
    }
    if (d->window > 1) {
        d->window -= 1;
        if (d->window < 1)
            d->window = 1;
        return;
    }
    if (++d->cohorts < (cohort_limit < 1 ? 1 : cohort_limit))
        return;
    d->dead_until =
        clock_wall_us() + config_num(cfg, P_MINIMAL_BACKOFF_TIME) * 1000000LL;
    free(d->dead_reason);
    d->dead_reason = mem_strdup(reason ? reason : "");
    for (e = d->head; e; e = e->next)
        qmgr_entry_suspend(e, reason);
    (void)q;
}

/* ---- messages ----------------------------------------------------- */

static void
qmgr_msg_free(struct qmgr_msg **mp)
{
    struct qmgr_msg *m = *mp;

    if (m == NULL)
        return;
    envelope_free(&m->env);
    pthread_mutex_destroy(&m->lock);
    free(m->outcome);
    free(m->notice);
    free(m);
    *mp = NULL;
}

static void
qmgr_entry_free(struct qmgr_entry **ep)
{
    struct qmgr_entry *e = *ep;

    if (e == NULL)
        return;
    free(e->idx);
    free(e->suspend_reason);
    free(e);
    *ep = NULL;
}

/* The cleanup service for notices, with its lock held for reading;
 * NULL (and no lock) when there is none. */
static cleanup_t *
qmgr_cleanup_hold(qmgr_t *q)
{
    pthread_rwlock_rdlock(&q->cleanup_lock);
    if (q->cleanup)
        return q->cleanup;
    pthread_rwlock_unlock(&q->cleanup_lock);
    return NULL;
}

static void
qmgr_cleanup_release(qmgr_t *q)
{
    pthread_rwlock_unlock(&q->cleanup_lock);
}

/* Send one notice about the recipients whose index is in list; returns
 * 0 when it is queued or none is due, -1 when it could not be. */
static int
qmgr_notify(qmgr_t *q, const config_t *cfg, struct qmgr_msg *m,
            enum bounce_kind kind, const size_t *list, size_t n)
{
    struct bounce_rcpt *br;
    char newid[QUEUE_ID_SIZE];
    cleanup_t *c;
    size_t i;
    int rc;

    if (n == 0 || m->env->sender[0] == '\0')
        return 0;
    br = mem_calloc(n, sizeof(*br));
    for (i = 0; i < n; i++) {
        const rcpt_t *rc2 = &m->env->rcpts[list[i]];

        br[i].rcpt = rc2;
        br[i].dsn = rc2->dsn ? rc2->dsn : "";
        br[i].reason = rc2->reason ? rc2->reason : "";
        br[i].action = kind == BOUNCE_FAILED    ? "failed"
                       : kind == BOUNCE_DELAYED ? "delayed"
                       : m->notice[list[i]] == DELIVERY_NOTICE_RELAYED
                           ? "relayed"
                           : "delivered";
    }
    c = qmgr_cleanup_hold(q);
    if (c == NULL) {
        free(br);
        return -1;
    }
    rc = bounce_send(c, q->store, cfg, m->env, kind, br, n, newid);
    qmgr_cleanup_release(q);
    free(br);
    if (rc == 0) {
        log_set_role("bounce");
        msg_info("%s: sender %s notification: %s", m->env->id,
                 kind == BOUNCE_FAILED    ? "non-delivery"
                 : kind == BOUNCE_DELAYED ? "delay"
                                          : "delivery status",
                 newid);
    }
    return rc < 0 ? -1 : 0;
}

/* Whether rcpt asked for (or by default gets) a notice of this kind. */
static int
qmgr_wants(const rcpt_t *rc, enum bounce_kind kind)
{
    if (rc->notify & DSN_NOTIFY_NEVER)
        return 0;
    switch (kind) {
    case BOUNCE_FAILED:
        return rc->notify == 0 || (rc->notify & DSN_NOTIFY_FAILURE);
    case BOUNCE_DELAYED:
        return rc->notify == 0 || (rc->notify & DSN_NOTIFY_DELAY);
    case BOUNCE_DELIVERED:
        return (rc->notify & DSN_NOTIFY_SUCCESS) != 0;
    }
    return 0;
}

/* Expire what is still pending once the message is older than its
 * lifetime (bounce_queue_lifetime for notices with the null sender). */
static void
qmgr_expire(struct qmgr_msg *m, int64_t now)
{
    envelope_t *env = m->env;
    int64_t life = env->sender[0] ? env->max_lifetime : env->bounce_lifetime;
    size_t i;

    if (life <= 0 || now - env->arrival_us < life * 1000000LL)
        return;
    log_set_role("qmgr");
    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *rc = &env->rcpts[i];
        struct delivery_result r;

        if (rc->state != RCPT_PENDING && rc->state != RCPT_DEFERRED)
            continue;
        memset(&r, 0, sizeof(r));
        snprintf(r.relay, sizeof(r.relay), "none");
        /* The last temporary failure stays the reason, with its status
         * code, as Postfix reports an expired message. */
        delivery_set(&r, DELIVERY_BOUNCE, rc->dsn ? rc->dsn : "4.4.7",
                     "%s", rc->reason ? rc->reason : "message expired");
        qmgr_log_delivery(m, rc, &r, now, now,
                          "expired, returned to sender");
        if (rc->dsn == NULL)
            envelope_set(&rc->dsn, "4.4.7");
        if (rc->reason == NULL)
            envelope_set(&rc->reason, "message expired");
        rc->state = RCPT_BOUNCED;
        m->outcome[i] = QMGR_OUT_BOUNCED;
    }
}

/* Send the notices this attempt calls for.  A failure notice that cannot
 * be queued leaves its recipients deferred, so a later attempt reports
 * them again. */
static void
qmgr_notices(qmgr_t *q, const config_t *cfg, struct qmgr_msg *m)
{
    envelope_t *env = m->env;
    size_t *failed = mem_calloc(env->nrcpt + 1, sizeof(size_t));
    size_t *done = mem_calloc(env->nrcpt + 1, sizeof(size_t));
    size_t *late = mem_calloc(env->nrcpt + 1, sizeof(size_t));
    size_t nf = 0;
    size_t nd = 0;
    size_t nl = 0;
    int64_t warn = config_num(cfg, P_DELAY_WARNING_TIME);
    int64_t age = clock_wall_us() - env->arrival_us;
    size_t i;

    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *rc = &env->rcpts[i];

        if (m->outcome[i] == QMGR_OUT_BOUNCED && qmgr_wants(rc, BOUNCE_FAILED))
            failed[nf++] = i;
        else if (m->outcome[i] == QMGR_OUT_SENT &&
                 m->notice[i] != DELIVERY_NOTICE_PASSED &&
                 qmgr_wants(rc, BOUNCE_DELIVERED))
            done[nd++] = i;
        else if (rc->state == RCPT_DEFERRED && qmgr_wants(rc, BOUNCE_DELAYED))
            late[nl++] = i;
    }
    if (qmgr_notify(q, cfg, m, BOUNCE_FAILED, failed, nf) < 0) {
        msg_warn("%s: cannot queue the non-delivery notification; the "
                 "recipients stay deferred",
                 env->id);
        for (i = 0; i < nf; i++)
            env->rcpts[failed[i]].state = RCPT_DEFERRED;
    }
    if (qmgr_notify(q, cfg, m, BOUNCE_DELIVERED, done, nd) < 0)
        msg_warn("%s: cannot queue the delivery status notification",
                 env->id);
    if (warn > 0 && !env->warned && age >= warn * 1000000LL && nl > 0) {
        if (qmgr_notify(q, cfg, m, BOUNCE_DELAYED, late, nl) == 0)
            env->warned = 1;
    }
    free(failed);
    free(done);
    free(late);
}

/* Write the end of an attempt on env, which is active on disk with no
 * sched key: remove it, or rewrite it with a sched key at next_us (none
 * if 0).  A retry is written only if the message is still active, since
 * the failed write may have landed after all and the message moved on.
 * Returns 0, 1 if it did, or -1. */
static int
qmgr_settle_once(qmgr_t *q, envelope_t *env, int remove, int64_t next_us,
                 int retry)
{
    store_batch_t *b = store_batch_new();
    char *err = NULL;
    int r = 0;

    env->sched_us = 0;
    if (remove) {
        store_batch_remove(b, env);
    } else {
        if (retry)
            store_batch_expect(b, env->id, QS_ACTIVE, 0);
        store_batch_update(b, env, next_us);
    }
    if (store_commit(q->store, b, &err) < 0) {
        if (err != NULL && strcmp(err, STORE_CONFLICT) == 0)
            r = 1;
        else if (!retry)
            msg_warn("%s: cannot update queue: %s; trying again", env->id,
                     err ? err : "?");
        r = r ? r : -1;
    } else if (remove) {
        /* Postfix's qmgr logs the removal; log it under that name. */
        log_set_role("qmgr");
        msg_info("%s: removed", env->id);
    }
    free(err);
    return r;
}

/* Write the end of m's attempt, or keep it to try again. */
static void
qmgr_settle(qmgr_t *q, struct qmgr_msg *m, int remove, int64_t next_us)
{
    struct qmgr_retry *r;

    if (qmgr_settle_once(q, m->env, remove, next_us, 0) >= 0)
        return;
    r = mem_calloc(1, sizeof(*r));
    r->env = m->env;
    m->env = NULL;
    r->remove = remove;
    r->next_us = next_us;
    pthread_mutex_lock(&q->lock);
    r->next = q->retries;
    q->retries = r;
    pthread_mutex_unlock(&q->lock);
    /* The qmgr thread tries again each second while retries wait, a
     * pace it takes up once it is awake. */
    qmgr_wakeup(q);
}

/* Try the kept ends of attempts again once the queue takes writes. */
static void
qmgr_retry_run(qmgr_t *q)
{
    struct qmgr_retry *list;
    struct qmgr_retry *r;
    struct qmgr_retry *keep = NULL;

    if (!store_healthy(q->store, NULL))
        return;
    pthread_mutex_lock(&q->lock);
    list = q->retries;
    q->retries = NULL;
    pthread_mutex_unlock(&q->lock);
    while ((r = list) != NULL) {
        list = r->next;
        if (qmgr_settle_once(q, r->env, r->remove, r->next_us, 1) < 0) {
            r->next = keep;
            keep = r;
            continue;
        }
        envelope_free(&r->env);
        free(r);
    }
    if (keep == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    for (r = keep; r->next != NULL; r = r->next)
        ;
    r->next = q->retries;
    q->retries = keep;
    pthread_mutex_unlock(&q->lock);
}

static int
qmgr_retry_pending(qmgr_t *q)
{
    int pending;

    pthread_mutex_lock(&q->lock);
    pending = q->retries != NULL;
    pthread_mutex_unlock(&q->lock);
    return pending;
}

/* Record the attempt: remove the message when every recipient is done,
 * else schedule the next try (or, when it was handed back unfinished,
 * put it back to incoming). */
static void
qmgr_finish(qmgr_t *q, const config_t *cfg, struct qmgr_msg *m)
{
    envelope_t *env = m->env;
    int64_t now = clock_wall_us();
    int64_t age = now - env->arrival_us;
    int64_t wait;

    if (m->corrupt) {
        env->state = QS_CORRUPT;
        qmgr_settle(q, m, 0, 0);
        return;
    }
    if (!m->handback)
        qmgr_expire(m, now);
    qmgr_notices(q, cfg, m);
    if (envelope_pending(env) == 0) {
        qmgr_settle(q, m, 1, 0);
        return;
    }
    if (m->handback) {
        env->state = QS_INCOMING;
        qmgr_settle(q, m, 0, now);
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
    qmgr_settle(q, m, 0, env->next_us);
    /* The qmgr thread may be asleep past this new schedule key. */
    qmgr_wakeup(q);
}

/* An entry is over (run or not): feedback, the next entries, and the
 * message's end when it was the last. */
static void
qmgr_entry_done(qmgr_t *q, const config_t *cfg, struct qmgr_entry *e,
                int ran, int site_fail, const char *reason)
{
    struct qmgr_msg *m = e->msg;
    struct qmgr_dest *d = e->dest;
    int last;

    pthread_mutex_lock(&q->lock);
    if (ran) {
        d->active--;
        q->running--;
        if (!e->suspended)
            qmgr_feedback(q, cfg, d, site_fail, reason);
    }
    last = --m->entries == 0;
    if (!ran)
        m->handback = 1;
    qmgr_dest_free_if_idle(q, d);
    qmgr_schedule(q);
    pthread_mutex_unlock(&q->lock);
    qmgr_entry_free(&e);
    if (!last)
        return;
    qmgr_finish(q, cfg, m);
    qmgr_msg_free(&m);
    pthread_mutex_lock(&q->lock);
    q->nmsgs--;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* Record one recipient's outcome in the envelope and the log. */
static void
qmgr_record(struct qmgr_msg *m, size_t i, const struct delivery_result *r,
            int64_t start, int64_t conn)
{
    rcpt_t *rc = &m->env->rcpts[i];
    const char *status = "deferred";

    pthread_mutex_lock(&m->lock);
    rc->attempts++;
    envelope_set(&rc->dsn, r->dsn);
    envelope_set(&rc->reason, r->text);
    switch (r->status) {
    case DELIVERY_SENT:
        rc->state = RCPT_SENT;
        m->outcome[i] = QMGR_OUT_SENT;
        m->notice[i] = r->notice;
        status = "sent";
        break;
    case DELIVERY_BOUNCE:
        rc->state = RCPT_BOUNCED;
        m->outcome[i] = QMGR_OUT_BOUNCED;
        status = "bounced";
        break;
    default:
        rc->state = RCPT_DEFERRED;
        m->outcome[i] = QMGR_OUT_DEFERRED;
        envelope_set(&m->env->reason, r->text);
        break;
    }
    pthread_mutex_unlock(&m->lock);
    qmgr_log_delivery(m, rc, r, start, conn, status);
}

/* Queue a forward for a transport (an alias that names addresses). */
static int
qmgr_forward(void *arg, const config_t *cfg, const char *sender,
             char *const *rcpts, size_t n, const char *msg, size_t len,
             char newid[QUEUE_ID_SIZE])
{
    qmgr_t *q = arg;
    cleanup_t *c = qmgr_cleanup_hold(q);
    cleanup_req_t *req;
    size_t i;
    int rc;

    newid[0] = '\0';
    if (c == NULL)
        return -1;
    req = mem_calloc(1, sizeof(*req));
    req->env = envelope_new();
    queue_id_new(req->env->id);
    envelope_set(&req->env->sender, sender);
    for (i = 0; i < n; i++)
        envelope_add_rcpt(req->env, rcpts[i]);
    envelope_set(&req->env->protocol, "LOCAL");
    buf_init(&req->msg);
    buf_append(&req->msg, msg, len);
    req->cfg = config_ref((config_t *)cfg);
    req->local = 1;
    req->internal = 1;
    snprintf(newid, QUEUE_ID_SIZE, "%s", req->env->id);
    rc = delivery_submit_wait(c, req);
    qmgr_cleanup_release(q);
    if (rc < 0)
        newid[0] = '\0';
    return rc;
}

/* A delivery worker: run one entry. */
static void
qmgr_run(void *ctx, void *item)
{
    qmgr_t *q = ctx;
    struct qmgr_entry *e = item;
    struct qmgr_msg *m = e->msg;
    struct qmgr_dest *d = e->dest;
    config_t *cfg = config_current();
    struct delivery_req req;
    char reason[1024] = "";
    buf_t body;
    size_t i;
    int rc = 1;

    memset(&req, 0, sizeof(req));
    buf_init(&body);
    log_set_role(d->tp->name);
    req.cfg = cfg;
    req.env = m->env;
    req.transport = d->transport;
    req.nexthop = d->nexthop;
    req.nrcpt = e->n;
    req.rcpts = mem_calloc(e->n, sizeof(*req.rcpts));
    req.cache = q->cache;
    req.submit = qmgr_forward;
    req.submit_arg = q;
    req.start_us = clock_wall_us();
    for (i = 0; i < e->n; i++)
        req.rcpts[i].rcpt = &m->env->rcpts[e->idx[i]];
    delivery_reset(&req);
    if (e->suspended) {
        delivery_set_rest(&req, DELIVERY_DEFER, "4.4.1", "none",
                          "delivery temporarily suspended: %s",
                          e->suspend_reason);
    } else if ((rc = store_get_body(q->store, m->env->id, &body)) != 1) {
        msg_warn("%s: message content %s; marked corrupt", m->env->id,
                 rc == 0 ? "missing" : "unreadable");
        pthread_mutex_lock(&m->lock);
        m->corrupt = 1;
        pthread_mutex_unlock(&m->lock);
    } else {
        req.msg = body.data ? body.data : "";
        req.len = body.len;
        d->tp->deliver(&req);
        delivery_set_rest(&req, DELIVERY_DEFER, "4.3.0", "none",
                          "the %s transport gave no outcome", d->transport);
    }
    for (i = 0; rc == 1 && i < e->n; i++) {
        struct delivery_result *r = &req.rcpts[i].result;

        if (r->status == DELIVERY_BOUNCE &&
            config_num(cfg, P_SOFT_BOUNCE)) {
            /* soft_bounce: the safety net of a new configuration. */
            r->status = DELIVERY_DEFER;
            if (r->dsn[0] == '5')
                r->dsn[0] = '4';
        }
        qmgr_record(m, e->idx[i], r, req.start_us, req.conn_us);
        if (r->status == DELIVERY_DEFER && reason[0] == '\0')
            snprintf(reason, sizeof(reason), "%s", r->text);
    }
    free(req.rcpts);
    buf_free(&body);
    qmgr_entry_done(q, cfg, e, 1, req.site_fail, reason);
    config_unref(&cfg);
}

/* A job handed out but not started when the pool stops. */
static void
qmgr_drop(void *ctx, void *item)
{
    qmgr_t *q = ctx;
    struct qmgr_entry *e = item;
    config_t *cfg = config_current();

    pthread_mutex_lock(&q->lock);
    e->dest->active--;
    q->running--;
    pthread_mutex_unlock(&q->lock);
    qmgr_entry_done(q, cfg, e, 0, 0, NULL);
    config_unref(&cfg);
}

/* Split the pending recipients of m into entries on their
 * destinations' queues.  Returns the number of entries. */
static int
qmgr_plan(qmgr_t *q, const config_t *cfg, struct qmgr_msg *m)
{
    envelope_t *env = m->env;
    struct qmgr_entry **open = mem_calloc(env->nrcpt + 1, sizeof(*open));
    char **keys = mem_calloc(env->nrcpt + 1, sizeof(char *));
    size_t nopen = 0;
    size_t i;
    size_t j;
    int n = 0;

    /* One hold of the lock for the whole plan: a destination found here
     * must not be freed by a worker before the entries are on it. */
    pthread_mutex_lock(&q->lock);
    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *rc = &env->rcpts[i];
        char transport[QMGR_NAME_MAX];
        char nexthop[QMGR_NAME_MAX * 2];
        const struct qmgr_transport *tp;
        struct qmgr_entry *e = NULL;
        long long limit;
        char *key;

        if (rc->state != RCPT_PENDING && rc->state != RCPT_DEFERRED)
            continue;
        resolve_rcpt(cfg, env->sender, rc->addr, transport, sizeof(transport),
                     nexthop, sizeof(nexthop));
        if (env->filter != NULL) {
            /* content_filter: every recipient to the filter first; an
             * empty next hop keeps the recipient's. */
            size_t tlen = strcspn(env->filter, ":");

            snprintf(transport, sizeof(transport), "%.*s", (int)tlen,
                     env->filter);
            if (env->filter[tlen] == ':' && env->filter[tlen + 1] != '\0')
                snprintf(nexthop, sizeof(nexthop), "%s",
                         env->filter + tlen + 1);
        }
        tp = qmgr_find_transport(transport);
        if (tp == NULL) {
            /* An unknown transport name: defer with a reason the
             * postmaster can act on. */
            tp = qmgr_find_transport("retry");
            snprintf(nexthop, sizeof(nexthop),
                     "4.3.0 mail transport unavailable: %s", transport);
        }
        limit = config_num(cfg, tp->rcpt_limit);
        if (limit < 1)
            limit = 1;
        key = limit == 1 ? mem_printf("%s:%s", tp->name, rc->addr)
                         : mem_printf("%s:%s", tp->name, nexthop);
        for (j = 0; j < nopen; j++)
            if (open[j] && strcmp(keys[j], key) == 0 &&
                open[j]->n < (size_t)limit)
                break;
        if (j < nopen) {
            e = open[j];
            free(key);
        } else {
            e = mem_calloc(1, sizeof(*e));
            e->msg = m;
            e->dest = qmgr_dest_get(q, cfg, tp, key, nexthop);
            e->cap = (size_t)limit < env->nrcpt ? (size_t)limit : env->nrcpt;
            e->idx = mem_calloc(e->cap, sizeof(size_t));
            open[nopen] = e;
            keys[nopen++] = key;
            n++;
        }
        e->idx[e->n++] = i;
    }
    m->entries = n;
    for (j = 0; j < nopen; j++)
        qmgr_dest_append(q, open[j]->dest, open[j]);
    qmgr_schedule(q);
    pthread_mutex_unlock(&q->lock);
    for (j = 0; j < nopen; j++)
        free(keys[j]);
    free(keys);
    free(open);
    return n;
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

/* Count one more message in memory if fewer than
 * qmgr_message_active_limit are; with wait set, wait for room.  Returns
 * 0 when counted, 1 when full (wait not set), -1 if stopping. */
static int
qmgr_take_room(qmgr_t *q, const config_t *cfg, int wait)
{
    size_t limit = (size_t)config_num(cfg, P_QMGR_MESSAGE_ACTIVE_LIMIT);
    int rc = 0;

    if (limit < 1)
        limit = 1;
    pthread_mutex_lock(&q->lock);
    while (q->nmsgs >= limit && !q->stop && wait) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    }
    if (q->stop)
        rc = -1;
    else if (q->nmsgs >= limit)
        rc = 1;
    else
        q->nmsgs++;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static void
qmgr_release_room(qmgr_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->nmsgs--;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* A group of activations committed together: each is its own batch
 * (with its own condition), and the store's committer writes all that
 * wait as one synced write, so a queue run costs a few fsyncs, not one
 * per message. */
struct qmgr_act {
    envelope_t *env;
    int status;
    struct qmgr_act_group *group;
};

struct qmgr_act_group {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t pending;
    size_t n;
    struct qmgr_act acts[QMGR_ACT_GROUP];
};

static void
qmgr_act_done(void *arg, int status, const char *err)
{
    struct qmgr_act *a = arg;
    struct qmgr_act_group *g = a->group;

    if (status != 0 && (err == NULL || strcmp(err, STORE_CONFLICT) != 0))
        msg_warn("%s: cannot update queue: %s", a->env->id, err ? err : "?");
    pthread_mutex_lock(&g->lock);
    a->status = status;
    g->pending--;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Wait for the group's commits, then plan the messages that became
 * active. */
static void
qmgr_act_flush(qmgr_t *q, const config_t *cfg, struct qmgr_act_group *g)
{
    size_t i;

    pthread_mutex_lock(&g->lock);
    while (g->pending > 0)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    for (i = 0; i < g->n; i++) {
        envelope_t *env = g->acts[i].env;
        struct qmgr_msg *m;

        g->acts[i].env = NULL;
        if (g->acts[i].status != 0) {
            envelope_free(&env);
            qmgr_release_room(q);
            continue;
        }
        msg_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)",
                 env->id, env->sender, (long long)env->size, env->nrcpt);
        m = mem_calloc(1, sizeof(*m));
        pthread_mutex_init(&m->lock, NULL);
        m->env = env;
        m->active_us = clock_wall_us();
        m->outcome = mem_calloc(env->nrcpt + 1, sizeof(*m->outcome));
        m->notice = mem_calloc(env->nrcpt + 1, sizeof(*m->notice));
        if (qmgr_plan(q, cfg, m) == 0) {
            /* Nothing pending (all recipients were done already). */
            qmgr_finish(q, cfg, m);
            qmgr_msg_free(&m);
            qmgr_release_room(q);
        }
    }
    g->n = 0;
}

/* Take one due entry off the schedule: read and check its envelope and
 * add its activation to the group (flushed first when the group or the
 * room in memory is full).  Returns -1 if the qmgr is stopping. */
static int
qmgr_activate(qmgr_t *q, const config_t *cfg, struct qmgr_act_group *g,
              const char *id, int64_t sched_us)
{
    envelope_t *env = NULL;
    store_batch_t *b;
    struct qmgr_act *a;
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
        if (rc == 0) {
            store_batch_unschedule(b, id, sched_us);
            qmgr_commit(q, b, id);
        } else {
            store_batch_free(&b);
        }
        goto done;
    }
    if (env->sched_us != sched_us ||
        (env->state != QS_INCOMING && env->state != QS_DEFERRED)) {
        /* A key left over from an earlier state: just drop it. */
        store_batch_unschedule(b, id, sched_us);
        qmgr_commit(q, b, id);
        goto done;
    }
    store_batch_free(&b);
    if (g->n == QMGR_ACT_GROUP)
        qmgr_act_flush(q, cfg, g);
    if ((rc = qmgr_take_room(q, cfg, 0)) == 1) {
        /* Full: what this group holds must get going before any room
         * can come free. */
        qmgr_act_flush(q, cfg, g);
        rc = qmgr_take_room(q, cfg, 1);
    }
    if (rc < 0)
        goto done;
    b = store_batch_new();
    store_batch_expect(b, id, env->state, env->sched_us);
    env->state = QS_ACTIVE;
    store_batch_update(b, env, 0);
    a = &g->acts[g->n++];
    a->env = env;
    a->status = -1;
    a->group = g;
    env = NULL;
    pthread_mutex_lock(&g->lock);
    g->pending++;
    pthread_mutex_unlock(&g->lock);
    store_commit_async(q->store, b, qmgr_act_done, a);
done:
    envelope_free(&env);
    buf_free(&raw);
    free(err);
    return rc < 0 ? -1 : 0;
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
        store_batch_update(b, env, clock_wall_us());
        qmgr_commit(q, b, id);
    }
    return __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
}

struct qmgr_flush_arg {
    qmgr_t *q;
    char *const *domains; /* NULL: every deferred message */
    size_t ndomains;
};

/* Nonzero if env has a recipient not yet done in one of the domains. */
static int
qmgr_flush_matches(const envelope_t *env, char *const *domains, size_t n)
{
    size_t i;
    size_t j;

    for (i = 0; i < env->nrcpt; i++) {
        const rcpt_t *rc = &env->rcpts[i];

        if (rc->state != RCPT_PENDING && rc->state != RCPT_DEFERRED)
            continue;
        for (j = 0; j < n; j++)
            if (strcasecmp(addr_domain(rc->addr), domains[j]) == 0)
                return 1;
    }
    return 0;
}

/* Make deferred mail due now. */
static int
qmgr_flush_one(void *arg, const char *id, envelope_t *env, const char *raw,
               size_t rawlen)
{
    struct qmgr_flush_arg *fa = arg;
    store_batch_t *b;

    if (env == NULL || env->state != QS_DEFERRED)
        return 0;
    if (fa->domains && !qmgr_flush_matches(env, fa->domains, fa->ndomains))
        return 0;
    b = store_batch_new();
    store_batch_expect(b, id, env->state, env->sched_us);
    store_batch_update(b, env, clock_wall_us());
    qmgr_commit(fa->q, b, id);
    return 0;
}

/* Forget that destinations were dead: a flush means "try now". */
static void
qmgr_revive_all(qmgr_t *q)
{
    size_t h;

    pthread_mutex_lock(&q->lock);
    for (h = 0; h < QMGR_HASH_SIZE; h++) {
        struct qmgr_dest *d;

        for (d = q->hash[h]; d; d = d->hnext) {
            if (d->dead_until == 0)
                continue;
            d->dead_until = 1;
        }
    }
    pthread_mutex_unlock(&q->lock);
}

/* Run the flushes asked for since the last round. */
static void
qmgr_do_flush(qmgr_t *q, int all, char **domains, size_t ndomains)
{
    struct qmgr_flush_arg fa = {q, NULL, 0};

    if (!all && ndomains == 0)
        return;
    qmgr_revive_all(q);
    if (!all) {
        fa.domains = domains;
        fa.ndomains = ndomains;
    }
    store_foreach(q->store, qmgr_flush_one, &fa);
}

/* Sleep until next_us, a wakeup, or a second when idle connections
 * wait to be closed or outcomes wait to be written. */
static void
qmgr_sleep(qmgr_t *q, int64_t now, int cached)
{
    int64_t next = 0;
    struct timespec ts;

    if (!store_next_due(q->store, &next) || next - now > QMGR_IDLE_MAX_US)
        next = now + QMGR_IDLE_MAX_US;
    if ((cached || qmgr_retry_pending(q)) && next - now > 1000000)
        next = now + 1000000;
    ts.tv_sec = (time_t)(next / 1000000);
    ts.tv_nsec = (long)(next % 1000000) * 1000;
    pthread_mutex_lock(&q->lock);
    while (!q->wake && !q->stop && !q->flush && q->nflush_domains == 0) {
        if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&q->lock);
}

static void *
qmgr_main(void *arg)
{
    qmgr_t *q = arg;
    struct qmgr_act_group *group;
    struct qmgr_due due;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role("qmgr");
    due.ids = mem_calloc(QMGR_SCAN_MAX, QUEUE_ID_SIZE);
    due.when = mem_calloc(QMGR_SCAN_MAX, sizeof(int64_t));
    group = mem_calloc(1, sizeof(*group));
    pthread_mutex_init(&group->lock, NULL);
    pthread_cond_init(&group->cond, NULL);
    store_foreach(q->store, qmgr_recover_one, q);
    while (!__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        config_t *cfg = config_current();
        int64_t now = clock_wall_us();
        char **domains;
        size_t ndomains;
        size_t cached;
        size_t i;
        int flush;

        pthread_mutex_lock(&q->lock);
        flush = q->flush;
        domains = q->flush_domains;
        ndomains = q->nflush_domains;
        q->flush_domains = NULL;
        q->nflush_domains = 0;
        q->flush = 0;
        q->wake = 0;
        pthread_mutex_unlock(&q->lock);
        qmgr_retry_run(q);
        qmgr_do_flush(q, flush, domains, ndomains);
        for (i = 0; i < ndomains; i++)
            free(domains[i]);
        free(domains);
        cached = smtp_cache_expire(
            q->cache, (int)config_num(cfg, P_SMTP_CONNECTION_CACHE_TIME_LIMIT));
        due.n = 0;
        store_scan_due(q->store, now, QMGR_SCAN_MAX, qmgr_collect, &due);
        for (i = 0; i < due.n && !__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
             i++)
            if (qmgr_activate(q, cfg, group, due.ids[i], due.when[i]) < 0)
                break;
        qmgr_act_flush(q, cfg, group);
        config_unref(&cfg);
        if (due.n == QMGR_SCAN_MAX)
            continue;
        qmgr_sleep(q, now, cached > 0);
    }
    free(due.ids);
    free(due.when);
    pthread_mutex_destroy(&group->lock);
    pthread_cond_destroy(&group->cond);
    free(group);
    return NULL;
}

/* Values of the delivery parameters that lib/config cannot judge. */
static void
qmgr_check(const config_t *cfg, enum param_id id, buf_t *err)
{
    const char *v = config_str(cfg, id);
    char transport[QMGR_NAME_MAX];
    char host[256];
    int port;
    int mx;

    switch (id) {
    case P_SMTP_TLS_SECURITY_LEVEL:
        if (v[0] && strcmp(v, "none") && strcmp(v, "may") &&
            strcmp(v, "encrypt") && strcmp(v, "verify") &&
            strcmp(v, "secure"))
            buf_printf(err, "\"%s\" is not none, may, encrypt, verify or "
                            "secure\n",
                       v);
        break;
    case P_RELAYHOST:
        if (v[0] && smtp_parse_nexthop(v, 25, host, sizeof(host), &port,
                                       &mx) < 0)
            buf_printf(err, "\"%s\" is not host, host:port, [host] or "
                            "[host]:port\n",
                       v);
        break;
    case P_DEFAULT_TRANSPORT:
    case P_LOCAL_TRANSPORT:
    case P_VIRTUAL_TRANSPORT:
    case P_RELAY_TRANSPORT:
    case P_CONTENT_FILTER:
        if (id == P_CONTENT_FILTER && v[0] == '\0')
            break;
        snprintf(transport, sizeof(transport), "%.*s",
                 (int)strcspn(v, ":"), v);
        if (qmgr_find_transport(transport) == NULL)
            buf_printf(err, "unknown transport \"%s\" (smtp, relay, lmtp, "
                            "local, virtual, error, retry, discard)\n",
                       transport);
        break;
    case P_MAILBOX_TRANSPORT:
        snprintf(transport, sizeof(transport), "%.*s",
                 (int)strcspn(v, ":"), v);
        if (v[0] && strcmp(transport, "lmtp") != 0 &&
            strcmp(transport, "smtp") != 0)
            buf_printf(err, "\"%s\" is not lmtp:... or smtp:...\n", v);
        break;
    default:
        break;
    }
}

void
qmgr_register(void)
{
    config_register_check(P_SMTP_TLS_SECURITY_LEVEL, qmgr_check);
    config_register_check(P_RELAYHOST, qmgr_check);
    config_register_check(P_DEFAULT_TRANSPORT, qmgr_check);
    config_register_check(P_LOCAL_TRANSPORT, qmgr_check);
    config_register_check(P_VIRTUAL_TRANSPORT, qmgr_check);
    config_register_check(P_RELAY_TRANSPORT, qmgr_check);
    config_register_check(P_MAILBOX_TRANSPORT, qmgr_check);
    config_register_check(P_CONTENT_FILTER, qmgr_check);
}

qmgr_t *
qmgr_start(store_t *store, int threads)
{
    qmgr_t *q = mem_calloc(1, sizeof(*q));
    pthread_condattr_t ca;
    int err;

    q->store = store;
    q->threads = threads < 1 ? 1 : threads;
    q->cache = smtp_cache_new();
    pthread_mutex_init(&q->lock, NULL);
    pthread_rwlock_init(&q->cleanup_lock, NULL);
    /* Deadlines are wall-clock times, as the schedule keys are. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->pool = pool_new("delivery", q->threads, (size_t)q->threads * 2 + 8,
                       qmgr_run, q);
    err = pthread_create(&q->thread, NULL, qmgr_main, q);
    if (err != 0)
        msg_fatal("cannot start qmgr thread: %s", strerror(err));
    return q;
}

void
qmgr_set_cleanup(qmgr_t *q, cleanup_t *cleanup)
{
    pthread_rwlock_wrlock(&q->cleanup_lock);
    q->cleanup = cleanup;
    pthread_rwlock_unlock(&q->cleanup_lock);
}

static void
qmgr_signal(qmgr_t *q, int flush)
{
    pthread_mutex_lock(&q->lock);
    q->wake = 1;
    if (flush)
        q->flush = 1;
    pthread_cond_broadcast(&q->cond);
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
qmgr_flush_domain(qmgr_t *q, const char *domain)
{
    pthread_mutex_lock(&q->lock);
    q->flush_domains = mem_reallocarray(q->flush_domains,
                                        q->nflush_domains + 1,
                                        sizeof(char *));
    q->flush_domains[q->nflush_domains++] = mem_strdup(domain);
    q->wake = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* Hand back every entry still waiting on a destination. */
static void
qmgr_drain(qmgr_t *q)
{
    config_t *cfg = config_current();

    for (;;) {
        struct qmgr_entry *e = NULL;
        size_t h;

        pthread_mutex_lock(&q->lock);
        for (h = 0; h < QMGR_HASH_SIZE && e == NULL; h++) {
            struct qmgr_dest *d;

            for (d = q->hash[h]; d && e == NULL; d = d->hnext)
                e = qmgr_dest_pop(d);
        }
        pthread_mutex_unlock(&q->lock);
        if (e == NULL)
            break;
        qmgr_entry_done(q, cfg, e, 0, 0, NULL);
    }
    config_unref(&cfg);
}

void
qmgr_stop(qmgr_t **qp)
{
    qmgr_t *q = qp ? *qp : NULL;
    size_t h;

    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_mutex_lock(&q->lock);
    q->draining = 1;
    pthread_mutex_unlock(&q->lock);
    pool_stop(&q->pool, qmgr_drop);
    qmgr_drain(q);
    qmgr_retry_run(q);
    while (q->retries != NULL) {
        /* Still active on disk: the next start delivers them again. */
        struct qmgr_retry *r = q->retries;

        q->retries = r->next;
        msg_warn("%s: queue not updated; it is tried again at the next "
                 "start",
                 r->env->id);
        envelope_free(&r->env);
        free(r);
    }
    for (h = 0; h < QMGR_HASH_SIZE; h++) {
        while (q->hash[h]) {
            struct qmgr_dest *d = q->hash[h];

            d->dead_until = 0;
            qmgr_dest_free_if_idle(q, d);
            if (q->hash[h] == d)
                break; /* still busy: a bug, but do not spin */
        }
    }
    for (h = 0; h < q->nflush_domains; h++)
        free(q->flush_domains[h]);
    free(q->flush_domains);
    smtp_cache_free(&q->cache);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    pthread_rwlock_destroy(&q->cleanup_lock);
    free(q);
    *qp = NULL;
}

size_t
qmgr_busy(qmgr_t *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->nmsgs;
    pthread_mutex_unlock(&q->lock);
    return n;
}
