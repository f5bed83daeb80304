/* SPDX-License-Identifier: ISC */
/*
 * cleanup: header processing and the commit of new messages.
 *
 * A worker turns a request into the stored message: a Received: header
 * first (RFC 5321 section 4.4), the headers as received, then
 * Message-ID: and Date: at the end of the header block when the message
 * lacks them (RFC 5322 section 3.6 requires Date, and Postfix adds both).
 * It then hands one batch (envelope, content, schedule key) to the store
 * and returns to the pool without waiting: the store's committer calls
 * back when the batch is synced, and that callback completes the request
 * and wakes delivery.  Many workers' batches thus share one fsync.
 *
 * A crash before the callback leaves either nothing (the batch was not
 * written; the client got no 250 and will retry) or the whole message
 * (written, the 250 perhaps not sent: delivered, maybe twice).
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"
#include "queue/cleanup.h"

#define CLEANUP_QUEUE_MAX 4096

struct cleanup {
    store_t *store;
    pool_t *pool;
    cleanup_notify_fn notify;
    void *notify_arg;
};

struct cleanup_commit {
    cleanup_t *c;
    cleanup_req_t *req;
};

static int64_t
cleanup_now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* RFC 5322 date-time for t. */
static void
cleanup_date(time_t t, char *out, size_t len)
{
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Length of the header block of msg, including the empty line that ends
 * it if there is one.  A message whose first line is not a header has
 * an empty header block. */
static size_t
cleanup_header_len(const char *msg, size_t len, int *has_mid, int *has_date)
{
    size_t pos = 0;

    *has_mid = *has_date = 0;
    while (pos < len) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        size_t name;

        if (llen == 0)
            return pos + 1;
        if (line[0] != ' ' && line[0] != '\t') {
            for (name = 0; name < llen && line[name] != ':' &&
                           line[name] > 32 && line[name] < 127;
                 name++)
                ;
            if (name == 0 || name == llen || line[name] != ':')
                return pos; /* not a header: the body starts here */
            if (name == 10 && strncasecmp(line, "Message-ID", 10) == 0)
                *has_mid = 1;
            if (name == 4 && strncasecmp(line, "Date", 4) == 0)
                *has_date = 1;
        } else if (pos == 0) {
            return 0;
        }
        pos += llen + (nl != NULL);
    }
    return pos;
}

/* Build the stored form of the message into out. */
static void
cleanup_build(cleanup_req_t *req, buf_t *out)
{
    envelope_t *env = req->env;
    config_t *cfg = req->cfg;
    const char *host = config_str(cfg, P_MYHOSTNAME);
    char date[64];
    int has_mid;
    int has_date;
    size_t hlen;
    time_t now = time(NULL);

    cleanup_date(now, date, sizeof(date));
    hlen = cleanup_header_len(req->msg.data ? req->msg.data : "",
                              req->msg.len, &has_mid, &has_date);
    buf_reserve(out, req->msg.len + 512);
    if (req->local) {
        buf_printf(out, "Received: by %s (%s)\n\tid %s; %s\n", host,
                   config_str(cfg, P_MAIL_NAME), env->id, date);
    } else {
        buf_printf(out, "Received: from %s (%s [%s])\n",
                   env->helo ? env->helo : "unknown",
                   env->client_name ? env->client_name : "unknown",
                   env->client_addr ? env->client_addr : "unknown");
        if (req->tls_info && config_num(cfg, P_SMTPD_TLS_RECEIVED_HEADER))
            buf_printf(out, "\t(using %s)\n", req->tls_info);
        buf_printf(out, "\tby %s (%s) with %s id %s", host,
                   config_str(cfg, P_MAIL_NAME),
                   env->protocol ? env->protocol : "SMTP", env->id);
        /* Postfix names the recipient only when there is just one, so
         * that a Bcc list is not disclosed. */
        if (env->nrcpt == 1)
            buf_printf(out, "\n\tfor <%s>", env->rcpts[0].addr);
        buf_printf(out, "; %s\n", date);
    }
    /* A header block without its ending empty line goes before the
     * headers we add; the ending line, if any, after them. */
    if (hlen > 0 && req->msg.data[hlen - 1] == '\n' &&
        (hlen == 1 || req->msg.data[hlen - 2] == '\n')) {
        buf_append(out, req->msg.data, hlen - 1);
    } else {
        buf_append(out, req->msg.data, hlen);
        if (hlen > 0 && req->msg.data[hlen - 1] != '\n')
            buf_putc(out, '\n');
    }
    if (!has_mid) {
        struct tm tm;
        char stamp[32];

        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        envelope_set(&env->message_id, NULL);
        env->message_id = mem_printf("%s.%s@%s", stamp, env->id, host);
        buf_printf(out, "Message-ID: <%s>\n", env->message_id);
    }
    if (!has_date)
        buf_printf(out, "Date: %s\n", date);
    buf_putc(out, '\n');
    if (hlen < req->msg.len)
        buf_append(out, req->msg.data + hlen, req->msg.len - hlen);
    /* Every stored line ends in a newline, the last one too. */
    if (out->data[out->len - 1] != '\n')
        buf_putc(out, '\n');
}

/* Find the Message-ID a message came with, for the log. */
static void
cleanup_find_mid(cleanup_req_t *req)
{
    const char *p = req->msg.data;
    const char *end = p ? p + req->msg.len : NULL;

    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (llen == 0)
            break;
        if (llen > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
            const char *v = p + 11;
            const char *ve = p + llen;

            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            if (v < ve && *v == '<')
                v++;
            while (ve > v && (ve[-1] == '>' || isspace((unsigned char)ve[-1])))
                ve--;
            envelope_set(&req->env->message_id, NULL);
            req->env->message_id = mem_strndup(v, (size_t)(ve - v));
            return;
        }
        p = nl ? nl + 1 : end;
    }
}

static void
cleanup_committed(void *arg, int status, const char *err)
{
    struct cleanup_commit *cc = arg;
    cleanup_req_t *req = cc->req;
    cleanup_t *c = cc->c;

    free(cc);
    if (status != 0) {
        msg_warn("%s: queue commit failed: %s", req->env->id, err);
        snprintf(req->reply, sizeof(req->reply),
                 "451 4.3.0 Error: queue file write error");
        req->done(req, -1, req->reply);
        return;
    }
    req->done(req, 0, NULL);
    if (c->notify)
        c->notify(c->notify_arg);
}

static void
cleanup_work(void *ctx, void *item)
{
    cleanup_t *c = ctx;
    cleanup_req_t *req = item;
    envelope_t *env = req->env;
    struct cleanup_commit *cc;
    store_batch_t *b;
    buf_t out;

    buf_init(&out);
    cleanup_find_mid(req);
    cleanup_build(req, &out);
    env->size = (int64_t)out.len;
    env->arrival_us = cleanup_now_us();
    env->next_us = env->arrival_us;
    env->state = QS_INCOMING;
    env->max_lifetime = config_num(req->cfg, P_MAXIMAL_QUEUE_LIFETIME);
    env->bounce_lifetime = config_num(req->cfg, P_BOUNCE_QUEUE_LIFETIME);
    msg_info("%s: message-id=<%s>", env->id,
             env->message_id ? env->message_id : "");
    b = store_batch_new();
    store_batch_enqueue(b, env, out.data ? out.data : "", out.len);
    buf_free(&out);
    cc = mem_alloc(sizeof(*cc));
    cc->c = c;
    cc->req = req;
    store_commit_async(c->store, b, cleanup_committed, cc);
}

cleanup_t *
cleanup_new(store_t *store, int threads, cleanup_notify_fn notify,
            void *notify_arg)
{
    cleanup_t *c = mem_calloc(1, sizeof(*c));

    c->store = store;
    c->notify = notify;
    c->notify_arg = notify_arg;
    c->pool = pool_new("cleanup", threads, CLEANUP_QUEUE_MAX, cleanup_work,
                       c);
    return c;
}

int
cleanup_submit(cleanup_t *c, cleanup_req_t *req)
{
    return pool_submit(c->pool, req, 0);
}

/* A request still waiting when the pool stops is processed here, so
 * that nothing a client handed over is dropped. */
static void
cleanup_drain(void *ctx, void *item)
{
    cleanup_work(ctx, item);
}

void
cleanup_stop(cleanup_t **cp)
{
    cleanup_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    pool_stop(&c->pool, cleanup_drain);
    free(c);
    *cp = NULL;
}

void
cleanup_req_free(cleanup_req_t **reqp)
{
    cleanup_req_t *req = reqp ? *reqp : NULL;

    if (req == NULL)
        return;
    envelope_free(&req->env);
    free(req->tls_info);
    buf_free(&req->msg);
    config_unref(&req->cfg);
    free(req);
    *reqp = NULL;
}

size_t
cleanup_busy(cleanup_t *c)
{
    return pool_busy(c->pool) + pool_queued(c->pool);
}
