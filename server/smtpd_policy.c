/* SPDX-License-Identifier: ISC */
/*
 * smtpd_policy: policy service queries over TCP or unix-domain sockets.
 *
 * One query is up to smtpd_policy_service_try_limit attempts,
 * smtpd_policy_service_retry_delay apart.  An attempt takes an idle
 * connection from the cache (one the server has closed or written to
 * since is dropped, not used) or connects anew, sends the request and
 * reads the answer, all before one deadline smtpd_policy_service_timeout
 * away.  Any failure closes that connection: a server that answered
 * late or out of turn is no longer in step with us.  A connection that
 * answered well goes back to the cache, unless it has served
 * smtpd_policy_service_request_limit requests or outlived
 * smtpd_policy_service_max_ttl.
 *
 * Threads: the cache is one list under one mutex, taken only to move a
 * connection in or out, never while waiting on a socket.  A connection
 * belongs to one query at a time.  Every wait also watches an eventfd
 * that smtpd_policy_stop makes readable, so a shutdown never waits for
 * a slow server.  Host names in "inet:" services are resolved with
 * getaddrinfo, whose time the resolver bounds, not the deadline.
 */
#include "autoconf.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netdb.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "server/smtpd_policy.h"

/* What a wait ended with. */
enum smtpd_policy_ready {
    SMTPD_POLICY_READY,
    SMTPD_POLICY_TIMEOUT,
    SMTPD_POLICY_ERROR,
    SMTPD_POLICY_STOPPED,
};

struct smtpd_policy_conn {
    char *service;
    int fd;
    long long requests; /* answered on this connection */
    int64_t ttl_until;  /* monotonic ms: closed once past this */
    int64_t idle_until; /* and, while idle, past this */
    struct smtpd_policy_conn *next;
};

struct smtpd_policy {
    pthread_mutex_t lock;
    struct smtpd_policy_conn *idle; /* most recently used first */
    int stop_fd;                    /* readable once stopping */
    int stopping;
};

/* Where a service is: a unix-domain path, or a host and port. */
struct smtpd_policy_addr {
    int is_unix;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char host[256];
    char port[8];
};

smtpd_policy_t *
smtpd_policy_new(void)
{
    smtpd_policy_t *p = mem_calloc(1, sizeof(*p));

    pthread_mutex_init(&p->lock, NULL);
    p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->stop_fd < 0)
        msg_fatal("eventfd: %s", strerror(errno));
    return p;
}

void
smtpd_policy_stop(smtpd_policy_t *p)
{
    uint64_t one = 1;

    __atomic_store_n(&p->stopping, 1, __ATOMIC_RELEASE);
    /* Never read back: the eventfd stays readable for every waiter. */
    if (write(p->stop_fd, &one, sizeof(one)) < 0)
        msg_warn("policy client: eventfd write: %s", strerror(errno));
}

static int
smtpd_policy_stopping(smtpd_policy_t *p)
{
    return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE);
}

static void
smtpd_policy_conn_close(struct smtpd_policy_conn *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    free(c->service);
    free(c);
}

void
smtpd_policy_sweep(smtpd_policy_t *p, int64_t now)
{
    struct smtpd_policy_conn **pp;

    pthread_mutex_lock(&p->lock);
    for (pp = &p->idle; *pp;) {
        struct smtpd_policy_conn *c = *pp;

        if (now < c->idle_until && now < c->ttl_until) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        smtpd_policy_conn_close(c);
    }
    pthread_mutex_unlock(&p->lock);
}

void
smtpd_policy_free(smtpd_policy_t **pp)
{
    smtpd_policy_t *p = pp ? *pp : NULL;

    if (p == NULL)
        return;
    while (p->idle) {
        struct smtpd_policy_conn *c = p->idle;

        p->idle = c->next;
        smtpd_policy_conn_close(c);
    }
    close(p->stop_fd);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *pp = NULL;
}

/* Parse a service name; relative unix paths are below queue_dir (NULL:
 * the syntax check only).  Returns 0, or -1 with why. */
static int
smtpd_policy_parse(const char *service, const char *queue_dir,
                   struct smtpd_policy_addr *a, const char **why)
{
    const char *path = service;
    int port;
    int n;

    memset(a, 0, sizeof(*a));
    if (strncmp(service, "inet:", 5) == 0) {
        if (config_parse_hostport(service + 5, a->host, sizeof(a->host),
                                  &port) < 0) {
            *why = "expected inet:host:port or inet:[address]:port";
            return -1;
        }
        snprintf(a->port, sizeof(a->port), "%d", port);
        return 0;
    }
    if (strncmp(service, "unix:", 5) == 0)
        path = service + 5;
    else if (service[0] != '/') {
        *why = "expected inet:host:port, unix:path or /path";
        return -1;
    }
    if (path[0] == '\0') {
        *why = "empty socket path";
        return -1;
    }
    a->is_unix = 1;
    if (path[0] == '/' || queue_dir == NULL)
        n = snprintf(a->path, sizeof(a->path), "%s", path);
    else
        n = snprintf(a->path, sizeof(a->path), "%s/%s", queue_dir, path);
    if (n < 0 || (size_t)n >= sizeof(a->path)) {
        *why = "socket path too long";
        return -1;
    }
    return 0;
}

int
smtpd_policy_service_valid(const char *service, const char **why)
{
    struct smtpd_policy_addr a;

    return smtpd_policy_parse(service, NULL, &a, why);
}

void
smtpd_policy_attr(buf_t *req, const char *name, const char *value)
{
    const char *v;

    buf_puts(req, name);
    buf_putc(req, '=');
    for (v = value ? value : ""; *v; v++)
        buf_putc(req, *v == '\r' || *v == '\n' ? '?' : *v);
    buf_putc(req, '\n');
}

/* Wait until fd is ready for events, the deadline passes or the client
 * stops; with fd -1, just until one of the other two. */
static enum smtpd_policy_ready
smtpd_policy_wait(smtpd_policy_t *p, int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd[2] = {{p->stop_fd, POLLIN, 0}, {fd, events, 0}};
        int64_t left = deadline - clock_mono_ms();
        int n;

        if (smtpd_policy_stopping(p))
            return SMTPD_POLICY_STOPPED;
        if (left <= 0)
            return SMTPD_POLICY_TIMEOUT;
        n = poll(pfd, fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SMTPD_POLICY_ERROR;
        if (pfd[0].revents)
            return SMTPD_POLICY_STOPPED;
        if (fd >= 0 && pfd[1].revents)
            return SMTPD_POLICY_READY;
    }
}

/* Why a wait failed, for the log. */
static const char *
smtpd_policy_wait_why(enum smtpd_policy_ready r)
{
    switch (r) {
    case SMTPD_POLICY_TIMEOUT:
        return "timeout";
    case SMTPD_POLICY_STOPPED:
        return "shutting down";
    default:
        return strerror(errno);
    }
}

/* Connect to one address before the deadline; returns the socket, or
 * -1 with why. */
static int
smtpd_policy_connect_sa(smtpd_policy_t *p, const struct sockaddr *sa,
                        socklen_t salen, int64_t deadline, buf_t *why)
{
    enum smtpd_policy_ready r;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        buf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, sa, salen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        buf_printf(why, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    r = smtpd_policy_wait(p, fd, POLLOUT, deadline);
    if (r != SMTPD_POLICY_READY) {
        buf_printf(why, "connect: %s", smtpd_policy_wait_why(r));
        close(fd);
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
        buf_printf(why, "connect: %s", strerror(soerr ? soerr : errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
smtpd_policy_connect(smtpd_policy_t *p, const config_t *cfg,
                     const char *service, int64_t deadline, buf_t *why)
{
    struct smtpd_policy_addr a;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    const char *bad;
    int fd = -1;
    int rc;

    if (smtpd_policy_parse(service, config_str(cfg, P_QUEUE_DIRECTORY), &a,
                           &bad) < 0) {
        buf_puts(why, bad);
        return -1;
    }
    if (a.is_unix) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, a.path, sizeof(sun.sun_path));
        return smtpd_policy_connect_sa(p, (struct sockaddr *)&sun, sizeof(sun),
                                       deadline, why);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(a.host, a.port, &hints, &res);
    if (rc != 0) {
        buf_printf(why, "%s: %s", a.host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        buf_reset(why);
        fd = smtpd_policy_connect_sa(p, ai->ai_addr, ai->ai_addrlen, deadline,
                                     why);
    }
    freeaddrinfo(res);
    return fd;
}

/* Nonzero if an idle connection can no longer be used: the server
 * closed it, or sent something no request asked for. */
static int
smtpd_policy_stale(const struct smtpd_policy_conn *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};

    return poll(&pfd, 1, 0) != 0;
}

/* An idle connection to service, or NULL.  Connections past their time
 * are closed on the way. */
static struct smtpd_policy_conn *
smtpd_policy_take(smtpd_policy_t *p, const char *service, int64_t now)
{
    struct smtpd_policy_conn **pp;
    struct smtpd_policy_conn *found = NULL;

    pthread_mutex_lock(&p->lock);
    for (pp = &p->idle; *pp && found == NULL;) {
        struct smtpd_policy_conn *c = *pp;

        if (strcmp(c->service, service) != 0) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->next = NULL;
        if (now < c->idle_until && now < c->ttl_until && !smtpd_policy_stale(c))
            found = c;
        else
            smtpd_policy_conn_close(c);
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

/* Keep a connection that answered well for the next query, within the
 * limits; otherwise close it. */
static void
smtpd_policy_put(smtpd_policy_t *p, const config_t *cfg,
                 struct smtpd_policy_conn *c, int64_t now)
{
    long long limit = config_num(cfg, P_SMTPD_POLICY_SERVICE_REQUEST_LIMIT);
    struct smtpd_policy_conn *o;
    int same = 0;

    if ((limit > 0 && c->requests >= limit) || now >= c->ttl_until ||
        smtpd_policy_stopping(p)) {
        smtpd_policy_conn_close(c);
        return;
    }
    c->idle_until =
        now + config_num(cfg, P_SMTPD_POLICY_SERVICE_MAX_IDLE) * 1000;
    pthread_mutex_lock(&p->lock);
    for (o = p->idle; o; o = o->next)
        same += strcmp(o->service, c->service) == 0;
    if (same < SMTPD_POLICY_CONCURRENCY) {
        c->next = p->idle;
        p->idle = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    smtpd_policy_conn_close(c);
}

int
smtpd_policy_send(smtpd_policy_t *p, int fd, const char *data, size_t len,
                  int64_t deadline, buf_t *why)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        enum smtpd_policy_ready r;

        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            buf_printf(why, "write: %s", strerror(errno));
            return -1;
        }
        r = smtpd_policy_wait(p, fd, POLLOUT, deadline);
        if (r != SMTPD_POLICY_READY) {
            buf_printf(why, "write: %s", smtpd_policy_wait_why(r));
            return -1;
        }
    }
    return 0;
}

int
smtpd_policy_wait_read(smtpd_policy_t *p, int fd, int64_t deadline,
                       buf_t *why)
{
    enum smtpd_policy_ready r = smtpd_policy_wait(p, fd, POLLIN, deadline);

    if (r == SMTPD_POLICY_READY)
        return 0;
    buf_printf(why, "read: %s", smtpd_policy_wait_why(r));
    return -1;
}

/* Read one answer before the deadline.  Returns 1 with the action,
 * 2 with the action when the server sent more than the answer (the
 * connection must not be used again), or -1 with why. */
static int
smtpd_policy_receive(smtpd_policy_t *p, int fd, int64_t deadline, buf_t *action,
                     buf_t *why)
{
    struct smtpd_policy_reader r;
    char chunk[1024];
    const char *bad = NULL;
    int rc = 0;

    smtpd_policy_reader_init(&r);
    while (rc == 0) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        enum smtpd_policy_ready ready;
        size_t used;

        if (n > 0) {
            rc = smtpd_policy_feed(&r, chunk, (size_t)n, &used, &bad);
            if (rc == 1 && used < (size_t)n)
                rc = 2;
            continue;
        }
        if (n == 0) {
            buf_puts(why, "read: connection closed");
            rc = -1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            buf_printf(why, "read: %s", strerror(errno));
            rc = -1;
            break;
        }
        ready = smtpd_policy_wait(p, fd, POLLIN, deadline);
        if (ready != SMTPD_POLICY_READY) {
            buf_printf(why, "read: %s", smtpd_policy_wait_why(ready));
            rc = -1;
        }
    }
    if (rc < 0 && bad)
        buf_printf(why, "bad answer: %s", bad);
    if (rc > 0)
        buf_append(action, r.action.data, r.action.len);
    smtpd_policy_reader_free(&r);
    return rc;
}

/* One attempt: a connection, the request, the answer.  Returns 0 with
 * the action, or -1 with why. */
static int
smtpd_policy_attempt(smtpd_policy_t *p, const config_t *cfg,
                     const char *service, const buf_t *out, buf_t *action,
                     buf_t *why)
{
    long long timeout = config_num(cfg, P_SMTPD_POLICY_SERVICE_TIMEOUT);
    int64_t now = clock_mono_ms();
    int64_t deadline = now + (timeout > 0 ? timeout : 1) * 1000;
    struct smtpd_policy_conn *c = smtpd_policy_take(p, service, now);
    int rc;

    if (c == NULL) {
        int fd = smtpd_policy_connect(p, cfg, service, deadline, why);

        if (fd < 0)
            return -1;
        c = mem_calloc(1, sizeof(*c));
        c->fd = fd;
        c->service = mem_strdup(service);
        c->ttl_until =
            now + config_num(cfg, P_SMTPD_POLICY_SERVICE_MAX_TTL) * 1000;
    }
    rc = smtpd_policy_send(p, c->fd, out->data, out->len, deadline, why);
    if (rc == 0)
        rc = smtpd_policy_receive(p, c->fd, deadline, action, why);
    if (rc == 1) {
        c->requests++;
        smtpd_policy_put(p, cfg, c, clock_mono_ms());
        return 0;
    }
    smtpd_policy_conn_close(c);
    return rc == 2 ? 0 : -1;
}

int
smtpd_policy_query(smtpd_policy_t *p, const config_t *cfg, const char *service,
                   const buf_t *req, buf_t *action, buf_t *why)
{
    long long tries = config_num(cfg, P_SMTPD_POLICY_SERVICE_TRY_LIMIT);
    long long delay = config_num(cfg, P_SMTPD_POLICY_SERVICE_RETRY_DELAY);
    buf_t out;
    long long i;
    int rc = -1;

    buf_reset(action);
    buf_reset(why);
    buf_init(&out);
    buf_append(&out, req->data, req->len);
    buf_putc(&out, '\n');
    for (i = 0; i < (tries > 0 ? tries : 1) && rc < 0; i++) {
        if (i > 0 && delay > 0 &&
            smtpd_policy_wait(p, -1, 0, clock_mono_ms() + delay * 1000) ==
                SMTPD_POLICY_STOPPED)
            break;
        if (smtpd_policy_stopping(p)) {
            buf_reset(why);
            buf_puts(why, "shutting down");
            break;
        }
        buf_reset(why);
        buf_reset(action);
        rc = smtpd_policy_attempt(p, cfg, service, &out, action, why);
        if (rc < 0)
            msg_warn("problem talking to server %s: %s", service, why->data);
    }
    buf_free(&out);
    return rc;
}

void
smtpd_policy_reader_init(struct smtpd_policy_reader *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->line);
    buf_init(&r->action);
}

void
smtpd_policy_reader_free(struct smtpd_policy_reader *r)
{
    buf_free(&r->line);
    buf_free(&r->action);
}

/* One complete line of the answer, its LF taken off.  Returns 1 at the
 * empty line that ends the answer, 0 to go on, -1 with why. */
static int
smtpd_policy_reader_line(struct smtpd_policy_reader *r, const char **why)
{
    const char *line = r->line.data ? r->line.data : "";
    size_t n = r->line.len;
    const char *eq;

    /* Postfix writes LF; a server that writes CRLF means the same. */
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n == 0) {
        if (!r->have_action) {
            *why = "no action attribute";
            return -1;
        }
        return 1;
    }
    eq = memchr(line, '=', n);
    if (eq == NULL || eq == line) {
        *why = "a line that is not name=value";
        return -1;
    }
    if (eq - line == 6 && memcmp(line, "action", 6) == 0) {
        size_t vlen = n - (size_t)(eq + 1 - line);

        if (r->have_action) {
            *why = "more than one action";
            return -1;
        }
        if (vlen == 0) {
            *why = "empty action";
            return -1;
        }
        buf_append(&r->action, eq + 1, vlen);
        r->have_action = 1;
    }
    buf_reset(&r->line);
    return 0;
}

int
smtpd_policy_feed(struct smtpd_policy_reader *r, const char *p, size_t len,
                  size_t *used, const char **why)
{
    size_t i;

    for (i = 0; i < len; i++) {
        int rc;

        if (++r->total > SMTPD_POLICY_ANSWER_MAX) {
            *why = "answer too long";
            return -1;
        }
        if (p[i] == '\0') {
            *why = "NUL in answer";
            return -1;
        }
        if (p[i] != '\n') {
            buf_putc(&r->line, p[i]);
            continue;
        }
        rc = smtpd_policy_reader_line(r, why);
        if (rc != 0) {
            *used = i + 1;
            return rc;
        }
    }
    *used = len;
    return 0;
}
