/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of queue/cleanup: requests go through a real cleanup pool
 * into a real store in a scratch directory, and what was stored (or the
 * reply, when nothing was) is compared with a table of cases: local
 * submissions (From: added, bare addresses qualified, headers
 * rewritten, message_size_limit), SMTP mail (envelope rewritten, headers
 * left alone), header_size_limit, message_drop_headers, REJECT,
 * DISCARD, HOLD and REDIRECT (from header_checks and from smtpd's
 * restrictions), smtpd's PREPEND, canonical and virtual rewriting of
 * recipients with their original address kept as ORCPT, and messages
 * whose header block is odd.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/cleanup.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static char checks_path[PATH_MAX];
static store_t *store;
static cleanup_t *cleanup;

static const char header_rules[] =
    "/^Subject: reject/     REJECT no thanks\n"
    "/^Subject: discard/    DISCARD\n"
    "/^Subject: hold/       HOLD\n"
    "/^Subject: redirect/   REDIRECT elsewhere@example.com\n"
    "/^X-Drop-Me:/          IGNORE\n"
    "/^Subject: replace/    REPLACE From: replaced@example.com\n";

/* What a completion reports, for the waiting test. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
};

static void
test_done(cleanup_req_t *req, int status, const char *reply)
{
    struct waiter *w = req->arg;

    (void)reply;
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    char qdir[PATH_MAX];
    char *err = NULL;
    FILE *fp;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-cleanup-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(checks_path, sizeof(checks_path), "%s/header_checks", tmpdir);
    if ((fp = fopen(checks_path, "w")) == NULL)
        return -1;
    fputs(header_rules, fp);
    fclose(fp);
    snprintf(qdir, sizeof(qdir), "%s/queue", tmpdir);
    if ((store = store_open(qdir, &err)) == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    cleanup_register();
    cleanup = cleanup_new(store, 2, NULL, NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    cleanup_stop(&cleanup);
    store_close(&store);
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static config_t *
load(const char *const *extra)
{
    char checks[PATH_MAX + 32];
    char *ov[24];
    size_t n = 0;
    size_t i;
    buf_t err;
    config_t *cfg;

    snprintf(checks, sizeof(checks), "header_checks=pcre:%s", checks_path);
    ov[n++] = mem_strdup("myhostname=mx.origin.test");
    ov[n++] = mem_strdup("myorigin=origin.test");
    ov[n++] = mem_strdup("mydestination=origin.test, localhost");
    ov[n++] = mem_strdup(checks);
    ov[n++] = mem_strdup("canonical_maps=inline:{old@example.com="
                         "new@example.com, @olddom.test=@newdom.test}");
    ov[n++] = mem_strdup("virtual_alias_maps=inline:{v@virt.test="
                         "x@example.com y@example.com}");
    for (i = 0; extra && extra[i] && n < N(ov); i++)
        ov[n++] = mem_strdup(extra[i]);
    buf_init(&err);
    cfg = config_load(NULL, ov, n, &err);
    if (cfg == NULL)
        fail_msg("config_load: %s", err.data ? err.data : "?");
    buf_free(&err);
    for (i = 0; i < n; i++)
        free(ov[i]);
    return cfg;
}

static const char *const size_limit[] = {"message_size_limit=200", NULL};
static const char *const header_limit[] = {"header_size_limit=180", NULL};
static const char *const masquerade[] = {
    "masquerade_domains=example.net",
    NULL,
};

enum stored { STORED, NOT_STORED };

static const struct cleanup_case {
    const char *what;
    int local;
    const char *sender;
    const char *rcpts; /* comma-separated; "addr;orcpt" gives one */
    const char *fullname;
    const char *msg;
    const char *const *extra;
    int status;
    const char *reply; /* when status is -1 */
    enum stored stored;
    enum queue_state state;
    const char *want_sender;
    const char *want_rcpts; /* "addr orcpt|addr -|..." */
    const char *has[4];     /* in the stored message */
    const char *lacks[3];   /* not in the stored message */
} cases[] = {
    {"local: From: added with the full name, bare sender qualified",
     1,
     "joe",
     "bob",
     "Joe Q. Public",
     "Subject: hi\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "joe@origin.test",
     "bob@origin.test rfc822;bob",
     {"\nFrom: \"Joe Q. Public\" <joe@origin.test>\n\nbody\n",
      "Received: by mx.origin.test (tern)\n\tid ", "\nMessage-ID: <",
      "\nDate: "},
     {NULL}},
    {"local: the null sender gets MAILER-DAEMON",
     1,
     "",
     "bob@localhost",
     NULL,
     "Subject: hi\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "",
     "bob@localhost -",
     {"\nFrom: MAILER-DAEMON@origin.test\n"},
     {NULL}},
    {"local: headers rewritten, From: kept",
     1,
     "joe@origin.test",
     "bob@localhost",
     "Joe",
     "From: old@example.com\nTo: bob, Carl <x@olddom.test>\n"
     "Subject: rw\n\nold@example.com in the body\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "joe@origin.test",
     "bob@localhost -",
     {"\nFrom: new@example.com\n",
      "\nTo: bob@origin.test, Carl <x@newdom.test>\n",
      "\n\nold@example.com in the body\n"},
     {"Joe <", "From: old@"}},
    {"smtp: envelope rewritten, headers kept, no From: added",
     0,
     "old@example.com",
     "old@example.com,keep@localhost",
     NULL,
     "To: bob, Carl <x@olddom.test>\nSubject: rw\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "new@example.com",
     "new@example.com rfc822;old@example.com|keep@localhost -",
     {"\nTo: bob, Carl <x@olddom.test>\n",
      "Received: from h.test (unknown [127.0.0.1])\n"},
     {"\nFrom: "}},
    {"virtual: one recipient becomes two, ORCPT kept",
     0,
     "a@b.test",
     "v@virt.test;rfc822;first@orig.test,v@virt.test",
     NULL,
     "Subject: v\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "x@example.com rfc822;first@orig.test|"
     "y@example.com rfc822;first@orig.test",
     {"\n\nbody\n"},
     {NULL}},
    {"masquerade_domains strips the sender's subdomain",
     0,
     "u@host.example.net",
     "keep@localhost",
     NULL,
     "Subject: m\n\nbody\n",
     masquerade,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "u@example.net",
     "keep@localhost -",
     {NULL},
     {NULL}},
    {"local: message_size_limit",
     1,
     "joe",
     "bob",
     NULL,
     "Subject: big\n\n"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "\n",
     size_limit,
     -1,
     "552 5.3.4 Message size exceeds fixed limit",
     NOT_STORED,
     QS_INCOMING,
     NULL,
     NULL,
     {NULL},
     {NULL}},
    {"header_size_limit refuses, does not truncate",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: 012345678901234567890123456789\n"
     " 0123456789012345678901234567890123456789012345678901234567890123\n"
     " 0123456789012345678901234567890123456789012345678901234567890123\n"
     " 0123456789012345678901234567890123456789012345678901234567890123\n"
     "\nbody\n",
     header_limit,
     -1,
     "552 5.3.4 Message header size exceeds limit",
     NOT_STORED,
     QS_INCOMING,
     NULL,
     NULL,
     {NULL},
     {NULL}},
    {"REJECT",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: reject this\n\nbody\n",
     NULL,
     -1,
     "550 5.7.1 no thanks",
     NOT_STORED,
     QS_INCOMING,
     NULL,
     NULL,
     {NULL},
     {NULL}},
    {"DISCARD",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: discard this\n\nbody\n",
     NULL,
     0,
     NULL,
     NOT_STORED,
     QS_INCOMING,
     NULL,
     NULL,
     {NULL},
     {NULL}},
    {"HOLD",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: hold this\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_HOLD,
     "a@b.test",
     "keep@localhost -",
     {"\nSubject: hold this\n"},
     {NULL}},
    {"REDIRECT with two recipients",
     0,
     "a@b.test",
     "one@localhost,two@localhost",
     NULL,
     "Subject: redirect\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "elsewhere@example.com -",
     {NULL},
     {NULL}},
    {"REDIRECT with one recipient keeps it as ORCPT",
     0,
     "a@b.test",
     "one@localhost",
     NULL,
     "Subject: redirect\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "elsewhere@example.com rfc822;one@localhost",
     {NULL},
     {NULL}},
    {"IGNORE and REPLACE in the header block",
     1,
     "joe",
     "bob",
     NULL,
     "X-Drop-Me: 1\nSubject: replace\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "joe@origin.test",
     "bob@origin.test rfc822;bob",
     {"\nFrom: replaced@example.com\nMessage-ID: "},
     {"X-Drop-Me", "Subject:", "From: joe"}},
    {"message_drop_headers",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Bcc: hidden@example.com\nReturn-Path: <forged@example.com>\n"
     "content-length: 5\nResent-Bcc: x@y\nSubject: dropped\n\nbody\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "keep@localhost -",
     {"\nSubject: dropped\n"},
     {"hidden@", "forged@", "ength: 5"}},
    {"no header block: the body starts at once",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "just text\nmore\n",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "keep@localhost -",
     {"\nDate: ", "\n\njust text\nmore\n"},
     {NULL}},
    {"a header without newline or body",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: x",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "keep@localhost -",
     {"\nSubject: x\nMessage-ID: <"},
     {NULL}},
    {"a body without its last newline",
     0,
     "a@b.test",
     "keep@localhost",
     NULL,
     "Subject: x\n\nlast",
     NULL,
     0,
     NULL,
     STORED,
     QS_INCOMING,
     "a@b.test",
     "keep@localhost -",
     {"\n\nlast\n"},
     {NULL}},
};

/* What smtpd's restrictions asked of a message, and what comes of it. */
struct smtpd_asked {
    const char *prepend;
    const char *redirect;
    int hold;
    int discard;
};

static const struct smtpd_case {
    struct smtpd_asked asked;
    struct cleanup_case c;
} smtpd_cases[] = {
    {{"X-Policy: yes\nX-Drop-Me: 1\nX-Second: 2\n", NULL, 0, 0},
     {"smtpd's PREPEND: above Received:, through header_checks", 0,
      "a@b.test", "keep@localhost", NULL, "Subject: x\n\nbody\n", NULL, 0,
      NULL, STORED, QS_INCOMING, "a@b.test", "keep@localhost -",
      {"X-Policy: yes\nX-Second: 2\nReceived: from h.test"},
      {"X-Drop-Me"}}},
    {{NULL, NULL, 1, 0},
     {"smtpd's HOLD", 0, "a@b.test", "keep@localhost", NULL,
      "Subject: x\n\nbody\n", NULL, 0, NULL, STORED, QS_HOLD, "a@b.test",
      "keep@localhost -", {NULL}, {NULL}}},
    {{NULL, "policy@example.com", 0, 0},
     {"smtpd's REDIRECT", 0, "a@b.test", "one@localhost", NULL,
      "Subject: x\n\nbody\n", NULL, 0, NULL, STORED, QS_INCOMING,
      "a@b.test", "policy@example.com rfc822;one@localhost", {NULL},
      {NULL}}},
    {{NULL, "policy@example.com", 0, 0},
     {"smtpd's REDIRECT, then header_checks' REDIRECT wins", 0, "a@b.test",
      "one@localhost", NULL, "Subject: redirect\n\nbody\n", NULL, 0, NULL,
      STORED, QS_INCOMING, "a@b.test",
      "elsewhere@example.com rfc822;one@localhost", {NULL}, {NULL}}},
    {{NULL, NULL, 0, 1},
     {"smtpd's DISCARD: reported queued, nothing stored", 0, "a@b.test",
      "keep@localhost", NULL, "Subject: x\n\nbody\n", NULL, 0, NULL,
      NOT_STORED, QS_INCOMING, NULL, NULL, {NULL}, {NULL}}},
};

/* Fill env's recipients from "a,b;orcpt,c". */
static void
add_rcpts(envelope_t *env, const char *list)
{
    char *copy = mem_strdup(list);
    char *save = NULL;
    char *item;

    for (item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *semi = strchr(item, ';');
        rcpt_t *r;

        if (semi)
            *semi = '\0';
        r = envelope_add_rcpt(env, item);
        if (semi)
            envelope_set(&r->orcpt, semi + 1);
    }
    free(copy);
}

static void
check_stored(const struct cleanup_case *c, const char *id)
{
    envelope_t *env = NULL;
    buf_t body;
    buf_t got;
    size_t i;
    int rc;

    rc = store_get_envelope(store, id, &env, NULL, NULL);
    if (c->stored == NOT_STORED) {
        if (rc != 0)
            fail_msg("%s: stored, want nothing", c->what);
        envelope_free(&env);
        return;
    }
    if (rc != 1)
        fail_msg("%s: not stored (%d)", c->what, rc);
    assert_int_equal(env->state, c->state);
    assert_string_equal(env->sender, c->want_sender);
    buf_init(&got);
    for (i = 0; i < env->nrcpt; i++)
        buf_printf(&got, "%s%s %s", i ? "|" : "", env->rcpts[i].addr,
                   env->rcpts[i].orcpt ? env->rcpts[i].orcpt : "-");
    if (strcmp(got.data ? got.data : "", c->want_rcpts) != 0)
        fail_msg("%s: recipients \"%s\", want \"%s\"", c->what,
                 got.data ? got.data : "", c->want_rcpts);
    buf_free(&got);
    buf_init(&body);
    assert_int_equal(store_get_body(store, id, &body), 1);
    assert_int_equal((int64_t)body.len, env->size);
    assert_int_equal(body.data[body.len - 1], '\n');
    for (i = 0; i < N(c->has) && c->has[i]; i++)
        if (strstr(body.data, c->has[i]) == NULL)
            fail_msg("%s: stored message lacks \"%s\":\n%s", c->what, c->has[i],
                     body.data);
    for (i = 0; i < N(c->lacks) && c->lacks[i]; i++)
        if (strstr(body.data, c->lacks[i]) != NULL)
            fail_msg("%s: stored message has \"%s\":\n%s", c->what, c->lacks[i],
                     body.data);
    buf_free(&body);
    envelope_free(&env);
}

static void
run_case(const struct cleanup_case *c, const struct smtpd_asked *asked)
{
    cleanup_req_t *req = mem_calloc(1, sizeof(*req));
    struct waiter w;
    char id[QUEUE_ID_SIZE];

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    w.done = 0;
    w.status = 99;
    req->env = envelope_new();
    queue_id_new(req->env->id);
    memcpy(id, req->env->id, sizeof(id));
    envelope_set(&req->env->sender, c->sender);
    add_rcpts(req->env, c->rcpts);
    if (c->local) {
        envelope_set(&req->env->protocol, "LOCAL");
    } else {
        envelope_set(&req->env->client_name, "unknown");
        envelope_set(&req->env->client_addr, "127.0.0.1");
        envelope_set(&req->env->helo, "h.test");
        envelope_set(&req->env->protocol, "ESMTP");
    }
    buf_init(&req->msg);
    buf_puts(&req->msg, c->msg);
    req->cfg = load(c->extra);
    req->local = c->local;
    req->fullname = c->fullname ? mem_strdup(c->fullname) : NULL;
    if (asked) {
        req->prepend = asked->prepend ? mem_strdup(asked->prepend) : NULL;
        req->redirect = asked->redirect ? mem_strdup(asked->redirect) : NULL;
        req->hold = asked->hold;
        req->discard = asked->discard;
    }
    req->done = test_done;
    req->arg = &w;
    assert_int_equal(cleanup_submit(cleanup, req), 0);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    if (w.status != c->status)
        fail_msg("%s: status %d, want %d (%s)", c->what, w.status, c->status,
                 req->reply);
    if (c->status != 0)
        assert_string_equal(req->reply, c->reply);
    cleanup_req_free(&req);
    check_stored(c, id);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
}

static void
test_cases(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++)
        run_case(&cases[i], NULL);
    for (i = 0; i < N(smtpd_cases); i++)
        run_case(&smtpd_cases[i].c, &smtpd_cases[i].asked);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
    };

    log_set_role("cleanup");
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
