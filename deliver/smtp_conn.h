/* SPDX-License-Identifier: ISC */
/*
 * smtp_conn: one client connection for the SMTP and LMTP delivery
 * agents, as blocking calls with a deadline each: connect (TCP or a
 * unix socket), read one reply, queue and flush output, start TLS.
 * The socket stays non-blocking underneath and every wait is a poll()
 * bounded by the caller's timeout, so a silent peer costs a worker its
 * timeout, never more.
 */
#ifndef TERN_SMTP_CONN_H
#define TERN_SMTP_CONN_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/tls.h"

typedef struct smtp_conn smtp_conn_t;

/* Why the last call failed. */
enum smtp_conn_err {
    SMTP_CONN_OK,
    SMTP_CONN_TIMEOUT, /* the deadline passed */
    SMTP_CONN_LOST,    /* the peer closed or reset the connection */
    SMTP_CONN_PROTO,   /* the peer sent something that is not a reply */
    SMTP_CONN_TLS,     /* the TLS layer failed */
};

/* One reply: the code, the enhanced status code when the reply has one
 * ("" otherwise), and the text of every line joined by spaces, code
 * included ("250 2.0.0 Ok: queued as X"). */
struct smtp_reply {
    int code;
    char dsn[16];
    char text[1024];
};

/* Connect to addr (numeric IPv4 or IPv6) port within timeout seconds.
 * Returns a connection, or NULL with a reason in why. */
smtp_conn_t *smtp_conn_open_inet(const char *addr, int port, int timeout,
                                 char *why, size_t whylen);

/* Connect to the unix-domain socket at path.  As smtp_conn_open_inet. */
smtp_conn_t *smtp_conn_open_unix(const char *path, int timeout, char *why,
                                 size_t whylen);

/* Queue output; nothing is sent until smtp_conn_flush or a read. */
void smtp_conn_put(smtp_conn_t *c, const char *data, size_t len);
void smtp_conn_printf(smtp_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes queued and not yet sent. */
size_t smtp_conn_pending(const smtp_conn_t *c);

/* Send what is queued; each wait is bounded by timeout seconds.  Returns
 * 0, or -1 (smtp_conn_error says why). */
int smtp_conn_flush(smtp_conn_t *c, int timeout);

/* Flush, then read one reply within timeout seconds.  Returns 0, or -1
 * (smtp_conn_error says why).  When lines is not NULL, the text of each
 * line after its code (an EHLO keyword line, say) is appended to it,
 * each ending in a newline. */
int smtp_conn_reply(smtp_conn_t *c, struct smtp_reply *r, int timeout,
                    buf_t *lines);

/* Run the TLS handshake as a client (after "220" to STARTTLS).  sni is
 * the host name to send and, with a verifying ctx, to check; NULL for
 * none.  Returns 0, or -1 with the reason in smtp_conn_error_text. */
int smtp_conn_starttls(smtp_conn_t *c, tls_ctx_t *ctx, const char *sni,
                       int timeout);

/* "TLSv1.3 with cipher X (256/256 bits)" once TLS is up, else NULL;
 * owned by the connection. */
const char *smtp_conn_tls_info(const smtp_conn_t *c);

/* Why the last failing call failed, and a line saying so. */
enum smtp_conn_err smtp_conn_error(const smtp_conn_t *c);
const char *smtp_conn_error_text(const smtp_conn_t *c);

/* Nonzero if the peer has sent bytes or closed the connection while we
 * expected nothing (an idle cached connection that went bad). */
int smtp_conn_stale(smtp_conn_t *c);

/* Close the socket (no QUIT) and free *cp; accepts NULL. */
void smtp_conn_close(smtp_conn_t **cp);

#endif
