/* SPDX-License-Identifier: ISC */
/*
 * queue_api: reading and changing the queue for the admin API.
 *
 * Listing reads one page from a snapshot of the meta column family, in
 * queue ID order, starting after the cursor (the last ID the previous
 * page read).  IDs only grow, so mail that arrives during a listing
 * comes at its end, and a message present throughout is listed once.
 *
 * A change reads the message's envelope as it is now, checks that the
 * change applies (409 if not: a message being delivered is left alone,
 * a message not on hold cannot be released), and commits the new
 * envelope in one batch on the condition (store_batch_expect) that the
 * envelope is still in the state and schedule it was read in.  The qmgr
 * takes messages off the schedule under the same kind of condition, so
 * of two writers that read the same envelope only the first to commit
 * wins, and the other reads again (a change) or leaves it (the qmgr).
 * A change that makes mail due wakes the qmgr.  Bulk changes walk a
 * snapshot and change each match the same way, one conditional batch a
 * message, committed in the background so that they share fsyncs.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin/census.h"
#include "admin/queue_api.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"

#define QUEUE_API_TRIES 3
#define QUEUE_API_MAX_HEADERS 1000

enum queue_api_op {
    QUEUE_OP_DELETE,
    QUEUE_OP_HOLD,
    QUEUE_OP_RELEASE,
    QUEUE_OP_REQUEUE,
};

static const char *const queue_api_op_names[] = {
    "delete", "hold", "release", "requeue",
};

/* What the log says, as postsuper says it. */
static const char *const queue_api_op_logs[] = {
    "removed", "placed on hold", "released from hold", "requeued",
};

/* RFC 3339 UTC time of us, or JSON null for 0. */
static json_t *
queue_api_time(int64_t us)
{
    char text[32];
    time_t t;
    struct tm tm;

    if (us <= 0)
        return json_null();
    t = (time_t)(us / 1000000);
    gmtime_r(&t, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

/* A JSON string, or null for NULL; invalid UTF-8 becomes null too. */
static json_t *
queue_api_str(const char *s)
{
    json_t *j;

    if (s == NULL)
        return json_null();
    j = json_string(s);
    return j ? j : json_null();
}

static void
queue_api_set(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL || json_object_set_new(obj, key, val) < 0)
        msg_fatal("out of memory building a JSON answer");
}

static json_t *
queue_api_rcpt_json(const envelope_t *env, const rcpt_t *rc)
{
    json_t *o = json_object();
    int pending = rc->state == RCPT_PENDING || rc->state == RCPT_DEFERRED;

    queue_api_set(o, "address", queue_api_str(rc->addr));
    queue_api_set(o, "state", json_string(rcpt_state_name(rc->state)));
    queue_api_set(o, "attempts", json_integer(rc->attempts));
    queue_api_set(o, "dsn", queue_api_str(rc->dsn));
    queue_api_set(o, "reason", queue_api_str(rc->reason));
    queue_api_set(o, "next_attempt",
                  pending && env->state == QS_DEFERRED
                      ? queue_api_time(env->next_us)
                      : json_null());
    return o;
}

json_t *
queue_api_message_json(const envelope_t *env)
{
    json_t *o = json_object();
    json_t *rcpts = json_array();
    size_t i;

    queue_api_set(o, "id", json_string(env->id));
    queue_api_set(o, "state", json_string(queue_state_name(env->state)));
    queue_api_set(o, "arrival_time", json_integer(env->arrival_us / 1000000));
    queue_api_set(o, "arrival", queue_api_time(env->arrival_us));
    queue_api_set(o, "size", json_integer(env->size));
    queue_api_set(o, "sender", queue_api_str(env->sender));
    queue_api_set(o, "attempts", json_integer(env->attempts));
    queue_api_set(o, "next_attempt",
                  env->state == QS_DEFERRED ? queue_api_time(env->next_us)
                                            : json_null());
    queue_api_set(o, "reason", queue_api_str(env->reason));
    for (i = 0; i < env->nrcpt; i++)
        json_array_append_new(rcpts,
                              queue_api_rcpt_json(env, &env->rcpts[i]));
    queue_api_set(o, "recipients", rcpts);
    return o;
}

/* A record that does not decode, as the listing shows it. */
static json_t *
queue_api_corrupt_json(const char *id, const char *why)
{
    return json_pack("{s:s,s:s,s:s}", "id", id, "state", "corrupt", "error",
                     why);
}

/*
 * Listing.
 */

struct queue_api_walk {
    filter_t *f;
    json_t *arr;
    size_t limit;
    size_t found;
    int64_t now_us;
    char last[QUEUE_ID_SIZE];
};

static int
queue_api_page_one(void *arg, const char *id, envelope_t *env,
                   const char *raw, size_t rawlen)
{
    struct queue_api_walk *w = arg;

    snprintf(w->last, sizeof(w->last), "%s", id);
    if (!filter_match(w->f, env, w->now_us))
        return 0;
    json_array_append_new(w->arr,
                          env ? queue_api_message_json(env)
                              : queue_api_corrupt_json(
                                    id, "the envelope record does not decode"));
    return ++w->found >= w->limit;
}

json_t *
queue_api_page(store_t *store, filter_t *f, const char *after, size_t limit,
               int64_t now_us)
{
    struct queue_api_walk w;
    int more;

    memset(&w, 0, sizeof(w));
    w.f = f;
    w.arr = json_array();
    w.limit = limit;
    w.now_us = now_us;
    more = store_page(store, after, QUEUE_API_SCAN_MAX, queue_api_page_one,
                      &w);
    return json_pack("{s:o,s:o}", "messages", w.arr, "next_cursor",
                     more && w.last[0] ? json_string(w.last) : json_null());
}

struct queue_api_query {
    http_req_t *r;
    filter_t *f;
    int failed;
};

int
queue_api_query_arg(http_req_t *r, filter_t *f, const char *name,
                    const char *value)
{
    char *why = NULL;

    if (strcmp(name, "limit") == 0 || strcmp(name, "cursor") == 0)
        return 0;
    if (!filter_known(name)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown_parameter",
                         name, "unknown query parameter \"%s\"", name);
        return -1;
    }
    if (filter_set(f, name, value, &why) < 0) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                         name, "%s: %s", name, why);
        free(why);
        return -1;
    }
    return 0;
}

static int
queue_api_query_one(void *arg, const char *name, const char *value)
{
    struct queue_api_query *q = arg;

    if (queue_api_query_arg(q->r, q->f, name, value) < 0) {
        q->failed = 1;
        return 1;
    }
    return 0;
}

int
queue_api_limit(http_req_t *r, const char *s, size_t *limit)
{
    char *end;
    unsigned long v;

    *limit = QUEUE_API_LIMIT_DEFAULT;
    if (s == NULL)
        return 0;
    v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || v < 1 ||
        v > QUEUE_API_LIMIT_MAX) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter", "limit",
                         "limit: expected a whole number from 1 to %d",
                         QUEUE_API_LIMIT_MAX);
        return -1;
    }
    *limit = v;
    return 0;
}

int
queue_api_cursor(http_req_t *r, const char *cursor)
{
    if (cursor != NULL && cursor[0] != '\0' && !queue_id_valid(cursor)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                         "cursor", "cursor: not one this server handed out");
        return -1;
    }
    return 0;
}

void
queue_api_list(http_req_t *r)
{
    struct queue_api_query q;
    const char *cursor = http_req_query(r, "cursor");
    size_t limit;

    q.r = r;
    q.f = filter_new();
    q.failed = 0;
    http_req_query_each(r, queue_api_query_one, &q);
    if (q.failed ||
        queue_api_limit(r, http_req_query(r, "limit"), &limit) < 0 ||
        queue_api_cursor(r, cursor) < 0)
        goto done;
    http_reply_json(r, MHD_HTTP_OK,
                    queue_api_page(http_req_hooks(r)->store, q.f, cursor,
                                   limit, clock_wall_us()));
done:
    filter_free(&q.f);
}

/*
 * One message.
 */

/* The {id} segment, checked; NULL after answering 400. */
static const char *
queue_api_id(http_req_t *r)
{
    const char *id = http_req_segment(r, 3);

    if (id == NULL || !queue_id_valid(id)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_id", "id",
                         "not a queue ID (%d letters and digits)",
                         QUEUE_ID_LEN);
        return NULL;
    }
    return id;
}

/* Read the envelope: 1, or 0 after answering (404, 409, 500). */
static int
queue_api_load(http_req_t *r, const char *id, envelope_t **envp,
               int allow_corrupt)
{
    char *err = NULL;
    int rc = store_get_envelope(http_req_hooks(r)->store, id, envp, NULL,
                                &err);

    if (rc == 1)
        return 1;
    if (rc == 0)
        http_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
                         "no message %s in the queue", id);
    else if (rc == -2 && allow_corrupt)
        rc = 2;
    else if (rc == -2)
        http_reply_error(r, MHD_HTTP_CONFLICT, "corrupt",
                         NULL, "%s: the envelope record does not decode: %s",
                         id, err ? err : "?");
    else
        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue_error",
                         NULL, "%s: %s", id, err ? err : "read error");
    free(err);
    return rc == 2 ? 2 : 0;
}

/* The header section of msg as [{"name","value"}]; folded lines keep
 * their line breaks. */
static json_t *
queue_api_headers(const char *msg, size_t len)
{
    json_t *arr = json_array();
    const char *p = msg;
    const char *end = msg + len;
    json_t *last = NULL;
    buf_t value;

    buf_init(&value);
    while (p < end && *p != '\n' && json_array_size(arr) < QUEUE_API_MAX_HEADERS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *colon;

        if ((*p == ' ' || *p == '\t') && last != NULL) {
            const char *prev = json_string_value(json_object_get(last,
                                                                 "value"));

            buf_reset(&value);
            buf_puts(&value, prev ? prev : "");
            buf_putc(&value, '\n');
            buf_append(&value, p, (size_t)(eol - p));
            json_object_set_new(last, "value",
                                queue_api_str(value.data));
        } else if ((colon = memchr(p, ':', (size_t)(eol - p))) != NULL) {
            const char *v = colon + 1;
            char *name = mem_strndup(p, (size_t)(colon - p));
            char *val;

            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            val = mem_strndup(v, (size_t)(eol - v));
            last = json_pack("{s:o,s:o}", "name", queue_api_str(name),
                             "value", queue_api_str(val));
            json_array_append_new(arr, last);
            free(name);
            free(val);
        }
        p = nl ? nl + 1 : end;
    }
    buf_free(&value);
    return arr;
}

void
queue_api_show(http_req_t *r)
{
    const char *id = queue_api_id(r);
    envelope_t *env = NULL;
    json_t *o;
    buf_t body;

    if (id == NULL || !queue_api_load(r, id, &env, 0))
        return;
    o = queue_api_message_json(env);
    queue_api_set(o, "client_name", queue_api_str(env->client_name));
    queue_api_set(o, "client_addr", queue_api_str(env->client_addr));
    queue_api_set(o, "helo", queue_api_str(env->helo));
    queue_api_set(o, "protocol", queue_api_str(env->protocol));
    queue_api_set(o, "sasl_user", queue_api_str(env->sasl_user));
    queue_api_set(o, "message_id", queue_api_str(env->message_id));
    queue_api_set(o, "envid", queue_api_str(env->envid));
    queue_api_set(o, "ret", json_string(env->ret == DSN_RET_FULL   ? "full"
                                        : env->ret == DSN_RET_HDRS ? "hdrs"
                                                                   : "default"));
    queue_api_set(o, "body_8bit", json_boolean(env->body_8bit));
    queue_api_set(o, "smtputf8", json_boolean(env->smtputf8));
    queue_api_set(o, "max_lifetime", json_integer(env->max_lifetime));
    queue_api_set(o, "bounce_lifetime", json_integer(env->bounce_lifetime));
    buf_init(&body);
    if (store_get_body(http_req_hooks(r)->store, id, &body) == 1)
        queue_api_set(o, "headers",
                      queue_api_headers(body.data ? body.data : "",
                                        body.len));
    else
        queue_api_set(o, "headers", json_array());
    buf_free(&body);
    envelope_free(&env);
    http_reply_json(r, MHD_HTTP_OK, o);
}

void
queue_api_message(http_req_t *r)
{
    const char *id = queue_api_id(r);
    buf_t body;
    size_t len;
    int rc;

    if (id == NULL)
        return;
    buf_init(&body);
    rc = store_get_body(http_req_hooks(r)->store, id, &body);
    if (rc == 1) {
        len = body.len;
        http_reply_raw(r, MHD_HTTP_OK, "message/rfc822", buf_steal(&body),
                       len);
        return;
    }
    buf_free(&body);
    if (rc == 0)
        http_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id",
                         "no message %s in the queue", id);
    else
        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue_error",
                         NULL, "%s: the content cannot be read", id);
}

/*
 * Changes.
 */

/* Put op's change to env into b.  Returns NULL, or why it does not
 * apply.  *due is set when the message becomes due. */
static const char *
queue_api_apply(enum queue_api_op op, envelope_t *env, store_batch_t *b,
                int64_t now_us, int *due)
{
    size_t i;

    if (env->state == QS_ACTIVE)
        return "the message is being delivered";
    switch (op) {
    case QUEUE_OP_DELETE:
        store_batch_remove(b, env);
        return NULL;
    case QUEUE_OP_HOLD:
        if (env->state == QS_HOLD)
            return "the message is already on hold";
        if (env->state == QS_CORRUPT)
            return "the message is corrupt";
        env->state = QS_HOLD;
        store_batch_update(b, env, 0);
        return NULL;
    case QUEUE_OP_RELEASE:
        if (env->state != QS_HOLD)
            return "the message is not on hold";
        env->state = env->attempts > 0 ? QS_DEFERRED : QS_INCOMING;
        env->next_us = now_us;
        store_batch_update(b, env, now_us);
        *due = 1;
        return NULL;
    case QUEUE_OP_REQUEUE:
        if (env->state == QS_CORRUPT)
            return "the message is corrupt";
        for (i = 0; i < env->nrcpt; i++)
            if (env->rcpts[i].state == RCPT_DEFERRED)
                env->rcpts[i].state = RCPT_PENDING;
        env->state = QS_INCOMING;
        env->next_us = now_us;
        store_batch_update(b, env, now_us);
        *due = 1;
        return NULL;
    }
    return "unknown operation";
}

static int
queue_api_op_parse(const char *name, enum queue_api_op *op)
{
    int i;

    for (i = 0; i <= QUEUE_OP_REQUEUE; i++)
        if (name != NULL && strcmp(name, queue_api_op_names[i]) == 0) {
            *op = (enum queue_api_op)i;
            return 0;
        }
    return -1;
}

static void
queue_api_changed(http_req_t *r, int due)
{
    census_invalidate(http_census(http_req_server(r)));
    if (due)
        qmgr_wakeup(http_req_hooks(r)->qmgr);
}

/* A message whose envelope does not decode can only be deleted. */
static void
queue_api_delete_corrupt(http_req_t *r, const char *id)
{
    envelope_t *env = envelope_new();
    store_batch_t *b = store_batch_new();
    char *err = NULL;

    snprintf(env->id, sizeof(env->id), "%s", id);
    store_batch_remove(b, env);
    envelope_free(&env);
    if (store_commit(http_req_hooks(r)->store, b, &err) < 0) {
        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue_error",
                         NULL, "cannot update the queue: %s", err);
        free(err);
        return;
    }
    http_audit(r, "%s: removed", id);
    queue_api_changed(r, 0);
    http_reply_json(r, MHD_HTTP_OK,
                    json_pack("{s:s,s:s}", "id", id, "result", "removed"));
}

/* Read, decide and commit on the condition that the envelope is still
 * as read; a message that changed meanwhile is read again. */
static void
queue_api_one(http_req_t *r, enum queue_api_op op)
{
    const char *id = queue_api_id(r);
    envelope_t *env = NULL;
    store_batch_t *b;
    const char *why;
    char *err = NULL;
    int tries;
    int due;
    int rc;

    if (id == NULL)
        return;
    if (http_req_body(r) != NULL &&
        http_check_fields(r, http_req_body(r), (const char *const[]){NULL}) < 0)
        return;
    for (tries = 0; tries < QUEUE_API_TRIES; tries++) {
        rc = queue_api_load(r, id, &env, op == QUEUE_OP_DELETE);
        if (rc == 2) {
            queue_api_delete_corrupt(r, id);
            return;
        }
        if (rc == 0)
            return;
        b = store_batch_new();
        store_batch_expect(b, id, env->state, env->sched_us);
        due = 0;
        why = queue_api_apply(op, env, b, clock_wall_us(), &due);
        if (why != NULL) {
            store_batch_free(&b);
            http_reply_error(r, MHD_HTTP_CONFLICT, "conflict", NULL, "%s: %s",
                             id, why);
            envelope_free(&env);
            return;
        }
        if (store_commit(http_req_hooks(r)->store, b, &err) == 0)
            break;
        if (strcmp(err, STORE_CONFLICT) != 0) {
            http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue_error",
                             NULL, "cannot update the queue: %s", err);
            free(err);
            envelope_free(&env);
            return;
        }
        mem_freep(&err);
        envelope_free(&env);
    }
    if (env == NULL) {
        http_reply_error(r, MHD_HTTP_CONFLICT, "conflict", NULL,
                         "%s: the message keeps changing; try again", id);
        return;
    }
    http_audit(r, "%s: %s", id, queue_api_op_logs[op]);
    queue_api_changed(r, due);
    if (op == QUEUE_OP_DELETE)
        http_reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:s,s:s}", "id", id, "result", "removed"));
    else
        http_reply_json(r, MHD_HTTP_OK, queue_api_message_json(env));
    envelope_free(&env);
}

void
queue_api_delete(http_req_t *r)
{
    queue_api_one(r, QUEUE_OP_DELETE);
}

void
queue_api_change(http_req_t *r)
{
    enum queue_api_op op;

    if (queue_api_op_parse(http_req_segment(r, 4), &op) < 0) {
        http_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
                         "no such operation");
        return;
    }
    queue_api_one(r, op);
}

/*
 * Bulk changes: one conditional batch per message, committed in the
 * background so that many share an fsync; the walk waits for them all
 * at the end.  A message that changed meanwhile is skipped.
 */

struct queue_api_bulk {
    http_req_t *r;
    enum queue_api_op op;
    filter_t *f;
    int64_t now_us;
    size_t matched;
    int due;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t outstanding;
    int failed;
    char (*ids)[QUEUE_ID_SIZE]; /* changed, for the log */
    size_t nids;
    size_t cap;
};

struct queue_api_job {
    struct queue_api_bulk *k;
    char id[QUEUE_ID_SIZE];
};

/* On the committer thread: note the outcome. */
static void
queue_api_bulk_done(void *arg, int status, const char *err)
{
    struct queue_api_job *job = arg;
    struct queue_api_bulk *k = job->k;

    pthread_mutex_lock(&k->lock);
    if (status == 0) {
        if (k->nids == k->cap) {
            k->cap = k->cap ? k->cap * 2 : 256;
            k->ids = mem_reallocarray(k->ids, k->cap, QUEUE_ID_SIZE);
        }
        memcpy(k->ids[k->nids++], job->id, QUEUE_ID_SIZE);
    } else if (err == NULL || strcmp(err, STORE_CONFLICT) != 0) {
        k->failed = 1;
    }
    k->outstanding--;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->lock);
    free(job);
}

static int
queue_api_bulk_one(void *arg, const char *id, envelope_t *snap_env,
                   const char *raw, size_t rawlen)
{
    struct queue_api_bulk *k = arg;
    struct queue_api_job *job;
    envelope_t *env = NULL;
    store_batch_t *b;
    int due = 0;

    if (!filter_match(k->f, snap_env, k->now_us))
        return 0;
    k->matched++;
    if (snap_env == NULL)
        return 0;

    /* The snapshot may be old: decide on the envelope as it is now. */
    if (store_get_envelope(http_req_hooks(k->r)->store, id, &env, NULL,
                           NULL) != 1)
        return 0;
    b = store_batch_new();
    store_batch_expect(b, id, env->state, env->sched_us);
    if (!filter_match(k->f, env, k->now_us) ||
        queue_api_apply(k->op, env, b, k->now_us, &due) != NULL) {
        store_batch_free(&b);
        envelope_free(&env);
        return 0;
    }
    envelope_free(&env);
    k->due |= due;
    job = mem_alloc(sizeof(*job));
    job->k = k;
    snprintf(job->id, sizeof(job->id), "%s", id);
    pthread_mutex_lock(&k->lock);
    k->outstanding++;
    pthread_mutex_unlock(&k->lock);
    store_commit_async(http_req_hooks(k->r)->store, b, queue_api_bulk_done,
                       job);
    return 0;
}

filter_t *
queue_api_body_filter(http_req_t *r)
{
    static const char *const fields[] = {
        "state", "sender", "recipient", "domain", "older_than", "all", NULL,
    };
    json_t *body = http_req_body(r);
    filter_t *f;
    const char *key;
    json_t *val;
    json_t *all;
    char *why = NULL;

    if (body == NULL) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "missing_body", NULL,
                         "give a filter, e.g. {\"state\": \"deferred\"}, or "
                         "{\"all\": true}");
        return NULL;
    }
    if (http_check_fields(r, body, fields) < 0)
        return NULL;
    all = json_object_get(body, "all");
    if (all != NULL && !json_is_boolean(all)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_field", "all",
                         "all: expected true or false");
        return NULL;
    }
    f = filter_new();
    json_object_foreach(body, key, val) {
        if (strcmp(key, "all") == 0)
            continue;
        if (!json_is_string(val)) {
            http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_field", key,
                             "%s: expected a string", key);
            filter_free(&f);
            return NULL;
        }
        if (filter_set(f, key, json_string_value(val), &why) < 0) {
            http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_field", key,
                             "%s: %s", key, why);
            free(why);
            filter_free(&f);
            return NULL;
        }
    }
    if (filter_empty(f) && !json_is_true(all)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "missing_filter", NULL,
                         "give at least one criterion, or \"all\": true to "
                         "mean every message");
        filter_free(&f);
        return NULL;
    }
    return f;
}

void
queue_api_bulk(http_req_t *r)
{
    struct queue_api_bulk k;
    size_t i;

    memset(&k, 0, sizeof(k));
    k.r = r;
    if (queue_api_op_parse(http_req_segment(r, 3), &k.op) < 0) {
        http_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
                         "no such operation");
        return;
    }
    if ((k.f = queue_api_body_filter(r)) == NULL)
        return;
    pthread_mutex_init(&k.lock, NULL);
    pthread_cond_init(&k.cond, NULL);
    k.now_us = clock_wall_us();
    store_foreach(http_req_hooks(r)->store, queue_api_bulk_one, &k);
    pthread_mutex_lock(&k.lock);
    while (k.outstanding > 0)
        pthread_cond_wait(&k.cond, &k.lock);
    pthread_mutex_unlock(&k.lock);

    for (i = 0; i < k.nids; i++)
        http_audit(r, "%s: %s", k.ids[i], queue_api_op_logs[k.op]);
    http_audit(r, "bulk %s: matched=%zu, changed=%zu",
               queue_api_op_names[k.op], k.matched, k.nids);
    if (k.nids > 0)
        queue_api_changed(r, k.due);
    if (k.failed)
        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue_error",
                         NULL, "the queue could not be updated after %zu "
                         "changes", k.nids);
    else
        http_reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:I,s:I}", "matched", (json_int_t)k.matched,
                                  "changed", (json_int_t)k.nids));
    free(k.ids);
    filter_free(&k.f);
    pthread_cond_destroy(&k.cond);
    pthread_mutex_destroy(&k.lock);
}

/*
 * Flush.
 */

struct queue_api_flush {
    const char *domain;
    size_t n;
};

/* Count the deferred messages with a recipient still to go to the
 * domain; the qmgr makes them due. */
static int
queue_api_flush_one(void *arg, const char *id, envelope_t *env,
                    const char *raw, size_t rawlen)
{
    struct queue_api_flush *fl = arg;
    size_t i;

    if (env == NULL || env->state != QS_DEFERRED)
        return 0;
    for (i = 0; i < env->nrcpt; i++) {
        const rcpt_t *rc = &env->rcpts[i];

        if ((rc->state == RCPT_PENDING || rc->state == RCPT_DEFERRED) &&
            strcasecmp(addr_domain(rc->addr), fl->domain) == 0) {
            fl->n++;
            break;
        }
    }
    return 0;
}

int
queue_api_flush_domain(http_req_t *r, const char **domain)
{
    static const char *const fields[] = {"domain", NULL};
    json_t *body = http_req_body(r);
    json_t *d = body ? json_object_get(body, "domain") : NULL;

    *domain = NULL;
    if (body != NULL && http_check_fields(r, body, fields) < 0)
        return -1;
    if (d != NULL && (!json_is_string(d) || json_string_length(d) == 0 ||
                      strchr(json_string_value(d), '@') != NULL)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_field", "domain",
                         "domain: expected a domain name");
        return -1;
    }
    *domain = d ? json_string_value(d) : NULL;
    return 0;
}

void
queue_api_flush(http_req_t *r)
{
    const char *domain;
    struct queue_api_flush fl;
    struct census_count cc;

    if (queue_api_flush_domain(r, &domain) < 0)
        return;
    if (domain == NULL) {
        census_invalidate(http_census(http_req_server(r)));
        census_get(http_census(http_req_server(r)), &cc);
        qmgr_flush(http_req_hooks(r)->qmgr);
        http_audit(r, "flush");
        http_reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:n,s:I}", "domain", "messages",
                                  (json_int_t)cc.n[QS_DEFERRED]));
        return;
    }
    memset(&fl, 0, sizeof(fl));
    fl.domain = domain;
    store_foreach(http_req_hooks(r)->store, queue_api_flush_one, &fl);
    qmgr_flush_domain(http_req_hooks(r)->qmgr, fl.domain);
    http_audit(r, "flush domain=%s, messages=%zu", fl.domain, fl.n);
    census_invalidate(http_census(http_req_server(r)));
    http_reply_json(r, MHD_HTTP_OK,
                    json_pack("{s:s,s:I}", "domain", fl.domain, "messages",
                              (json_int_t)fl.n));
}
