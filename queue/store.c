/* SPDX-License-Identifier: ISC */
/*
 * store: the queue database and its commit queue.
 *
 * The database has five column families (queue/README gives the formats):
 * default holds "last_id", meta the envelopes, body the message content
 * (in blob files once a value reaches STORE_BLOB_MIN bytes, so that large
 * messages are not rewritten by every compaction), sched the due times,
 * and corrupt the records that would not decode.
 *
 * Writers build a store_batch, a list of puts and deletes, on their own
 * thread, and hand it to the commit queue.  One committer thread takes
 * every batch that is waiting, never pausing to let more arrive, turns
 * them into one RocksDB write batch with a put of last_id if they enqueue
 * a greater ID than the one recorded, and writes it with a synced WAL.
 * Then it runs each batch's completion in the order the batches were
 * queued, with the same status for all of them.  So:
 *   - batches are applied in the order they were queued, and each one
 *     atomically: a crash leaves all of a batch or none of it;
 *   - a completion with status 0 means the batch is on disk;
 *   - concurrent writers share one fsync, and the more of them wait the
 *     more each fsync carries.
 * Completions run on the committer thread: they must be short and must
 * not call store_commit(), which would wait for the committer itself.
 *
 * After a failed write (a full or read-only file system, an I/O error)
 * RocksDB records a background error and refuses every later write until
 * the database is reopened, and its C API has no Resume().  So the
 * committer closes and reopens the database itself: at once after the
 * failure, then every STORE_REOPEN_INTERVAL seconds for as long as the
 * open fails, whether or not batches arrive.  Readers hold dblock (shared)
 * while they use the database; the committer takes it exclusively to
 * swap the handles, but waits at most STORE_REOPEN_WAIT for it, because a
 * reader may itself be waiting for a commit (store_foreach callbacks
 * commit).  Until the reopen succeeds every batch fails with the reason
 * and store_healthy() says so, for smtpd to refuse mail at MAIL rather
 * than after DATA; reads are served by the database opened read-only
 * meanwhile (or find nothing, if even that fails).  Reopening loses
 * nothing: the WAL holds every write that succeeded, and the recovery at
 * open flushes it to table files before taking new writes.
 *
 * The queue is bounded by the bytes it holds (STORE_QUEUE_MAX): a writer
 * that would pass the bound waits until the committer takes the queue,
 * and the wait is logged.  Reads (store_get_*, store_scan_due,
 * store_foreach) go straight to RocksDB and are safe from any thread.
 *
 * The WAL is replayed in point-in-time mode.  Every commit waits for its
 * fsync before anyone is told it succeeded, and WAL records are appended
 * in order, so every acknowledged batch lies before any torn record that
 * a crash can leave at the tail.  Point-in-time recovery keeps everything
 * up to the first bad record and drops the rest: what it drops was never
 * acknowledged.  Absolute consistency would refuse to open after such a
 * crash, and skipping bad records could apply a later batch without an
 * earlier one.
 */
#include "autoconf.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

enum store_cf {
    STORE_CF_DEFAULT,
    STORE_CF_META,
    STORE_CF_BODY,
    STORE_CF_SCHED,
    STORE_CF_CORRUPT,
    STORE_NCF,
};

static const char *const store_cf_names[STORE_NCF] = {
    "default", "meta", "body", "sched", "corrupt",
};

#define STORE_LAST_ID_KEY "last_id"
#define STORE_SCHED_KEY_LEN (8 + QUEUE_ID_LEN)
#define STORE_BLOB_MIN 4096
#define STORE_BLOB_FILE_SIZE (64 * 1024 * 1024)
#define STORE_QUEUE_MAX ((size_t)256 * 1024 * 1024)
#define STORE_WARN_INTERVAL 60
#define STORE_REOPEN_INTERVAL 1
#define STORE_REOPEN_WAIT_MS 200
#define STORE_LOG_HEADER_LEVEL 5 /* rocksdb::InfoLogLevel::HEADER_LEVEL */

struct store_op {
    enum store_cf cf;
    int del;
    char *key;
    size_t klen;
    char *val; /* NULL for a delete */
    size_t vlen;
};

/* A condition on a batch: the envelope of id is in state with its sched
 * key at sched_us when the batch is written. */
struct store_expect {
    char id[QUEUE_ID_SIZE];
    enum queue_state state;
    int64_t sched_us;
};

struct store_batch {
    struct store_op *ops;
    size_t nops;
    size_t cap;
    struct store_expect *expect;
    size_t nexpect;
    int conflict;       /* a condition failed: nothing of it is written */
    size_t bytes;       /* keys and values, for the queue bound */
    uint64_t max_id_us; /* greatest ID enqueued here, 0 for none */
    store_done_fn done;
    void *arg;
    store_batch_t *next;
};

struct store {
    char *dir;
    pthread_rwlock_t dblock; /* readers share it; a reopen excludes them */
    rocksdb_t *db;           /* read-only or NULL while reopens fail */
    rocksdb_options_t *dbopt;
    rocksdb_options_t *cfopt[STORE_NCF];
    rocksdb_column_family_handle_t *cf[STORE_NCF];
    rocksdb_writeoptions_t *wopt;
    rocksdb_readoptions_t *ropt;

    pthread_t committer;
    pthread_mutex_t lock;
    pthread_cond_t work; /* the committer waits here for batches */
    pthread_cond_t room; /* writers wait here when the queue is full */
    store_batch_t *head; /* the commit queue, oldest first */
    store_batch_t **tail;
    size_t queued_bytes;
    time_t warned;
    int stopping;
    uint64_t last_us; /* time of the recorded last_id */

    /* The committer's view of a failed database, under lock. */
    int broken;        /* a write failed: reopen before the next one */
    char *broken_why;  /* what the last failure said */
    time_t reopen_at;  /* no reopen attempt before this time */
    time_t broken_log; /* when the last failure to reopen was logged */
};

static int store_get_raw(store_t *s, enum store_cf cf, const char *key,
                         buf_t *out, char **err);
static int store_open_db(store_t *s, int readonly, char **err);
static void store_close_db(store_t *s);
static envelope_t *store_decode(const char *id, const char *data, size_t len,
                                char *why, size_t whylen);

/* What store_commit() waits on; it lives on the waiter's stack and is
 * only touched under the store's lock. */
struct store_waiter {
    store_t *s;
    pthread_cond_t cond;
    int done;
    int status;
    char *err;
};

static void
store_be64_put(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t
store_be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A sched key: 8 bytes of big-endian time, then the ID. */
static char *
store_sched_key(int64_t when_us, const char *id, size_t *klen)
{
    size_t idlen = strlen(id);
    char *key = mem_alloc(8 + idlen);

    store_be64_put((unsigned char *)key, (uint64_t)when_us);
    memcpy(key + 8, id, idlen);
    *klen = 8 + idlen;
    return key;
}

/*
 * Batches.
 */

/* A new empty batch. */
store_batch_t *
store_batch_new(void)
{
    return mem_calloc(1, sizeof(store_batch_t));
}

static void
store_batch_clear(store_batch_t *b)
{
    size_t i;

    for (i = 0; i < b->nops; i++) {
        free(b->ops[i].key);
        free(b->ops[i].val);
    }
    mem_freep(&b->ops);
    b->nops = 0;
    b->cap = 0;
    mem_freep(&b->expect);
    b->nexpect = 0;
}

/* Free a batch that was not committed; accepts NULL. */
void
store_batch_free(store_batch_t **bp)
{
    if (bp == NULL || *bp == NULL)
        return;
    store_batch_clear(*bp);
    mem_freep(bp);
}

/* Add an operation; the batch takes key and val. */
static void
store_batch_op(store_batch_t *b, enum store_cf cf, char *key, size_t klen,
               char *val, size_t vlen)
{
    struct store_op *op;

    if (b->nops == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->ops = mem_reallocarray(b->ops, b->cap, sizeof(*b->ops));
    }
    op = &b->ops[b->nops++];
    op->cf = cf;
    op->del = val == NULL;
    op->key = key;
    op->klen = klen;
    op->val = val;
    op->vlen = vlen;
    b->bytes += klen + vlen;
}

static void
store_batch_put_copy(store_batch_t *b, enum store_cf cf, const char *key,
                     const char *val, size_t vlen)
{
    char *v = mem_alloc(vlen);

    if (vlen)
        memcpy(v, val, vlen);
    store_batch_op(b, cf, mem_strdup(key), strlen(key), v, vlen);
}

static void
store_batch_delete(store_batch_t *b, enum store_cf cf, const char *key)
{
    store_batch_op(b, cf, mem_strdup(key), strlen(key), NULL, 0);
}

static void
store_batch_sched(store_batch_t *b, int64_t when_us, const char *id, int del)
{
    size_t klen;
    char *key = store_sched_key(when_us, id, &klen);

    store_batch_op(b, STORE_CF_SCHED, key, klen, del ? NULL : mem_alloc(1), 0);
}

static void
store_batch_put_envelope(store_batch_t *b, const envelope_t *env)
{
    size_t len;
    char *text = envelope_encode(env, &len);

    store_batch_op(b, STORE_CF_META, mem_strdup(env->id), QUEUE_ID_LEN, text,
                   len);
}

static void
store_batch_check_id(const char *id, const char *what)
{
    if (!queue_id_valid(id))
        msg_panic("%s: bad queue ID \"%.16s\"", what, id);
}

/* Add a message: envelope, content and, when due, its sched key. */
void
store_batch_enqueue(store_batch_t *b, envelope_t *env, const char *body,
                    size_t len)
{
    uint64_t us;

    store_batch_check_id(env->id, "store_batch_enqueue");
    queue_id_decode(env->id, &us);
    if (us > b->max_id_us)
        b->max_id_us = us;

    /* Mail that is not yet deferred is due at once; its key takes the
     * arrival time, so new mail is taken in arrival order.  0 means "no
     * key" in sched_us, hence the floor of 1. */
    env->sched_us = 0;
    if (env->state == QS_INCOMING || env->state == QS_DEFERRED) {
        env->sched_us = env->next_us > 0 ? env->next_us : env->arrival_us;
        if (env->sched_us <= 0)
            env->sched_us = 1;
        store_batch_sched(b, env->sched_us, env->id, 0);
    }
    store_batch_put_envelope(b, env);
    store_batch_put_copy(b, STORE_CF_BODY, env->id, body, len);
}

/* Make the batch conditional on id's envelope being in state with its
 * sched key at sched_us. */
void
store_batch_expect(store_batch_t *b, const char *id, enum queue_state state,
                   int64_t sched_us)
{
    struct store_expect *e;

    store_batch_check_id(id, "store_batch_expect");
    b->expect = mem_reallocarray(b->expect, b->nexpect + 1, sizeof(*e));
    e = &b->expect[b->nexpect++];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->state = state;
    e->sched_us = sched_us;
}

/* Rewrite the envelope and move its sched key to next_us (none if 0). */
void
store_batch_update(store_batch_t *b, envelope_t *env, int64_t next_us)
{
    store_batch_check_id(env->id, "store_batch_update");

    /* The delete goes first, so that a key at the same time survives. */
    if (env->sched_us > 0)
        store_batch_sched(b, env->sched_us, env->id, 1);
    env->sched_us = next_us > 0 ? next_us : 0;
    if (env->sched_us > 0)
        store_batch_sched(b, env->sched_us, env->id, 0);
    store_batch_put_envelope(b, env);
}

/* Delete the envelope, the content and the sched key of a message. */
void
store_batch_remove(store_batch_t *b, const envelope_t *env)
{
    store_batch_check_id(env->id, "store_batch_remove");
    if (env->sched_us > 0)
        store_batch_sched(b, env->sched_us, env->id, 1);
    store_batch_delete(b, STORE_CF_META, env->id);
    store_batch_delete(b, STORE_CF_BODY, env->id);
}

/* Move an undecodable envelope record to the corrupt family. */
void
store_batch_corrupt(store_batch_t *b, const char *id, const char *raw,
                    size_t len, int64_t sched_us)
{
    /* id came from a damaged record and need not be a valid queue ID;
     * it is used as a key, byte for byte. */
    store_batch_put_copy(b, STORE_CF_CORRUPT, id, raw, len);
    store_batch_delete(b, STORE_CF_META, id);
    if (sched_us > 0)
        store_batch_sched(b, sched_us, id, 1);
}

/* Delete one sched key whose message is gone or no longer scheduled. */
void
store_batch_unschedule(store_batch_t *b, const char *id, int64_t sched_us)
{
    if (sched_us > 0)
        store_batch_sched(b, sched_us, id, 1);
}

/*
 * The committer.
 */

/* The envelopes earlier batches of one write change, for conditions. */
struct store_touched {
    char (*ids)[QUEUE_ID_SIZE];
    size_t n;
    size_t cap;
};

/* Nonzero if every condition of b holds.  Runs on the committer, the
 * only writer, so what it reads stays true until the write; an envelope
 * that an earlier batch of the same write changes counts as changed. */
static int
store_expect_holds(store_t *s, const store_batch_t *b,
                   const struct store_touched *t)
{
    const struct store_expect *e;
    envelope_t *env;
    char why[256];
    size_t i;
    size_t j;
    buf_t val;
    int ok;

    for (i = 0; i < b->nexpect; i++) {
        e = &b->expect[i];
        for (j = 0; j < t->n; j++)
            if (strcmp(t->ids[j], e->id) == 0)
                return 0;
        buf_init(&val);
        env = NULL;
        if (store_get_raw(s, STORE_CF_META, e->id, &val, NULL) == 1)
            env = store_decode(e->id, val.data, val.len, why, sizeof(why));
        ok = env != NULL && env->state == e->state &&
             env->sched_us == e->sched_us;
        envelope_free(&env);
        buf_free(&val);
        if (!ok)
            return 0;
    }
    return 1;
}

static void
store_touch(struct store_touched *t, const struct store_op *op)
{
    if (op->cf != STORE_CF_META || op->klen != QUEUE_ID_LEN)
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->ids = mem_reallocarray(t->ids, t->cap, QUEUE_ID_SIZE);
    }
    memcpy(t->ids[t->n], op->key, QUEUE_ID_LEN);
    t->ids[t->n++][QUEUE_ID_LEN] = '\0';
}

/* Move every op of the batches in list into one write batch, freeing the
 * values as they are copied so that large bodies are not held twice.  A
 * batch whose condition fails is left out and marked.  Returns the
 * greatest ID enqueued. */
static uint64_t
store_build(store_t *s, store_batch_t *list, rocksdb_writebatch_t *wb)
{
    struct store_touched touched = {NULL, 0, 0};
    uint64_t max_us = 0;
    store_batch_t *b;
    struct store_op *op;
    size_t i;

    for (b = list; b != NULL; b = b->next) {
        if (b->nexpect > 0 && !store_expect_holds(s, b, &touched)) {
            b->conflict = 1;
            store_batch_clear(b);
            continue;
        }
        for (i = 0; i < b->nops; i++) {
            op = &b->ops[i];
            if (op->del)
                rocksdb_writebatch_delete_cf(wb, s->cf[op->cf], op->key,
                                             op->klen);
            else
                rocksdb_writebatch_put_cf(wb, s->cf[op->cf], op->key, op->klen,
                                          op->val, op->vlen);
            mem_freep(&op->val);
            store_touch(&touched, op);
        }
        if (b->max_id_us > max_us)
            max_us = b->max_id_us;
        store_batch_clear(b);
    }
    free(touched.ids);
    return max_us;
}

/* Close and reopen the database after a failed write; on the committer.
 * Returns 0 once it is open and taking writes again. */
static int
store_reopen(store_t *s)
{
    struct timespec until;
    time_t now = time(NULL);
    char *err = NULL;
    int r;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += STORE_REOPEN_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    if (pthread_rwlock_timedwrlock(&s->dblock, &until) != 0) {
        /* A reader holds the database, perhaps while it waits for this
         * very thread; the broken handles serve reads meanwhile. */
        pthread_mutex_lock(&s->lock);
        s->reopen_at = now + STORE_REOPEN_INTERVAL;
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    store_close_db(s);
    if ((r = store_open_db(s, 0, &err)) < 0) {
        /* Keep the queue readable meanwhile, for the admin API and for
         * deliveries already under way. */
        char *roerr = NULL;

        if (store_open_db(s, 1, &roerr) < 0)
            free(roerr);
    }
    pthread_rwlock_unlock(&s->dblock);

    pthread_mutex_lock(&s->lock);
    if (r == 0) {
        s->broken = 0;
        mem_freep(&s->broken_why);
        s->broken_log = 0;
    } else {
        free(s->broken_why);
        s->broken_why = err;
        s->reopen_at = now + STORE_REOPEN_INTERVAL;
    }
    pthread_mutex_unlock(&s->lock);

    if (r == 0) {
        msg_info("queue: database %s reopened; taking writes again", s->dir);
    } else if (now - s->broken_log >= STORE_WARN_INTERVAL) {
        msg_warn("queue: %s; trying again every %d s", err,
                 STORE_REOPEN_INTERVAL);
        s->broken_log = now;
    }
    return r;
}

/* Complete every batch of list with status and err, and free them. */
static void
store_complete(store_batch_t *list, int status, const char *err)
{
    store_batch_t *b;

    while ((b = list) != NULL) {
        list = b->next;
        store_batch_clear(b);
        if (b->done != NULL && b->conflict)
            b->done(b->arg, -1, STORE_CONFLICT);
        else if (b->done != NULL)
            b->done(b->arg, status, err);
        free(b);
    }
}

/* Write the batches in list as one synced write and complete them. */
static void
store_write(store_t *s, store_batch_t *list)
{
    rocksdb_writebatch_t *wb;
    char id[QUEUE_ID_SIZE];
    char *rerr = NULL;
    char *why;
    uint64_t max_us;

    /* Only the committer changes broken and reopen_at, so it reads them
     * unlocked; the others read them under the lock. */
    if (s->broken && time(NULL) >= s->reopen_at)
        store_reopen(s);
    if (s->broken) {
        pthread_mutex_lock(&s->lock);
        why = mem_printf("queue database unavailable: %s", s->broken_why);
        pthread_mutex_unlock(&s->lock);
        store_complete(list, -1, why);
        free(why);
        return;
    }

    wb = rocksdb_writebatch_create();
    max_us = store_build(s, list, wb);

    /* Only the committer changes last_us, so reading it unlocked here is
     * safe; others read it under the lock. */
    if (max_us > s->last_us) {
        queue_id_encode(max_us, id);
        rocksdb_writebatch_put_cf(
            wb, s->cf[STORE_CF_DEFAULT], STORE_LAST_ID_KEY,
            sizeof(STORE_LAST_ID_KEY) - 1, id, QUEUE_ID_LEN);
    }
    rocksdb_write(s->db, s->wopt, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    if (rerr == NULL) {
        if (max_us > s->last_us) {
            pthread_mutex_lock(&s->lock);
            s->last_us = max_us;
            pthread_mutex_unlock(&s->lock);
        }
        store_complete(list, 0, NULL);
        return;
    }

    msg_warn("queue commit failed: %s", rerr);
    pthread_mutex_lock(&s->lock);
    s->broken = 1;
    free(s->broken_why);
    s->broken_why = mem_strdup(rerr);
    s->reopen_at = 0;
    pthread_mutex_unlock(&s->lock);
    store_complete(list, -1, rerr);
    rocksdb_free(rerr);
    store_reopen(s);
}

/* Wait for batches; while the database is broken, wake up to retry the
 * reopen even when none come.  Called and returns with s->lock held. */
static void
store_wait_work(store_t *s)
{
    struct timespec until;

    while (s->head == NULL && !s->stopping) {
        if (!s->broken) {
            pthread_cond_wait(&s->work, &s->lock);
            continue;
        }
        if (time(NULL) >= s->reopen_at) {
            pthread_mutex_unlock(&s->lock);
            store_reopen(s);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        until.tv_sec = s->reopen_at;
        until.tv_nsec = 0;
        pthread_cond_timedwait(&s->work, &s->lock, &until);
    }
}

static void *
store_committer(void *arg)
{
    store_t *s = arg;
    store_batch_t *list;

    log_set_role("queue");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        store_wait_work(s);
        if (s->head == NULL)
            break;

        /* Take the whole queue; whatever arrives meanwhile waits for the
         * next write. */
        list = s->head;
        s->head = NULL;
        s->tail = &s->head;
        s->queued_bytes = 0;
        pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->lock);

        store_write(s, list);

        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Queue b for the committer; done(arg, ...) runs once it is written. */
void
store_commit_async(store_t *s, store_batch_t *b, store_done_fn done, void *arg)
{
    time_t now;

    b->done = done;
    b->arg = arg;
    b->next = NULL;

    pthread_mutex_lock(&s->lock);
    if (s->stopping)
        msg_panic("store_commit_async: store is closing");

    /* A batch larger than the bound still goes into an empty queue.  The
     * committer never waits for room: it would wait for itself. */
    while (s->head != NULL && s->queued_bytes + b->bytes > STORE_QUEUE_MAX &&
           !pthread_equal(pthread_self(), s->committer)) {
        now = time(NULL);
        if (now - s->warned >= STORE_WARN_INTERVAL) {
            msg_warn("queue commit backlog exceeds %zu bytes; writers wait",
                     STORE_QUEUE_MAX);
            s->warned = now;
        }
        pthread_cond_wait(&s->room, &s->lock);
    }
    *s->tail = b;
    s->tail = &b->next;
    s->queued_bytes += b->bytes;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
}

static void
store_commit_done(void *arg, int status, const char *err)
{
    struct store_waiter *w = arg;

    pthread_mutex_lock(&w->s->lock);
    w->status = status;
    if (status != 0)
        w->err = mem_strdup(err ? err : "unknown error");
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->s->lock);
}

/* Commit b and wait until it is on disk; 0, or -1 with *err set. */
int
store_commit(store_t *s, store_batch_t *b, char **err)
{
    struct store_waiter w = {s, PTHREAD_COND_INITIALIZER, 0, 0, NULL};

    store_commit_async(s, b, store_commit_done, &w);
    pthread_mutex_lock(&s->lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    pthread_cond_destroy(&w.cond);

    if (w.status != 0) {
        if (err != NULL)
            *err = w.err;
        else
            free(w.err);
        return -1;
    }
    return 0;
}

/*
 * Opening and closing.
 */

static void
store_set_options(store_t *s)
{
    rocksdb_options_t *base = rocksdb_options_create();
    rocksdb_options_t *body;
    char *rerr = NULL;
    int i;

    /* Without fallocate: RocksDB would reserve 1.1 write buffers (70 MB)
     * beyond the end of each WAL, space that free-space checks do not see
     * as used and that a crash leaves reserved, so that on a small file
     * system the recovery itself runs out of room.  The C API sets the
     * option only through a string. */
    s->dbopt = rocksdb_options_create();
    rocksdb_get_options_from_string(base, "allow_fallocate=false", s->dbopt,
                                    &rerr);
    if (rerr != NULL)
        msg_panic("store_set_options: %s", rerr);
    rocksdb_options_destroy(base);
    rocksdb_options_set_create_if_missing(s->dbopt, 1);
    rocksdb_options_set_create_missing_column_families(s->dbopt, 1);
    rocksdb_options_set_wal_recovery_mode(s->dbopt,
                                          rocksdb_point_in_time_recovery);
    rocksdb_options_set_keep_log_file_num(s->dbopt, 10);
    /* RocksDB's LOG keeps only the header of each open (the options in
     * force).  A LOG write that fails for lack of space makes the next
     * one abort Debian's build, which keeps its assertions; errors reach
     * tern's own log through the status of each call instead. */
    rocksdb_options_set_info_log_level(s->dbopt, STORE_LOG_HEADER_LEVEL);

    for (i = 0; i < STORE_NCF; i++)
        s->cfopt[i] = rocksdb_options_create_copy(s->dbopt);

    /* Bodies of STORE_BLOB_MIN bytes or more go to blob files.  Garbage
     * collection rewrites the live blobs of old files during compaction;
     * without it one long-deferred message would keep a whole file of
     * delivered mail on disk. */
    body = s->cfopt[STORE_CF_BODY];
    rocksdb_options_set_enable_blob_files(body, 1);
    rocksdb_options_set_min_blob_size(body, STORE_BLOB_MIN);
    rocksdb_options_set_blob_file_size(body, STORE_BLOB_FILE_SIZE);
    rocksdb_options_set_enable_blob_gc(body, 1);

    s->wopt = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopt, 1);
    s->ropt = rocksdb_readoptions_create();
}

/* Open the database in s->dir with the options of s, for reading only
 * if readonly is set. */
static int
store_open_db(store_t *s, int readonly, char **err)
{
    const rocksdb_options_t *const *cfopt =
        (const rocksdb_options_t *const *)s->cfopt;
    char *rerr = NULL;

    if (readonly)
        s->db = rocksdb_open_for_read_only_column_families(
            s->dbopt, s->dir, STORE_NCF, store_cf_names, cfopt, s->cf, 0,
            &rerr);
    else
        s->db = rocksdb_open_column_families(s->dbopt, s->dir, STORE_NCF,
                                             store_cf_names, cfopt, s->cf,
                                             &rerr);
    if (rerr != NULL) {
        *err = mem_printf("open queue %s: %s", s->dir, rerr);
        rocksdb_free(rerr);
        s->db = NULL;
        memset(s->cf, 0, sizeof(s->cf));
        return -1;
    }
    return 0;
}

static void
store_close_db(store_t *s)
{
    int i;

    for (i = 0; i < STORE_NCF; i++) {
        if (s->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(s->cf[i]);
        s->cf[i] = NULL;
    }
    if (s->db != NULL)
        rocksdb_close(s->db);
    s->db = NULL;
}

static void
store_free(store_t *s)
{
    int i;

    store_close_db(s);
    for (i = 0; i < STORE_NCF; i++)
        if (s->cfopt[i] != NULL)
            rocksdb_options_destroy(s->cfopt[i]);
    if (s->dbopt != NULL)
        rocksdb_options_destroy(s->dbopt);
    if (s->wopt != NULL)
        rocksdb_writeoptions_destroy(s->wopt);
    if (s->ropt != NULL)
        rocksdb_readoptions_destroy(s->ropt);
    pthread_rwlock_destroy(&s->dblock);
    pthread_cond_destroy(&s->room);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->lock);
    free(s->broken_why);
    free(s->dir);
    free(s);
}

/* The database for a reader, with dblock held shared; NULL, and nothing
 * held, when not even a read-only open succeeded. */
static rocksdb_t *
store_rdlock(store_t *s)
{
    pthread_rwlock_rdlock(&s->dblock);
    if (s->db == NULL) {
        pthread_rwlock_unlock(&s->dblock);
        return NULL;
    }
    return s->db;
}

static void
store_rdunlock(store_t *s)
{
    pthread_rwlock_unlock(&s->dblock);
}

/* 1 if the database takes writes; else 0 with *why set (caller frees)
 * when why is not NULL. */
int
store_healthy(store_t *s, char **why)
{
    int ok;

    pthread_mutex_lock(&s->lock);
    ok = !s->broken;
    if (!ok && why != NULL)
        *why = mem_strdup(s->broken_why ? s->broken_why : "write failed");
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* The time of the greatest key of meta, or 0.  At open, before the
 * committer runs, so without dblock. */
static uint64_t
store_last_meta_us(store_t *s)
{
    rocksdb_iterator_t *it;
    const char *key;
    char id[QUEUE_ID_SIZE];
    uint64_t us = 0;
    size_t klen;

    it = rocksdb_create_iterator_cf(s->db, s->ropt, s->cf[STORE_CF_META]);
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it);
         rocksdb_iter_prev(it)) {
        key = rocksdb_iter_key(it, &klen);
        if (klen != QUEUE_ID_LEN)
            continue;
        memcpy(id, key, QUEUE_ID_LEN);
        id[QUEUE_ID_LEN] = '\0';
        if (queue_id_decode(id, &us))
            break;
    }
    rocksdb_iter_destroy(it);
    return us;
}

/* Read last_id and start the ID generator past it.  The greatest key in
 * meta counts too, in case last_id is damaged. */
static int
store_load_last_id(store_t *s, char **err)
{
    char id[QUEUE_ID_SIZE];
    uint64_t meta_us;
    buf_t val;
    int r;

    buf_init(&val);
    r = -1;
    switch (store_get_raw(s, STORE_CF_DEFAULT, STORE_LAST_ID_KEY, &val, err)) {
    case 1:
        if (val.len == QUEUE_ID_LEN) {
            memcpy(id, val.data, QUEUE_ID_SIZE);
            if (queue_id_decode(id, &s->last_us)) {
                r = 0;
                break;
            }
        }
        msg_warn("queue: malformed last_id record; using the newest"
                 " envelope instead");
        r = 0;
        break;
    case 0:
        r = 0;
        break;
    }
    buf_free(&val);
    if (r < 0)
        return -1;

    meta_us = store_last_meta_us(s);
    if (meta_us > s->last_us)
        s->last_us = meta_us;
    queue_id_floor(s->last_us);
    return 0;
}

static int
store_start(store_t *s, char **err)
{
    sigset_t all;
    sigset_t old;
    int e;

    /* The committer takes no signals: they belong to the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&s->committer, NULL, store_committer, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        *err = mem_printf("cannot start the queue committer: %s", strerror(e));
        return -1;
    }
    return 0;
}

/* Open or create the queue in dir and start the committer. */
store_t *
store_open(const char *dir, char **err)
{
    store_t *s = mem_calloc(1, sizeof(*s));

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->room, NULL);
    pthread_rwlock_init(&s->dblock, NULL);
    s->tail = &s->head;
    s->dir = mem_strdup(dir);

    store_set_options(s);
    if (store_open_db(s, 0, err) < 0 || store_load_last_id(s, err) < 0 ||
        store_start(s, err) < 0) {
        store_free(s);
        return NULL;
    }
    return s;
}

/* Drain the commit queue, stop the committer and close the database. */
void
store_close(store_t **sp)
{
    store_t *s;

    if (sp == NULL || (s = *sp) == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->committer, NULL);
    store_free(s);
    *sp = NULL;
}

/*
 * Reading.
 */

/* Append the value of key in cf to out; 1, 0 if absent, -1 with *err. */
static int
store_get_raw(store_t *s, enum store_cf cf, const char *key, buf_t *out,
              char **err)
{
    rocksdb_pinnableslice_t *ps;
    rocksdb_t *db;
    const char *v;
    char *rerr = NULL;
    size_t vlen;

    if ((db = store_rdlock(s)) == NULL) {
        if (err != NULL)
            *err = mem_printf("read %s %s: queue database unavailable",
                              store_cf_names[cf], key);
        return -1;
    }
    ps = rocksdb_get_pinned_cf(db, s->ropt, s->cf[cf], key, strlen(key),
                               &rerr);
    if (rerr != NULL) {
        store_rdunlock(s);
        if (err != NULL)
            *err = mem_printf("read %s %s: %s", store_cf_names[cf], key, rerr);
        rocksdb_free(rerr);
        rocksdb_pinnableslice_destroy(ps);
        return -1;
    }
    if (ps != NULL) {
        /* The slice may point into the database's own memory. */
        v = rocksdb_pinnableslice_value(ps, &vlen);
        buf_append(out, v, vlen);
        rocksdb_pinnableslice_destroy(ps);
    }
    store_rdunlock(s);
    return ps != NULL;
}

/* Decode a meta record and check that it names the key it is under. */
static envelope_t *
store_decode(const char *id, const char *data, size_t len, char *why,
             size_t whylen)
{
    envelope_t *env = envelope_decode(data, len, why, whylen);

    if (env != NULL && strcmp(env->id, id) != 0) {
        snprintf(why, whylen, "record holds ID %s", env->id);
        envelope_free(&env);
    }
    return env;
}

/* Read a message's envelope: 1, 0 if absent, -1, or -2 if undecodable. */
int
store_get_envelope(store_t *s, const char *id, envelope_t **envp, buf_t *raw,
                   char **err)
{
    char why[256];
    buf_t val;
    int r;

    *envp = NULL;
    buf_init(&val);
    if ((r = store_get_raw(s, STORE_CF_META, id, &val, err)) == 1) {
        *envp = store_decode(id, val.data, val.len, why, sizeof(why));
        if (*envp == NULL) {
            if (raw != NULL)
                buf_append(raw, val.data, val.len);
            if (err != NULL)
                *err = mem_strdup(why);
            r = -2;
        }
    }
    buf_free(&val);
    return r;
}

/* Append a message's content to out: 1, 0 if absent, -1 on error. */
int
store_get_body(store_t *s, const char *id, buf_t *out)
{
    char *err = NULL;
    int r;

    if ((r = store_get_raw(s, STORE_CF_BODY, id, out, &err)) < 0) {
        msg_warn("%s: %s", id, err);
        free(err);
    }
    return r;
}

static rocksdb_iterator_t *
store_iter_sched(store_t *s, rocksdb_t *db, rocksdb_readoptions_t *ro)
{
    rocksdb_iterator_t *it;

    it = rocksdb_create_iterator_cf(db, ro, s->cf[STORE_CF_SCHED]);
    rocksdb_iter_seek_to_first(it);
    return it;
}

/* Split a sched key; 0 and warns if it is not one this store wrote. */
static int
store_sched_split(const char *key, size_t klen, int64_t *when_us,
                  char id[QUEUE_ID_SIZE])
{
    uint64_t t;

    if (klen == STORE_SCHED_KEY_LEN) {
        t = store_be64_get((const unsigned char *)key);
        memcpy(id, key + 8, QUEUE_ID_LEN);
        id[QUEUE_ID_LEN] = '\0';
        if (t <= INT64_MAX && queue_id_valid(id)) {
            *when_us = (int64_t)t;
            return 1;
        }
    }
    /* XXX Such a key is reported on every scan and never removed, since
     * no batch operation can name it.  A repair command that deletes
     * sched keys without a matching envelope would clear it. */
    msg_warn("queue: skipping malformed sched key of %zu bytes", klen);
    return 0;
}

static void
store_iter_check(rocksdb_iterator_t *it, const char *what)
{
    char *rerr = NULL;

    rocksdb_iter_get_error(it, &rerr);
    if (rerr != NULL) {
        msg_warn("queue: %s: %s", what, rerr);
        rocksdb_free(rerr);
    }
}

/* Visit sched entries due by now_us in time order, at most max. */
size_t
store_scan_due(store_t *s, int64_t now_us, size_t max,
               int (*fn)(void *arg, const char *id, int64_t sched_us),
               void *arg)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    rocksdb_t *db;
    unsigned char bound[8];
    char id[QUEUE_ID_SIZE];
    const char *key;
    int64_t when;
    size_t klen;
    size_t n = 0;

    if (max == 0 || now_us < 0 || (db = store_rdlock(s)) == NULL)
        return 0;

    /* Every key at or before now_us sorts below the 8-byte time that
     * follows it, whatever ID comes after its own time. */
    ro = rocksdb_readoptions_create();
    if (now_us < INT64_MAX) {
        store_be64_put(bound, (uint64_t)now_us + 1);
        rocksdb_readoptions_set_iterate_upper_bound(ro, (char *)bound, 8);
    }
    for (it = store_iter_sched(s, db, ro); rocksdb_iter_valid(it) && n < max;
         rocksdb_iter_next(it)) {
        key = rocksdb_iter_key(it, &klen);
        if (!store_sched_split(key, klen, &when, id))
            continue;
        n++;
        if (fn(arg, id, when))
            break;
    }
    store_iter_check(it, "scan sched");
    rocksdb_iter_destroy(it);
    store_rdunlock(s);
    rocksdb_readoptions_destroy(ro);
    return n;
}

/* Time of the earliest sched entry: 1 and *when_us set, or 0 if none. */
int
store_next_due(store_t *s, int64_t *when_us)
{
    rocksdb_iterator_t *it;
    rocksdb_t *db;
    char id[QUEUE_ID_SIZE];
    const char *key;
    size_t klen;
    int found = 0;

    if ((db = store_rdlock(s)) == NULL)
        return 0;
    for (it = store_iter_sched(s, db, s->ropt); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        key = rocksdb_iter_key(it, &klen);
        if ((found = store_sched_split(key, klen, when_us, id)))
            break;
    }
    store_iter_check(it, "scan sched");
    rocksdb_iter_destroy(it);
    store_rdunlock(s);
    return found;
}

/* Visit every envelope record of one snapshot in ID order.  fn borrows
 * env and raw: both are freed when it returns. */
void
store_foreach(store_t *s,
              int (*fn)(void *arg, const char *id, envelope_t *env,
                        const char *raw, size_t rawlen),
              void *arg)
{
    /* One page without a limit is the whole queue, from one snapshot. */
    (void)store_page(s, NULL, (size_t)-1, fn, arg);
}

/* Visit the raw envelope records of one snapshot. */
void
store_foreach_raw(store_t *s,
                  int (*fn)(void *arg, const char *key, size_t klen,
                            const char *val, size_t vlen),
                  void *arg)
{
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    rocksdb_t *db;
    const char *key;
    const char *val;
    size_t klen;
    size_t vlen;
    int stop = 0;

    if ((db = store_rdlock(s)) == NULL)
        return;
    snap = rocksdb_create_snapshot(db);
    ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    it = rocksdb_create_iterator_cf(db, ro, s->cf[STORE_CF_META]);
    for (rocksdb_iter_seek_to_first(it); !stop && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        key = rocksdb_iter_key(it, &klen);
        val = rocksdb_iter_value(it, &vlen);
        stop = fn(arg, key, klen, val, vlen);
    }
    store_iter_check(it, "scan meta");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(db, snap);
    store_rdunlock(s);
}

/* Visit at most max envelope records after `after`, from one snapshot,
 * for listings that go page by page: each page is consistent in itself,
 * and since IDs only grow, a message present from the first page to the
 * last is seen exactly once. */
int
store_page(store_t *s, const char *after, size_t max,
           int (*fn)(void *arg, const char *id, envelope_t *env,
                     const char *raw, size_t rawlen),
           void *arg)
{
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    rocksdb_t *db;
    envelope_t *env;
    const char *key;
    const char *val;
    char why[256];
    char *id;
    size_t klen;
    size_t vlen;
    size_t n = 0;
    int stop = 0;
    int more;

    if ((db = store_rdlock(s)) == NULL)
        return 0;
    snap = rocksdb_create_snapshot(db);
    ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    it = rocksdb_create_iterator_cf(db, ro, s->cf[STORE_CF_META]);
    if (after != NULL && after[0] != '\0') {
        rocksdb_iter_seek(it, after, strlen(after));
        key = rocksdb_iter_valid(it) ? rocksdb_iter_key(it, &klen) : NULL;
        if (key != NULL && klen == strlen(after) &&
            memcmp(key, after, klen) == 0)
            rocksdb_iter_next(it);
    } else {
        rocksdb_iter_seek_to_first(it);
    }
    for (; !stop && n < max && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        key = rocksdb_iter_key(it, &klen);
        val = rocksdb_iter_value(it, &vlen);
        id = mem_strndup(key, klen);
        env = store_decode(id, val, vlen, why, sizeof(why));
        stop = fn(arg, id, env, val, vlen);
        envelope_free(&env);
        free(id);
        n++;
    }
    more = rocksdb_iter_valid(it);
    store_iter_check(it, "scan meta");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(db, snap);
    store_rdunlock(s);
    return more;
}

/* The time of the greatest queue ID committed, 0 if none. */
uint64_t
store_last_id_us(store_t *s)
{
    uint64_t us;

    pthread_mutex_lock(&s->lock);
    us = s->last_us;
    pthread_mutex_unlock(&s->lock);
    return us;
}
