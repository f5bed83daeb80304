/* SPDX-License-Identifier: ISC */
/*
 * smtpd_session: the SMTP server side.  A smtpd_server owns a few I/O
 * threads, each an epoll loop over many sessions; each session is a
 * state machine driven by the bytes that arrive.  A finished message
 * goes to cleanup, and the session sleeps (reading nothing more) until
 * the queue commit is durable; then it sends the 250 and goes on.
 */
#ifndef TERN_SMTPD_SESSION_H
#define TERN_SMTPD_SESSION_H

#include <sys/socket.h>

#include "queue/cleanup.h"

typedef struct smtpd_server smtpd_server_t;

/* Start io_threads I/O threads (0: one per online CPU). */
smtpd_server_t *smtpd_server_new(int io_threads, cleanup_t *cleanup);

/* Take over a connected socket; called from acceptor threads.  flags
 * are the listener's LISTEN_* options.  A client over the connection
 * limits is told 421 and closed here. */
void smtpd_server_accept(smtpd_server_t *srv, int fd,
                         const struct sockaddr *sa, socklen_t salen,
                         unsigned flags);

/* Stop: every session is told 421 4.3.2 and closed, except that one
 * waiting for a queue commit first gets its reply.  Returns when all
 * sessions are gone and the I/O threads have ended. */
void smtpd_server_shutdown(smtpd_server_t *srv);

/* Free a server that was shut down; accepts NULL. */
void smtpd_server_free(smtpd_server_t **srvp);

/* Sessions open now. */
long smtpd_server_sessions(smtpd_server_t *srv);

#endif
