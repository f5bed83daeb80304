/* SPDX-License-Identifier: ISC */
/*
 * tls: a thin layer over OpenSSL 3 for non-blocking sockets watched by
 * epoll.  OpenSSL reads and writes the socket itself through its socket
 * BIO; this module turns its results into the three answers a loop
 * needs (progress, wait for an event, failed) and keeps one line of
 * reason for the log.
 *
 * Threads: a tls_ctx is shared and only read after it is built, except
 * for its reference count, which is atomic.  A tls_conn is touched by
 * one thread at a time.  OpenSSL keeps its error queue per thread, so
 * each call empties the queue first and reads it right after the
 * OpenSSL call that failed.
 *
 * Guarantees: no call blocks on the socket; no call raises SIGPIPE (see
 * tls.h); after a connection has failed, OpenSSL is not asked to read
 * or write it again, as its documentation requires (no close_notify after
 * a fatal error).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/tls.h"

/*
 * Ciphers for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults).  Mail
 * between servers is opportunistic (RFC 7435): a handshake that fails
 * leaves the mail to go in clear text, so the list stays wide enough
 * for old peers.  What it drops is unauthenticated, null, pre-shared-key
 * and little-used ciphers.  OpenSSL orders HIGH with forward-secret
 * AEAD suites first, as RFC 9325 recommends, and the server's order
 * decides.
 */
#define TLS_CIPHERS                                                            \
    "HIGH:!aNULL:!eNULL:!aDSS:!PSK:!SRP:!CAMELLIA:!ARIA:!AESCCM8"

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    int refs;   /* atomic */
    int verify; /* client: the peer's certificate is checked */
};

struct tls_conn {
    SSL *ssl;
    tls_ctx_t *ctx;
    uint32_t want;     /* EPOLLIN or EPOLLOUT after a "wait" result */
    int guard_sigpipe; /* SIGPIPE was not ignored at tls_conn_new() */
    int broken;        /* failed: OpenSSL must not touch the SSL again */
    int eof;           /* the peer closed: reads return 0 */
    char err[256];
};

/* The state of SIGPIPE around one OpenSSL call that may write. */
struct tls_guard {
    int on;
    int was_pending;
    sigset_t old;
};

/* Put OpenSSL's reason for the oldest error queued in this thread into
 * out, and empty the queue.  The oldest error is the cause; those
 * queued after it only say which layers it went through. */
static void
tls_reason(char *out, size_t size)
{
    unsigned long e = ERR_get_error();
    const char *reason;

    if (e == 0)
        snprintf(out, size, "unknown error");
    else if (ERR_SYSTEM_ERROR(e))
        snprintf(out, size, "%s", strerror(ERR_GET_REASON(e)));
    else if ((reason = ERR_reason_error_string(e)) != NULL)
        snprintf(out, size, "%s", reason);
    else
        ERR_error_string_n(e, out, size);
    ERR_clear_error();
}

/* Append "file: what: reason" to err, reason from the error queue. */
static void
tls_load_error(buf_t *err, const char *file, const char *what)
{
    char reason[256];

    tls_reason(reason, sizeof(reason));
    if (err != NULL)
        buf_printf(err, "%s: %s: %s\n", file, what, reason);
}

/* An SSL_CTX with what servers and clients share, or NULL with err
 * appended. */
static SSL_CTX *
tls_ssl_ctx_new(const SSL_METHOD *method, buf_t *err)
{
    SSL_CTX *s;

    ERR_clear_error();
    s = SSL_CTX_new(method);
    if (s == NULL) {
        tls_load_error(err, "OpenSSL", "cannot create a TLS context");
        return NULL;
    }

    /* TLS 1.0 and 1.1 are deprecated by RFC 8996. */
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);

    /*
     * Compression opens the CRIME attack.  Renegotiation is not needed
     * by SMTP and has a history of attacks of its own.  Resumption is
     * off: it saves little for mail, and a cache shared across threads
     * and reloads is more to get wrong than it is worth.
     */
    SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);

    /*
     * Partial writes let a loop push what the socket takes.  A caller's
     * output buffer may move between a write that must wait and its
     * retry.  Idle connections give their record buffers back, which
     * matters with thousands of them open.
     */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);

    if (SSL_CTX_set_cipher_list(s, TLS_CIPHERS) != 1) {
        tls_load_error(err, "OpenSSL", "cannot set the cipher list");
        SSL_CTX_free(s);
        return NULL;
    }
    return s;
}

/* Wrap s, which becomes owned by the new context. */
static tls_ctx_t *
tls_ctx_wrap(SSL_CTX *s, int verify)
{
    tls_ctx_t *ctx = mem_calloc(1, sizeof(*ctx));

    ctx->ssl_ctx = s;
    ctx->refs = 1;
    ctx->verify = verify;
    return ctx;
}

/* Load the key in key_file into s, which holds the certificate from
 * cert_file.  Returns 0, or -1 with err appended. */
static int
tls_load_key(SSL_CTX *s, const char *cert_file, const char *key_file,
             buf_t *err)
{
    unsigned long e;

    /* OpenSSL checks the key against the certificate as it loads it. */
    if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(s) == 1)
        return 0;

    e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
        ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        if (err != NULL)
            buf_printf(err,
                       "%s: private key does not match the certificate in "
                       "%s\n",
                       key_file, cert_file);
    } else if (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER) {
        /* OpenSSL's own reason here is only "unsupported". */
        ERR_clear_error();
        if (err != NULL)
            buf_printf(err,
                       "%s: cannot load private key: no PEM private key "
                       "that OpenSSL can decode\n",
                       key_file);
    } else {
        tls_load_error(err, key_file, "cannot load private key");
    }
    return -1;
}

/* Build a server context from a certificate chain and a key file. */
tls_ctx_t *
tls_server_ctx_new(const char *cert_file, const char *key_file, buf_t *err)
{
    SSL_CTX *s = tls_ssl_ctx_new(TLS_server_method(), err);

    if (s == NULL)
        return NULL;

    if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1) {
        tls_load_error(err, cert_file, "cannot load certificate chain");
        SSL_CTX_free(s);
        return NULL;
    }
    if (tls_load_key(s, cert_file, key_file, err) < 0) {
        SSL_CTX_free(s);
        return NULL;
    }

    SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(s, 0);
    SSL_CTX_set_dh_auto(s, 1);
    return tls_ctx_wrap(s, 0);
}

/* Build a client context, verifying servers against ca_file if given. */
tls_ctx_t *
tls_client_ctx_new(const char *ca_file, buf_t *err)
{
    SSL_CTX *s = tls_ssl_ctx_new(TLS_client_method(), err);

    if (s == NULL)
        return NULL;

    if (ca_file == NULL) {
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
        return tls_ctx_wrap(s, 0);
    }
    if (SSL_CTX_load_verify_locations(s, ca_file, NULL) != 1) {
        tls_load_error(err, ca_file, "cannot load CA certificates");
        SSL_CTX_free(s);
        return NULL;
    }
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    return tls_ctx_wrap(s, 1);
}

/* Take a reference on ctx. */
tls_ctx_t *
tls_ctx_ref(tls_ctx_t *ctx)
{
    __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
    return ctx;
}

/* Drop a reference, freeing the context with the last one. */
void
tls_ctx_unref(tls_ctx_t **cp)
{
    tls_ctx_t *ctx;

    if (cp == NULL || *cp == NULL)
        return;
    ctx = *cp;
    *cp = NULL;

    /* Release so that our last uses happen before the free; acquire so
     * that the thread that frees sees every other thread's. */
    if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* Make a TLS connection over the caller's socket fd. */
tls_conn_t *
tls_conn_new(tls_ctx_t *ctx, int fd, int server)
{
    tls_conn_t *c = mem_calloc(1, sizeof(*c));
    struct sigaction sa;
    char reason[256];

    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        tls_reason(reason, sizeof(reason));
        msg_fatal("cannot create a TLS connection: %s", reason);
    }
    if (server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    c->ctx = tls_ctx_ref(ctx);

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_IGN)
        c->guard_sigpipe = 0;
    else
        c->guard_sigpipe = 1;
    return c;
}

/* Name the server for SNI and, when verifying, for the certificate. */
int
tls_conn_set_sni(tls_conn_t *c, const char *host)
{
    unsigned char addr[16];
    size_t len = strlen(host);
    char *name;
    int literal;
    int ok = 1;

    /* A final dot is DNS syntax, not part of the name (RFC 6066 3). */
    if (len > 1 && host[len - 1] == '.')
        len--;
    name = mem_strndup(host, len);
    literal = inet_pton(AF_INET, name, addr) == 1 ||
              inet_pton(AF_INET6, name, addr) == 1;

    ERR_clear_error();

    /* RFC 6066 section 3: literal addresses are not sent as SNI. */
    if (!literal)
        ok = SSL_set_tlsext_host_name(c->ssl, name) == 1;
    if (ok && c->ctx->verify && literal)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1;
    if (ok && c->ctx->verify && !literal) {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(c->ssl, name) == 1;
    }
    free(name);
    if (!ok) {
        tls_reason(c->err, sizeof(c->err));
        return -1;
    }
    return 0;
}

/* Block SIGPIPE in this thread for a call that may write, if needed. */
static void
tls_guard_begin(const tls_conn_t *c, struct tls_guard *g)
{
    sigset_t pipe_set;
    sigset_t pending;

    g->on = c->guard_sigpipe;
    if (!g->on)
        return;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);

    /* A SIGPIPE already pending is someone else's: leave it. */
    g->was_pending =
        sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

/* Discard the SIGPIPE our write raised, and unblock; errno is kept. */
static void
tls_guard_end(struct tls_guard *g)
{
    static const struct timespec zero = {0, 0};
    int saved_errno = errno;
    sigset_t pipe_set;
    sigset_t pending;

    if (!g->on)
        return;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (!g->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1) {
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved_errno;
}

/*
 * Sort out why the OpenSSL call that returned ret did not succeed:
 * -2 when it must wait (c->want set), 0 when the peer closed, -1 when
 * the connection failed (c->err set).  saved_errno is errno right after
 * the call.
 */
static int
tls_fail(tls_conn_t *c, int ret, int saved_errno)
{
    unsigned long e;

    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        c->want = EPOLLIN;
        return -2;
    case SSL_ERROR_WANT_WRITE:
        c->want = EPOLLOUT;
        return -2;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify: we may still send ours. */
        ERR_clear_error();
        c->eof = 1;
        return 0;
    case SSL_ERROR_SYSCALL:
        c->broken = 1;
        if (ERR_peek_error() != 0) {
            tls_reason(c->err, sizeof(c->err));
            return -1;
        }
        if (saved_errno == 0) {
            c->eof = 1;
            snprintf(c->err, sizeof(c->err), "connection closed by peer");
            return 0;
        }
        snprintf(c->err, sizeof(c->err), "%s", strerror(saved_errno));
        return -1;
    case SSL_ERROR_SSL:
        c->broken = 1;
        e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            /*
             * EOF without close_notify.  SMTP ends its own data with
             * "." and QUIT, so a truncation cannot pass for a whole
             * message, and many peers just close: treat it as a close.
             */
            ERR_clear_error();
            c->eof = 1;
            snprintf(c->err, sizeof(c->err), "connection closed by peer");
            return 0;
        }
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            ERR_clear_error();
            snprintf(
                c->err, sizeof(c->err), "certificate verify failed: %s",
                X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
            return -1;
        }
        tls_reason(c->err, sizeof(c->err));
        return -1;
    default:
        c->broken = 1;
        ERR_clear_error();
        snprintf(c->err, sizeof(c->err), "unexpected OpenSSL result");
        return -1;
    }
}

/* Advance the handshake: 1 done, 0 in progress, -1 failed. */
int
tls_handshake(tls_conn_t *c)
{
    struct tls_guard g;
    int saved_errno;
    int ret;

    c->want = 0;
    if (c->broken)
        return -1;
    if (c->eof) {
        snprintf(c->err, sizeof(c->err), "connection closed by peer");
        return -1;
    }

    ERR_clear_error();
    errno = 0;
    tls_guard_begin(c, &g);
    ret = SSL_do_handshake(c->ssl);
    saved_errno = errno;
    tls_guard_end(&g);
    if (ret == 1)
        return 1;

    switch (tls_fail(c, ret, saved_errno)) {
    case -2:
        return 0;
    case 0:
        c->broken = 1;
        snprintf(c->err, sizeof(c->err),
                 "connection closed by peer during handshake");
        return -1;
    default:
        return -1;
    }
}

/* Read decrypted bytes: >0, 0 closed, -1 error, -2 wait. */
ssize_t
tls_read(tls_conn_t *c, void *buf, size_t len)
{
    struct tls_guard g;
    size_t n = 0;
    int saved_errno;
    int ret;

    c->want = 0;
    if (c->eof)
        return 0;
    if (c->broken)
        return -1;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;

    /* Reading may write: a TLS 1.3 key update asks for an answer. */
    ERR_clear_error();
    errno = 0;
    tls_guard_begin(c, &g);
    ret = SSL_read_ex(c->ssl, buf, len, &n);
    saved_errno = errno;
    tls_guard_end(&g);
    if (ret == 1)
        return (ssize_t)n;
    return tls_fail(c, ret, saved_errno);
}

/* Write bytes, perhaps some of them: >0, 0, -1 error, -2 wait. */
ssize_t
tls_write(tls_conn_t *c, const void *buf, size_t len)
{
    struct tls_guard g;
    size_t n = 0;
    int saved_errno;
    int ret;

    c->want = 0;
    if (c->broken)
        return -1;
    if (len == 0)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;

    ERR_clear_error();
    errno = 0;
    tls_guard_begin(c, &g);
    ret = SSL_write_ex(c->ssl, buf, len, &n);
    saved_errno = errno;
    tls_guard_end(&g);
    if (ret == 1)
        return (ssize_t)n;
    return tls_fail(c, ret, saved_errno);
}

/* Decrypted bytes ready to be read without the socket. */
size_t
tls_pending(tls_conn_t *c)
{
    int n;

    if (c->broken)
        return 0;
    n = SSL_pending(c->ssl);
    return n > 0 ? (size_t)n : 0;
}

/* Send close_notify without blocking: 1 done, 0 in progress, -1 not. */
int
tls_shutdown(tls_conn_t *c)
{
    struct tls_guard g;
    int saved_errno;
    int ret;

    c->want = 0;
    if (c->broken || !SSL_is_init_finished(c->ssl))
        return -1;

    ERR_clear_error();
    errno = 0;
    tls_guard_begin(c, &g);
    ret = SSL_shutdown(c->ssl);
    saved_errno = errno;
    tls_guard_end(&g);
    if (ret == 1)
        return 1;
    if (ret == 0) {
        /* Ours is sent; the peer's may follow. */
        c->want = EPOLLIN;
        return 0;
    }
    if (tls_fail(c, ret, saved_errno) == -2)
        return 0;
    c->broken = 1;
    return -1;
}

/* The event the last "wait" result waits for. */
uint32_t
tls_want(const tls_conn_t *c)
{
    return c->want;
}

/* Why the connection failed, or "". */
const char *
tls_error(const tls_conn_t *c)
{
    return c->err;
}

/* The protocol version agreed. */
const char *
tls_version(const tls_conn_t *c)
{
    return SSL_get_version(c->ssl);
}

/* The cipher agreed. */
const char *
tls_cipher(const tls_conn_t *c)
{
    return SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl));
}

/* The secret bits of the agreed cipher. */
int
tls_cipher_bits(const tls_conn_t *c)
{
    return SSL_CIPHER_get_bits(SSL_get_current_cipher(c->ssl), NULL);
}

/* Free a connection, leaving its socket open. */
void
tls_conn_free(tls_conn_t **cp)
{
    tls_conn_t *c;

    if (cp == NULL || *cp == NULL)
        return;
    c = *cp;
    *cp = NULL;
    SSL_free(c->ssl);
    tls_ctx_unref(&c->ctx);
    free(c);
}
