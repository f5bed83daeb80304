/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of queue/cleanup_checks: pcre tables of header and body
 * rules written to a scratch directory, and a table of lines with what
 * each must come to (the verdict on the line, the text prepended or put
 * in its place, the outcome for the message, the SMTP reply of a
 * reject) and the log line it must leave, in Postfix's shape.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/table.h"
#include "queue/cleanup_checks.h"
#include "queue/envelope.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static char logpath[PATH_MAX];
static table_t *header_maps[2];
static table_t *body_maps[2];

static const char header_rules[] =
    "/^Subject: reject me/      REJECT no thanks\n"
    "/^Subject: reject dsn/     REJECT 5.7.9 custom code\n"
    "/^Subject: reject defer/   REJECT 4.7.0 later\n"
    "/^Subject: reject plain/   REJECT\n"
    "/^Subject: reject (.*)/s   REJECT bad $1\n"
    "/^Subject: discard/        DISCARD gone\n"
    "/^Subject: hold/           HOLD held for review\n"
    "/^Subject: warn/           WARN just saying\n"
    "/^Subject: info/           INFO noted\n"
    "/^X-Drop:/                 IGNORE\n"
    "/^X-Strip:/                STRIP stripped\n"
    "/^Subject: redirect/       REDIRECT other@example.com\n"
    "/^Subject: bad redirect/   REDIRECT nobody\n"
    "/^Subject: prepend/        PREPEND X-Prepended: yes\n"
    "/^Subject: bad prepend/    PREPEND not a header\n"
    "/^Subject: replace (.*)/   REPLACE Subject: replaced $1\n"
    "/^Subject: dunno/          DUNNO\n"
    "/^Subject: ok/             ok\n"
    "/^Subject: filter/         FILTER smtp:[127.0.0.1]:10025\n"
    "/^Subject: unknown/        FROBNICATE\n"
    "/^Subject: first\\s+second/ WARN folded\n"
    "if /^X-Nested:/\n"
    "/ deep$/                   HOLD nested\n"
    "endif\n";

static const char body_rules[] =
    "/^reject body/             REJECT body rejected\n"
    "/^drop me/                 IGNORE\n"
    "/^replace me/              REPLACE replaced line\n"
    "/^prepend me/              PREPEND prepended line\n"
    "/^discard body/            DISCARD\n";

static const char *
write_to(const char *name, const char *text)
{
    static char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static table_t *
open_rules(const char *name, const char *text)
{
    char spec[PATH_MAX + 8];
    table_t *t;
    buf_t err;

    snprintf(spec, sizeof(spec), "pcre:%s", write_to(name, text));
    buf_init(&err);
    t = table_open(spec, &err);
    if (t == NULL)
        fail_msg("%s: %s", spec, err.data ? err.data : "?");
    buf_free(&err);
    return t;
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-checks-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    if (log_open(LOG_DEST_FILE, "tern", logpath) < 0)
        return -1;
    log_set_role("cleanup");
    header_maps[0] = open_rules("header_checks", header_rules);
    body_maps[0] = open_rules("body_checks", body_rules);
    return 0;
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
group_teardown(void **state)
{
    (void)state;
    table_free(&header_maps[0]);
    table_free(&body_maps[0]);
    log_open(LOG_DEST_STDERR, "tern", NULL);
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long
log_size(void)
{
    FILE *fp = fopen(logpath, "r");
    long off;

    if (fp == NULL)
        return 0;
    fseek(fp, 0, SEEK_END);
    off = ftell(fp);
    fclose(fp);
    return off;
}

/* What was logged since mark; the caller frees it. */
static char *
log_since(long mark)
{
    FILE *fp = fopen(logpath, "r");
    long end;
    char *s;
    size_t n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    end = ftell(fp);
    s = calloc(1, (size_t)(end - mark) + 1);
    assert_non_null(s);
    fseek(fp, mark, SEEK_SET);
    n = fread(s, 1, (size_t)(end - mark), fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static envelope_t *
test_envelope(int local)
{
    envelope_t *env = envelope_new();

    snprintf(env->id, sizeof(env->id), "%s", "4Gq1Zx0aBc");
    envelope_set(&env->sender, "a@x.test");
    envelope_add_rcpt(env, "b@y.test");
    envelope_add_rcpt(env, "c@y.test");
    if (!local) {
        envelope_set(&env->client_name, "unknown");
        envelope_set(&env->client_addr, "127.0.0.1");
        envelope_set(&env->helo, "h.test");
        envelope_set(&env->protocol, "ESMTP");
    } else {
        envelope_set(&env->protocol, "LOCAL");
    }
    return env;
}

#define CTX                                                                    \
    " from unknown[127.0.0.1]; from=<a@x.test> to=<b@y.test> "                 \
    "proto=ESMTP helo=<h.test>"

enum outcome { NONE, REJECT, DISCARD, HOLD };

static const struct check_case {
    int body;
    const char *line;
    enum cleanup_checks_verdict verdict;
    const char *prepend;
    const char *replace;
    enum outcome outcome;
    const char *reply; /* a reject's reply, or the redirect address */
    const char *log;   /* in the log, or NULL for nothing logged */
} cases[] = {
    {0, "Subject: reject me", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "550 5.7.1 no thanks",
     "4Gq1Zx0aBc: reject: header Subject: reject me" CTX ": 5.7.1 no thanks\n"},
    {0, "Subject: reject dsn", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "550 5.7.9 custom code", ": 5.7.9 custom code\n"},
    {0, "Subject: reject defer", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "451 4.7.0 later", "reject: header Subject: reject defer"},
    {0, "Subject: reject plain", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "550 5.7.1 Message content rejected",
     "helo=<h.test>: 5.7.1 Message content rejected\n"},
    {0, "Subject: reject a\n\tb", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "550 5.7.1 bad a  b", "reject: header Subject: reject a\\012\\011b"},
    {0, "Subject: discard", CLEANUP_CHECKS_KEEP, "", "", DISCARD, NULL,
     "4Gq1Zx0aBc: discard: header Subject: discard" CTX ": gone\n"},
    {0, "Subject: hold", CLEANUP_CHECKS_KEEP, "", "", HOLD, NULL,
     "4Gq1Zx0aBc: hold: header Subject: hold" CTX ": held for review\n"},
    {0, "Subject: warn", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "4Gq1Zx0aBc: warning: header Subject: warn" CTX ": just saying\n"},
    {0, "Subject: info", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "4Gq1Zx0aBc: info: header Subject: info" CTX ": noted\n"},
    {0, "X-Drop: 1", CLEANUP_CHECKS_DROP, "", "", NONE, NULL, NULL},
    {0, "X-Strip: 1", CLEANUP_CHECKS_DROP, "", "", NONE, NULL,
     "strip: header X-Strip: 1" CTX ": stripped\n"},
    {0, "Subject: redirect", CLEANUP_CHECKS_KEEP, "", "", NONE,
     "other@example.com",
     "redirect: header Subject: redirect" CTX ": other@example.com\n"},
    {0, "Subject: bad redirect", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "bad REDIRECT target \"nobody\" in header_checks map"},
    {0, "Subject: prepend", CLEANUP_CHECKS_KEEP, "X-Prepended: yes\n", "", NONE,
     NULL, "prepend: header Subject: prepend" CTX ": X-Prepended: yes\n"},
    {0, "Subject: bad prepend", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "bad PREPEND header text \"not a header\""},
    {0, "Subject: replace me", CLEANUP_CHECKS_REPLACE, "",
     "Subject: replaced me", NONE, NULL,
     "replace: header Subject: replace me" CTX ": Subject: replaced me\n"},
    {0, "Subject: dunno", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL, NULL},
    {0, "Subject: ok", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL, NULL},
    {0, "Subject: filter", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "filter: header Subject: filter" CTX ": smtp:[127.0.0.1]:10025\n"},
    {0, "Subject: unknown", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "unknown command in header_checks map: FROBNICATE"},
    {0, "Subject: first\n second", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL,
     "warning: header Subject: first\\012 second" CTX ": folded\n"},
    {0, "X-Nested: deep", CLEANUP_CHECKS_KEEP, "", "", HOLD, NULL,
     "hold: header X-Nested: deep"},
    {0, "X-Other: deep", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL, NULL},
    {0, "Subject: nothing", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL, NULL},
    {1, "reject body now", CLEANUP_CHECKS_KEEP, "", "", REJECT,
     "550 5.7.1 body rejected",
     "reject: body reject body now" CTX ": 5.7.1 body rejected\n"},
    {1, "drop me", CLEANUP_CHECKS_DROP, "", "", NONE, NULL, NULL},
    {1, "replace me", CLEANUP_CHECKS_REPLACE, "", "replaced line", NONE, NULL,
     "replace: body replace me"},
    {1, "prepend me", CLEANUP_CHECKS_KEEP, "prepended line\n", "", NONE, NULL,
     "prepend: body prepend me"},
    {1, "discard body", CLEANUP_CHECKS_KEEP, "", "", DISCARD, NULL,
     "discard: body discard body" CTX "\n"},
    {1, "Subject: reject me", CLEANUP_CHECKS_KEEP, "", "", NONE, NULL, NULL},
};

static void
run_case(const struct check_case *c)
{
    envelope_t *env = test_envelope(0);
    cleanup_checks_t cc;
    enum cleanup_checks_verdict v;
    char reply[256];
    buf_t pre;
    buf_t rep;
    long mark = log_size();
    char *logged;

    buf_init(&pre);
    buf_init(&rep);
    cleanup_checks_init(&cc, env);
    v = cleanup_checks_apply(&cc, c->body ? body_maps : header_maps,
                             c->body ? "body_checks" : "header_checks",
                             c->body ? "body" : "header", c->line,
                             strlen(c->line), &pre, &rep);
    if (v != c->verdict)
        fail_msg("\"%s\": verdict %d, want %d", c->line, v, c->verdict);
    assert_string_equal(pre.data ? pre.data : "", c->prepend);
    assert_string_equal(rep.data ? rep.data : "", c->replace);
    assert_int_equal(cc.reject, c->outcome == REJECT);
    assert_int_equal(cc.discard, c->outcome == DISCARD);
    assert_int_equal(cc.hold, c->outcome == HOLD);
    assert_int_equal(cc.stop, c->outcome == REJECT || c->outcome == DISCARD);
    if (c->outcome == REJECT) {
        cleanup_checks_reply(&cc, reply, sizeof(reply));
        assert_string_equal(reply, c->reply);
    } else if (c->reply) {
        assert_non_null(cc.redirect);
        assert_string_equal(cc.redirect, c->reply);
    } else {
        assert_null(cc.redirect);
    }
    logged = log_since(mark);
    if (c->log == NULL) {
        if (*logged != '\0')
            fail_msg("\"%s\": logged \"%s\", want nothing", c->line, logged);
    } else {
        if (strstr(logged, c->log) == NULL)
            fail_msg("\"%s\": log \"%s\" lacks \"%s\"", c->line, logged,
                     c->log);
    }
    free(logged);
    cleanup_checks_free(&cc);
    buf_free(&pre);
    buf_free(&rep);
    envelope_free(&env);
}

static void
test_actions(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++)
        run_case(&cases[i]);
}

/* After REJECT or DISCARD nothing is looked up or logged any more; a
 * later REDIRECT replaces an earlier one; HOLD does not stop. */
static void
test_sequence(void **state)
{
    static const char *const after[] = {
        "Subject: hold",
        "Subject: warn",
        "Subject: redirect",
    };
    envelope_t *env = test_envelope(0);
    cleanup_checks_t cc;
    buf_t pre;
    buf_t rep;
    size_t i;
    long mark;
    char *logged;

    (void)state;
    buf_init(&pre);
    buf_init(&rep);
    cleanup_checks_init(&cc, env);
    cleanup_checks_apply(&cc, header_maps, "header_checks", "header",
                         "Subject: hold", 13, &pre, &rep);
    assert_int_equal(cc.hold, 1);
    assert_int_equal(cc.stop, 0);
    cleanup_checks_apply(&cc, header_maps, "header_checks", "header",
                         "Subject: discard", 16, &pre, &rep);
    assert_int_equal(cc.stop, 1);
    mark = log_size();
    for (i = 0; i < N(after); i++)
        assert_int_equal(cleanup_checks_apply(&cc, header_maps, "header_checks",
                                              "header", after[i],
                                              strlen(after[i]), &pre, &rep),
                         CLEANUP_CHECKS_KEEP);
    assert_null(cc.redirect);
    logged = log_since(mark);
    assert_string_equal(logged, "");
    free(logged);
    cleanup_checks_free(&cc);
    envelope_free(&env);
    buf_free(&pre);
    buf_free(&rep);
}

/* No tables: nothing happens, and a local message logs "from local". */
static void
test_empty_and_local(void **state)
{
    table_t *none[1] = {NULL};
    envelope_t *env = test_envelope(1);
    cleanup_checks_t cc;
    buf_t pre;
    buf_t rep;
    long mark;
    char *logged;
    char want[64];

    (void)state;
    buf_init(&pre);
    buf_init(&rep);
    cleanup_checks_init(&cc, env);
    assert_int_equal(cleanup_checks_apply(&cc, none, "body_checks", "body",
                                          "reject body", 11, &pre, &rep),
                     CLEANUP_CHECKS_KEEP);
    assert_int_equal(cleanup_checks_apply(&cc, NULL, "body_checks", "body",
                                          "reject body", 11, &pre, &rep),
                     CLEANUP_CHECKS_KEEP);
    assert_int_equal(cc.reject, 0);
    mark = log_size();
    cleanup_checks_reject(&cc, 552, "header", "X-Big: 1", 8,
                          "5.3.4 Message header size exceeds limit");
    logged = log_since(mark);
    snprintf(want, sizeof(want), "tern/cleanup[%d]: ", (int)getpid());
    if (strstr(logged, want) == NULL)
        fail_msg("log \"%s\" lacks \"%s\"", logged, want);
    if (strstr(logged, "4Gq1Zx0aBc: reject: header X-Big: 1 from local; "
                       "from=<a@x.test> to=<b@y.test> proto=LOCAL: "
                       "5.3.4 Message header size exceeds limit\n") == NULL)
        fail_msg("log \"%s\"", logged);
    free(logged);
    {
        char reply[256];

        cleanup_checks_reply(&cc, reply, sizeof(reply));
        assert_string_equal(reply,
                            "552 5.3.4 Message header size exceeds limit");
    }
    cleanup_checks_free(&cc);
    envelope_free(&env);
    buf_free(&pre);
    buf_free(&rep);
}

/* A long line is logged cut to 200 bytes. */
static void
test_log_cut(void **state)
{
    envelope_t *env = test_envelope(0);
    cleanup_checks_t cc;
    char line[600];
    buf_t pre;
    buf_t rep;
    long mark;
    char *logged;
    char *p;

    (void)state;
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    memcpy(line, "Subject: warn ", 14);
    buf_init(&pre);
    buf_init(&rep);
    cleanup_checks_init(&cc, env);
    mark = log_size();
    cleanup_checks_apply(&cc, header_maps, "header_checks", "header", line,
                         strlen(line), &pre, &rep);
    logged = log_since(mark);
    p = strstr(logged, "warning: header Subject: warn ");
    assert_non_null(p);
    p += strlen("warning: header ");
    assert_int_equal(strspn(p + 14, "x"), 200 - 14);
    assert_int_equal(strncmp(p + 200, " from unknown[", 14), 0);
    free(logged);
    cleanup_checks_free(&cc);
    envelope_free(&env);
    buf_free(&pre);
    buf_free(&rep);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_empty_and_local),
        cmocka_unit_test(test_log_cut),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
