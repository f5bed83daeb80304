/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the TLS layer: loading certificates and keys, and
 * handshakes and data over a non-blocking socketpair, both ends driven
 * by poll() in one thread.  The certificates are made with the openssl
 * command in a temporary directory; without it the test is skipped
 * (exit 77).
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/tls.h"

#define BIG_SIZE (1024 * 1024)
#define WAIT_MS 10000

static char dir[64];
static char cert[128];     /* CN=localhost, self-signed */
static char key[128];      /* its key */
static char cert2[128];    /* another self-signed certificate */
static char key2[128];     /* its key, which does not match cert */
static char combined[128]; /* cert and key in one file */
static char garbage[128];  /* a PEM block that is not base64 */
static char plain[128];    /* text with no PEM block */
static char missing[128];  /* does not exist */

/* One end of a handshake being driven: returns 1 done, 0 waiting (with
 * *events set to POLLIN or POLLOUT), -1 failed. */
typedef int (*step_fn)(void *end, short *events);

struct pair {
    int fd[2]; /* [0] server, [1] client */
    tls_conn_t *srv;
    tls_conn_t *cli;
};

static short
poll_events(uint32_t want)
{
    short ev = 0;

    if (want & EPOLLIN)
        ev |= POLLIN;
    if (want & EPOLLOUT)
        ev |= POLLOUT;
    return ev;
}

/* Wait until one of two descriptors is ready for what it waits for;
 * returns poll()'s result.  An fd of -1 or no events is left out. */
static int
wait_two(int fd1, short ev1, int fd2, short ev2, int ms)
{
    struct pollfd pfd[2];
    nfds_t n = 0;
    int r;

    if (fd1 >= 0 && ev1 != 0) {
        pfd[n].fd = fd1;
        pfd[n].events = ev1;
        n++;
    }
    if (fd2 >= 0 && ev2 != 0) {
        pfd[n].fd = fd2;
        pfd[n].events = ev2;
        n++;
    }
    if (n == 0)
        return 1;
    do {
        r = poll(pfd, n, ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

static int
step_conn(void *end, short *events)
{
    int r = tls_handshake(end);

    if (r == 0)
        *events = poll_events(tls_want(end));
    return r;
}

static int
step_raw(void *end, short *events)
{
    int r = SSL_do_handshake(end);

    if (r == 1)
        return 1;
    switch (SSL_get_error(end, r)) {
    case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return 0;
    default:
        return -1;
    }
}

/* Drive two handshakes until both have ended, or one has failed and
 * the other has nothing more to do. */
static void
run_handshakes(step_fn fs, void *s, int sfd, int *rs, step_fn fc, void *c,
               int cfd, int *rc)
{
    short evs = 0;
    short evc = 0;
    int rounds;

    *rs = 0;
    *rc = 0;
    for (rounds = 0; rounds < 10000; rounds++) {
        if (*rs == 0)
            *rs = fs(s, &evs);
        if (*rc == 0)
            *rc = fc(c, &evc);
        if (*rs != 0 && *rc != 0)
            return;
        if (wait_two(sfd, *rs == 0 ? evs : 0, cfd, *rc == 0 ? evc : 0,
                     *rs < 0 || *rc < 0 ? 1000 : WAIT_MS) == 0) {
            /* The survivor of a failure may wait for ever. */
            assert_true(*rs < 0 || *rc < 0);
            return;
        }
    }
    fail_msg("handshake does not end");
}

static void
pair_open(struct pair *p, tls_ctx_t *sctx, tls_ctx_t *cctx)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd),
                     0);
    p->srv = sctx != NULL ? tls_conn_new(sctx, p->fd[0], 1) : NULL;
    p->cli = cctx != NULL ? tls_conn_new(cctx, p->fd[1], 0) : NULL;
}

static void
pair_handshake(struct pair *p, int *rs, int *rc)
{
    run_handshakes(step_conn, p->srv, p->fd[0], rs, step_conn, p->cli, p->fd[1],
                   rc);
}

static void
pair_close(struct pair *p)
{
    tls_conn_free(&p->srv);
    tls_conn_free(&p->cli);
    if (p->fd[0] >= 0)
        close(p->fd[0]);
    if (p->fd[1] >= 0)
        close(p->fd[1]);
    p->fd[0] = p->fd[1] = -1;
}

static tls_ctx_t *
server_ctx(void)
{
    buf_t err;
    tls_ctx_t *ctx;

    buf_init(&err);
    ctx = tls_server_ctx_new(cert, key, &err);
    if (ctx == NULL)
        fail_msg("server context: %s", err.data);
    buf_free(&err);
    return ctx;
}

static tls_ctx_t *
client_ctx(const char *ca)
{
    buf_t err;
    tls_ctx_t *ctx;

    buf_init(&err);
    ctx = tls_client_ctx_new(ca, &err);
    if (ctx == NULL)
        fail_msg("client context: %s", err.data);
    buf_free(&err);
    return ctx;
}

/* A small pseudo-random number in [1, max]. */
static size_t
next_size(unsigned *seed, size_t max)
{
    *seed = *seed * 1103515245 + 12345;
    return 1 + (*seed >> 8) % max;
}

/*
 * Move len bytes from w to r in pieces of changing sizes, reading into
 * buffers of changing sizes.  The writer goes on until the socket is
 * full, so that writes have to wait; each retry is made from the other
 * copy of the data, so the write buffer moves as a loop's output buffer
 * may.  Returns the number of writes that had to wait.
 */
static int
transfer(tls_conn_t *w, int wfd, tls_conn_t *r, int rfd,
         const unsigned char *data, const unsigned char *copy, size_t len,
         unsigned char *out)
{
    unsigned wseed = 7;
    unsigned rseed = 11;
    size_t sent = 0;
    size_t got = 0;
    size_t piece = 0;
    int moved = 0;
    int waits = 0;

    while (got < len) {
        short evw = 0;
        short evr = 0;
        int progress = 0;
        ssize_t n;

        while (sent < len) {
            const unsigned char *from = moved ? copy : data;

            if (piece == 0)
                piece = next_size(&wseed,
                                  len - sent < 100000 ? len - sent : 100000);
            n = tls_write(w, from + sent, piece);
            if (n <= 0) {
                assert_int_equal(n, -2);
                evw = poll_events(tls_want(w));
                moved = !moved;
                waits++;
                break;
            }
            assert_true((size_t)n <= piece);
            sent += (size_t)n;
            piece = 0;
            progress = 1;
        }
        do {
            size_t room = len - got < 70000 ? len - got : 70000;

            n = tls_read(r, out + got, next_size(&rseed, room));
            if (n > 0) {
                got += (size_t)n;
                progress = 1;
            } else {
                assert_int_equal(n, -2);
                evr = poll_events(tls_want(r));
            }
        } while (n > 0 && got < len);
        if (!progress)
            assert_true(wait_two(wfd, evw, rfd, evr, WAIT_MS) > 0);
    }
    assert_int_equal(sent, len);
    return waits;
}

/* Read exactly len bytes from c, waiting as needed. */
static void
read_all(tls_conn_t *c, int fd, char *out, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = tls_read(c, out + got, len - got);

        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        assert_int_equal(n, -2);
        assert_true(wait_two(fd, poll_events(tls_want(c)), -1, 0, WAIT_MS) > 0);
    }
}

/* Write all of s to c, waiting as needed. */
static void
write_all(tls_conn_t *c, int fd, const char *s)
{
    size_t len = strlen(s);
    size_t sent = 0;

    while (sent < len) {
        ssize_t n = tls_write(c, s + sent, len - sent);

        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        assert_int_equal(n, -2);
        assert_true(wait_two(fd, poll_events(tls_want(c)), -1, 0, WAIT_MS) > 0);
    }
}

static void
assert_sigpipe_clear(void)
{
    sigset_t set;

    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &set), 0);
    assert_int_equal(sigismember(&set, SIGPIPE), 0);
    assert_int_equal(sigpending(&set), 0);
    assert_int_equal(sigismember(&set, SIGPIPE), 0);
}

static void
test_load_errors(void **state)
{
    static const struct {
        const char *cert;
        const char *key;
        const char *named; /* the file the message must name */
        const char *says;  /* and part of its reason */
    } cases[] = {
        {missing, key, missing, "No such file"},
        {cert, missing, missing, "No such file"},
        {cert, key2, key2, "does not match the certificate in"},
        {garbage, key, garbage, "bad base64 decode"},
        {plain, key, plain, "no start line"},
        {key, key, key, "no start line"},
        {cert, garbage, garbage, "no PEM private key"},
        {cert, plain, plain, "no PEM private key"},
        {cert, cert, cert, "no PEM private key"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t err;

        buf_init(&err);
        assert_null(tls_server_ctx_new(cases[i].cert, cases[i].key, &err));
        if (strstr(err.data, cases[i].named) == NULL ||
            strstr(err.data, cases[i].says) == NULL)
            fail_msg("case %zu: %s", i, err.data);

        /* One line, ending in a newline, as other loaders write. */
        assert_true(err.len > 0 && err.data[err.len - 1] == '\n');
        assert_ptr_equal(strchr(err.data, '\n'), err.data + err.len - 1);
        buf_free(&err);

        /* Without an error buffer: still NULL, nothing to crash on. */
        assert_null(tls_server_ctx_new(cases[i].cert, cases[i].key, NULL));
    }

    for (i = 0; i < 3; i++) {
        const char *ca = i == 0 ? missing : i == 1 ? plain : garbage;
        buf_t err;

        buf_init(&err);
        assert_null(tls_client_ctx_new(ca, &err));
        if (strstr(err.data, ca) == NULL ||
            strstr(err.data, "CA certificates") == NULL)
            fail_msg("CA %s: %s", ca, err.data);
        buf_free(&err);
    }
}

static void
test_load_ok(void **state)
{
    const char *cas[] = {NULL, cert};
    tls_ctx_t *ctx;
    buf_t err;
    size_t i;

    (void)state;
    buf_init(&err);
    ctx = tls_server_ctx_new(cert, key, &err);
    assert_non_null(ctx);
    assert_int_equal(err.len, 0);
    tls_ctx_unref(&ctx);
    assert_null(ctx);

    /* Certificate and key in one file. */
    ctx = tls_server_ctx_new(combined, combined, &err);
    assert_non_null(ctx);
    tls_ctx_unref(&ctx);

    for (i = 0; i < 2; i++) {
        ctx = tls_client_ctx_new(cas[i], &err);
        assert_non_null(ctx);
        tls_ctx_unref(&ctx);
    }
    assert_int_equal(err.len, 0);
    buf_free(&err);
}

static void
test_handshake_and_data(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(cert);
    const char *hello = "EHLO client.example\r\n";
    const char *reply = "250-server.example\r\n250 8BITMIME\r\n";
    struct pair p;
    char buf[128];
    int rs;
    int rc;
    int i;

    (void)state;
    pair_open(&p, sctx, cctx);
    assert_string_equal(tls_error(p.srv), "");
    assert_int_equal(tls_cipher_bits(p.srv), 0);
    assert_int_equal(tls_conn_set_sni(p.cli, "localhost."), 0);

    pair_handshake(&p, &rs, &rc);
    if (rs != 1 || rc != 1)
        fail_msg("server %d (%s), client %d (%s)", rs, tls_error(p.srv), rc,
                 tls_error(p.cli));
    assert_int_equal(tls_handshake(p.srv), 1);
    assert_string_equal(tls_error(p.srv), "");
    assert_string_equal(tls_error(p.cli), "");

    if (strcmp(tls_version(p.srv), "TLSv1.3") != 0)
        assert_string_equal(tls_version(p.srv), "TLSv1.2");
    assert_string_equal(tls_version(p.srv), tls_version(p.cli));
    assert_string_not_equal(tls_cipher(p.srv), "(NONE)");
    assert_true(strlen(tls_cipher(p.srv)) > 0);
    assert_string_equal(tls_cipher(p.srv), tls_cipher(p.cli));
    assert_true(tls_cipher_bits(p.srv) >= 128);

    /* A few exchanges each way, as a dialogue would have. */
    for (i = 0; i < 3; i++) {
        write_all(p.cli, p.fd[1], hello);
        memset(buf, 0, sizeof(buf));
        read_all(p.srv, p.fd[0], buf, strlen(hello));
        assert_string_equal(buf, hello);

        write_all(p.srv, p.fd[0], reply);
        memset(buf, 0, sizeof(buf));
        read_all(p.cli, p.fd[1], buf, strlen(reply));
        assert_string_equal(buf, reply);
    }
    assert_int_equal(tls_write(p.cli, hello, 0), 0);

    /* Orderly close: client first, then the server answers. */
    assert_int_equal(tls_shutdown(p.cli), 0);
    assert_int_equal(tls_want(p.cli), EPOLLIN);
    for (;;) {
        ssize_t n = tls_read(p.srv, buf, sizeof(buf));

        if (n == 0)
            break;
        assert_int_equal(n, -2);
        assert_true(wait_two(p.fd[0], POLLIN, -1, 0, WAIT_MS) > 0);
    }
    assert_int_equal(tls_read(p.srv, buf, sizeof(buf)), 0);
    assert_int_equal(tls_shutdown(p.srv), 1);
    for (;;) {
        int r = tls_shutdown(p.cli);

        if (r == 1)
            break;
        assert_int_equal(r, 0);
        assert_true(wait_two(p.fd[1], poll_events(tls_want(p.cli)), -1, 0,
                             WAIT_MS) > 0);
    }
    assert_sigpipe_clear();

    pair_close(&p);
    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
}

static void
test_big_transfer(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(NULL);
    unsigned char *data = mem_alloc(BIG_SIZE);
    unsigned char *copy = mem_alloc(BIG_SIZE);
    unsigned char *out = mem_alloc(BIG_SIZE);
    unsigned seed = 42;
    struct pair p;
    size_t i;
    int rs;
    int rc;

    (void)state;
    for (i = 0; i < BIG_SIZE; i++) {
        seed = seed * 1103515245 + 12345;
        data[i] = (unsigned char)(seed >> 16);
    }
    memcpy(copy, data, BIG_SIZE);

    pair_open(&p, sctx, cctx);
    pair_handshake(&p, &rs, &rc);
    assert_int_equal(rs, 1);
    assert_int_equal(rc, 1);

    memset(out, 0, BIG_SIZE);
    assert_true(transfer(p.cli, p.fd[1], p.srv, p.fd[0], data, copy, BIG_SIZE,
                         out) > 0);
    assert_memory_equal(out, data, BIG_SIZE);

    memset(out, 0, BIG_SIZE);
    assert_true(transfer(p.srv, p.fd[0], p.cli, p.fd[1], data, copy, BIG_SIZE,
                         out) > 0);
    assert_memory_equal(out, data, BIG_SIZE);
    assert_sigpipe_clear();

    pair_close(&p);
    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
    free(data);
    free(copy);
    free(out);
}

static void
test_pending(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(NULL);
    char msg[5000];
    char got[5000];
    struct pair p;
    size_t off;
    int rs;
    int rc;

    (void)state;
    memset(msg, 'x', sizeof(msg));
    msg[sizeof(msg) - 1] = '\0';
    pair_open(&p, sctx, cctx);
    pair_handshake(&p, &rs, &rc);
    assert_int_equal(rs, 1);
    assert_int_equal(rc, 1);

    /* One record; the reader takes it 100 bytes, then 1 byte at a time,
     * never waiting once the record is in. */
    write_all(p.cli, p.fd[1], msg);
    assert_int_equal(tls_pending(p.srv), 0);
    read_all(p.srv, p.fd[0], got, 100);
    assert_int_equal(tls_pending(p.srv), strlen(msg) - 100);
    for (off = 100; off < strlen(msg); off++) {
        assert_int_equal(tls_pending(p.srv), strlen(msg) - off);
        assert_int_equal(tls_read(p.srv, got + off, 1), 1);
    }
    assert_int_equal(tls_pending(p.srv), 0);
    assert_memory_equal(got, msg, strlen(msg));
    assert_int_equal(tls_read(p.srv, got, sizeof(got)), -2);
    assert_int_equal(tls_want(p.srv), EPOLLIN);

    pair_close(&p);
    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
}

/* A client made directly with OpenSSL, limited to at most version max. */
static void
raw_client(struct pair *p, int max, const char *expect_version)
{
    SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    int rs;
    int rc;

    assert_non_null(raw);

    /* Security level 0, so that the client really offers old versions
     * and it is the server that refuses them. */
    SSL_CTX_set_security_level(raw, 0);
    SSL_CTX_set_min_proto_version(raw, 0);
    assert_int_equal(SSL_CTX_set_max_proto_version(raw, max), 1);
    ssl = SSL_new(raw);
    assert_non_null(ssl);
    assert_int_equal(SSL_set_fd(ssl, p->fd[1]), 1);
    SSL_set_connect_state(ssl);

    run_handshakes(step_conn, p->srv, p->fd[0], &rs, step_raw, ssl, p->fd[1],
                   &rc);
    if (expect_version != NULL) {
        if (rs != 1 || rc != 1)
            fail_msg("server %d (%s), client %d", rs, tls_error(p->srv), rc);
        assert_string_equal(tls_version(p->srv), expect_version);
    } else {
        assert_int_equal(rs, -1);
        assert_int_equal(rc, -1);
        assert_true(strlen(tls_error(p->srv)) > 0);
        assert_non_null(strstr(tls_error(p->srv), "protocol"));

        /* A failed connection stays failed and sends nothing more. */
        assert_int_equal(tls_handshake(p->srv), -1);
        assert_int_equal(tls_read(p->srv, &rs, 1), -1);
        assert_int_equal(tls_write(p->srv, "x", 1), -1);
        assert_int_equal(tls_shutdown(p->srv), -1);
    }
    SSL_free(ssl);
    SSL_CTX_free(raw);
}

static void
test_versions(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    struct pair p;

    (void)state;
    pair_open(&p, sctx, NULL);
    raw_client(&p, TLS1_1_VERSION, NULL);
    pair_close(&p);

    pair_open(&p, sctx, NULL);
    raw_client(&p, TLS1_VERSION, NULL);
    pair_close(&p);

    pair_open(&p, sctx, NULL);
    raw_client(&p, TLS1_2_VERSION, "TLSv1.2");
    pair_close(&p);

    pair_open(&p, sctx, NULL);
    raw_client(&p, TLS1_3_VERSION, "TLSv1.3");
    pair_close(&p);

    tls_ctx_unref(&sctx);
}

static void
test_verify(void **state)
{
    static const struct {
        const char *ca;
        const char *host;
        const char *says;
    } cases[] = {
        {NULL, "localhost", NULL},
        {NULL, "mail.example", NULL},
        {NULL, "192.0.2.1", NULL},
        {NULL, NULL, NULL},
        {cert, "localhost", NULL},
        {cert, "LOCALHOST", NULL},
        {cert, NULL, NULL},
        {cert, "mail.example", "hostname mismatch"},
        {cert, "192.0.2.1", "IP address mismatch"},
        {cert2, "localhost", "certificate verify failed"},
    };
    tls_ctx_t *sctx = server_ctx();
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tls_ctx_t *cctx = client_ctx(cases[i].ca);
        struct pair p;
        int rs;
        int rc;

        pair_open(&p, sctx, cctx);
        if (cases[i].host != NULL)
            assert_int_equal(tls_conn_set_sni(p.cli, cases[i].host), 0);
        pair_handshake(&p, &rs, &rc);
        if (cases[i].says == NULL) {
            if (rs != 1 || rc != 1)
                fail_msg("case %zu: server %d (%s), client %d (%s)", i, rs,
                         tls_error(p.srv), rc, tls_error(p.cli));
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(rs, -1);
            if (strstr(tls_error(p.cli), cases[i].says) == NULL)
                fail_msg("case %zu: %s", i, tls_error(p.cli));
            assert_true(strlen(tls_error(p.srv)) > 0);
        }
        pair_close(&p);
        tls_ctx_unref(&cctx);
    }
    tls_ctx_unref(&sctx);
}

static void
test_bad_peers(void **state)
{
    const char *ehlo = "EHLO client.example\r\n";
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(NULL);
    struct pair p;
    int r;

    (void)state;

    /* A client that talks plain SMTP into the handshake. */
    pair_open(&p, sctx, NULL);
    assert_int_equal(write(p.fd[1], ehlo, strlen(ehlo)), (ssize_t)strlen(ehlo));
    while ((r = tls_handshake(p.srv)) == 0)
        assert_true(wait_two(p.fd[0], poll_events(tls_want(p.srv)), -1, 0,
                             WAIT_MS) > 0);
    assert_int_equal(r, -1);
    assert_true(strlen(tls_error(p.srv)) > 0);
    pair_close(&p);

    /* A client that goes away before its hello. */
    pair_open(&p, sctx, NULL);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(tls_handshake(p.srv), -1);
    assert_non_null(strstr(tls_error(p.srv), "closed by peer"));
    pair_close(&p);

    /* A server that goes away during the handshake. */
    pair_open(&p, NULL, cctx);
    assert_int_equal(tls_handshake(p.cli), 0);
    assert_int_equal(tls_want(p.cli), EPOLLIN);
    close(p.fd[0]);
    p.fd[0] = -1;
    assert_int_equal(tls_handshake(p.cli), -1);
    assert_true(strlen(tls_error(p.cli)) > 0);
    pair_close(&p);

    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
}

/* After the handshake the client's socket is closed without
 * close_notify: reads see EOF, writes fail without a signal. */
static void
peer_gone(tls_ctx_t *sctx, tls_ctx_t *cctx, int write_first)
{
    struct pair p;
    char buf[64];
    int rs;
    int rc;

    pair_open(&p, sctx, cctx);
    pair_handshake(&p, &rs, &rc);
    assert_int_equal(rs, 1);
    assert_int_equal(rc, 1);
    tls_conn_free(&p.cli);
    close(p.fd[1]);
    p.fd[1] = -1;

    if (write_first) {
        assert_int_equal(tls_write(p.srv, "250 ok\r\n", 8), -1);
        assert_true(strlen(tls_error(p.srv)) > 0);
        assert_int_equal(tls_write(p.srv, "250 ok\r\n", 8), -1);
    } else {
        assert_int_equal(tls_read(p.srv, buf, sizeof(buf)), 0);
        assert_int_equal(tls_read(p.srv, buf, sizeof(buf)), 0);
        assert_int_equal(tls_write(p.srv, "250 ok\r\n", 8), -1);
    }
    assert_int_equal(tls_shutdown(p.srv), -1);
    assert_sigpipe_clear();
    pair_close(&p);
}

static void
test_peer_gone(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(NULL);
    struct sigaction ign;
    struct sigaction old;

    (void)state;

    /* SIGPIPE at its default, deadly disposition: the guard must hold. */
    peer_gone(sctx, cctx, 1);
    peer_gone(sctx, cctx, 0);

    /* SIGPIPE ignored, as in the daemon: no guard needed. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
    peer_gone(sctx, cctx, 1);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);

    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
}

static void *
hammer(void *arg)
{
    tls_ctx_t *ctx = arg;
    int i;

    for (i = 0; i < 100000; i++) {
        tls_ctx_t *mine = tls_ctx_ref(ctx);

        tls_ctx_unref(&mine);
    }
    return NULL;
}

static void
test_refcount(void **state)
{
    tls_ctx_t *sctx = server_ctx();
    tls_ctx_t *cctx = client_ctx(NULL);
    tls_ctx_t *extra = NULL;
    tls_conn_t *nothing = NULL;
    pthread_t threads[4];
    struct pair p;
    size_t i;
    int rs;
    int rc;

    (void)state;

    /* NULL is accepted everywhere a free function takes a pointer. */
    tls_ctx_unref(NULL);
    tls_ctx_unref(&extra);
    tls_conn_free(NULL);
    tls_conn_free(&nothing);

    extra = tls_ctx_ref(sctx);
    assert_ptr_equal(extra, sctx);
    tls_ctx_unref(&extra);
    assert_null(extra);

    /* Connections keep their context after the caller lets go, as they
     * do across a configuration reload. */
    pair_open(&p, sctx, cctx);
    tls_ctx_unref(&sctx);
    tls_ctx_unref(&cctx);
    pair_handshake(&p, &rs, &rc);
    assert_int_equal(rs, 1);
    assert_int_equal(rc, 1);
    assert_int_equal(tls_shutdown(p.srv), 0);
    pair_close(&p);

    /* References taken and dropped from several threads at once. */
    sctx = server_ctx();
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, sctx), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pair_open(&p, sctx, NULL);
    assert_int_equal(tls_shutdown(p.srv), -1); /* no handshake yet */
    tls_ctx_unref(&sctx);
    pair_close(&p);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_tls: failed: %s\n", cmd);
        exit(1);
    }
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "test_tls: cannot write %s\n", path);
        exit(1);
    }
}

static void
make_files(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/test_tls.XXXXXX",
             tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("test_tls: mkdtemp");
        exit(1);
    }
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert2, sizeof(cert2), "%s/cert2.pem", dir);
    snprintf(key2, sizeof(key2), "%s/key2.pem", dir);
    snprintf(combined, sizeof(combined), "%s/combined.pem", dir);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", dir);
    snprintf(plain, sizeof(plain), "%s/plain.pem", dir);
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);

    run("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
        "-days 1 -keyout '%s' -out '%s' 2>/dev/null",
        key, cert);
    run("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
        "-days 1 -keyout '%s' -out '%s' 2>/dev/null",
        key2, cert2);
    run("cat '%s' '%s' > '%s'", cert, key, combined);
    write_file(garbage, "-----BEGIN CERTIFICATE-----\n"
                        "this is not base64 at all!\n"
                        "-----END CERTIFICATE-----\n");
    write_file(plain, "just some text\n");
}

static void
remove_files(void)
{
    const char *files[] = {cert, key, cert2, key2, combined, garbage, plain};
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_big_transfer),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_bad_peers),
        cmocka_unit_test(test_peer_gone),
        cmocka_unit_test(test_refcount),
    };
    int failed;

    if (system("openssl version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_tls: no openssl command, skipped\n");
        return 77;
    }
    make_files();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    remove_files();
    return failed;
}
