/* SPDX-License-Identifier: ISC */
/*
 * listen: listening sockets and their acceptor threads.  One thread per
 * listener blocks in accept() and hands each connection to a callback.
 */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <sys/socket.h>

typedef struct listener listener_t;

/* Options written after the address: "127.0.0.1:465/smtps". */
#define LISTEN_SMTPS 1      /* TLS from the first byte (RFC 8314) */
#define LISTEN_SUBMISSION 2 /* message submission: AUTH before MAIL */
#define LISTEN_NOFILTER 4   /* mail back from the content filter */

typedef void (*listen_accept_fn)(void *arg, int fd, const struct sockaddr *sa,
                                 socklen_t salen, unsigned flags);

/* Split "host:port[/option]..." into the address (written to addr, at
 * most addrlen bytes) and LISTEN_* flags.  Returns 0, or -1 with *why
 * set for an unknown option. */
int listen_parse(const char *spec, char *addr, size_t addrlen,
                 unsigned *flags, const char **why);

/* Bind and listen on "host:port" or "[host]:port", with options.
 * Returns NULL with *err set (caller frees) on failure. */
listener_t *listen_open(const char *hostport, char **err);

/* Start the acceptor thread; accepted sockets are non-blocking. */
void listen_start(listener_t *l, listen_accept_fn fn, void *arg);

/* Stop accepting, join the thread, close the socket, free *lp. */
void listen_close(listener_t **lp);

/* The address as configured. */
const char *listen_name(const listener_t *l);

#endif
