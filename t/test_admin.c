/* SPDX-License-Identifier: ISC */
/*
 * test_admin: unit tests of the admin API's parts that need no server:
 * queue filters, error answers, token files, the event counters, and
 * the store functions the API relies on (conditional batches, paged
 * listing, the raw walk).  Store tests get a fresh directory under $TMPDIR (or /tmp)
 * that is removed afterwards.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/census.h"
#include "admin/config_api.h"
#include "admin/filter.h"
#include "admin/http.h"
#include "admin/queue_api.h"
#include "admin/token.h"
#include "lib/mem.h"
#include "lib/stats.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

static int64_t
test_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *
test_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = mem_printf("%s/test_admin.XXXXXX", tmp ? tmp : "/tmp");

    assert_non_null(mkdtemp(dir));
    return dir;
}

static int
test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
test_rmdir(char *dir)
{
    nftw(dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static envelope_t *
test_env(const char *sender, const char *rcpt, enum queue_state st,
         int64_t arrival)
{
    envelope_t *env = envelope_new();
    rcpt_t *rc;

    queue_id_new(env->id);
    envelope_set(&env->sender, sender);
    env->state = st;
    env->arrival_us = arrival;
    rc = envelope_add_rcpt(env, rcpt);
    rc->state = st == QS_DEFERRED ? RCPT_DEFERRED : RCPT_PENDING;
    return env;
}

/*
 * Filters: a table of criteria against one envelope.
 */

static void
test_filter_table(void **unused)
{
    static const struct {
        const char *name;
        const char *value;
        int match;
    } cases[] = {
        {"state", "deferred", 1},
        {"state", "hold,deferred", 1},
        {"state", "incoming", 0},
        {"sender", "ALICE", 1},
        {"sender", "bob", 0},
        {"sender", "re:^alice@ex", 1},
        {"sender", "re:^ex", 0},
        {"recipient", "carol@", 1},
        {"recipient", "re:dest\\.test$", 1},
        {"recipient", "dave", 0},
        {"domain", "DEST.test", 1},
        {"domain", "dest", 0},
        {"older_than", "1h", 1},
        {"older_than", "3h", 0},
    };
    int64_t now = test_now_us();
    envelope_t *env = test_env("alice@example.test", "carol@dest.test",
                               QS_DEFERRED, now - 2 * 3600 * 1000000LL);
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        filter_t *f = filter_new();
        char *why = NULL;

        assert_int_equal(filter_set(f, cases[i].name, cases[i].value, &why),
                         0);
        if (filter_match(f, env, now) != cases[i].match)
            fail_msg("%s=%s: expected %d", cases[i].name, cases[i].value,
                     cases[i].match);
        filter_free(&f);
    }
    envelope_free(&env);
}

static void
test_filter_bad_values(void **unused)
{
    static const char *const bad[][2] = {
        {"state", "lost"}, {"state", ","}, {"sender", "re:("},
        {"domain", ""}, {"domain", "a@b"}, {"older_than", "soon"},
        {"nothing", "x"},
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        filter_t *f = filter_new();
        char *why = NULL;

        assert_int_equal(filter_set(f, bad[i][0], bad[i][1], &why), -1);
        assert_non_null(why);
        free(why);
        filter_free(&f);
    }
}

/* An error that quotes text which is not UTF-8 (a query argument's name
 * is any bytes; a long message is cut inside a character) is still
 * answered, as JSON, with the field named. */
static void
test_error_not_utf8(void **unused)
{
    static const char *const names[] = {"\xf4=1", "st\xc3", "\xed\xa0\x80"};
    char body[1200];
    const char *data;
    size_t len;
    size_t i;

    for (i = 0; i <= sizeof(names) / sizeof(names[0]); i++) {
        http_req_t *r;
        filter_t *f = filter_new();
        json_t *j;
        json_t *err;

        if (i < sizeof(names) / sizeof(names[0])) {
            r = http_req_detached(NULL, 0);
            assert_int_equal(queue_api_query_arg(r, f, names[i], "x"), -1);
        } else {
            /* "{\"x\u00e9\u00e9...\": 1}": the message is cut at 511
             * bytes, inside an "\u00e9". */
            memcpy(body, "{\"x", 3);
            for (len = 3; len < 1000; len += 2)
                memcpy(body + len, "\xc3\xa9", 2);
            memcpy(body + len, "\": 1}", 5);
            r = http_req_detached(body, len + 5);
            assert_int_equal(http_parse_body(r, "application/json"), 0);
            assert_null(queue_api_body_filter(r));
        }
        assert_int_equal(http_req_answer(r, &data, &len), 400);
        j = json_loadb(data, len, 0, NULL);
        assert_non_null(j);
        err = json_object_get(j, "error");
        assert_non_null(json_string_value(json_object_get(err, "message")));
        assert_non_null(json_string_value(json_object_get(err, "field")));
        assert_string_equal(json_string_value(json_object_get(err, "code")),
                            i < sizeof(names) / sizeof(names[0])
                                ? "unknown_parameter"
                                : "unknown_field");
        json_decref(j);
        filter_free(&f);
        http_req_free(&r);
        assert_null(r);
    }
}

static void
test_filter_done_recipients(void **unused)
{
    int64_t now = test_now_us();
    envelope_t *env = test_env("a@x.test", "sent@dest.test", QS_DEFERRED, now);
    filter_t *f = filter_new();
    char *why = NULL;

    /* A recipient already delivered no longer counts. */
    env->rcpts[0].state = RCPT_SENT;
    assert_int_equal(filter_set(f, "domain", "dest.test", &why), 0);
    assert_false(filter_match(f, env, now));

    /* A record that does not decode is state corrupt and nothing else. */
    assert_false(filter_match(f, NULL, now));
    filter_free(&f);
    f = filter_new();
    assert_true(filter_empty(f));
    assert_true(filter_match(f, NULL, now));
    assert_int_equal(filter_set(f, "state", "corrupt", &why), 0);
    assert_true(filter_match(f, NULL, now));
    filter_free(&f);
    envelope_free(&env);
}

/*
 * Tokens.
 */

static void
test_token_file(void **unused)
{
    char *dir = test_tmpdir();
    char *path = mem_printf("%s/tokens", dir);
    FILE *fp = fopen(path, "w");
    token_set_t *ts;
    char *err = NULL;
    char *first = NULL;
    int ro = -1;

    assert_non_null(fp);
    fputs("# comment\n"
          "grafana rrrrrrrrrrrrrrrrrrrr read\n"
          "short abc\n"
          "too many words here\n"
          "ops oooooooooooooooooooo\n"
          "bbbbbbbbbbbbbbbbbbbb\n",
          fp);
    fclose(fp);
    ts = token_load(path, &err);
    assert_non_null(ts);
    assert_int_equal(token_count(ts), 3);
    assert_string_equal(token_check(ts, "rrrrrrrrrrrrrrrrrrrr", 20, &ro),
                        "grafana");
    assert_int_equal(ro, 1);
    assert_string_equal(token_check(ts, "oooooooooooooooooooo", 20, &ro),
                        "ops");
    assert_int_equal(ro, 0);
    assert_string_equal(token_check(ts, "bbbbbbbbbbbbbbbbbbbb", 20, &ro),
                        "admin");
    assert_null(token_check(ts, "oooooooooooooooooooO", 20, &ro));
    assert_null(token_check(ts, "ooooooooooooooooooo", 19, &ro));
    assert_null(token_check(ts, "", 0, &ro));
    token_free(&ts);
    assert_int_equal(token_read_first(path, &first, &err), 1);
    assert_string_equal(first, "oooooooooooooooooooo");
    free(first);
    free(path);
    test_rmdir(dir);
}

static void
test_token_create(void **unused)
{
    char *dir = test_tmpdir();
    char *path = mem_printf("%s/admin.token", dir);
    struct stat st;
    char *err = NULL;
    char *tok = NULL;
    token_set_t *ts;
    int ro;

    assert_int_equal(token_create(path, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(token_read_first(path, &tok, &err), 1);
    assert_int_equal(strlen(tok), 64);
    ts = token_load(path, &err);
    assert_string_equal(token_check(ts, tok, strlen(tok), &ro), "admin");
    token_free(&ts);
    free(tok);

    /* An existing file is never replaced. */
    assert_int_equal(token_create(path, &err), -1);
    free(err);
    free(path);
    test_rmdir(dir);
}

static void
test_config_secrets(void **unused)
{
    assert_true(config_api_secret("smtp_sasl_password_maps"));
    assert_true(config_api_secret("smtpd_tls_key_passphrase"));
    assert_true(config_api_secret("some_secret"));
    assert_false(config_api_secret("myhostname"));
    assert_false(config_api_secret("admin_token_file"));
}

/*
 * Counters.
 */

static void
test_stats_counts(void **unused)
{
    struct stats_hist_view v;
    uint64_t ring[STATS_MINUTES];
    uint64_t before = stats_total(STATS_DELIVERED);
    int64_t end;
    int i;

    stats_start();
    stats_delivery("sent", test_now_us() - 2000000);
    stats_delivery("deferred", 0);
    stats_delivery("bounced", 0);
    stats_delivery("expired", 0);
    stats_received(test_now_us() - 3000);
    assert_int_equal(stats_total(STATS_DELIVERED), before + 1);
    assert_int_equal(stats_total(STATS_DEFERRED), 1);
    assert_int_equal(stats_total(STATS_BOUNCED), 2);
    assert_int_equal(stats_total(STATS_RECEIVED), 1);
    stats_minutes(STATS_BOUNCED, ring, &end);
    assert_int_equal(ring[STATS_MINUTES - 1], 2);
    for (i = 0; i < STATS_MINUTES - 1; i++)
        assert_int_equal(ring[i], 0);
    assert_true(end > 0);

    /* Two seconds falls in the bucket up to 5 and every one above. */
    stats_hist_get(STATS_HIST_DELIVERY_DELAY, &v);
    assert_int_equal(v.count, 1);
    assert_int_equal(v.cum[2], 0); /* <= 1 s */
    assert_int_equal(v.cum[3], 1); /* <= 5 s */
    assert_int_equal(v.cum[STATS_HIST_BUCKETS - 1], 1);
    assert_true(v.sum > 1.9 && v.sum < 10);
    stats_hist_get(STATS_HIST_ACCEPT_LATENCY, &v);
    assert_int_equal(v.count, 1);
    assert_true(v.sum > 0.002);
    assert_string_equal(stats_counter_name(STATS_REJECTED), "rejected");
}

/*
 * The store functions the API uses.
 */

struct test_walk {
    char ids[16][QUEUE_ID_SIZE];
    int n;
    int stop_at;
};

static int
test_collect(void *arg, const char *id, envelope_t *env, const char *raw,
             size_t rawlen)
{
    struct test_walk *w = arg;

    assert_non_null(env);
    snprintf(w->ids[w->n++], QUEUE_ID_SIZE, "%s", id);
    return w->n == w->stop_at;
}

static int
test_count_raw(void *arg, const char *key, size_t klen, const char *val,
               size_t vlen)
{
    (*(int *)arg)++;
    assert_int_equal(klen, QUEUE_ID_LEN);
    assert_true(vlen > 0 && val[0] == '{');
    return 0;
}

static store_t *
test_store_fill(char **dir, char ids[][QUEUE_ID_SIZE], int n)
{
    store_t *s;
    char *err = NULL;
    int i;

    *dir = test_tmpdir();
    s = store_open(*dir, &err);
    assert_non_null(s);
    for (i = 0; i < n; i++) {
        store_batch_t *b = store_batch_new();
        envelope_t *env = test_env("a@x.test", "b@y.test", QS_DEFERRED,
                                   test_now_us());

        env->next_us = test_now_us() + 3600000000LL;
        store_batch_enqueue(b, env, "body\n", 5);
        snprintf(ids[i], QUEUE_ID_SIZE, "%s", env->id);
        assert_int_equal(store_commit(s, b, &err), 0);
        envelope_free(&env);
    }
    return s;
}

static void
test_store_page(void **unused)
{
    char ids[5][QUEUE_ID_SIZE];
    struct test_walk w;
    char *dir;
    store_t *s = test_store_fill(&dir, ids, 5);
    int raw = 0;
    int more;

    memset(&w, 0, sizeof(w));
    more = store_page(s, NULL, 2, test_collect, &w);
    assert_int_equal(w.n, 2);
    assert_true(more);
    assert_string_equal(w.ids[0], ids[0]);
    assert_string_equal(w.ids[1], ids[1]);

    /* After a cursor, exclusive of it. */
    more = store_page(s, w.ids[1], 10, test_collect, &w);
    assert_int_equal(w.n, 5);
    assert_false(more);
    assert_string_equal(w.ids[2], ids[2]);
    assert_string_equal(w.ids[4], ids[4]);

    /* A callback that stops: "more" says what is past its record. */
    memset(&w, 0, sizeof(w));
    w.stop_at = 5;
    assert_false(store_page(s, "", 100, test_collect, &w));
    memset(&w, 0, sizeof(w));
    w.stop_at = 1;
    assert_true(store_page(s, ids[2], 100, test_collect, &w));
    assert_string_equal(w.ids[0], ids[3]);

    store_foreach_raw(s, test_count_raw, &raw);
    assert_int_equal(raw, 5);
    store_close(&s);
    test_rmdir(dir);
}

static void
test_store_expect(void **unused)
{
    char ids[1][QUEUE_ID_SIZE];
    char *dir;
    store_t *s = test_store_fill(&dir, ids, 1);
    envelope_t *env = NULL;
    envelope_t *stale = NULL;
    store_batch_t *b;
    char *err = NULL;

    assert_int_equal(store_get_envelope(s, ids[0], &env, NULL, NULL), 1);
    assert_int_equal(store_get_envelope(s, ids[0], &stale, NULL, NULL), 1);

    /* The first writer, whose condition holds, wins. */
    b = store_batch_new();
    store_batch_expect(b, ids[0], env->state, env->sched_us);
    env->state = QS_HOLD;
    store_batch_update(b, env, 0);
    assert_int_equal(store_commit(s, b, &err), 0);

    /* The second read the same envelope: nothing of its batch lands. */
    b = store_batch_new();
    store_batch_expect(b, ids[0], stale->state, stale->sched_us);
    stale->state = QS_ACTIVE;
    store_batch_update(b, stale, 0);
    assert_int_equal(store_commit(s, b, &err), -1);
    assert_string_equal(err, STORE_CONFLICT);
    free(err);
    err = NULL;
    envelope_free(&env);
    assert_int_equal(store_get_envelope(s, ids[0], &env, NULL, NULL), 1);
    assert_int_equal(env->state, QS_HOLD);

    /* A message that is gone fails the condition too. */
    b = store_batch_new();
    store_batch_remove(b, env);
    assert_int_equal(store_commit(s, b, &err), 0);
    b = store_batch_new();
    store_batch_expect(b, ids[0], QS_HOLD, 0);
    store_batch_update(b, env, 0);
    assert_int_equal(store_commit(s, b, &err), -1);
    free(err);
    envelope_free(&env);
    assert_int_equal(store_get_envelope(s, ids[0], &env, NULL, NULL), 0);
    envelope_free(&stale);
    store_close(&s);
    test_rmdir(dir);
}

/* Two conditional batches in one write: the second sees the first's
 * change as a change, even before it is on disk. */
static void
test_async_done(void *arg, int status, const char *err)
{
    int *slot = arg;

    *slot = status == 0 ? 1 : -1;
}

static void
test_store_expect_same_write(void **unused)
{
    char ids[1][QUEUE_ID_SIZE];
    char *dir;
    store_t *s = test_store_fill(&dir, ids, 1);
    envelope_t *a = NULL;
    envelope_t *b2 = NULL;
    store_batch_t *b;
    store_batch_t *sync;
    int slot[2] = {0, 0};
    char *err = NULL;
    int i;

    assert_int_equal(store_get_envelope(s, ids[0], &a, NULL, NULL), 1);
    assert_int_equal(store_get_envelope(s, ids[0], &b2, NULL, NULL), 1);
    for (i = 0; i < 2; i++) {
        envelope_t *e = i ? b2 : a;

        b = store_batch_new();
        store_batch_expect(b, ids[0], e->state, e->sched_us);
        e->state = i ? QS_ACTIVE : QS_HOLD;
        store_batch_update(b, e, 0);
        store_commit_async(s, b, test_async_done, &slot[i]);
    }

    /* A synchronous commit after both: its completion comes after
     * theirs, since completions run in queue order. */
    sync = store_batch_new();
    assert_int_equal(store_commit(s, sync, &err), 0);
    assert_int_equal(slot[0], 1);
    assert_int_equal(slot[1], -1);
    envelope_free(&a);
    assert_int_equal(store_get_envelope(s, ids[0], &a, NULL, NULL), 1);
    assert_int_equal(a->state, QS_HOLD);
    envelope_free(&a);
    envelope_free(&b2);
    store_close(&s);
    test_rmdir(dir);
}

/* The census reads states from the records' first bytes. */
static void
test_census(void **unused)
{
    static const enum queue_state states[] = {QS_DEFERRED, QS_HOLD, QS_HOLD,
                                              QS_INCOMING};
    struct census_count cc;
    census_t *c;
    char *dir = test_tmpdir();
    char *err = NULL;
    store_t *s = store_open(dir, &err);
    size_t i;

    assert_non_null(s);
    for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        store_batch_t *b = store_batch_new();
        envelope_t *env = test_env("a\",\"size\":99@x.test", "b@y.test",
                                   states[i], test_now_us());

        env->size = 1000;
        store_batch_enqueue(b, env, "x", 1);
        assert_int_equal(store_commit(s, b, &err), 0);
        envelope_free(&env);
    }
    c = census_new(s);
    census_get(c, &cc);
    assert_int_equal(cc.total, 4);
    assert_int_equal(cc.n[QS_HOLD], 2);
    assert_int_equal(cc.n[QS_DEFERRED], 1);
    assert_int_equal(cc.n[QS_INCOMING], 1);
    assert_int_equal(cc.bytes, 4000);
    census_free(&c);
    store_close(&s);
    test_rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_filter_bad_values),
        cmocka_unit_test(test_filter_done_recipients),
        cmocka_unit_test(test_error_not_utf8),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_token_create),
        cmocka_unit_test(test_config_secrets),
        cmocka_unit_test(test_stats_counts),
        cmocka_unit_test(test_store_page),
        cmocka_unit_test(test_store_expect),
        cmocka_unit_test(test_store_expect_same_write),
        cmocka_unit_test(test_census),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
