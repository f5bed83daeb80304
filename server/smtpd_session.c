/* SPDX-License-Identifier: ISC */
/*
 * smtpd_session: SMTP sessions on epoll loops (RFC 5321).
 *
 * Threads: a session lives on one I/O thread from accept to close and
 * is touched only there.  Acceptor threads hand a socket over with
 * event_post; the store's committer thread hands a commit result back
 * the same way.  Nothing in a session is locked.
 *
 * Input is processed in arrival order.  Replies are collected and
 * written when the input at hand is used up, which is what PIPELINING
 * (RFC 2920) asks of a server: a client may send a group of commands and
 * read the group's replies together.  While a message is being
 * committed the session stops reading; commands the client pipelined
 * behind the final dot wait in the input buffer and are processed, in
 * order, after the 250.
 *
 * Line endings: command lines and message lines may end in CRLF or in a
 * bare LF (read as CRLF, as Postfix's "normalize" does).  The end of
 * DATA is only CRLF "." CRLF: a "." line that ends in a bare LF, or that
 * follows a line ending in a bare LF, is message content.  This keeps
 * the SMTP smuggling attacks of 2023 from ending a message early.  A
 * bare CR in message content (DATA or BDAT) also ends a line, so that
 * tern never passes one on to a receiver that might read "\r.\r" as the
 * end of data.  Messages are stored with LF line endings.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "deliver/resolve.h"
#include "lib/addr.h"
#include "lib/dns.h"
#include "server/smtpd_rate.h"
#include "lib/utf8.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"
#include "lib/stats.h"
#include "lib/tls.h"
#include "queue/cleanup.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "server/listen.h"
#include "server/smtpd_auth.h"
#include "server/smtpd_check.h"
#include "server/smtpd_data.h"
#include "server/smtpd_milter.h"
#include "server/smtpd_parse.h"
#include "server/smtpd_policy.h"
#include "server/smtpd_session.h"

#define SMTPD_READ_SIZE 16384
#define SMTPD_OUT_HIGH 65536   /* stop processing input above this */
#define SMTPD_DATA_CHUNK 65536 /* long message lines go over in parts */
#define SMTPD_VERBS (SMTP_BDAT + 1)

enum smtpd_state {
    S_CONNECTED, /* before HELO/EHLO */
    S_READY,     /* greeted, no transaction */
    S_MAIL,      /* MAIL accepted, no recipient yet */
    S_RCPT,      /* at least one recipient */
    S_DATA,      /* reading message content */
    S_BDAT,      /* reading a BDAT chunk */
    S_COMMIT,    /* waiting for cleanup and the queue commit */
};

struct smtpd_io;

typedef struct smtpd_session {
    event_watch_t watch;
    struct smtpd_io *io;
    struct smtpd_session *prev;
    struct smtpd_session *next;
    config_t *cfg;
    enum smtpd_state state;
    buf_t in;
    buf_t out;
    unsigned flags;     /* LISTEN_* options of the listener */
    struct sockaddr_storage sa; /* the client's address */
    struct sockaddr_storage server_sa; /* the address it connected to */
    int have_server_sa;
    int counted;        /* counted in the per-client table */
    char addr[64];      /* numeric client address */
    char name[256];     /* client host name, "unknown" without DNS */
    char reverse_name[256]; /* its PTR name, verified or not */
    int rate_exempt;    /* in smtpd_client_event_limit_exceptions */
    int name_status;    /* DNS_OK, DNS_NOTFOUND or DNS_RETRY */
    char *helo;
    char *sasl_user;    /* the authenticated name, or NULL */
    char *sasl_method;
    int auth_step;      /* AUTH_* while an AUTH dialogue is under way */
    char *auth_login;   /* the LOGIN user name, between its two steps */
    int esmtp;
    int in_mynetworks;
    int busy;           /* a commit or a job is outstanding: read nothing */
    int64_t pause_until; /* paused after errors until then (ms), or 0 */
    int unwatched;      /* removed from epoll after a hangup while busy */
    tls_conn_t *tls;    /* set once STARTTLS or an smtps listener began */
    int tls_handshake;  /* the TLS handshake is under way */
    int tls_active;     /* the handshake is done */
    int starttls;       /* start TLS once the 220 is written */
    uint32_t tls_rwant; /* events a TLS read waits for */
    uint32_t tls_wwant; /* events a TLS write waits for */
    int closing;        /* close once out is written */
    int dead;           /* the socket is gone; free after the commit */
    int skip_line;      /* discarding the rest of an overlong line */
    int64_t last_active; /* monotonic milliseconds */
    enum smtp_verb last_verb;
    int errors;
    int ok[SMTPD_VERBS];
    int total[SMTPD_VERBS];
    smtpd_milters_t *milters; /* this session's Milters, or NULL */
    /* The transaction. */
    envelope_t *env;
    long long mail_size;  /* MAIL SIZE=, or 0 */
    char instance[48];    /* names the transaction to policy servers */
    struct smtpd_check_acts tx; /* what restrictions asked of the message */
    buf_t data;
    int64_t data_size;
    int data_too_big;
    struct smtpd_data_reader data_rd; /* where DATA is in its lines */
    int bdat_used;      /* this transaction has had BDAT chunks */
    int bdat_last;      /* the chunk being read is the last */
    struct smtpd_bdat_reader bdat_rd; /* line endings across chunks */
    int bdat_failed;    /* a chunk was refused; the rest is discarded */
    long long bdat_left; /* bytes of the chunk still to read */
    long long bdat_octets; /* chunk bytes received in this transaction */
    enum smtpd_state bdat_prev; /* the state to return to after a chunk */
} smtpd_session_t;

struct smtpd_io {
    smtpd_server_t *srv;
    event_loop_t *loop;
    pthread_t thread;
    smtpd_session_t *sessions;
    int shutting_down;
};

#define SMTPD_CLIENT_BUCKETS 4096

/* Open connections per client address, for the per-client limit. */
struct smtpd_client_count {
    char addr[64];
    int count;
    struct smtpd_client_count *next;
};

/* Something built from the config, a TLS context or a password db, kept
 * while the config it was built from stays and built again after a
 * reload.  Only the current config replaces it, so that sessions which
 * began before a reload do not make it flip back and forth. */
struct smtpd_per_config {
    const char *failed; /* the warning when it cannot be built */
    void *(*open)(const config_t *cfg, buf_t *err);
    void *(*ref)(void *obj);
    void (*unref)(void *obj);
    config_t *cfg; /* the config obj was built from */
    void *obj;
};

struct smtpd_server {
    int nio;
    struct smtpd_io *io;
    cleanup_t *cleanup;
    unsigned next_io;
    long nsessions;
    pool_t *jobs;
    pool_t *policy_jobs;    /* jobs that may wait on a policy server */
    pool_t *milter_jobs;    /* jobs that may wait on a Milter */
    smtpd_policy_t *policy; /* its connections */
    unsigned long instances; /* transactions begun, for their names */
    smtpd_auth_limiter_t *auth_limiter;
    pthread_mutex_t cache_lock;
    struct smtpd_per_config tls;  /* the TLS server context */
    struct smtpd_per_config auth; /* the AUTH password db */
    pthread_mutex_t clients_lock;
    smtpd_rate_t *rates; /* the per-client rate limits */
    struct smtpd_client_count *clients[SMTPD_CLIENT_BUCKETS];
};

struct smtpd_accepted {
    struct smtpd_io *io;
    int fd;
    unsigned flags;
    int counted;
    struct sockaddr_storage sa;
};

static unsigned
smtpd_client_hash(const char *addr)
{
    unsigned h = 5381;

    for (; *addr; addr++)
        h = h * 33 + (unsigned char)*addr;
    return h % SMTPD_CLIENT_BUCKETS;
}

/* Count one more connection from addr; returns the new count. */
static int
smtpd_client_add(smtpd_server_t *srv, const char *addr, int delta)
{
    struct smtpd_client_count **pp;
    struct smtpd_client_count *c;
    int n = 0;

    pthread_mutex_lock(&srv->clients_lock);
    for (pp = &srv->clients[smtpd_client_hash(addr)]; (c = *pp) != NULL;
         pp = &c->next)
        if (strcmp(c->addr, addr) == 0)
            break;
    if (c == NULL && delta > 0) {
        c = mem_calloc(1, sizeof(*c));
        snprintf(c->addr, sizeof(c->addr), "%s", addr);
        c->next = NULL;
        *pp = c;
    }
    if (c != NULL) {
        c->count += delta;
        n = c->count;
        if (c->count <= 0) {
            *pp = c->next;
            free(c);
        }
    }
    pthread_mutex_unlock(&srv->clients_lock);
    return n;
}

static const char *
smtpd_state_name(enum smtpd_state state)
{
    static const char *names[] = {
        "CONNECT", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "END-OF-MESSAGE",
    };

    return names[state];
}

/* Append one reply line (CRLF added) to the output. */
static void smtpd_reply(smtpd_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
smtpd_reply(smtpd_session_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    buf_append(&s->out, "\r\n", 2);
}

/* Log a refused command the way Postfix does, for pflogsumm and
 * fail2ban: "ID: reject: RCPT from host[addr]: 554 ...; from=<> ...". */
static void
smtpd_log_action(smtpd_session_t *s, const char *action, const char *verb,
                 const char *reply, const char *rcpt)
{
    struct smtpd_check_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.client_addr = s->addr;
    ctx.client_name = s->name;
    ctx.reverse_client_name = s->reverse_name;
    ctx.client_name_status = s->name_status;
    ctx.queue_id = s->env ? s->env->id : NULL;
    ctx.sender = s->env ? s->env->sender : NULL;
    ctx.rcpt = rcpt;
    ctx.protocol = s->esmtp ? "ESMTP" : "SMTP";
    ctx.helo = s->helo;
    smtpd_check_log(&ctx, action, verb, reply);
    stats_count(STATS_REJECTED);
}


static void
smtpd_reset(smtpd_session_t *s)
{
    envelope_free(&s->env);
    smtpd_check_acts_free(&s->tx);
    buf_free(&s->data);
    s->data_size = 0;
    s->data_too_big = 0;
    s->bdat_used = 0;
    smtpd_bdat_begin(&s->bdat_rd);
    s->bdat_failed = 0;
    s->bdat_octets = 0;
    if (s->state > S_READY)
        s->state = S_READY;
}

/* Write as much output as the socket takes. */
static void
smtpd_flush(smtpd_session_t *s)
{
    while (s->out.len > 0 && !s->dead && !s->tls_handshake) {
        ssize_t n;

        if (s->tls_active) {
            n = tls_write(s->tls, s->out.data, s->out.len);
            s->tls_wwant = 0;
            if (n == -2) {
                s->tls_wwant = tls_want(s->tls);
                break;
            }
            if (n <= 0) {
                s->dead = 1;
                buf_reset(&s->out);
                break;
            }
            buf_consume(&s->out, (size_t)n);
            continue;
        }
        n = send(s->watch.fd, s->out.data, s->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            s->dead = 1;
            buf_reset(&s->out);
            break;
        }
        buf_consume(&s->out, (size_t)n);
    }
}

/* Watch for what the session waits for now: input unless busy, output
 * while replies are pending, and whatever TLS asked for. */
static void
smtpd_watch_update(smtpd_session_t *s)
{
    uint32_t ev = 0;

    if (s->watch.fd < 0)
        return;
    if (s->tls_handshake)
        ev = tls_want(s->tls);
    else {
        if (!s->busy)
            ev |= EPOLLIN;
        if (s->out.len > 0)
            ev |= EPOLLOUT;
        ev |= s->tls_rwant | s->tls_wwant;
    }
    if (s->unwatched) {
        if (ev == 0)
            return;
        s->unwatched = 0;
        event_watch_add(s->io->loop, &s->watch, ev);
        return;
    }
    event_watch_mod(s->io->loop, &s->watch, ev);
}

static void
smtpd_log_disconnect(smtpd_session_t *s)
{
    buf_t line;
    int ok = 0;
    int total = 0;
    int v;

    buf_init(&line);
    buf_printf(&line, "disconnect from %s[%s]", s->name, s->addr);
    for (v = 1; v <= SMTPD_VERBS; v++) {
        int i = v % SMTPD_VERBS; /* "unknown" last, as Postfix does */

        if (s->total[i] == 0)
            continue;
        if (s->ok[i] == s->total[i])
            buf_printf(&line, " %s=%d", smtpd_verb_name(i), s->total[i]);
        else
            buf_printf(&line, " %s=%d/%d", smtpd_verb_name(i), s->ok[i],
                       s->total[i]);
        ok += s->ok[i];
        total += s->total[i];
    }
    if (ok == total)
        buf_printf(&line, " commands=%d", total);
    else
        buf_printf(&line, " commands=%d/%d", ok, total);
    msg_info("%s", line.data);
    buf_free(&line);
}

static void
smtpd_session_free(smtpd_session_t *s)
{
    struct smtpd_io *io = s->io;

    if (s->prev)
        s->prev->next = s->next;
    else
        io->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->counted)
        smtpd_client_add(io->srv, s->addr, -1);
    envelope_free(&s->env);
    smtpd_check_acts_free(&s->tx);
    smtpd_milters_free(&s->milters);
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->data);
    free(s->helo);
    free(s->sasl_user);
    free(s->sasl_method);
    free(s->auth_login);
    tls_conn_free(&s->tls);
    config_unref(&s->cfg);
    free(s);
    __atomic_sub_fetch(&io->srv->nsessions, 1, __ATOMIC_RELAXED);
    if (io->shutting_down && io->sessions == NULL)
        event_loop_stop(io->loop);
}

/* Close the connection; the session itself goes once no commit is
 * outstanding. */
static void
smtpd_close(smtpd_session_t *s)
{
    if (s->watch.fd >= 0) {
        smtpd_flush(s);
        if (s->tls_active)
            tls_shutdown(s->tls);
        smtpd_log_disconnect(s);
        if (!s->unwatched)
            event_watch_del(s->io->loop, &s->watch);
        close(s->watch.fd);
        s->watch.fd = -1;
    }
    s->dead = 1;
    if (!s->busy)
        smtpd_session_free(s);
}

/* Account for a command and its outcome in the disconnect line. */
static void
smtpd_count(smtpd_session_t *s, enum smtp_verb verb, int ok)
{
    s->total[verb]++;
    if (ok)
        s->ok[verb]++;
    else
        s->errors++;
}

static void smtpd_process(smtpd_session_t *s);

/*
 * Jobs: work that may block (password hashing, DNS) runs on the server's
 * job pool, never on an I/O thread.  The session reads nothing while its
 * job runs; the job's finish function runs back on the session's thread.
 */
struct smtpd_job {
    smtpd_session_t *s;
    void (*work)(struct smtpd_job *job);   /* on a pool thread */
    void (*finish)(struct smtpd_job *job); /* on the session's thread */
    void *data;
    int on_io_thread; /* the pool was full: it runs on the I/O thread */
};

static void
smtpd_job_finish(void *arg)
{
    struct smtpd_job *job = arg;
    smtpd_session_t *s = job->s;

    s->busy = 0;
    if (s->dead) {
        /* The client went away; the job's data still needs freeing. */
        job->finish(job);
        free(job);
        smtpd_close(s);
        return;
    }
    job->finish(job);
    free(job);
    if (s->io->shutting_down) {
        smtpd_reply(s, "421 4.3.2 Service shutting down");
        smtpd_close(s);
        return;
    }
    if (s->watch.fd >= 0 && !s->dead)
        smtpd_process(s);
    else
        smtpd_close(s);
}

static void
smtpd_job_run(void *ctx, void *item)
{
    struct smtpd_job *job = item;

    job->work(job);
    event_post(job->s->io->loop, smtpd_job_finish, job);
}

/* Start a job for s on pool; the session is busy until it finishes.
 * When the pool is full the work runs here, on the I/O thread, rather
 * than fail; the work sees on_io_thread set and must not wait on a
 * policy server then. */
static void
smtpd_job_start(smtpd_session_t *s, pool_t *pool,
                void (*work)(struct smtpd_job *),
                void (*finish)(struct smtpd_job *), void *data)
{
    struct smtpd_job *job = mem_calloc(1, sizeof(*job));

    job->s = s;
    job->work = work;
    job->finish = finish;
    job->data = data;
    s->busy = 1;
    smtpd_watch_update(s);
    if (pool_submit(pool, job, 0) < 0) {
        job->on_io_thread = 1;
        smtpd_job_run(NULL, job);
    }
}

/*
 * Milters (smtpd_milters): each event of the session is a job on the
 * milter pool, which may wait on a Milter for as long as its timeouts
 * allow; the session reads nothing meanwhile and answers the command
 * when the job is done.  A session whose job finds the pool full gives
 * its Milters their default action rather than wait on an I/O thread.
 */
enum smtpd_milter_event {
    SMTPD_MILTER_EV_CONNECT,
    SMTPD_MILTER_EV_HELO,
    SMTPD_MILTER_EV_MAIL,
    SMTPD_MILTER_EV_MESSAGE,
};

/* What a Milter step needs of the session, copied or pointed to on the
 * session's thread; the session changes none of it while the job runs. */
struct smtpd_milter_job {
    enum smtpd_milter_event ev;
    struct smtpd_milter_info info;
    char server_addr[64];
    enum smtpd_milter_verdict verdict;
    buf_t reply;
    cleanup_edits_t *edits;
};

static void smtpd_helo_reply(smtpd_session_t *s);
static void smtpd_mail_ok(smtpd_session_t *s);
static void smtpd_data_commit(smtpd_session_t *s, cleanup_edits_t *edits);

/* The port of sa, or 0. */
static int
smtpd_sa_port(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* The session's side of an event, for the Milters and their macros. */
static void
smtpd_milter_info(const smtpd_session_t *s, struct smtpd_milter_info *info,
                  char *server_addr, size_t len)
{
    memset(info, 0, sizeof(*info));
    info->client_name = s->name;
    info->client_addr = s->addr;
    info->family = s->sa.ss_family;
    info->client_port = smtpd_sa_port(&s->sa);
    if (s->have_server_sa) {
        addr_numeric((const struct sockaddr *)&s->server_sa, server_addr,
                     len);
        info->server_addr = server_addr;
        info->server_port = smtpd_sa_port(&s->server_sa);
    }
    info->helo = s->helo;
    info->queue_id = s->env ? s->env->id : NULL;
    info->sender = s->env ? s->env->sender : NULL;
    info->sasl_method = s->sasl_method;
    info->sasl_user = s->sasl_user;
    if (s->tls_active) {
        info->tls_version = tls_version(s->tls);
        info->tls_cipher = tls_cipher(s->tls);
        info->tls_bits = tls_cipher_bits(s->tls);
    }
}

static void
smtpd_milter_work(struct smtpd_job *job)
{
    struct smtpd_milter_job *j = job->data;
    smtpd_milters_t *m = job->s->milters;

    if (job->on_io_thread)
        smtpd_milters_unavailable(m, "milter job queue full");
    switch (j->ev) {
    case SMTPD_MILTER_EV_CONNECT:
        j->verdict = smtpd_milters_connect(m, &j->info, &j->reply);
        break;
    case SMTPD_MILTER_EV_HELO:
        j->verdict = smtpd_milters_helo(m, &j->info, &j->reply);
        break;
    case SMTPD_MILTER_EV_MAIL:
        j->verdict = smtpd_milters_mail(m, &j->info, &j->reply);
        break;
    case SMTPD_MILTER_EV_MESSAGE:
        j->edits = cleanup_edits_new();
        j->verdict = smtpd_milters_message(m, &j->info, job->s->data.data,
                                           job->s->data.len, j->edits,
                                           &j->reply);
        break;
    }
}

/* Give a Milter's refusal as the answer to the command under way. */
static void
smtpd_milter_refuse(smtpd_session_t *s, enum smtp_verb verb, const char *what,
                    const char *reply)
{
    smtpd_reply(s, "%s", reply);
    smtpd_log_action(s, "milter-reject", what, reply, NULL);
    smtpd_count(s, verb, 0);
    if (strncmp(reply, "421", 3) == 0)
        s->closing = 1;
}

static void
smtpd_milter_finish(struct smtpd_job *job)
{
    struct smtpd_milter_job *j = job->data;
    smtpd_session_t *s = job->s;
    int refused = j->verdict == SMTPD_MILTER_REJECT;
    enum smtp_verb data_verb = s->bdat_used ? SMTP_BDAT : SMTP_DATA;

    if (s->dead)
        goto done;
    switch (j->ev) {
    case SMTPD_MILTER_EV_CONNECT:
        /* Kept by the Milters for every later MAIL, as Postfix does. */
        if (refused)
            smtpd_log_action(s, "milter-reject", "CONNECT", j->reply.data,
                             NULL);
        break;
    case SMTPD_MILTER_EV_HELO:
        if (!refused) {
            smtpd_helo_reply(s);
            break;
        }
        smtpd_milter_refuse(s, s->esmtp ? SMTP_EHLO : SMTP_HELO, "HELO",
                            j->reply.data);
        break;
    case SMTPD_MILTER_EV_MAIL:
        if (!refused) {
            smtpd_mail_ok(s);
            break;
        }
        smtpd_milter_refuse(s, SMTP_MAIL, "MAIL", j->reply.data);
        envelope_free(&s->env);
        break;
    case SMTPD_MILTER_EV_MESSAGE:
        if (j->verdict == SMTPD_MILTER_CONTINUE) {
            smtpd_data_commit(s, j->edits);
            j->edits = NULL;
            break;
        }
        if (refused) {
            smtpd_milter_refuse(s, data_verb, "END-OF-MESSAGE",
                                j->reply.data);
        } else {
            /* Discarded, and reported queued, as Postfix does. */
            msg_info("%s: milter-discard: END-OF-MESSAGE from %s[%s]: "
                     "milter triggers DISCARD action",
                     s->env->id, s->name, s->addr);
            smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->env->id);
            smtpd_count(s, data_verb, 1);
        }
        smtpd_reset(s);
        break;
    }
done:
    cleanup_edits_free(&j->edits);
    buf_free(&j->reply);
    free(j);
}

/* Start the Milters' side of an event as a job; returns 0 when there
 * is nothing to ask (the caller goes on at once), 1 when the job will
 * finish the command. */
static int
smtpd_milter_start(smtpd_session_t *s, enum smtpd_milter_event ev)
{
    struct smtpd_milter_job *j;

    if (!smtpd_milters_active(s->milters))
        return 0;
    j = mem_calloc(1, sizeof(*j));
    j->ev = ev;
    buf_init(&j->reply);
    smtpd_milter_info(s, &j->info, j->server_addr, sizeof(j->server_addr));
    smtpd_job_start(s, s->io->srv->milter_jobs, smtpd_milter_work,
                    smtpd_milter_finish, j);
    return 1;
}

/* Nonzero if STARTTLS can be offered (a certificate is configured and
 * the security level is not "none"). */
static int
smtpd_tls_offered(const smtpd_session_t *s)
{
    return config_str(s->cfg, P_SMTPD_TLS_CERT_FILE)[0] != '\0' &&
           strcmp(config_str(s->cfg, P_SMTPD_TLS_SECURITY_LEVEL), "none") != 0;
}

/* Nonzero if the session must use TLS before mail (level "encrypt"). */
static int
smtpd_tls_required(const smtpd_session_t *s)
{
    return !s->tls_active &&
           strcmp(config_str(s->cfg, P_SMTPD_TLS_SECURITY_LEVEL), "encrypt") == 0;
}

/* Nonzero if AUTH is enabled at all. */
static int
smtpd_auth_enabled(const smtpd_session_t *s)
{
    return config_num(s->cfg, P_SMTPD_SASL_AUTH_ENABLE) &&
           config_str(s->cfg, P_SMTPD_SASL_PATH)[0] != '\0';
}

/* Nonzero if EHLO should list AUTH now (RFC 4954 section 4: not over a
 * plain connection when smtpd_tls_auth_only is set). */
static int
smtpd_auth_offered(const smtpd_session_t *s)
{
    return smtpd_auth_enabled(s) && !s->sasl_user &&
           (s->tls_active || !config_num(s->cfg, P_SMTPD_TLS_AUTH_ONLY));
}

static int smtpd_tls_begin(smtpd_session_t *s);
static int smtpd_tls_step(smtpd_session_t *s);

/* STARTTLS (RFC 3207). */
static void
smtpd_cmd_starttls(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    if (cmd->arg[0] != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (s->tls_active) {
        smtpd_reply(s, "554 5.5.1 Error: TLS already active");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (!smtpd_tls_offered(s)) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (s->state == S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    smtpd_count(s, cmd->verb, 1);
    s->starttls = 1;
}

static void
smtpd_cmd_helo(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    if (cmd->arg[0] == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", cmd->name);
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    smtpd_reset(s);
    free(s->helo);
    s->helo = mem_strdup(cmd->arg);
    s->esmtp = cmd->verb == SMTP_EHLO;
    s->state = S_READY;
    if (smtpd_milter_start(s, SMTPD_MILTER_EV_HELO))
        return;
    smtpd_helo_reply(s);
}

/* Leave the keywords of smtpd_discard_ehlo_keywords out of kw (n of
 * them); returns how many remain.  What is left out is logged, unless
 * the list holds "silent-discard", as in Postfix. */
static size_t
smtpd_ehlo_discard(smtpd_session_t *s, const char **kw, size_t n)
{
    char *const *discard = config_list(s->cfg, P_SMTPD_DISCARD_EHLO_KEYWORDS,
                                       NULL);
    int silent = 0;
    size_t kept = 0;
    size_t i;
    size_t j;
    buf_t gone;

    if (discard == NULL || discard[0] == NULL)
        return n;
    for (j = 0; discard[j]; j++)
        silent |= strcasecmp(discard[j], "silent-discard") == 0;
    buf_init(&gone);
    for (i = 0; i < n; i++) {
        size_t wlen = strcspn(kw[i], " ");
        int drop = 0;

        for (j = 0; discard[j] && !drop; j++)
            drop = strlen(discard[j]) == wlen &&
                   strncasecmp(discard[j], kw[i], wlen) == 0;
        if (drop)
            buf_printf(&gone, "%s%.*s", gone.len ? " " : "", (int)wlen,
                       kw[i]);
        else
            kw[kept++] = kw[i];
    }
    if (gone.len > 0 && !silent)
        msg_info("discarding EHLO keywords: %s", gone.data);
    buf_free(&gone);
    return kept;
}

/* The HELO or EHLO reply, once the Milters have seen it. */
static void
smtpd_helo_reply(smtpd_session_t *s)
{
    const char *host = config_str(s->cfg, P_MYHOSTNAME);
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);

    smtpd_count(s, s->esmtp ? SMTP_EHLO : SMTP_HELO, 1);
    if (!s->esmtp) {
        smtpd_reply(s, "250 %s", host);
        return;
    }
    {
        char size[32];
        const char *kw[10];
        size_t n = 0;
        size_t i;

        if (limit > 0)
            snprintf(size, sizeof(size), "SIZE %lld", limit);
        else
            snprintf(size, sizeof(size), "SIZE");
        kw[n++] = "PIPELINING";
        kw[n++] = size;
        kw[n++] = "8BITMIME";
        if (!s->tls_active && smtpd_tls_offered(s))
            kw[n++] = "STARTTLS";
        if (smtpd_auth_offered(s))
            kw[n++] = "AUTH PLAIN LOGIN";
        kw[n++] = "ENHANCEDSTATUSCODES";
        kw[n++] = "DSN";
        kw[n++] = "SMTPUTF8";
        kw[n++] = "CHUNKING";
        n = smtpd_ehlo_discard(s, kw, n);
        smtpd_reply(s, "250%c%s", n > 0 ? '-' : ' ', host);
        for (i = 0; i < n; i++)
            smtpd_reply(s, "250%c%s", i + 1 < n ? '-' : ' ', kw[i]);
    }
}

static int
smtpd_ascii(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return 0;
    return 1;
}

/* Whether the queue can take a message of size bytes: 0 if so, else the
 * reply code.  As in Postfix, free space must stay above queue_minfree
 * and above one and a half times message_size_limit (452); a queue that
 * cannot be written at all, read-only or failing, gets 451. */
static int
smtpd_storage_check(const smtpd_session_t *s, unsigned long long size)
{
    unsigned long long need = (unsigned long long)config_num(
        s->cfg, P_QUEUE_MINFREE);
    unsigned long long limit = (unsigned long long)config_num(
        s->cfg, P_MESSAGE_SIZE_LIMIT);
    const char *dir = config_str(s->cfg, P_QUEUE_DIRECTORY);
    struct statvfs vfs;
    char *why = NULL;

    if (!cleanup_healthy(s->io->srv->cleanup, &why)) {
        msg_warn("queue %s cannot be written (%s); refusing mail from "
                 "%s[%s]",
                 dir, why, s->name, s->addr);
        free(why);
        return 451;
    }
    if (statvfs(dir, &vfs) < 0)
        return 0; /* the commit will say what is wrong */
    if (vfs.f_flag & ST_RDONLY) {
        msg_warn("queue %s is on a read-only file system; refusing mail "
                 "from %s[%s]",
                 dir, s->name, s->addr);
        return 451;
    }
    if (need < limit + limit / 2)
        need = limit + limit / 2;
    if ((unsigned long long)vfs.f_bavail * vfs.f_frsize >= need + size)
        return 0;
    msg_warn("not enough free space in %s for mail from %s[%s]", dir,
             s->name, s->addr);
    return 452;
}

/* Check the ESMTP parameters of MAIL (RFC 1870 SIZE, RFC 6152 BODY). */
static int
smtpd_mail_params(smtpd_session_t *s, struct smtp_path *path)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);
    size_t i;

    for (i = 0; i < path->nparams; i++) {
        struct smtp_param *p = &path->params[i];

        if (strcmp(p->key, "SIZE") == 0 && p->value) {
            char *end;
            unsigned long long size;

            errno = 0;
            size = strtoull(p->value, &end, 10);
            if (*p->value < '0' || *p->value > '9' || *end != '\0' ||
                errno != 0) {
                smtpd_reply(s, "501 5.5.4 Bad message size syntax");
                return -1;
            }
            if (limit > 0 && size > (unsigned long long)limit) {
                smtpd_reply(s, "552 5.3.4 Message size exceeds fixed "
                               "limit");
                return -1;
            }
            s->env->size = (int64_t)size;
        } else if (strcmp(p->key, "BODY") == 0 && p->value &&
                   (strcasecmp(p->value, "7BIT") == 0 ||
                    strcasecmp(p->value, "8BITMIME") == 0)) {
            s->env->body_8bit = strcasecmp(p->value, "8BITMIME") == 0;
        } else if (strcmp(p->key, "AUTH") == 0 && p->value &&
                   smtpd_auth_enabled(s)) {
            /* RFC 4954 section 5: accepted; we trust no other server's
             * word about who submitted the message. */
        } else if (strcmp(p->key, "SMTPUTF8") == 0 && p->value == NULL) {
            s->env->smtputf8 = 1;
        } else if (strcmp(p->key, "RET") == 0 && p->value &&
                   s->env->ret == DSN_RET_DEFAULT &&
                   (strcasecmp(p->value, "FULL") == 0 ||
                    strcasecmp(p->value, "HDRS") == 0)) {
            s->env->ret = strcasecmp(p->value, "FULL") == 0 ? DSN_RET_FULL
                                                            : DSN_RET_HDRS;
        } else if (strcmp(p->key, "ENVID") == 0 && p->value &&
                   s->env->envid == NULL) {
            buf_t id;

            /* RFC 3461 section 4.4: at most 100 characters of xtext. */
            buf_init(&id);
            if (strlen(p->value) > 100 ||
                smtpd_parse_xtext(p->value, &id) < 0) {
                buf_free(&id);
                smtpd_reply(s, "501 5.5.4 Bad ENVID parameter syntax");
                return -1;
            }
            s->env->envid = buf_steal(&id);
        } else {
            smtpd_reply(s, "555 5.5.4 Unsupported option: %s", p->key);
            return -1;
        }
    }
    return 0;
}

/* Count an event of the client against its rate limit; nonzero (and
 * logged as Postfix logs it) past the limit.  Clients in
 * smtpd_client_event_limit_exceptions have none. */
static int
smtpd_rate_exceeded(smtpd_session_t *s, enum smtpd_rate_event ev)
{
    static const enum param_id limits[] = {
        P_SMTPD_CLIENT_CONNECTION_RATE_LIMIT,
        P_SMTPD_CLIENT_MESSAGE_RATE_LIMIT,
        P_SMTPD_CLIENT_RECIPIENT_RATE_LIMIT,
    };
    static const char *const what[] = {"Connection", "Message delivery "
                                       "request", "Recipient address"};
    long long limit = config_num(s->cfg, limits[ev]);
    long n;

    if (limit == 0 || s->rate_exempt)
        return 0;
    n = smtpd_rate_add(s->io->srv->rates, s->addr, ev,
                       (long)config_num(s->cfg, P_ANVIL_RATE_TIME_UNIT),
                       time(NULL));
    if (n <= limit)
        return 0;
    msg_warn("%s rate limit exceeded: %ld from %s[%s] for service smtp",
             what[ev], n, s->name, s->addr);
    return 1;
}

static void
smtpd_cmd_mail(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    struct smtp_path path;
    const char *why;

    if (s->state == S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto fail;
    }
    if (s->state != S_READY) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        goto fail;
    }
    if (smtpd_tls_required(s)) {
        smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        goto fail;
    }
    if ((s->flags & LISTEN_SUBMISSION) && s->sasl_user == NULL) {
        smtpd_reply(s, "530 5.7.0 Authentication required");
        goto fail;
    }
    if (smtpd_parse_path(cmd->arg, "FROM:", 1, &path, &why) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> (%s)", why);
        goto fail;
    }
    if (smtpd_rate_exceeded(s, SMTPD_RATE_MESSAGE)) {
        smtpd_reply(s, "450 4.7.1 Error: too much mail from %s", s->addr);
        goto fail;
    }
    if (path.nparams > 0 && !s->esmtp) {
        smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                    path.params[0].key);
        goto fail;
    }
    s->env = envelope_new();
    s->bdat_used = 0;
    s->bdat_failed = 0;
    s->bdat_octets = 0;
    envelope_set(&s->env->sender, path.addr);
    if (smtpd_mail_params(s, &path) < 0) {
        envelope_free(&s->env);
        goto fail;
    }
    s->mail_size = s->env->size;
    switch (smtpd_storage_check(s, (unsigned long long)s->env->size)) {
    case 0:
        break;
    case 452:
        /* RFC 1870 section 6.2: a temporary shortage of space. */
        smtpd_reply(s, "452 4.3.1 Insufficient system storage");
        envelope_free(&s->env);
        goto fail;
    default:
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        envelope_free(&s->env);
        goto fail;
    }
    s->env->size = 0;
    if (!s->env->smtputf8 && !smtpd_ascii(path.addr)) {
        /* RFC 6531 section 3.4. */
        smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send non-ASCII "
                       "addresses");
        envelope_free(&s->env);
        goto fail;
    }
    if (!utf8_valid(path.addr)) {
        smtpd_reply(s, "501 5.1.7 Bad sender address syntax (not UTF-8)");
        envelope_free(&s->env);
        goto fail;
    }
    envelope_set(&s->env->client_name, s->name);
    envelope_set(&s->env->client_addr, s->addr);
    envelope_set(&s->env->helo, s->helo);
    /* RFC 3848's names for the protocol in Received: headers. */
    envelope_set(&s->env->protocol,
                 !s->esmtp ? "SMTP"
                 : s->tls_active ? (s->sasl_user ? "ESMTPSA" : "ESMTPS")
                 : s->sasl_user ? "ESMTPA" : "ESMTP");
    envelope_set(&s->env->sasl_user, s->sasl_user);
    /* Policy servers tell messages apart by this (Postfix's shape). */
    snprintf(s->instance, sizeof(s->instance), "%x.%llx.%lx",
             (unsigned)getpid(), (unsigned long long)clock_wall_us(),
             __atomic_fetch_add(&s->io->srv->instances, 1,
                                __ATOMIC_RELAXED));
    if (smtpd_milter_start(s, SMTPD_MILTER_EV_MAIL))
        return;
    smtpd_mail_ok(s);
    return;
fail:
    smtpd_count(s, cmd->verb, 0);
}

/* MAIL is accepted. */
static void
smtpd_mail_ok(smtpd_session_t *s)
{
    s->state = S_MAIL;
    smtpd_reply(s, "250 2.1.0 Ok");
    smtpd_count(s, SMTP_MAIL, 1);
}

/* The restriction lists a recipient goes through, in Postfix's order:
 * with smtpd_delay_reject, client, HELO and sender restrictions are all
 * applied at RCPT time. */
static const enum param_id smtpd_rcpt_lists[] = {
    P_SMTPD_CLIENT_RESTRICTIONS, P_SMTPD_HELO_RESTRICTIONS,
    P_SMTPD_SENDER_RESTRICTIONS, P_SMTPD_RELAY_RESTRICTIONS,
    P_SMTPD_RECIPIENT_RESTRICTIONS,
};

/* Nonzero if the maps parameter id has rcpt, or its "@domain". */
static int
smtpd_rcpt_in_maps(const smtpd_session_t *s, enum param_id id,
                   const char *rcpt)
{
    const char *value;

    return config_maps_lookup_addr(s->cfg, id, rcpt, &value);
}

/* For a local recipient: nonzero unless local_recipient_maps is set and
 * has neither the address, its local part, nor its mailbox name. */
static int
smtpd_rcpt_local_known(const smtpd_session_t *s, const char *rcpt,
                       const char *mailbox)
{
    const char *value;
    char *local;
    int known;

    if (config_tables(s->cfg, P_LOCAL_RECIPIENT_MAPS)[0] == NULL)
        return 1;
    local = addr_localpart(rcpt);
    known = config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, rcpt,
                               &value) ||
            config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, local,
                               &value) ||
            config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, mailbox,
                               &value);
    free(local);
    return known;
}

/* smtpd_reject_unlisted_recipient, for the class of rcpt's domain: a
 * recipient that virtual_alias_maps has is always known; otherwise the
 * table of its class must have it (local_recipient_maps, unless empty;
 * virtual_mailbox_maps; relay_recipient_maps, unless empty).  Returns 0,
 * or -1 with Postfix's reply in reply. */
static int
smtpd_rcpt_listed(const smtpd_session_t *s, const char *rcpt, buf_t *reply)
{
    enum resolve_class cls = resolve_class(s->cfg, addr_domain(rcpt));
    int soft = config_num(s->cfg, P_SOFT_BOUNCE) != 0;
    const char *moved = resolve_relocated(s->cfg, rcpt);
    char *mailbox = NULL;
    int known;

    if (moved != NULL) {
        buf_printf(reply, "%s <%s>: Recipient address rejected: User has "
                          "moved to %s",
                   soft ? "450 4.1.6" : "550 5.1.6", rcpt, moved);
        return -1;
    }

    if (cls == RESOLVE_DEFAULT)
        return 0;
    if (cls == RESOLVE_LOCAL) {
        mailbox = addr_mailbox_name(
            rcpt, config_str(s->cfg, P_RECIPIENT_DELIMITER));
        if (mailbox == NULL) {
            buf_printf(reply, "550 5.1.1 <%s>: Recipient address rejected: "
                              "not a valid mailbox name",
                       rcpt);
            return -1;
        }
    }
    if (!config_num(s->cfg, P_SMTPD_REJECT_UNLISTED_RECIPIENT) ||
        smtpd_rcpt_in_maps(s, P_VIRTUAL_ALIAS_MAPS, rcpt)) {
        free(mailbox);
        return 0;
    }
    switch (cls) {
    case RESOLVE_LOCAL:
        known = smtpd_rcpt_local_known(s, rcpt, mailbox);
        break;
    case RESOLVE_VIRTUAL_MAILBOX:
        known = smtpd_rcpt_in_maps(s, P_VIRTUAL_MAILBOX_MAPS, rcpt);
        break;
    case RESOLVE_RELAY:
        known = config_tables(s->cfg, P_RELAY_RECIPIENT_MAPS)[0] == NULL ||
                smtpd_rcpt_in_maps(s, P_RELAY_RECIPIENT_MAPS, rcpt);
        break;
    default: /* a virtual alias domain: only virtual_alias_maps knows */
        known = 0;
        break;
    }
    free(mailbox);
    if (known)
        return 0;
    buf_printf(reply, "%s <%s>: Recipient address rejected: User "
                      "unknown in %s %s",
               soft ? "450 4.1.1" : "550 5.1.1", rcpt, resolve_class_name(cls),
               cls == RESOLVE_LOCAL || cls == RESOLVE_RELAY ? "recipient table"
                                                            : "table");
    return -1;
}

/* A recipient on its way through the policy, possibly as a job.  What
 * the job needs of the TLS state is copied here on the session's
 * thread, which may shut the connection down while the job runs. */
struct smtpd_rcpt_job {
    char *addr;
    char *orcpt;
    int notify;
    int rc;
    buf_t reply;
    struct smtpd_check_acts acts;
    const char *tls_protocol;
    const char *tls_cipher;
    int tls_bits;
    int milter_refused;  /* the reply is a Milter's */
    struct smtpd_milter_info milter; /* for the Milters, when asked */
    char server_addr[64];
};

/* Decide whether a recipient may be accepted: the restriction lists,
 * then, for the domains of our address classes, whether the class's
 * tables know the recipient.  Returns 0 to accept, or -1 with the reply
 * in r->reply; r->acts gets what the restrictions ask of the message.
 * It reads only what the session does not change while it waits, so it
 * may run as a job; with may_wait 0 (on an I/O thread) policy servers
 * are not asked and their restrictions take the default action. */
static int
smtpd_rcpt_policy(const smtpd_session_t *s, struct smtpd_rcpt_job *r,
                  int may_wait)
{
    struct smtpd_check_ctx ctx;
    int rc = SMTPD_CHECK_DUNNO;
    size_t i;

    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = s->cfg;
    ctx.client_sa = (const struct sockaddr *)&s->sa;
    ctx.client_addr = s->addr;
    ctx.client_name = s->name;
    ctx.reverse_client_name = s->reverse_name;
    ctx.client_name_status = s->name_status;
    ctx.helo = s->helo;
    ctx.sender = s->env->sender;
    ctx.rcpt = r->addr;
    ctx.sasl_user = s->sasl_user;
    ctx.in_mynetworks = s->in_mynetworks;
    ctx.queue_id = s->env->id;
    ctx.protocol = s->esmtp ? "ESMTP" : "SMTP";
    ctx.sasl_method = s->sasl_method;
    ctx.instance = s->instance;
    ctx.size = s->mail_size;
    ctx.server_sa = s->have_server_sa
                    ? (const struct sockaddr *)&s->server_sa : NULL;
    ctx.tls_protocol = r->tls_protocol;
    ctx.tls_cipher = r->tls_cipher;
    ctx.tls_bits = r->tls_bits;
    ctx.policy = may_wait ? s->io->srv->policy : NULL;
    ctx.acts = &r->acts;
    for (i = 0; i < sizeof(smtpd_rcpt_lists) / sizeof(smtpd_rcpt_lists[0]) &&
                rc != SMTPD_CHECK_REJECT;
         i++)
        rc = smtpd_check(&ctx, smtpd_rcpt_lists[i], &r->reply);
    if (rc != SMTPD_CHECK_REJECT) {
        buf_reset(&r->reply);
        if (smtpd_rcpt_listed(s, r->addr, &r->reply) < 0)
            rc = SMTPD_CHECK_REJECT;
    }
    rc = smtpd_check_finish(&r->acts, rc, &r->reply);
    return rc == SMTPD_CHECK_REJECT ? -1 : 0;
}

/* The pool for checking a recipient: the policy pool when a policy
 * server may be asked (so that a slow one holds up no AUTH or DNS
 * job), the job pool when the DNS may be, else none. */
static pool_t *
smtpd_rcpt_pool(const smtpd_session_t *s)
{
    pool_t *pool = NULL;
    size_t i;

    for (i = 0; i < sizeof(smtpd_rcpt_lists) / sizeof(smtpd_rcpt_lists[0]);
         i++) {
        if (smtpd_check_needs_policy(s->cfg, smtpd_rcpt_lists[i]))
            return s->io->srv->policy_jobs;
        if (smtpd_check_needs_dns(s->cfg, smtpd_rcpt_lists[i]))
            pool = s->io->srv->jobs;
    }
    return pool;
}

/* The DSN parameters of RCPT (RFC 3461 sections 4.1 and 4.2). */
static int
smtpd_rcpt_params(smtpd_session_t *s, struct smtp_path *path, int *notify,
                  char **orcpt)
{
    size_t i;

    for (i = 0; i < path->nparams; i++) {
        struct smtp_param *p = &path->params[i];

        if (strcmp(p->key, "NOTIFY") == 0 && p->value && *notify == 0) {
            *notify = smtpd_parse_notify(p->value);
            if (*notify < 0) {
                smtpd_reply(s, "501 5.5.4 Bad NOTIFY parameter syntax");
                return -1;
            }
        } else if (strcmp(p->key, "ORCPT") == 0 && p->value &&
                   *orcpt == NULL) {
            const char *semi = strchr(p->value, ';');
            buf_t addr;

            buf_init(&addr);
            if (semi == NULL || semi == p->value ||
                smtpd_parse_xtext(semi + 1, &addr) < 0 || addr.len == 0) {
                buf_free(&addr);
                smtpd_reply(s, "501 5.5.4 Bad ORCPT parameter syntax");
                return -1;
            }
            *orcpt = mem_printf("%.*s;%s", (int)(semi - p->value), p->value,
                                addr.data);
            buf_free(&addr);
        } else {
            smtpd_reply(s, "555 5.5.4 Unsupported option: %s", p->key);
            return -1;
        }
    }
    return 0;
}

/* Accept or refuse the recipient, on the session's thread. */
static void
smtpd_rcpt_done(smtpd_session_t *s, struct smtpd_rcpt_job *r)
{
    rcpt_t *rc;

    if (r->rc < 0) {
        smtpd_reply(s, "%s", r->reply.data);
        smtpd_log_action(s, r->milter_refused ? "milter-reject" : "reject",
                         "RCPT", r->reply.data, r->addr);
        smtpd_count(s, SMTP_RCPT, 0);
        if (r->milter_refused && strncmp(r->reply.data, "421", 3) == 0)
            s->closing = 1;
        return;
    }
    if (s->env->id[0] == '\0') {
        /* Like Postfix, a queue ID is given with the first recipient. */
        queue_id_new(s->env->id);
        if (s->sasl_user)
            msg_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s",
                     s->env->id, s->name, s->addr, s->sasl_method,
                     s->sasl_user);
        else
            msg_info("%s: client=%s[%s]", s->env->id, s->name, s->addr);
    }
    smtpd_check_acts_merge(&s->tx, &r->acts);
    rc = envelope_add_rcpt(s->env, r->addr);
    rc->notify = r->notify;
    rc->orcpt = r->orcpt;
    r->orcpt = NULL;
    s->state = S_RCPT;
    smtpd_reply(s, "250 2.1.5 Ok");
    smtpd_count(s, SMTP_RCPT, 1);
}

static void
smtpd_rcpt_job_free(struct smtpd_rcpt_job *r)
{
    free(r->addr);
    free(r->orcpt);
    buf_free(&r->reply);
    smtpd_check_acts_free(&r->acts);
    free(r);
}

static void
smtpd_rcpt_work(struct smtpd_job *job)
{
    struct smtpd_rcpt_job *r = job->data;

    /* An I/O thread must not wait: the policy restrictions of a
     * session that found the queue full take the default action. */
    if (job->on_io_thread &&
        smtpd_rcpt_pool(job->s) == job->s->io->srv->policy_jobs)
        msg_warn("policy lookups: queue full, %s[%s] gets "
                 "smtpd_policy_service_default_action", job->s->name,
                 job->s->addr);
    r->rc = smtpd_rcpt_policy(job->s, r, !job->on_io_thread);
    if (r->rc == 0 && smtpd_milters_active(job->s->milters)) {
        if (job->on_io_thread)
            smtpd_milters_unavailable(job->s->milters,
                                      "milter job queue full");
        if (smtpd_milters_rcpt(job->s->milters, &r->milter, &r->reply) ==
            SMTPD_MILTER_REJECT) {
            r->rc = -1;
            r->milter_refused = 1;
        }
    }
}

static void
smtpd_rcpt_finish(struct smtpd_job *job)
{
    if (!job->s->dead)
        smtpd_rcpt_done(job->s, job->data);
    smtpd_rcpt_job_free(job->data);
}

static void
smtpd_cmd_rcpt(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    struct smtpd_rcpt_job *r;
    struct smtp_path path;
    pool_t *pool;
    const char *why;
    char *orcpt = NULL;
    int notify = 0;

    if (s->state != S_MAIL && s->state != S_RCPT) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        goto fail;
    }
    if (smtpd_parse_path(cmd->arg, "TO:", 0, &path, &why) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address> (%s)", why);
        goto fail;
    }
    if (smtpd_rcpt_params(s, &path, &notify, &orcpt) < 0)
        goto fail;
    if (!s->env->smtputf8 && !smtpd_ascii(path.addr)) {
        smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send non-ASCII "
                       "addresses");
        goto fail;
    }
    if (!utf8_valid(path.addr)) {
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax (not "
                       "UTF-8)");
        goto fail;
    }
    if ((long long)s->env->nrcpt >=
        config_num(s->cfg, P_SMTPD_RECIPIENT_LIMIT)) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        goto fail;
    }
    if (smtpd_rate_exceeded(s, SMTPD_RATE_RCPT)) {
        smtpd_reply(s, "450 4.7.1 Error: too many recipients from %s",
                    s->addr);
        goto fail;
    }
    r = mem_calloc(1, sizeof(*r));
    r->addr = mem_strdup(path.addr);
    r->orcpt = orcpt;
    r->notify = notify;
    buf_init(&r->reply);
    smtpd_check_acts_init(&r->acts);
    if (s->tls_active) {
        r->tls_protocol = tls_version(s->tls);
        r->tls_cipher = tls_cipher(s->tls);
        r->tls_bits = tls_cipher_bits(s->tls);
    }
    pool = smtpd_rcpt_pool(s);
    if (smtpd_milters_active(s->milters)) {
        smtpd_milter_info(s, &r->milter, r->server_addr,
                          sizeof(r->server_addr));
        r->milter.rcpt = r->addr;
        pool = s->io->srv->milter_jobs;
    }
    if (pool) {
        smtpd_job_start(s, pool, smtpd_rcpt_work, smtpd_rcpt_finish, r);
        return;
    }
    r->rc = smtpd_rcpt_policy(s, r, 0);
    smtpd_rcpt_done(s, r);
    smtpd_rcpt_job_free(r);
    return;
fail:
    free(orcpt);
    smtpd_count(s, cmd->verb, 0);
}

static void
smtpd_cmd_data(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    if (s->state == S_READY || s->state == S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (s->state == S_MAIL) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (cmd->arg[0] != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (s->bdat_used) {
        /* RFC 3030 section 2: no DATA in a transaction that has BDAT. */
        smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    buf_reset(&s->data);
    s->data_size = 0;
    s->data_too_big = 0;
    smtpd_data_begin(&s->data_rd);
    s->state = S_DATA;
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void smtpd_data_add(smtpd_session_t *s, const char *p, size_t len,
                           int newline);
static void smtpd_data_end(smtpd_session_t *s);
static void smtpd_data_take(void *arg, const char *p, size_t len,
                            int newline);

/* BDAT size [LAST] (RFC 3030).  The chunk is always read, even when the
 * command is refused, so that the session stays in step; every BDAT of
 * a refused transaction gets its own 503. */
static void
smtpd_cmd_bdat(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    long long size;
    int last;

    if (smtpd_parse_bdat(cmd->arg, &size, &last) < 0) {
        /* Without a valid size we cannot find the next command. */
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
        smtpd_count(s, cmd->verb, 0);
        s->closing = 1;
        return;
    }
    if (s->state != S_RCPT || s->bdat_failed) {
        smtpd_reply(s, "503 5.5.1 Error: %s",
                    s->state == S_MAIL ? "no valid recipients"
                    : s->state == S_RCPT ? "transaction already failed"
                                         : "need RCPT command");
        s->bdat_failed = 1;
    } else if (!s->bdat_used) {
        buf_reset(&s->data);
        s->data_size = 0;
        s->data_too_big = 0;
        smtpd_bdat_begin(&s->bdat_rd);
    }
    s->bdat_prev = s->state;
    s->bdat_used = 1;
    s->bdat_left = size;
    s->bdat_last = last;
    s->state = S_BDAT;
}

/* Store a chunk with LF line endings (smtpd_data says how). */
static void
smtpd_bdat_add(smtpd_session_t *s, const char *p, size_t len)
{
    if (!s->bdat_failed)
        smtpd_bdat_feed(&s->bdat_rd, p, len, smtpd_data_take, s);
}

/* Consume chunk bytes; returns 1 when the chunk is complete. */
static int
smtpd_bdat_step(smtpd_session_t *s)
{
    size_t take = s->in.len;

    if ((long long)take > s->bdat_left)
        take = (size_t)s->bdat_left;
    if (take > 0) {
        s->bdat_octets += (long long)take;
        smtpd_bdat_add(s, s->in.data, take);
        buf_consume(&s->in, take);
        s->bdat_left -= (long long)take;
    }
    if (s->bdat_left > 0)
        return 0;
    if (s->bdat_failed) {
        s->state = s->bdat_prev;
        smtpd_count(s, SMTP_BDAT, 0);
        if (s->bdat_last) {
            smtpd_reset(s);
            s->bdat_failed = 0;
        }
        return 1;
    }
    if (!s->bdat_last) {
        s->state = S_RCPT;
        smtpd_reply(s, "250 2.0.0 Ok: %lld octets received",
                    s->bdat_octets);
        smtpd_count(s, SMTP_BDAT, 1);
        return 1;
    }
    smtpd_bdat_end(&s->bdat_rd, smtpd_data_take, s);
    smtpd_data_end(s);
    return 1;
}

/*
 * AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.  The password check
 * hashes, which takes milliseconds, so it runs as a job.
 */
enum {
    AUTH_NONE,
    AUTH_PLAIN,      /* waiting for the PLAIN response */
    AUTH_LOGIN_USER, /* waiting for the LOGIN user name */
    AUTH_LOGIN_PASS, /* waiting for the LOGIN password */
};

struct smtpd_auth_job {
    smtpd_auth_db_t *db;
    char *user;
    char *pass;
    char *mech;
    int ok;
};

/* What pc holds for cfg, built anew if a reload changed the config;
 * a reference, or NULL if it cannot be built. */
static void *
smtpd_per_config_get(smtpd_server_t *srv, struct smtpd_per_config *pc,
                     config_t *cfg)
{
    config_t *now = config_current();
    void *obj;
    buf_t err;

    pthread_mutex_lock(&srv->cache_lock);
    if (pc->cfg != cfg && (pc->obj == NULL || cfg == now)) {
        buf_init(&err);
        obj = pc->open(cfg, &err);
        if (obj == NULL) {
            msg_warn("%s: %s", pc->failed, err.data ? err.data : "?");
        } else {
            if (pc->obj)
                pc->unref(pc->obj);
            config_unref(&pc->cfg);
            pc->obj = obj;
            pc->cfg = config_ref(cfg);
        }
        buf_free(&err);
    }
    obj = pc->obj ? pc->ref(pc->obj) : NULL;
    pthread_mutex_unlock(&srv->cache_lock);
    config_unref(&now);
    return obj;
}

/* Let go of what pc holds. */
static void
smtpd_per_config_free(struct smtpd_per_config *pc)
{
    if (pc->obj)
        pc->unref(pc->obj);
    pc->obj = NULL;
    config_unref(&pc->cfg);
}

static void *
smtpd_auth_db_open_cfg(const config_t *cfg, buf_t *err)
{
    return smtpd_auth_db_open(config_str(cfg, P_SMTPD_SASL_PATH), err);
}

static void *
smtpd_auth_db_ref_obj(void *obj)
{
    return smtpd_auth_db_ref(obj);
}

static void
smtpd_auth_db_unref_obj(void *obj)
{
    smtpd_auth_db_t *db = obj;

    smtpd_auth_db_free(&db);
}

/* The password db for the session's config, or NULL; a reference. */
static smtpd_auth_db_t *
smtpd_auth_db(smtpd_server_t *srv, config_t *cfg)
{
    return smtpd_per_config_get(srv, &srv->auth, cfg);
}

static void
smtpd_auth_work(struct smtpd_job *job)
{
    struct smtpd_auth_job *a = job->data;

    a->ok = a->db && smtpd_auth_db_check(a->db, a->user, a->pass);
}

static void
smtpd_auth_finish(struct smtpd_job *job)
{
    struct smtpd_auth_job *a = job->data;
    smtpd_session_t *s = job->s;

    if (a->ok) {
        s->sasl_user = a->user;
        s->sasl_method = a->mech;
        a->user = a->mech = NULL;
        smtpd_auth_limiter_success(s->io->srv->auth_limiter, s->addr,
                                   time(NULL));
        smtpd_reply(s, "235 2.7.0 Authentication successful");
        smtpd_count(s, SMTP_AUTH, 1);
    } else {
        smtpd_auth_limiter_fail(s->io->srv->auth_limiter, s->addr,
                                time(NULL));
        smtpd_auth_log_failure(s->name, s->addr, a->mech,
                               "authentication failure");
        smtpd_reply(s, "535 5.7.8 Error: authentication failed: "
                       "authentication failure");
        smtpd_count(s, SMTP_AUTH, 0);
    }
    smtpd_auth_db_free(&a->db);
    free(a->user);
    smtpd_auth_secret_free(&a->pass);
    free(a->mech);
    free(a);
}

/* Check user and password in a job; takes both strings. */
static void
smtpd_auth_verify(smtpd_session_t *s, const char *mech, char *user,
                  char *pass)
{
    struct smtpd_auth_job *a = mem_calloc(1, sizeof(*a));

    a->db = smtpd_auth_db(s->io->srv, s->cfg);
    a->user = user;
    a->pass = pass;
    a->mech = mem_strdup(mech);
    smtpd_job_start(s, s->io->srv->jobs, smtpd_auth_work, smtpd_auth_finish,
                    a);
}

static void
smtpd_auth_fail(smtpd_session_t *s, const char *mech, const char *reply)
{
    smtpd_auth_log_failure(s->name, s->addr, mech, "malformed response");
    smtpd_auth_limiter_fail(s->io->srv->auth_limiter, s->addr, time(NULL));
    smtpd_reply(s, "%s", reply);
    smtpd_count(s, SMTP_AUTH, 0);
}

/* One response line of an AUTH dialogue (or the initial response). */
static void
smtpd_auth_response(smtpd_session_t *s, const char *line)
{
    int step = s->auth_step;
    char *authzid = NULL;
    char *user = NULL;
    char *pass = NULL;
    int rc;

    s->auth_step = AUTH_NONE;
    if (strcmp(line, "*") == 0) {
        /* RFC 4954 section 4: the client gave up. */
        mem_freep(&s->auth_login);
        smtpd_reply(s, "501 5.7.0 Authentication aborted");
        smtpd_count(s, SMTP_AUTH, 0);
        return;
    }
    switch (step) {
    case AUTH_PLAIN:
        rc = smtpd_auth_plain_parse(line, &authzid, &user, &pass);
        free(authzid);
        if (rc == -2) {
            smtpd_auth_fail(s, "PLAIN", "535 5.7.8 Error: authentication "
                                        "failed: authorization identity "
                                        "not allowed");
            return;
        }
        if (rc < 0) {
            smtpd_auth_fail(s, "PLAIN", "501 5.5.2 Error: malformed "
                                        "authentication response");
            return;
        }
        smtpd_auth_verify(s, "PLAIN", user, pass);
        return;
    case AUTH_LOGIN_USER:
        if (smtpd_auth_login_decode(line, &s->auth_login) < 0) {
            smtpd_auth_fail(s, "LOGIN", "501 5.5.2 Error: malformed "
                                        "authentication response");
            return;
        }
        /* "Password:" in base64. */
        smtpd_reply(s, "334 UGFzc3dvcmQ6");
        s->auth_step = AUTH_LOGIN_PASS;
        return;
    case AUTH_LOGIN_PASS:
        if (smtpd_auth_login_decode(line, &pass) < 0) {
            mem_freep(&s->auth_login);
            smtpd_auth_fail(s, "LOGIN", "501 5.5.2 Error: malformed "
                                        "authentication response");
            return;
        }
        user = s->auth_login;
        s->auth_login = NULL;
        smtpd_auth_verify(s, "LOGIN", user, pass);
        return;
    default:
        msg_panic("AUTH response in step %d", step);
    }
}

static void
smtpd_cmd_auth(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    char *mech = cmd->arg;
    char *initial = strchr(mech, ' ');
    const char *refusal = NULL;

    if (initial)
        *initial++ = '\0';
    if (!smtpd_auth_enabled(s))
        refusal = "503 5.5.1 Error: authentication not enabled";
    else if (s->state == S_CONNECTED || !s->esmtp)
        refusal = "503 5.5.1 Error: send EHLO first";
    else if (s->sasl_user)
        refusal = "503 5.5.1 Error: already authenticated";
    else if (s->state != S_READY)
        refusal = "503 5.5.1 Error: MAIL transaction in progress";
    else if (!s->tls_active && config_num(s->cfg, P_SMTPD_TLS_AUTH_ONLY))
        refusal = "538 5.7.11 Encryption required for requested "
                  "authentication mechanism";
    else if (smtpd_auth_limiter_blocked(s->io->srv->auth_limiter, s->addr,
                                        time(NULL)))
        refusal = "454 4.7.0 Too many failed authentication attempts; try "
                  "again later";
    else if (strcasecmp(mech, "PLAIN") != 0 && strcasecmp(mech, "LOGIN") != 0)
        refusal = "504 5.5.4 Unsupported authentication mechanism";
    if (refusal) {
        smtpd_reply(s, "%s", refusal);
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (strcasecmp(mech, "PLAIN") == 0) {
        s->auth_step = AUTH_PLAIN;
        if (initial == NULL) {
            smtpd_reply(s, "334 ");
            return;
        }
    } else {
        s->auth_step = AUTH_LOGIN_USER;
        if (initial == NULL) {
            /* "Username:" in base64. */
            smtpd_reply(s, "334 VXNlcm5hbWU6");
            return;
        }
    }
    /* RFC 4954 section 4: "=" is an empty initial response. */
    smtpd_auth_response(s, strcmp(initial, "=") == 0 ? "" : initial);
}

static void
smtpd_cmd_simple(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    switch (cmd->verb) {
    case SMTP_RSET:
        if (cmd->arg[0] != '\0') {
            smtpd_reply(s, "501 5.5.4 Syntax: RSET");
            smtpd_count(s, cmd->verb, 0);
            return;
        }
        smtpd_reset(s);
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_NOOP:
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_QUIT:
        smtpd_reply(s, "221 2.0.0 Bye");
        s->closing = 1;
        break;
    case SMTP_VRFY:
        /* RFC 5321 section 3.5.3: 252 when we will not say. */
        smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
                       "message and attempt delivery");
        break;
    case SMTP_HELP:
        smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
                       "NOOP VRFY HELP QUIT");
        break;
    default:
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    smtpd_count(s, cmd->verb, 1);
}

static const struct {
    enum smtp_verb verb;
    void (*fn)(smtpd_session_t *, struct smtp_cmd *);
} smtpd_commands[] = {
    {SMTP_HELO, smtpd_cmd_helo},     {SMTP_EHLO, smtpd_cmd_helo},
    {SMTP_MAIL, smtpd_cmd_mail},     {SMTP_RCPT, smtpd_cmd_rcpt},
    {SMTP_DATA, smtpd_cmd_data},     {SMTP_RSET, smtpd_cmd_simple},
    {SMTP_NOOP, smtpd_cmd_simple},   {SMTP_QUIT, smtpd_cmd_simple},
    {SMTP_VRFY, smtpd_cmd_simple},   {SMTP_HELP, smtpd_cmd_simple},
    {SMTP_EXPN, smtpd_cmd_simple},   {SMTP_STARTTLS, smtpd_cmd_starttls},
    {SMTP_AUTH, smtpd_cmd_auth},   {SMTP_BDAT, smtpd_cmd_bdat},
};

/* Run one command line (line ending removed). */
static void
smtpd_command(smtpd_session_t *s, char *line, size_t len)
{
    struct smtp_cmd cmd;
    size_t i;

    if (memchr(line, '\0', len) != NULL) {
        s->auth_step = AUTH_NONE;
        smtpd_reply(s, "500 5.5.2 Error: NUL character in command");
        smtpd_count(s, SMTP_UNKNOWN, 0);
        return;
    }
    if (s->auth_step != AUTH_NONE) {
        smtpd_auth_response(s, line);
        return;
    }
    smtpd_parse_command(line, &cmd);
    s->last_verb = cmd.verb;
    for (i = 0; i < sizeof(smtpd_commands) / sizeof(smtpd_commands[0]);
         i++) {
        if (smtpd_commands[i].verb == cmd.verb) {
            smtpd_commands[i].fn(s, &cmd);
            return;
        }
    }
    smtpd_reply(s, "500 5.5.2 Error: command not recognized");
    smtpd_count(s, SMTP_UNKNOWN, 0);
}

/* Take message bytes into the transaction, minding the size limit. */
static void
smtpd_data_add(smtpd_session_t *s, const char *p, size_t len, int newline)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);

    s->data_size += (int64_t)len + (newline != 0);
    if (limit > 0 && s->data_size > limit) {
        s->data_too_big = 1;
        buf_free(&s->data);
        return;
    }
    buf_append(&s->data, p, len);
    if (newline)
        buf_putc(&s->data, '\n');
}

/* smtpd_data's callback: message text into the transaction. */
static void
smtpd_data_take(void *arg, const char *p, size_t len, int newline)
{
    smtpd_data_add(arg, p, len, newline);
}

/* Consume message lines from the input; returns 0 when more input is
 * needed, 1 when the end of the message was reached. */
static int
smtpd_data_step(smtpd_session_t *s)
{
    if (smtpd_data_feed(&s->data_rd, &s->in, SMTPD_DATA_CHUNK,
                        smtpd_data_take, s) == 0)
        return 0;
    smtpd_data_end(s);
    return 1;
}

static void smtpd_process(smtpd_session_t *s);

/* Back on the session's thread with the commit's outcome. */
static void
smtpd_commit_finish(void *arg)
{
    cleanup_req_t *req = arg;
    smtpd_session_t *s = req->arg;

    if (req->reply[0] == '\0') {
        msg_debug("%s: queued", req->env->id);
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", req->env->id);
        stats_received(req->env->arrival_us);
        smtpd_count(s, s->bdat_used ? SMTP_BDAT : SMTP_DATA, 1);
    } else {
        smtpd_reply(s, "%s", req->reply);
        smtpd_count(s, s->bdat_used ? SMTP_BDAT : SMTP_DATA, 0);
    }
    cleanup_req_free(&req);
    s->busy = 0;
    s->state = S_READY;
    smtpd_reset(s);
    if (s->dead) {
        smtpd_close(s);
        return;
    }
    if (s->io->shutting_down) {
        smtpd_reply(s, "421 4.3.2 Service shutting down");
        smtpd_close(s);
        return;
    }
    smtpd_process(s);
}

/* Called on the committer (or a cleanup) thread. */
static void
smtpd_committed(cleanup_req_t *req, int status, const char *reply)
{
    smtpd_session_t *s = req->arg;

    if (status == 0)
        req->reply[0] = '\0';
    event_post(s->io->loop, smtpd_commit_finish, req);
}

static void
smtpd_data_end(smtpd_session_t *s)
{
    if (s->data_too_big) {
        smtpd_reply(s, "552 5.3.4 Error: message file too big");
        smtpd_count(s, s->bdat_used ? SMTP_BDAT : SMTP_DATA, 0);
        smtpd_reset(s);
        return;
    }
    if (smtpd_milter_start(s, SMTPD_MILTER_EV_MESSAGE))
        return;
    smtpd_data_commit(s, NULL);
}

/* Hand the message to cleanup with what the Milters asked to change
 * (edits, taken; NULL for nothing). */
static void
smtpd_data_commit(smtpd_session_t *s, cleanup_edits_t *edits)
{
    cleanup_req_t *req;

    req = mem_calloc(1, sizeof(*req));
    req->edits = edits;
    req->env = s->env;
    req->msg = s->data;
    req->cfg = config_ref(s->cfg);
    req->done = smtpd_committed;
    req->arg = s;
    req->nofilter = (s->flags & LISTEN_NOFILTER) != 0;
    if (s->tx.prepend.len > 0)
        req->prepend = buf_steal(&s->tx.prepend);
    req->redirect = s->tx.redirect;
    s->tx.redirect = NULL;
    req->filter = s->tx.filter;
    s->tx.filter = NULL;
    req->bcc = s->tx.bcc;
    s->tx.bcc = NULL;
    req->hold = s->tx.hold;
    req->discard = s->tx.discard;
    if (s->tls_active)
        req->tls_info = mem_printf("%s with cipher %s (%d/%d bits)",
                                   tls_version(s->tls), tls_cipher(s->tls),
                                   tls_cipher_bits(s->tls),
                                   tls_cipher_bits(s->tls));
    s->env = NULL;
    buf_init(&s->data);
    s->state = S_COMMIT;
    s->busy = 1;
    if (cleanup_submit(s->io->srv->cleanup, req) < 0) {
        s->env = req->env;
        req->env = NULL;
        cleanup_req_free(&req);
        s->busy = 0;
        s->state = S_RCPT;
        smtpd_reply(s, "451 4.3.0 Error: queue busy, try again later");
        smtpd_count(s, s->bdat_used ? SMTP_BDAT : SMTP_DATA, 0);
        smtpd_reset(s);
        return;
    }
    /* Read nothing more until the commit is done. */
    smtpd_watch_update(s);
}

/* Handle every complete command or message line in the input. */
static void
smtpd_process(smtpd_session_t *s)
{
    size_t limit = (size_t)config_num(s->cfg, P_LINE_LENGTH_LIMIT);
    size_t unread = s->in.len;
    int errors_before;

    while (!s->closing && !s->dead && !s->busy && !s->starttls &&
           s->out.len < SMTPD_OUT_HIGH) {
        char *nl;
        size_t len;
        char *line;

        if (s->state == S_DATA) {
            if (smtpd_data_step(s) == 0)
                break;
            continue;
        }
        if (s->state == S_BDAT) {
            if (smtpd_bdat_step(s) == 0)
                break;
            continue;
        }
        nl = s->in.len ? memchr(s->in.data, '\n', s->in.len) : NULL;
        if (nl == NULL) {
            if (s->in.len > (limit < 12288 ? 12288 : limit)) {
                buf_reset(&s->in);
                s->skip_line = 1;
            }
            break;
        }
        len = (size_t)(nl - s->in.data);
        /* RFC 4954 section 4 lets AUTH responses run to 12288 octets. */
        if (s->skip_line ||
            len > (s->auth_step != AUTH_NONE && limit < 12288 ? 12288
                                                              : limit)) {
            s->skip_line = 0;
            s->auth_step = AUTH_NONE;
            buf_consume(&s->in, len + 1);
            smtpd_reply(s, "500 5.5.2 Error: line too long");
            smtpd_count(s, SMTP_UNKNOWN, 0);
            continue;
        }
        if (len > 0 && s->in.data[len - 1] == '\r')
            len--;
        line = mem_strndup(s->in.data, len);
        buf_consume(&s->in, (size_t)(nl - s->in.data) + 1);
        errors_before = s->errors;
        smtpd_command(s, line, len);
        free(line);
        if (s->errors >= config_num(s->cfg, P_SMTPD_HARD_ERROR_LIMIT)) {
            smtpd_reply(s, "421 4.7.0 %s Error: too many errors",
                        config_str(s->cfg, P_MYHOSTNAME));
            msg_info("too many errors after %s from %s[%s]",
                     smtpd_verb_name(s->last_verb), s->name, s->addr);
            s->closing = 1;
        } else if (s->errors > errors_before &&
                   s->errors >= config_num(s->cfg, P_SMTPD_SOFT_ERROR_LIMIT)) {
            /* Past the soft limit, each error costs the client a second,
             * as smtpd_error_sleep_time does in Postfix; the session
             * sleeps without holding up the thread. */
            s->pause_until = clock_mono_ms() + 1000;
            s->busy = 1;
            break;
        }
    }
    /* The timeout measures progress, not bytes: a client that trickles
     * a line one byte at a time gets no more time than a silent one. */
    if (s->in.len < unread)
        s->last_active = clock_mono_ms();
    smtpd_flush(s);
    if (s->starttls && s->out.len == 0 && !s->dead) {
        /* RFC 3207 section 4.2: what the client sent before the
         * handshake is discarded, and so is what it told us. */
        s->starttls = 0;
        buf_reset(&s->in);
        smtpd_reset(s);
        free(s->helo);
        s->helo = NULL;
        mem_freep(&s->sasl_user);
        mem_freep(&s->sasl_method);
        s->esmtp = 0;
        s->state = S_CONNECTED;
        if (smtpd_tls_begin(s) < 0) {
            s->closing = 1;
            smtpd_reply(s, "454 4.7.0 TLS not available due to local "
                           "problem");
        } else if (smtpd_tls_step(s) < 0) {
            return;
        }
    }
    if (s->dead && !s->busy) {
        smtpd_close(s);
        return;
    }
    if (s->closing && s->out.len == 0) {
        smtpd_close(s);
        return;
    }
    smtpd_watch_update(s);
}

/* Read what the connection has; returns -1 once the session is gone. */
static int
smtpd_read(smtpd_session_t *s)
{
    char chunk[SMTPD_READ_SIZE];
    int rounds;

    /* TLS may hold decrypted bytes that epoll cannot see: drain them,
     * a bounded number of records per wakeup. */
    for (rounds = 0; rounds < 8; rounds++) {
        ssize_t n;

        if (s->tls_active) {
            n = tls_read(s->tls, chunk, sizeof(chunk));
            s->tls_rwant = 0;
            if (n == -2) {
                s->tls_rwant = tls_want(s->tls);
                return 0;
            }
            if (n < 0)
                msg_info("TLS read error from %s[%s]: %s", s->name, s->addr,
                         tls_error(s->tls));
        } else {
            n = read(s->watch.fd, chunk, sizeof(chunk));
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        }
        if (n <= 0) {
            if (!s->closing)
                msg_info("lost connection after %s from %s[%s]",
                         smtpd_state_name(s->state), s->name, s->addr);
            s->dead = 1;
            smtpd_close(s);
            return -1;
        }
        buf_append(&s->in, chunk, (size_t)n);
        if (!s->tls_active || tls_pending(s->tls) == 0)
            break;
    }
    return 0;
}

/* Drive the TLS handshake; returns -1 once the session is gone. */
static int
smtpd_tls_step(smtpd_session_t *s)
{
    int rc = tls_handshake(s->tls);

    if (rc == 0) {
        smtpd_watch_update(s);
        return 0;
    }
    if (rc < 0) {
        msg_info("SSL_accept error from %s[%s]: %s", s->name, s->addr,
                 tls_error(s->tls));
        s->dead = 1;
        smtpd_close(s);
        return -1;
    }
    s->tls_handshake = 0;
    s->tls_active = 1;
    s->last_active = clock_mono_ms();
    msg_info("Anonymous TLS connection established from %s[%s]: %s with "
             "cipher %s (%d/%d bits)",
             s->name, s->addr, tls_version(s->tls), tls_cipher(s->tls),
             tls_cipher_bits(s->tls), tls_cipher_bits(s->tls));
    if (s->flags & LISTEN_SMTPS)
        smtpd_reply(s, "220 %s", config_str(s->cfg, P_SMTPD_BANNER));
    return 0;
}

static void
smtpd_on_io(void *arg, uint32_t events)
{
    smtpd_session_t *s = arg;

    if (s->tls_handshake) {
        if (smtpd_tls_step(s) < 0)
            return;
        if (s->tls_handshake)
            return;
        smtpd_process(s);
        return;
    }
    if (events & EPOLLOUT)
        smtpd_flush(s);
    if (s->busy) {
        /* Not reading; a hangup is noticed once the work is done. */
        if (events & (EPOLLHUP | EPOLLERR)) {
            event_watch_del(s->io->loop, &s->watch);
            s->unwatched = 1;
        }
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) ||
        (s->tls_rwant && (events & s->tls_rwant))) {
        if (smtpd_read(s) < 0)
            return;
    }
    smtpd_process(s);
}

static void *
smtpd_tls_ctx_open(const config_t *cfg, buf_t *err)
{
    return tls_server_ctx_new(config_str(cfg, P_SMTPD_TLS_CERT_FILE),
                              config_str(cfg, P_SMTPD_TLS_KEY_FILE), err);
}

static void *
smtpd_tls_ctx_ref_obj(void *obj)
{
    return tls_ctx_ref(obj);
}

static void
smtpd_tls_ctx_unref_obj(void *obj)
{
    tls_ctx_t *ctx = obj;

    tls_ctx_unref(&ctx);
}

/* The TLS context for cfg, made anew after a reload changed it.
 * Returns a reference, or NULL when no certificate is configured. */
static tls_ctx_t *
smtpd_tls_ctx(smtpd_server_t *srv, config_t *cfg)
{
    if (config_str(cfg, P_SMTPD_TLS_CERT_FILE)[0] == '\0')
        return NULL;
    return smtpd_per_config_get(srv, &srv->tls, cfg);
}

/* Begin the handshake on the session's socket. */
static int
smtpd_tls_begin(smtpd_session_t *s)
{
    tls_ctx_t *ctx = smtpd_tls_ctx(s->io->srv, s->cfg);

    if (ctx == NULL)
        return -1;
    s->tls = tls_conn_new(ctx, s->watch.fd, 1);
    tls_ctx_unref(&ctx);
    s->tls_handshake = 1;
    /* The whole handshake must fit in one timeout. */
    s->last_active = clock_mono_ms();
    return 0;
}

/* Connect to the session's Milters, if any, as a job; input waits. */
static void
smtpd_session_milters(smtpd_session_t *s)
{
    s->milters = smtpd_milters_new(s->cfg,
                                   config_list(s->cfg, P_SMTPD_MILTERS, NULL),
                                   s->io->srv->policy);
    smtpd_milter_start(s, SMTPD_MILTER_EV_CONNECT);
}

/* Start a session for an accepted socket, on its I/O thread. */
static void smtpd_greet(smtpd_session_t *s);
static void smtpd_peer_work(struct smtpd_job *job);
static void smtpd_peer_done(struct smtpd_job *job);

static void
smtpd_session_start(void *arg)
{
    struct smtpd_accepted *acc = arg;
    struct smtpd_io *io = acc->io;
    smtpd_session_t *s;
    char *const *nets;

    if (io->shutting_down) {
        if (acc->counted) {
            char addr[64];

            addr_numeric((struct sockaddr *)&acc->sa, addr, sizeof(addr));
            smtpd_client_add(io->srv, addr, -1);
        }
        close(acc->fd);
        free(acc);
        __atomic_sub_fetch(&io->srv->nsessions, 1, __ATOMIC_RELAXED);
        return;
    }
    s = mem_calloc(1, sizeof(*s));
    s->io = io;
    s->watch.fd = acc->fd;
    s->watch.fn = smtpd_on_io;
    s->watch.arg = s;
    s->cfg = config_current();
    addr_numeric((struct sockaddr *)&acc->sa, s->addr, sizeof(s->addr));
    {
        socklen_t len = sizeof(s->server_sa);

        s->have_server_sa = getsockname(acc->fd,
                                        (struct sockaddr *)&s->server_sa,
                                        &len) == 0;
    }
    snprintf(s->name, sizeof(s->name), "unknown");
    snprintf(s->reverse_name, sizeof(s->reverse_name), "unknown");
    nets = config_list(s->cfg, P_MYNETWORKS, NULL);
    s->in_mynetworks = addr_in_networks((struct sockaddr *)&acc->sa, nets);
    s->rate_exempt = addr_in_networks(
        (struct sockaddr *)&acc->sa,
        config_list(s->cfg, P_SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS, NULL));
    s->flags = acc->flags;
    memcpy(&s->sa, &acc->sa, sizeof(s->sa));
    s->counted = acc->counted;
    s->last_active = clock_mono_ms();
    s->state = S_CONNECTED;
    free(acc);
    s->next = io->sessions;
    if (io->sessions)
        io->sessions->prev = s;
    io->sessions = s;
    stats_count(STATS_CONNECTIONS);
    if (event_watch_add(io->loop, &s->watch, EPOLLIN) < 0) {
        msg_warn("epoll_ctl: %s", strerror(errno));
        smtpd_close(s);
        return;
    }
    if (config_num(s->cfg, P_SMTPD_PEERNAME_LOOKUP)) {
        /* As Postfix, the name is known before the greeting. */
        smtpd_job_start(s, io->srv->jobs, smtpd_peer_work, smtpd_peer_done,
                        NULL);
        return;
    }
    s->name_status = DNS_NOTFOUND;
    smtpd_greet(s);
}

/* The client's name: a PTR record that points back at its address. */
static void
smtpd_peer_work(struct smtpd_job *job)
{
    smtpd_session_t *s = job->s;

    s->name_status = dns_client_name(s->addr, s->name, s->reverse_name,
                                     sizeof(s->name));
}

static void
smtpd_peer_done(struct smtpd_job *job)
{
    if (!job->s->dead)
        smtpd_greet(job->s);
}

/* The connect line, then TLS for an smtps listener, then the banner. */
static void
smtpd_greet(smtpd_session_t *s)
{
    msg_info("connect from %s[%s]", s->name, s->addr);
    if (s->flags & LISTEN_SMTPS) {
        /* RFC 8314: TLS from the first byte, the banner after it. */
        if (smtpd_tls_begin(s) < 0) {
            msg_warn("smtps listener without smtpd_tls_cert_file: closing "
                     "connection from %s[%s]", s->name, s->addr);
            smtpd_close(s);
            return;
        }
        if (smtpd_tls_step(s) < 0)
            return;
        if (!s->tls_handshake) {
            /* The handshake may finish at once: send the banner now. */
            smtpd_flush(s);
            smtpd_watch_update(s);
        }
        smtpd_session_milters(s);
        return;
    }
    smtpd_reply(s, "220 %s", config_str(s->cfg, P_SMTPD_BANNER));
    smtpd_flush(s);
    smtpd_session_milters(s);
}

/* Five times a second: end sessions that have been silent too long. */
static void
smtpd_io_tick(void *arg)
{
    struct smtpd_io *io = arg;
    smtpd_session_t *s = io->sessions;
    int64_t now = clock_mono_ms();

    if (io == &io->srv->io[0])
        smtpd_policy_sweep(io->srv->policy, now);
    while (s) {
        smtpd_session_t *next = s->next;

        long long limit = config_num(s->cfg, s->state == S_DATA ||
                                                     s->state == S_BDAT
                                                 ? P_SMTPD_DATA_TIMEOUT
                                                 : P_SMTPD_TIMEOUT);

        if (s->pause_until && now >= s->pause_until) {
            s->pause_until = 0;
            s->busy = 0;
            s->last_active = now;
            smtpd_process(s);
        } else if (!s->busy && !s->dead &&
                   now - s->last_active >= limit * 1000) {
            msg_info("timeout after %s from %s[%s]",
                     smtpd_state_name(s->state), s->name, s->addr);
            smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded",
                        config_str(s->cfg, P_MYHOSTNAME));
            smtpd_close(s);
        }
        s = next;
    }
}

/* Tell every session on this thread that we are going away. */
static void
smtpd_io_shutdown(void *arg)
{
    struct smtpd_io *io = arg;
    smtpd_session_t *s = io->sessions;

    io->shutting_down = 1;
    while (s) {
        smtpd_session_t *next = s->next;

        /* A session waiting for its commit is answered first; one that
         * only sleeps after errors is not waited for. */
        if (s->pause_until) {
            s->pause_until = 0;
            s->busy = 0;
        }
        if (!s->busy) {
            smtpd_reply(s, "421 4.3.2 Service shutting down");
            smtpd_close(s);
        }
        s = next;
    }
    if (io->sessions == NULL)
        event_loop_stop(io->loop);
}

static void *
smtpd_io_main(void *arg)
{
    struct smtpd_io *io = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role("smtpd");
    event_loop_run(io->loop);
    return NULL;
}

smtpd_server_t *
smtpd_server_new(int io_threads, cleanup_t *cleanup)
{
    smtpd_server_t *srv = mem_calloc(1, sizeof(*srv));
    int i;
    int err;

    if (io_threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        io_threads = cpus > 0 ? (int)cpus : 1;
    }
    srv->nio = io_threads;
    srv->cleanup = cleanup;
    pthread_mutex_init(&srv->clients_lock, NULL);
    srv->rates = smtpd_rate_new();
    pthread_mutex_init(&srv->cache_lock, NULL);
    srv->tls.failed = "TLS disabled";
    srv->tls.open = smtpd_tls_ctx_open;
    srv->tls.ref = smtpd_tls_ctx_ref_obj;
    srv->tls.unref = smtpd_tls_ctx_unref_obj;
    srv->auth.failed = "AUTH unavailable";
    srv->auth.open = smtpd_auth_db_open_cfg;
    srv->auth.ref = smtpd_auth_db_ref_obj;
    srv->auth.unref = smtpd_auth_db_unref_obj;
    {
        config_t *cfg = config_current();

        srv->auth_limiter = smtpd_auth_limiter_new(
            (int)config_num(cfg, P_SMTPD_SASL_FAILURE_LIMIT),
            (int)config_num(cfg, P_SMTPD_SASL_FAILURE_WINDOW));
        config_unref(&cfg);
    }
    srv->jobs = pool_new("smtpd", 4, 4096, smtpd_job_run, NULL);
    srv->policy_jobs = pool_new("smtpd", SMTPD_POLICY_CONCURRENCY, 4096,
                                smtpd_job_run, NULL);
    srv->milter_jobs = pool_new("smtpd", SMTPD_MILTER_CONCURRENCY, 4096,
                                smtpd_job_run, NULL);
    srv->policy = smtpd_policy_new();
    srv->io = mem_calloc((size_t)io_threads, sizeof(*srv->io));
    for (i = 0; i < io_threads; i++) {
        struct smtpd_io *io = &srv->io[i];

        io->srv = srv;
        io->loop = event_loop_new();
        event_loop_tick(io->loop, 200, smtpd_io_tick, io);
        err = pthread_create(&io->thread, NULL, smtpd_io_main, io);
        if (err != 0)
            msg_fatal("cannot start smtpd thread: %s", strerror(err));
    }
    return srv;
}

/* Refuse a connection on the acceptor thread, without a session. */
static void
smtpd_refuse(int fd, const char *host, const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: %s\r\n", host,
                     why);

    if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        msg_debug("send: %s", strerror(errno));
    close(fd);
}

void
smtpd_server_accept(smtpd_server_t *srv, int fd, const struct sockaddr *sa,
                    socklen_t salen, unsigned flags)
{
    struct smtpd_accepted *acc;
    config_t *cfg = config_current();
    char addr[64];
    unsigned n;
    long total;
    int exempt;

    addr_numeric(sa, addr, sizeof(addr));
    total = __atomic_load_n(&srv->nsessions, __ATOMIC_RELAXED);
    if (total >= config_num(cfg, P_SMTPD_CONNECTION_LIMIT)) {
        msg_warn("connection limit of %lld reached: refusing unknown[%s]",
                 config_num(cfg, P_SMTPD_CONNECTION_LIMIT), addr);
        smtpd_refuse(fd, config_str(cfg, P_MYHOSTNAME),
                     "too many connections");
        config_unref(&cfg);
        return;
    }
    /* As in Postfix, clients in mynetworks are not limited per client. */
    exempt = addr_in_networks(sa, config_list(cfg, P_MYNETWORKS, NULL)) ||
             config_num(cfg, P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT) == 0;
    if (!exempt &&
        smtpd_client_add(srv, addr, 1) >
            config_num(cfg, P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT)) {
        smtpd_client_add(srv, addr, -1);
        msg_warn("Connection concurrency limit exceeded: from unknown[%s] "
                 "for service smtp", addr);
        smtpd_refuse(fd, config_str(cfg, P_MYHOSTNAME),
                     "too many connections from your address");
        config_unref(&cfg);
        return;
    }
    if (!addr_in_networks(sa, config_list(cfg,
                                          P_SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS,
                                          NULL)) &&
        config_num(cfg, P_SMTPD_CLIENT_CONNECTION_RATE_LIMIT) > 0) {
        long r = smtpd_rate_add(srv->rates, addr, SMTPD_RATE_CONNECT,
                                (long)config_num(cfg, P_ANVIL_RATE_TIME_UNIT),
                                time(NULL));

        if (r > config_num(cfg, P_SMTPD_CLIENT_CONNECTION_RATE_LIMIT)) {
            if (!exempt)
                smtpd_client_add(srv, addr, -1);
            msg_warn("Connection rate limit exceeded: %ld from unknown[%s] "
                     "for service smtp",
                     r, addr);
            smtpd_refuse(fd, config_str(cfg, P_MYHOSTNAME),
                         "too many connections");
            config_unref(&cfg);
            return;
        }
    }
    config_unref(&cfg);
    acc = mem_calloc(1, sizeof(*acc));
    n = __atomic_fetch_add(&srv->next_io, 1, __ATOMIC_RELAXED);
    acc->fd = fd;
    acc->flags = flags;
    acc->counted = !exempt;
    acc->io = &srv->io[n % (unsigned)srv->nio];
    if (salen > sizeof(acc->sa))
        salen = sizeof(acc->sa);
    memcpy(&acc->sa, sa, salen);
    __atomic_add_fetch(&srv->nsessions, 1, __ATOMIC_RELAXED);
    event_post(acc->io->loop, smtpd_session_start, acc);
}

void
smtpd_server_shutdown(smtpd_server_t *srv)
{
    int i;

    /* Sessions waiting on a policy server or a Milter get its default
     * action now, then their 421, rather than wait out its timeout. */
    smtpd_policy_stop(srv->policy);
    for (i = 0; i < srv->nio; i++)
        event_post(srv->io[i].loop, smtpd_io_shutdown, &srv->io[i]);
    for (i = 0; i < srv->nio; i++)
        pthread_join(srv->io[i].thread, NULL);
    pool_stop(&srv->jobs, NULL);
    pool_stop(&srv->policy_jobs, NULL);
    pool_stop(&srv->milter_jobs, NULL);
}

void
smtpd_server_free(smtpd_server_t **srvp)
{
    smtpd_server_t *srv = srvp ? *srvp : NULL;
    int i;

    if (srv == NULL)
        return;
    for (i = 0; i < srv->nio; i++)
        event_loop_free(&srv->io[i].loop);
    for (i = 0; i < SMTPD_CLIENT_BUCKETS; i++) {
        while (srv->clients[i]) {
            struct smtpd_client_count *c = srv->clients[i];

            srv->clients[i] = c->next;
            free(c);
        }
    }
    pthread_mutex_destroy(&srv->clients_lock);
    smtpd_rate_free(&srv->rates);
    pthread_mutex_destroy(&srv->cache_lock);
    smtpd_per_config_free(&srv->tls);
    smtpd_per_config_free(&srv->auth);
    smtpd_auth_limiter_free(&srv->auth_limiter);
    smtpd_policy_free(&srv->policy);
    free(srv->io);
    free(srv);
    *srvp = NULL;
}

long
smtpd_server_sessions(smtpd_server_t *srv)
{
    return __atomic_load_n(&srv->nsessions, __ATOMIC_RELAXED);
}
