/* SPDX-License-Identifier: ISC */
/*
 * Tests of server/smtpd_policy and of check_policy_service in
 * server/smtpd_check: the answer reader from a table of answers, fed
 * whole and one byte at a time; attributes and service names; and
 * queries against a policy server in a thread of this test, on a
 * unix-domain socket in a scratch directory, that answers as each test
 * tells it to (well, with garbage, late, or not at all) and counts the
 * connections it was given.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "server/smtpd_check.h"
#include "server/smtpd_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static char sockpath[PATH_MAX];
static char service[PATH_MAX];

/*
 * The policy server.  Every request it reads gets `answer` (its bytes
 * as they are, which lets a test send garbage), or nothing when answer
 * is NULL.  The last request is kept for the test to look at.
 */
struct server {
    pthread_t thread;
    pthread_mutex_t lock;
    int listen_fd;
    int stop[2];
    const char *answer;
    int accepts;
    int requests;
    buf_t last;
};

static struct server srv;

static void
server_set(const char *answer)
{
    pthread_mutex_lock(&srv.lock);
    srv.answer = answer;
    srv.accepts = 0;
    srv.requests = 0;
    pthread_mutex_unlock(&srv.lock);
}

/* Take what one client sent; answer each complete request.  Returns
 * -1 when the client closed. */
static int
server_read(int fd, buf_t *in)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    char *end;

    if (n <= 0)
        return -1;
    buf_append(in, chunk, (size_t)n);
    while (in->len > 0 && (end = strstr(in->data, "\n\n")) != NULL) {
        size_t len = (size_t)(end - in->data) + 2;
        const char *answer;

        pthread_mutex_lock(&srv.lock);
        srv.requests++;
        buf_reset(&srv.last);
        buf_append(&srv.last, in->data, len);
        answer = srv.answer;
        pthread_mutex_unlock(&srv.lock);
        buf_consume(in, len);
        if (answer && write(fd, answer, strlen(answer)) < 0)
            return -1;
    }
    return 0;
}

static void *
server_main(void *arg)
{
    struct pollfd pfd[18];
    buf_t in[18];
    int n = 2;
    int i;

    (void)arg;
    pfd[0].fd = srv.stop[0];
    pfd[1].fd = srv.listen_fd;
    for (i = 0; i < 18; i++) {
        pfd[i].events = POLLIN;
        buf_init(&in[i]);
    }
    while (poll(pfd, (nfds_t)n, -1) >= 0 && !pfd[0].revents) {
        if (pfd[1].revents && n < 18) {
            int fd = accept(srv.listen_fd, NULL, NULL);

            if (fd >= 0) {
                pthread_mutex_lock(&srv.lock);
                srv.accepts++;
                pthread_mutex_unlock(&srv.lock);
                pfd[n].fd = fd;
                pfd[n].revents = 0;
                buf_reset(&in[n]);
                n++;
            }
        }
        for (i = 2; i < n; i++) {
            if (!pfd[i].revents || server_read(pfd[i].fd, &in[i]) == 0)
                continue;
            close(pfd[i].fd);
            pfd[i] = pfd[n - 1];
            buf_reset(&in[i]);
            buf_append(&in[i], in[n - 1].data, in[n - 1].len);
            n--;
            i--;
        }
    }
    for (i = 2; i < n; i++)
        close(pfd[i].fd);
    for (i = 0; i < 18; i++)
        buf_free(&in[i]);
    return NULL;
}

/* Load a config of test defaults plus text. */
static config_t *
load_cfg(const char *text)
{
    char path[PATH_MAX];
    config_t *cfg;
    buf_t err;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/main.cf", tmpdir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "queue_directory = %s\nsmtpd_policy_service_retry_delay = 0\n"
            "%s",
            tmpdir, text);
    assert_int_equal(fclose(fp), 0);
    buf_init(&err);
    cfg = config_load(path, NULL, 0, &err);
    if (cfg == NULL)
        fail_msg("config_load: %s", err.data ? err.data : "?");
    buf_free(&err);
    return cfg;
}

struct reader_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int want;   /* smtpd_policy_feed's result */
    const char *action;
    size_t used; /* for want 1 */
};

static int
feed_all(const struct reader_case *c, size_t len, size_t step, buf_t *action,
         size_t *used)
{
    struct smtpd_policy_reader r;
    const char *why = NULL;
    size_t off = 0;
    int rc = 0;

    smtpd_policy_reader_init(&r);
    *used = 0;
    while (off < len && rc == 0) {
        size_t n = len - off < step ? len - off : step;
        size_t u = 0;

        rc = smtpd_policy_feed(&r, c->in + off, n, &u, &why);
        assert_true(u <= n);
        if (rc >= 0)
            off += u;
    }
    *used = off;
    if (rc < 0)
        assert_non_null(why);
    buf_reset(action);
    if (rc == 1)
        buf_append(action, r.action.data, r.action.len);
    smtpd_policy_reader_free(&r);
    return rc;
}

static void
test_reader(void **state)
{
    static char big[SMTPD_POLICY_ANSWER_MAX + 64];
    static const struct reader_case cases[] = {
        {"action=DUNNO\n\n", 0, 1, "DUNNO", 14},
        {"action=DEFER_IF_PERMIT 4.2.0 Greylisted, see x\n\n", 0, 1,
         "DEFER_IF_PERMIT 4.2.0 Greylisted, see x", 48},
        {"action=OK\r\n\r\n", 0, 1, "OK", 13},
        /* other attributes are no concern of ours */
        {"foo=bar\naction=REJECT no\nbaz=\n\n", 0, 1, "REJECT no", 31},
        /* what follows the answer is not taken */
        {"action=OK\n\naction=REJECT\n\n", 0, 1, "OK", 11},
        /* a value may hold "=" */
        {"action=PREPEND X-A: a=b\n\n", 0, 1, "PREPEND X-A: a=b", 25},
        {"action=DUNNO\n", 0, 0, NULL, 0},
        {"", 0, 0, NULL, 0},
        {"\n", 0, -1, NULL, 0},
        {"hello\n\n", 0, -1, NULL, 0},
        {"=DUNNO\n\n", 0, -1, NULL, 0},
        {"action=\n\n", 0, -1, NULL, 0},
        {"action=OK\naction=REJECT\n\n", 0, -1, NULL, 0},
        {"other=1\n\n", 0, -1, NULL, 0},
        {"action=O\0K\n\n", 12, -1, NULL, 0},
        {big, sizeof(big) - 1, -1, NULL, 0},
    };
    static const size_t steps[] = {1, 2, 7, 100000};
    buf_t action;
    size_t i;
    size_t j;

    (void)state;
    memcpy(big, "action=", 7);
    memset(big + 7, 'x', sizeof(big) - 8);
    buf_init(&action);
    for (i = 0; i < N(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);

        for (j = 0; j < N(steps); j++) {
            size_t used;
            int rc = feed_all(&cases[i], len, steps[j], &action, &used);

            if (rc != cases[i].want)
                fail_msg("case %zu, step %zu: %d, wanted %d", i, steps[j], rc,
                         cases[i].want);
            if (rc == 1) {
                assert_string_equal(action.data, cases[i].action);
                assert_int_equal(used, cases[i].used);
            }
        }
    }
    buf_free(&action);
}

static void
test_attr_and_service(void **state)
{
    static const char *const good[] = {
        "inet:127.0.0.1:10023", "inet:[::1]:10023",    "inet:localhost:1",
        "unix:/run/p",          "unix:private/policy", "/run/policy",
    };
    static const char *const bad[] = {
        "127.0.0.1:10023", "inet:", "inet:host",      "inet:h:0",
        "inet:h:x",        "unix:", "private/policy", "tcp:1.2.3.4:5",
    };
    const char *why;
    buf_t req;
    size_t i;

    (void)state;
    buf_init(&req);
    smtpd_policy_attr(&req, "helo_name", "a\r\nrecipient=x");
    smtpd_policy_attr(&req, "sender", "");
    smtpd_policy_attr(&req, "queue_id", NULL);
    assert_string_equal(req.data, "helo_name=a??recipient=x\nsender=\n"
                                  "queue_id=\n");
    buf_free(&req);
    for (i = 0; i < N(good); i++)
        if (smtpd_policy_service_valid(good[i], &why) < 0)
            fail_msg("%s: %s", good[i], why);
    for (i = 0; i < N(bad); i++)
        if (smtpd_policy_service_valid(bad[i], &why) == 0)
            fail_msg("%s accepted", bad[i]);
}

/* One query of the request "request=smtpd_access_policy". */
static int
query(smtpd_policy_t *p, const config_t *cfg, const char *svc, buf_t *action,
      buf_t *why)
{
    buf_t req;
    int rc;

    buf_init(&req);
    smtpd_policy_attr(&req, "request", "smtpd_access_policy");
    rc = smtpd_policy_query(p, cfg, svc, &req, action, why);
    buf_free(&req);
    return rc;
}

static int
server_count(const int *field)
{
    int n;

    pthread_mutex_lock(&srv.lock);
    n = *field;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

static void
test_query_reuse(void **state)
{
    config_t *cfg = load_cfg("");
    smtpd_policy_t *p = smtpd_policy_new();
    buf_t action;
    buf_t why;
    int i;

    (void)state;
    buf_init(&action);
    buf_init(&why);
    server_set("action=DUNNO\n\n");
    for (i = 0; i < 3; i++) {
        assert_int_equal(query(p, cfg, service, &action, &why), 0);
        assert_string_equal(action.data, "DUNNO");
    }
    assert_int_equal(server_count(&srv.requests), 3);
    assert_int_equal(server_count(&srv.accepts), 1);
    pthread_mutex_lock(&srv.lock);
    assert_string_equal(srv.last.data, "request=smtpd_access_policy\n\n");
    pthread_mutex_unlock(&srv.lock);
    /* past max_idle, the sweep closes it: the next query connects */
    smtpd_policy_sweep(p, clock_mono_ms() + 301 * 1000);
    assert_int_equal(query(p, cfg, service, &action, &why), 0);
    assert_int_equal(server_count(&srv.accepts), 2);
    smtpd_policy_free(&p);
    config_unref(&cfg);

    /* a request limit of 1: a connection for each */
    cfg = load_cfg("smtpd_policy_service_request_limit = 1\n");
    p = smtpd_policy_new();
    server_set("action=OK\n\n");
    for (i = 0; i < 3; i++)
        assert_int_equal(query(p, cfg, service, &action, &why), 0);
    assert_int_equal(server_count(&srv.accepts), 3);
    smtpd_policy_free(&p);
    config_unref(&cfg);

    /* a max_ttl of 0: a connection for each */
    cfg = load_cfg("smtpd_policy_service_max_ttl = 0\n");
    p = smtpd_policy_new();
    server_set("action=OK\n\n");
    for (i = 0; i < 2; i++)
        assert_int_equal(query(p, cfg, service, &action, &why), 0);
    assert_int_equal(server_count(&srv.accepts), 2);
    smtpd_policy_free(&p);
    config_unref(&cfg);
    buf_free(&action);
    buf_free(&why);
}

static void
test_query_failures(void **state)
{
    static const char *const garbage[] = {
        "hello\n\n",
        "action=\n\n",
        "no action\n",
        "\n",
        "action=OK\naction=REJECT\n\n",
    };
    config_t *cfg = load_cfg("smtpd_policy_service_timeout = 1s\n");
    smtpd_policy_t *p = smtpd_policy_new();
    char nowhere[PATH_MAX];
    buf_t action;
    buf_t why;
    int64_t t0;
    size_t i;

    (void)state;
    buf_init(&action);
    buf_init(&why);
    for (i = 0; i < N(garbage); i++) {
        server_set(garbage[i]);
        assert_int_equal(query(p, cfg, service, &action, &why), -1);
        assert_non_null(strstr(why.data, "bad answer"));
        /* try_limit 2: twice, on a new connection each time */
        assert_int_equal(server_count(&srv.requests), 2);
        assert_int_equal(server_count(&srv.accepts), 2);
    }
    /* an answer that never ends */
    server_set("action=OK\n");
    t0 = clock_mono_ms();
    assert_int_equal(query(p, cfg, service, &action, &why), -1);
    assert_non_null(strstr(why.data, "timeout"));
    assert_true(clock_mono_ms() - t0 < 5000);
    /* a server that never answers: one timeout per try */
    server_set(NULL);
    t0 = clock_mono_ms();
    assert_int_equal(query(p, cfg, service, &action, &why), -1);
    assert_non_null(strstr(why.data, "timeout"));
    assert_true(clock_mono_ms() - t0 >= 1900);
    assert_true(clock_mono_ms() - t0 < 6000);
    /* nobody there */
    snprintf(nowhere, sizeof(nowhere), "unix:%s/nowhere", tmpdir);
    assert_int_equal(query(p, cfg, nowhere, &action, &why), -1);
    assert_non_null(strstr(why.data, "connect"));
    smtpd_policy_free(&p);
    config_unref(&cfg);
    buf_free(&action);
    buf_free(&why);
}

struct stop_arg {
    smtpd_policy_t *p;
    config_t *cfg;
    int rc;
    int64_t took;
};

static void *
stop_query(void *arg)
{
    struct stop_arg *a = arg;
    int64_t t0 = clock_mono_ms();
    buf_t action;
    buf_t why;

    buf_init(&action);
    buf_init(&why);
    a->rc = query(a->p, a->cfg, service, &action, &why);
    a->took = clock_mono_ms() - t0;
    buf_free(&action);
    buf_free(&why);
    return NULL;
}

/* smtpd_policy_stop ends a wait on a silent server at once. */
static void
test_query_stop(void **state)
{
    struct stop_arg a;
    pthread_t t;

    (void)state;
    a.cfg = load_cfg("smtpd_policy_service_timeout = 100s\n");
    a.p = smtpd_policy_new();
    a.rc = 0;
    server_set(NULL);
    assert_int_equal(pthread_create(&t, NULL, stop_query, &a), 0);
    while (server_count(&srv.requests) == 0)
        usleep(10000);
    smtpd_policy_stop(a.p);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, -1);
    assert_true(a.took < 5000);
    smtpd_policy_free(&a.p);
    config_unref(&a.cfg);
}

struct policy_case {
    const char *answer;
    int want;
    const char *reply; /* for REJ */
};

/* check_policy_service in a list: the request it sends, and each answer
 * applied as a table result would be. */
static void
test_check_policy(void **state)
{
    static const struct policy_case cases[] = {
        {"action=DUNNO\n\n", SMTPD_CHECK_DUNNO, NULL},
        {"action=OK\n\n", SMTPD_CHECK_OK, NULL},
        {"action=REJECT go away\n\n", SMTPD_CHECK_REJECT,
         "554 5.7.1 <r@example.com>: Recipient address rejected: go away"},
        {"action=450 4.7.1 later\n\n", SMTPD_CHECK_REJECT,
         "450 4.7.1 <r@example.com>: Recipient address rejected: later"},
        {"action=defer_if_permit 4.2.0 Greylisted\n\n", SMTPD_CHECK_REJECT,
         "450 4.2.0 <r@example.com>: Recipient address rejected: "
         "Greylisted"},
        {"action=reject_unauth_destination, permit\n\n", SMTPD_CHECK_OK, NULL},
        {"action=no_such_thing\n\n", SMTPD_CHECK_REJECT,
         "451 4.3.5 <r@example.com>: Recipient address rejected: Server "
         "configuration error"},
        /* the default action: no answer, a garbled one */
        {"garbage\n\n", SMTPD_CHECK_REJECT,
         "451 4.3.5 <r@example.com>: Recipient address rejected: Server "
         "configuration problem"},
        {"action=check_policy_service inet:127.0.0.1:9\n\n", SMTPD_CHECK_REJECT,
         "451 4.3.5 <r@example.com>: Recipient address rejected: Server "
         "configuration error"},
    };
    static const char *const attrs[] = {
        "request=smtpd_access_policy\n",
        "protocol_state=RCPT\n",
        "protocol_name=ESMTP\n",
        "helo_name=client.example\n",
        "queue_id=\n",
        "sender=s@example.org\n",
        "recipient=r@example.com\n",
        "recipient_count=0\n",
        "client_address=192.0.2.7\n",
        "client_name=unknown\n",
        "reverse_client_name=unknown\n",
        "instance=1.2.3\n",
        "sasl_method=PLAIN\n",
        "sasl_username=alice\n",
        "sasl_sender=\n",
        "size=1234\n",
        "ccert_subject=\n",
        "encryption_protocol=TLSv1.3\n",
        "encryption_keysize=256\n",
        "etrn_domain=\n",
        "policy_context=test\n",
        "server_address=\n",
    };
    struct smtpd_check_ctx ctx;
    config_t *cfg;
    char *text;
    buf_t reply;
    size_t i;

    (void)state;
    text = malloc(strlen(service) + 256);
    assert_non_null(text);
    sprintf(text,
            "mydestination = example.com\n"
            "smtpd_policy_service_try_limit = 1\n"
            "smtpd_policy_service_policy_context = test\n"
            "smtpd_recipient_restrictions = check_policy_service %s\n",
            service);
    cfg = load_cfg(text);
    free(text);
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = cfg;
    ctx.client_addr = "192.0.2.7";
    ctx.helo = "client.example";
    ctx.sender = "s@example.org";
    ctx.rcpt = "r@example.com";
    ctx.sasl_user = "alice";
    ctx.sasl_method = "PLAIN";
    ctx.protocol = "ESMTP";
    ctx.instance = "1.2.3";
    ctx.size = 1234;
    ctx.tls_protocol = "TLSv1.3";
    ctx.tls_cipher = "TLS_AES_256_GCM_SHA384";
    ctx.tls_bits = 256;
    ctx.policy = smtpd_policy_new();
    buf_init(&reply);
    for (i = 0; i < N(cases); i++) {
        int rc;

        server_set(cases[i].answer);
        rc = smtpd_check(&ctx, P_SMTPD_RECIPIENT_RESTRICTIONS, &reply);
        if (rc != cases[i].want)
            fail_msg("case %zu: %d, wanted %d (%s)", i, rc, cases[i].want,
                     reply.data ? reply.data : "");
        if (rc == SMTPD_CHECK_REJECT)
            assert_string_equal(reply.data, cases[i].reply);
    }
    pthread_mutex_lock(&srv.lock);
    for (i = 0; i < N(attrs); i++)
        if (strstr(srv.last.data, attrs[i]) == NULL)
            fail_msg("no %s in the request:\n%s", attrs[i], srv.last.data);
    assert_true(strncmp(srv.last.data, "request=smtpd_access_policy\n", 28) ==
                0);
    assert_true(strstr(srv.last.data, "\n\n") ==
                srv.last.data + srv.last.len - 2);
    pthread_mutex_unlock(&srv.lock);
    /* no client: the default action, without asking */
    smtpd_policy_free(&ctx.policy);
    server_set("action=OK\n\n");
    assert_int_equal(smtpd_check(&ctx, P_SMTPD_RECIPIENT_RESTRICTIONS, &reply),
                     SMTPD_CHECK_REJECT);
    assert_int_equal(server_count(&srv.requests), 0);
    buf_free(&reply);
    config_unref(&cfg);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    char logpath[PATH_MAX];
    struct sockaddr_un sun;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-policy-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    snprintf(sockpath, sizeof(sockpath), "%s/policy", tmpdir);
    /* Relative: below queue_directory, which load_cfg sets to tmpdir. */
    snprintf(service, sizeof(service), "unix:policy");
    smtpd_check_register();
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(sockpath) >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, sockpath, strlen(sockpath) + 1);
    pthread_mutex_init(&srv.lock, NULL);
    buf_init(&srv.last);
    srv.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (srv.listen_fd < 0 ||
        bind(srv.listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(srv.listen_fd, 16) < 0 || pipe(srv.stop) < 0 ||
        pthread_create(&srv.thread, NULL, server_main, NULL) != 0)
        return -1;
    return log_open(LOG_DEST_FILE, "tern", logpath);
}

static int
group_teardown(void **state)
{
    (void)state;
    if (write(srv.stop[1], "x", 1) == 1)
        pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    buf_free(&srv.last);
    log_open(LOG_DEST_STDERR, "tern", NULL);
    if (getenv("TERN_KEEP_TESTDIR") == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_attr_and_service),
        cmocka_unit_test(test_query_reuse),
        cmocka_unit_test(test_query_failures),
        cmocka_unit_test(test_query_stop),
        cmocka_unit_test(test_check_policy),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
