/* SPDX-License-Identifier: ISC */
/*
 * smtp_conn: the client side of one SMTP or LMTP connection.
 *
 * Flow: the delivery agents (smtp, lmtp) open a connection, queue
 * commands with smtp_conn_put/printf, and read replies with
 * smtp_conn_reply, which first sends whatever is queued: that is all
 * PIPELINING needs (RFC 2920 section 3.1: a group of commands goes out
 * together, then the replies are read in order).
 *
 * Guarantees: every wait is a poll() with the caller's deadline, on a
 * monotonic clock; a reply line longer than SMTP_CONN_LINE_MAX or a
 * reply of more than SMTP_CONN_LINES_MAX lines is a protocol error, so
 * a hostile peer cannot make us buffer without bound.  Output is
 * buffered in memory; callers stream large messages by flushing as
 * they go.
 *
 * Threads: a connection belongs to one thread at a time (a delivery
 * worker, or the connection cache between deliveries).  Nothing is
 * written to disk here; a crash just drops the connection.
 */
#include "autoconf.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/smtp_conn.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"

#define SMTP_CONN_LINE_MAX 4096
#define SMTP_CONN_LINES_MAX 200
#define SMTP_CONN_READ_CHUNK 16384

struct smtp_conn {
    int fd;
    tls_conn_t *tls;
    buf_t in;
    buf_t out;
    char *tls_info;
    enum smtp_conn_err err;
    char why[256];
};

/* The deadline for a wait of timeout seconds; 0 means none. */
static int64_t
smtp_conn_deadline(int timeout)
{
    return timeout > 0 ? clock_mono_ms() + (int64_t)timeout * 1000 : 0;
}

static void __attribute__((format(printf, 3, 4)))
smtp_conn_fail(smtp_conn_t *c, enum smtp_conn_err err, const char *fmt, ...)
{
    va_list ap;

    c->err = err;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
}

/* Wait until fd is ready for events or the deadline passes.  Returns 1
 * when ready, 0 on timeout, -1 on error. */
static int
smtp_conn_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int ms = -1;
        int n;

        if (deadline > 0) {
            int64_t left = deadline - clock_mono_ms();

            if (left <= 0)
                return 0;
            ms = left > 60000 ? 60000 : (int)left;
        }
        n = poll(&pfd, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
        if (n == 0 && deadline > 0 && clock_mono_ms() >= deadline)
            return 0;
    }
}

static smtp_conn_t *
smtp_conn_new(int fd)
{
    smtp_conn_t *c = mem_calloc(1, sizeof(*c));

    c->fd = fd;
    buf_init(&c->in);
    buf_init(&c->out);
    return c;
}

/* Finish a non-blocking connect on fd; returns 0 or -1 with why. */
static int
smtp_conn_connect(int fd, const struct sockaddr *sa, socklen_t salen,
                  int timeout, char *why, size_t whylen)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    int rc;

    if (connect(fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    rc = smtp_conn_wait(fd, POLLOUT, smtp_conn_deadline(timeout));
    if (rc == 0) {
        snprintf(why, whylen, "Connection timed out");
        return -1;
    }
    if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    if (soerr != 0) {
        snprintf(why, whylen, "%s", strerror(soerr));
        return -1;
    }
    return 0;
}

smtp_conn_t *
smtp_conn_open_inet(const char *addr, int port, int timeout, char *why,
                    size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t salen;
    int one = 1;
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) ==
        1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        salen = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, addr,
                         &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        salen = sizeof(struct sockaddr_in6);
    } else {
        snprintf(why, whylen, "not a numeric address: %s", addr);
        return NULL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return NULL;
    }
    /* Commands are small and pipelined groups are flushed whole. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (smtp_conn_connect(fd, (struct sockaddr *)&ss, salen, timeout, why,
                          whylen) < 0) {
        close(fd);
        return NULL;
    }
    return smtp_conn_new(fd);
}

smtp_conn_t *
smtp_conn_open_unix(const char *path, int timeout, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(why, whylen, "socket path too long");
        return NULL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return NULL;
    }
    if (smtp_conn_connect(fd, (struct sockaddr *)&sun, sizeof(sun), timeout,
                          why, whylen) < 0) {
        close(fd);
        return NULL;
    }
    return smtp_conn_new(fd);
}

void
smtp_conn_put(smtp_conn_t *c, const char *data, size_t len)
{
    buf_append(&c->out, data, len);
}

void
smtp_conn_printf(smtp_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
}

size_t
smtp_conn_pending(const smtp_conn_t *c)
{
    return c->out.len;
}

/* One write of at most len bytes: > 0 written, -2 would block, -1
 * failed (c->err set). */
static ssize_t
smtp_conn_write_some(smtp_conn_t *c, const char *p, size_t len, short *ev)
{
    ssize_t n;

    *ev = POLLOUT;
    if (c->tls) {
        n = tls_write(c->tls, p, len);
        if (n == -2) {
            *ev = tls_want(c->tls) == EPOLLIN ? POLLIN : POLLOUT;
            return -2;
        }
        if (n <= 0) {
            smtp_conn_fail(c, SMTP_CONN_LOST, "%s",
                           n < 0 ? tls_error(c->tls) : "connection closed");
            return -1;
        }
        return n;
    }
    n = send(c->fd, p, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -2;
    smtp_conn_fail(c, SMTP_CONN_LOST, "%s", strerror(errno));
    return -1;
}

int
smtp_conn_flush(smtp_conn_t *c, int timeout)
{
    int64_t deadline = smtp_conn_deadline(timeout);

    while (c->out.len > 0) {
        short ev;
        ssize_t n = smtp_conn_write_some(c, c->out.data, c->out.len, &ev);
        int rc;

        if (n == -1)
            return -1;
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            /* Each piece of progress earns a new deadline, as Postfix's
             * per-write timeouts do. */
            deadline = smtp_conn_deadline(timeout);
            continue;
        }
        rc = smtp_conn_wait(c->fd, ev, deadline);
        if (rc == 0) {
            smtp_conn_fail(c, SMTP_CONN_TIMEOUT, "timed out");
            return -1;
        }
        if (rc < 0) {
            smtp_conn_fail(c, SMTP_CONN_LOST, "%s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Read more input: 1 got some, 0 timeout or closed or error (c->err). */
static int
smtp_conn_fill(smtp_conn_t *c, int64_t deadline)
{
    char chunk[SMTP_CONN_READ_CHUNK];

    for (;;) {
        short ev = POLLIN;
        ssize_t n;
        int rc;

        if (c->tls) {
            n = tls_read(c->tls, chunk, sizeof(chunk));
            if (n == -2)
                ev = tls_want(c->tls) == EPOLLOUT ? POLLOUT : POLLIN;
            else if (n < 0) {
                smtp_conn_fail(c, SMTP_CONN_LOST, "%s", tls_error(c->tls));
                return 0;
            }
        } else {
            n = recv(c->fd, chunk, sizeof(chunk), 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                          errno == EINTR))
                n = -2;
            else if (n < 0) {
                smtp_conn_fail(c, SMTP_CONN_LOST, "%s", strerror(errno));
                return 0;
            }
        }
        if (n > 0) {
            buf_append(&c->in, chunk, (size_t)n);
            return 1;
        }
        if (n == 0) {
            smtp_conn_fail(c, SMTP_CONN_LOST, "connection closed");
            return 0;
        }
        rc = smtp_conn_wait(c->fd, ev, deadline);
        if (rc == 0) {
            smtp_conn_fail(c, SMTP_CONN_TIMEOUT, "timed out");
            return 0;
        }
        if (rc < 0) {
            smtp_conn_fail(c, SMTP_CONN_LOST, "%s", strerror(errno));
            return 0;
        }
    }
}

/* The enhanced status code at the start of text (RFC 3463 section 2)
 * whose class matches the reply code's first digit. */
static void
smtp_conn_dsn(int code, const char *text, char *dsn, size_t dsnlen)
{
    const char *p = text;
    size_t n;
    int part;

    dsn[0] = '\0';
    if (p[0] != '0' + code / 100 || p[1] != '.')
        return;
    p += 2;
    for (part = 0; part < 2; part++) {
        for (n = 0; isdigit((unsigned char)p[n]) && n < 3; n++)
            ;
        if (n == 0 || (part == 0 && p[n] != '.'))
            return;
        p += n + (part == 0);
    }
    if (*p != '\0' && *p != ' ')
        return;
    n = (size_t)(p - text);
    if (n < dsnlen) {
        memcpy(dsn, text, n);
        dsn[n] = '\0';
    }
}

int
smtp_conn_reply(smtp_conn_t *c, struct smtp_reply *r, int timeout,
                buf_t *lines)
{
    int64_t deadline;
    size_t textlen = 0;
    int nlines = 0;

    if (smtp_conn_flush(c, timeout) < 0)
        return -1;
    deadline = smtp_conn_deadline(timeout);
    memset(r, 0, sizeof(*r));
    for (;;) {
        char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
        size_t llen;
        char *line;
        int last;

        if (nl == NULL) {
            if (c->in.len > SMTP_CONN_LINE_MAX) {
                smtp_conn_fail(c, SMTP_CONN_PROTO, "reply line too long");
                return -1;
            }
            if (!smtp_conn_fill(c, deadline))
                return -1;
            continue;
        }
        line = c->in.data;
        llen = (size_t)(nl - line);
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        line[llen] = '\0';
        if (llen < 3 || !isdigit((unsigned char)line[0]) ||
            !isdigit((unsigned char)line[1]) ||
            !isdigit((unsigned char)line[2]) ||
            (llen > 3 && line[3] != ' ' && line[3] != '-') ||
            ++nlines > SMTP_CONN_LINES_MAX) {
            smtp_conn_fail(c, SMTP_CONN_PROTO, "malformed reply");
            return -1;
        }
        last = llen == 3 || line[3] == ' ';
        if (nlines == 1) {
            r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
                      (line[2] - '0');
            smtp_conn_dsn(r->code, llen > 4 ? line + 4 : "", r->dsn,
                          sizeof(r->dsn));
        }
        if (textlen > 0 && textlen + 1 < sizeof(r->text))
            r->text[textlen++] = ' ';
        if (textlen < sizeof(r->text) - 1) {
            size_t room = sizeof(r->text) - 1 - textlen;
            size_t take = llen < room ? llen : room;

            memcpy(r->text + textlen, line, take);
            textlen += take;
            r->text[textlen] = '\0';
        }
        if (lines) {
            buf_puts(lines, llen > 4 ? line + 4 : "");
            buf_putc(lines, '\n');
        }
        buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
        if (last)
            return 0;
    }
}

int
smtp_conn_starttls(smtp_conn_t *c, tls_ctx_t *ctx, const char *sni,
                   int timeout)
{
    int64_t deadline = smtp_conn_deadline(timeout);

    if (c->in.len > 0) {
        /* RFC 3207 section 5: nothing may precede the handshake; bytes
         * here were sent before it (a command injection attempt). */
        smtp_conn_fail(c, SMTP_CONN_PROTO,
                       "unexpected data before the TLS handshake");
        return -1;
    }
    c->tls = tls_conn_new(ctx, c->fd, 0);
    if (sni && tls_conn_set_sni(c->tls, sni) < 0) {
        smtp_conn_fail(c, SMTP_CONN_TLS, "cannot set the TLS server name");
        return -1;
    }
    for (;;) {
        int rc = tls_handshake(c->tls);
        int w;

        if (rc == 1)
            break;
        if (rc < 0) {
            smtp_conn_fail(c, SMTP_CONN_TLS, "%s", tls_error(c->tls));
            return -1;
        }
        w = smtp_conn_wait(c->fd,
                           tls_want(c->tls) == EPOLLOUT ? POLLOUT : POLLIN,
                           deadline);
        if (w <= 0) {
            smtp_conn_fail(c, w == 0 ? SMTP_CONN_TIMEOUT : SMTP_CONN_LOST,
                           "%s", w == 0 ? "timed out" : strerror(errno));
            return -1;
        }
    }
    free(c->tls_info);
    c->tls_info = mem_printf("%s with cipher %s (%d/%d bits)",
                             tls_version(c->tls), tls_cipher(c->tls),
                             tls_cipher_bits(c->tls),
                             tls_cipher_bits(c->tls));
    return 0;
}

const char *
smtp_conn_tls_info(const smtp_conn_t *c)
{
    return c->tls_info;
}

enum smtp_conn_err
smtp_conn_error(const smtp_conn_t *c)
{
    return c->err;
}

const char *
smtp_conn_error_text(const smtp_conn_t *c)
{
    return c->why;
}

int
smtp_conn_stale(smtp_conn_t *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};

    if (c->in.len > 0 || (c->tls && tls_pending(c->tls) > 0))
        return 1;
    return poll(&pfd, 1, 0) != 0;
}

void
smtp_conn_close(smtp_conn_t **cp)
{
    smtp_conn_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    if (c->tls) {
        /* One try at close_notify; a peer that does not read it loses
         * nothing, the transaction is over. */
        tls_shutdown(c->tls);
        tls_conn_free(&c->tls);
    }
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c->tls_info);
    free(c);
    *cp = NULL;
}
