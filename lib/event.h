/* SPDX-License-Identifier: ISC */
/*
 * event: one epoll loop per I/O thread.  File descriptors are watched
 * through event_watch structures that their owner embeds and keeps
 * alive while watched.  Other threads hand work to a loop with
 * event_post(); posted tasks run on the loop's thread, in the order
 * posted, after the I/O events of the same wakeup, so a task may free
 * an object whose events were reported in that wakeup.
 */
#ifndef TERN_EVENT_H
#define TERN_EVENT_H

#include <stdint.h>

typedef struct event_loop event_loop_t;

typedef void (*event_io_fn)(void *arg, uint32_t events);
typedef void (*event_task_fn)(void *arg);

typedef struct event_watch {
    int fd;
    uint32_t events; /* EPOLLIN, EPOLLOUT as currently watched */
    event_io_fn fn;
    void *arg;
} event_watch_t;

/* A new loop; fatal if the kernel refuses epoll or eventfd. */
event_loop_t *event_loop_new(void);

/* Free a loop that is not running; accepts NULL. */
void event_loop_free(event_loop_t **lp);

/* Run until event_loop_stop(); returns after the current wakeup. */
void event_loop_run(event_loop_t *loop);

/* Ask the loop to return from event_loop_run; thread-safe. */
void event_loop_stop(event_loop_t *loop);

/* Call fn(arg) on the loop every interval_ms (about). */
void event_loop_tick(event_loop_t *loop, int interval_ms, event_task_fn fn,
                     void *arg);

/* Run fn(arg) on the loop's thread; thread-safe. */
void event_post(event_loop_t *loop, event_task_fn fn, void *arg);

/* Start watching w->fd for events.  Returns 0, or -1 with errno. */
int event_watch_add(event_loop_t *loop, event_watch_t *w, uint32_t events);

/* Change the events watched; no-op when unchanged. */
int event_watch_mod(event_loop_t *loop, event_watch_t *w, uint32_t events);

/* Stop watching w (the fd is not closed). */
void event_watch_del(event_loop_t *loop, event_watch_t *w);

#endif
