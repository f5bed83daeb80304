/* SPDX-License-Identifier: ISC */
/*
 * delivery: filling in the outcomes that transports report to the qmgr
 * (functions on a request owned by the calling worker), and queueing a
 * new message through cleanup and waiting until it is durable, for
 * notices and forwards.
 *
 * Threads: any; a request belongs to one worker.  Crashes: a message
 * handed to cleanup is either not queued at all (the caller was not
 * told it was) or queued whole.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "deliver/delivery.h"
#include "lib/log.h"

/* A submission waiting for cleanup's completion. */
struct delivery_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
};

void
delivery_set(struct delivery_result *r, enum delivery_status status,
             const char *dsn, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

void
delivery_set_rest(struct delivery_req *req, enum delivery_status status,
                  const char *dsn, const char *relay, const char *fmt, ...)
{
    char text[sizeof(((struct delivery_result *)0)->text)];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (i = 0; i < req->nrcpt; i++) {
        struct delivery_result *r = &req->rcpts[i].result;

        if (r->status != DELIVERY_UNDECIDED)
            continue;
        delivery_set(r, status, dsn, "%s", text);
        snprintf(r->relay, sizeof(r->relay), "%s", relay);
    }
}

void
delivery_reset(struct delivery_req *req)
{
    size_t i;

    for (i = 0; i < req->nrcpt; i++) {
        memset(&req->rcpts[i].result, 0, sizeof(req->rcpts[i].result));
        req->rcpts[i].result.status = DELIVERY_UNDECIDED;
        snprintf(req->rcpts[i].result.relay,
                 sizeof(req->rcpts[i].result.relay), "none");
    }
}

int
delivery_undecided(const struct delivery_result *r)
{
    return r->status == DELIVERY_UNDECIDED;
}

const char *
delivery_default_dsn(int code)
{
    if (code >= 500)
        return "5.0.0";
    if (code >= 400)
        return "4.0.0";
    return "2.0.0";
}

static void
delivery_submitted(cleanup_req_t *req, int status, const char *reply)
{
    struct delivery_wait *w = req->arg;

    if (status != 0)
        msg_warn("%s: not queued: %s", req->env->id, reply ? reply : "?");
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    cleanup_req_free(&req);
}

int
delivery_submit_wait(cleanup_t *c, cleanup_req_t *req)
{
    struct delivery_wait w;
    int tries;
    int status;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    w.done = 0;
    w.status = -1;
    req->done = delivery_submitted;
    req->arg = &w;
    for (tries = 0; cleanup_submit(c, req) < 0; tries++) {
        struct timespec pause = {0, 50 * 1000 * 1000};

        if (tries == 100) {
            cleanup_req_free(&req);
            pthread_mutex_destroy(&w.lock);
            pthread_cond_destroy(&w.cond);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    status = w.status;
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return status == 0 ? 0 : -1;
}
