/* SPDX-License-Identifier: ISC */
/*
 * listen: listening sockets and their acceptor threads.  One thread per
 * listener blocks in accept() and hands each connection to a callback.
 */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <sys/socket.h>

typedef struct listener listener_t;

typedef void (*listen_accept_fn)(void *arg, int fd, const struct sockaddr *sa,
                                 socklen_t salen);

/* Bind and listen on "host:port" or "[host]:port".  Returns NULL with
 * *err set (caller frees) on failure. */
listener_t *listen_open(const char *hostport, char **err);

/* Start the acceptor thread; accepted sockets are non-blocking. */
void listen_start(listener_t *l, listen_accept_fn fn, void *arg);

/* Stop accepting, join the thread, close the socket, free *lp. */
void listen_close(listener_t **lp);

/* The address as configured. */
const char *listen_name(const listener_t *l);

#endif
