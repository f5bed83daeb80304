/* SPDX-License-Identifier: ISC */
/*
 * event: epoll loops.  A loop is owned by one thread; only event_post
 * and event_loop_stop may be called from others.  Cross-thread tasks go
 * through a mutex-protected list and an eventfd that wakes epoll_wait.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/event.h"
#include "lib/log.h"
#include "lib/mem.h"

#define EVENT_BATCH 256

struct event_task {
    event_task_fn fn;
    void *arg;
    struct event_task *next;
};

struct event_loop {
    int epfd;
    int wakefd;
    int stop;
    pthread_mutex_t lock;
    struct event_task *head;
    struct event_task *tail;
    event_task_fn tick_fn;
    void *tick_arg;
    int tick_ms;
    struct timespec last_tick;
};

event_loop_t *
event_loop_new(void)
{
    event_loop_t *loop = mem_calloc(1, sizeof(*loop));
    struct epoll_event ev;

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        msg_fatal("epoll_create1: %s", strerror(errno));
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0)
        msg_fatal("eventfd: %s", strerror(errno));
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* NULL marks the wakeup descriptor */
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
        msg_fatal("epoll_ctl: %s", strerror(errno));
    pthread_mutex_init(&loop->lock, NULL);
    return loop;
}

void
event_loop_free(event_loop_t **lp)
{
    event_loop_t *loop = lp ? *lp : NULL;
    struct event_task *t;

    if (loop == NULL)
        return;
    while ((t = loop->head) != NULL) {
        loop->head = t->next;
        free(t);
    }
    close(loop->epfd);
    close(loop->wakefd);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
    *lp = NULL;
}

static void
event_wake(event_loop_t *loop)
{
    uint64_t one = 1;

    if (write(loop->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        msg_warn("eventfd write: %s", strerror(errno));
}

void
event_loop_stop(event_loop_t *loop)
{
    __atomic_store_n(&loop->stop, 1, __ATOMIC_RELEASE);
    event_wake(loop);
}

void
event_loop_tick(event_loop_t *loop, int interval_ms, event_task_fn fn,
                void *arg)
{
    loop->tick_fn = fn;
    loop->tick_arg = arg;
    loop->tick_ms = interval_ms;
    clock_gettime(CLOCK_MONOTONIC, &loop->last_tick);
}

void
event_post(event_loop_t *loop, event_task_fn fn, void *arg)
{
    struct event_task *t = mem_alloc(sizeof(*t));

    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&loop->lock);
    if (loop->tail)
        loop->tail->next = t;
    else
        loop->head = t;
    loop->tail = t;
    pthread_mutex_unlock(&loop->lock);
    event_wake(loop);
}

static void
event_run_tasks(event_loop_t *loop)
{
    struct event_task *t;
    uint64_t n;

    if (read(loop->wakefd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        msg_warn("eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&loop->lock);
    t = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->lock);
    while (t) {
        struct event_task *next = t->next;

        t->fn(t->arg);
        free(t);
        t = next;
    }
}

static long
event_ms_since(const struct timespec *then)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - then->tv_sec) * 1000 +
           (now.tv_nsec - then->tv_nsec) / 1000000;
}

void
event_loop_run(event_loop_t *loop)
{
    struct epoll_event evs[EVENT_BATCH];

    while (!__atomic_load_n(&loop->stop, __ATOMIC_ACQUIRE)) {
        int timeout = -1;
        int woken = 0;
        int n;
        int i;

        if (loop->tick_fn) {
            long left = loop->tick_ms - event_ms_since(&loop->last_tick);

            timeout = left < 0 ? 0 : (int)left;
        }
        n = epoll_wait(loop->epfd, evs, EVENT_BATCH, timeout);
        if (n < 0 && errno != EINTR)
            msg_fatal("epoll_wait: %s", strerror(errno));
        for (i = 0; i < n; i++) {
            event_watch_t *w = evs[i].data.ptr;

            if (w == NULL)
                woken = 1;
            else
                w->fn(w->arg, evs[i].events);
        }
        if (woken)
            event_run_tasks(loop);
        if (loop->tick_fn && event_ms_since(&loop->last_tick) >=
                                 loop->tick_ms) {
            clock_gettime(CLOCK_MONOTONIC, &loop->last_tick);
            loop->tick_fn(loop->tick_arg);
        }
    }
}

int
event_watch_add(event_loop_t *loop, event_watch_t *w, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = w;
    w->events = events;
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev);
}

int
event_watch_mod(event_loop_t *loop, event_watch_t *w, uint32_t events)
{
    struct epoll_event ev;

    if (w->events == events)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = w;
    w->events = events;
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void
event_watch_del(event_loop_t *loop, event_watch_t *w)
{
    if (w->fd >= 0)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->events = 0;
}
