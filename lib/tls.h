/* SPDX-License-Identifier: ISC */
/*
 * tls: TLS over non-blocking sockets on epoll loops, on top of OpenSSL 3.
 *
 * A tls_ctx holds what every connection of one kind shares: certificate
 * and key for a server, trust anchors for a client, protocol and cipher
 * choices.  It is reference counted, so a configuration reload can build
 * a new context while established connections keep the old one until
 * they end.  A tls_conn is one TLS connection over a socket that its
 * caller owns, has made non-blocking and keeps watching on its loop.
 *
 * Calls that would block return at once and say, through tls_want(),
 * whether to wait for EPOLLIN or EPOLLOUT; either may be asked for by
 * any operation, because TLS reads and writes records of its own (a
 * read may have to send, a write may have to receive).
 *
 * Threads: contexts may be shared by any number of threads and
 * referenced or released from any of them.  A connection is used by one
 * thread at a time.
 *
 * SIGPIPE: the daemon ignores it.  For other programs, when SIGPIPE is
 * not ignored at the time a connection is made, that connection blocks
 * SIGPIPE in the calling thread around each call that may write to the
 * socket and discards the signal its own write raised, so a peer that
 * went away shows up as an error, never as a signal.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* A server context with the PEM certificate chain in cert_file (leaf
 * first) and the PEM private key in key_file, which may be the same
 * file.  TLS 1.2 at least, no compression, no renegotiation, no session
 * resumption.  Returns a context holding one reference, or NULL with a
 * line naming the file and OpenSSL's reason appended to err (when err is
 * not NULL). */
tls_ctx_t *tls_server_ctx_new(const char *cert_file, const char *key_file,
                              buf_t *err);

/* A client context.  With ca_file (PEM trust anchors), servers must
 * present a certificate that chains to one of them and, once
 * tls_conn_set_sni() has named the host, matches that name; with
 * ca_file NULL nothing is verified (opportunistic TLS).  Returns a
 * context holding one reference, or NULL with a line naming the file and
 * OpenSSL's reason appended to err (when err is not NULL). */
tls_ctx_t *tls_client_ctx_new(const char *ca_file, buf_t *err);

/* Take one more reference; returns ctx.  Thread-safe. */
tls_ctx_t *tls_ctx_ref(tls_ctx_t *ctx);

/* Drop the reference held through *cp and set *cp to NULL; the context
 * is freed with its last reference.  Accepts NULL and *cp == NULL.
 * Thread-safe. */
void tls_ctx_unref(tls_ctx_t **cp);

/* A connection over fd, a connected non-blocking socket that the caller
 * keeps owning (it is never closed here).  server is 1 to accept, 0 to
 * connect.  The connection takes its own reference on ctx.  Never
 * returns NULL: failure (only when OpenSSL is out of memory) is fatal.
 * Nothing is sent until the first tls_handshake(). */
tls_conn_t *tls_conn_new(tls_ctx_t *ctx, int fd, int server);

/* Client side: the host name sent as SNI (not for address literals) and,
 * when the context verifies, the name the certificate must match.  Call
 * before the first tls_handshake().  Returns 0, or -1 if OpenSSL
 * refuses the name. */
int tls_conn_set_sni(tls_conn_t *c, const char *host);

/* Advance the handshake.  Returns 1 when it is complete, 0 when it must
 * wait (tls_want() says for what), -1 when it failed (tls_error() says
 * why; the connection is then only good for tls_conn_free()). */
int tls_handshake(tls_conn_t *c);

/* Read up to len (> 0) decrypted bytes into buf.  Returns the number
 * read (> 0), 0 when the peer closed the connection (close_notify or
 * plain EOF), -1 on error (tls_error() says why) or -2 when it must wait
 * (tls_want() says for what).  After a read, tls_pending() may report
 * bytes that can be read without waiting for the socket. */
ssize_t tls_read(tls_conn_t *c, void *buf, size_t len);

/* Write up to len bytes from buf; partial writes happen.  Returns the
 * number taken (> 0; 0 when len is 0 or the peer has closed), -1 on
 * error (tls_error() says why) or -2 when it must wait (tls_want() says
 * for what).  After -2, the next call must offer at least the same
 * bytes again at the front of buf, which may have moved and grown. */
ssize_t tls_write(tls_conn_t *c, const void *buf, size_t len);

/* The number of decrypted bytes buffered inside the connection, which
 * tls_read() returns without waiting for the socket to be readable. */
size_t tls_pending(tls_conn_t *c);

/* Send close_notify, without blocking.  Returns 1 when both sides have
 * sent theirs, 0 when ours is sent or waiting to go (tls_want() says
 * what it waits for; calling again continues), -1 when no close_notify
 * can be sent (failed or unfinished handshake, broken connection).
 * Closing the socket after any result is correct. */
int tls_shutdown(tls_conn_t *c);

/* The event (EPOLLIN or EPOLLOUT) the last call that returned "wait"
 * waits for; 0 when none did. */
uint32_t tls_want(const tls_conn_t *c);

/* One line saying why the connection failed ("" while it has not).
 * The string belongs to the connection and lives as long as it. */
const char *tls_error(const tls_conn_t *c);

/* The protocol version agreed ("TLSv1.3"); a static string. */
const char *tls_version(const tls_conn_t *c);

/* The cipher agreed, in OpenSSL's naming ("TLS_AES_256_GCM_SHA384"), or
 * "(NONE)" before the handshake; a static string. */
const char *tls_cipher(const tls_conn_t *c);

/* The secret bits of the agreed cipher; 0 before the handshake. */
int tls_cipher_bits(const tls_conn_t *c);

/* Free *cp and set it to NULL; the socket is left open and the context
 * reference dropped.  No close_notify is sent (see tls_shutdown()).
 * Accepts NULL and *cp == NULL. */
void tls_conn_free(tls_conn_t **cp);

#endif
