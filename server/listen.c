/* SPDX-License-Identifier: ISC */
/*
 * listen: acceptors.  To stop an acceptor, shutdown() on the listening
 * socket makes a blocked accept() return on Linux; the thread sees the
 * stop flag and ends.  Running out of descriptors is logged and retried
 * after a pause rather than spinning.
 */
#include "autoconf.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "server/listen.h"

struct listener {
    char *name;
    int fd;
    int stop;
    int started;
    pthread_t thread;
    listen_accept_fn fn;
    void *arg;
    unsigned flags;
};

int
listen_parse(const char *spec, char *addr, size_t addrlen, unsigned *flags,
             const char **why)
{
    const char *slash = strchr(spec, '/');
    size_t alen = slash ? (size_t)(slash - spec) : strlen(spec);

    *flags = 0;
    if (alen >= addrlen) {
        *why = "address too long";
        return -1;
    }
    memcpy(addr, spec, alen);
    addr[alen] = '\0';
    while (slash) {
        const char *opt = slash + 1;
        size_t olen;

        slash = strchr(opt, '/');
        olen = slash ? (size_t)(slash - opt) : strlen(opt);
        if (olen == 5 && strncmp(opt, "smtps", 5) == 0) {
            *flags |= LISTEN_SMTPS;
        } else if (olen == 10 && strncmp(opt, "submission", 10) == 0) {
            *flags |= LISTEN_SUBMISSION;
        } else if (olen == 8 && strncmp(opt, "nofilter", 8) == 0) {
            *flags |= LISTEN_NOFILTER;
        } else {
            *why = "unknown listener option (smtps, submission or "
                   "nofilter)";
            return -1;
        }
    }
    return 0;
}

listener_t *
listen_open(const char *spec, char **err)
{
    char hostport[300];
    unsigned flags;
    const char *why;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char host[256];
    char port[16];
    int portnum;
    int fd;
    int one = 1;
    int rc;
    listener_t *l;

    if (listen_parse(spec, hostport, sizeof(hostport), &flags, &why) < 0) {
        *err = mem_printf("%s: %s", spec, why);
        return NULL;
    }
    if (config_parse_hostport(hostport, host, sizeof(host), &portnum) < 0) {
        *err = mem_printf("%s: not host:port", hostport);
        return NULL;
    }
    snprintf(port, sizeof(port), "%d", portnum);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *err = mem_printf("%s: %s", hostport, gai_strerror(rc));
        return NULL;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = mem_printf("%s: socket: %s", hostport, strerror(errno));
        freeaddrinfo(res);
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, 1024) < 0) {
        *err = mem_printf("%s: %s", hostport, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return NULL;
    }
    freeaddrinfo(res);
    l = mem_calloc(1, sizeof(*l));
    l->name = mem_strdup(spec);
    l->fd = fd;
    l->flags = flags;
    return l;
}

static void *
listen_main(void *arg)
{
    listener_t *l = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role("smtpd");
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        int one = 1;
        int fd;

        fd = accept4(l->fd, (struct sockaddr *)&sa, &salen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            struct timespec pause = {0, 100 * 1000 * 1000};

            if (__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE))
                break;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            msg_warn("accept on %s: %s", l->name, strerror(errno));
            nanosleep(&pause, NULL);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->fn(l->arg, fd, (struct sockaddr *)&sa, salen, l->flags);
    }
    return NULL;
}

void
listen_start(listener_t *l, listen_accept_fn fn, void *arg)
{
    int err;

    l->fn = fn;
    l->arg = arg;
    err = pthread_create(&l->thread, NULL, listen_main, l);
    if (err != 0)
        msg_fatal("cannot start acceptor for %s: %s", l->name, strerror(err));
    l->started = 1;
}

void
listen_close(listener_t **lp)
{
    listener_t *l = lp ? *lp : NULL;

    if (l == NULL)
        return;
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    shutdown(l->fd, SHUT_RDWR);
    if (l->started)
        pthread_join(l->thread, NULL);
    close(l->fd);
    free(l->name);
    free(l);
    *lp = NULL;
}

const char *
listen_name(const listener_t *l)
{
    return l->name;
}
