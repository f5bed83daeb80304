/* SPDX-License-Identifier: ISC */
/*
 * test_queue: unit tests of queue IDs, envelopes and the RocksDB store.
 *
 * Store tests each get a fresh directory under $TMPDIR (or /tmp) that is
 * removed afterwards.  The crash tests run this program again as a child
 * that commits and then dies by SIGKILL, and check from the parent that
 * every commit the child saw acknowledged is still there; one of them
 * also tears the tail of the WAL, as a crash in the middle of a write
 * would.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

/*
 * Fixtures and shared steps.
 */

static int64_t
test_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A small deterministic generator, so that failures can be replayed. */
static uint64_t
test_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

static char *
test_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir;

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    dir = mem_printf("%s/tern-test-XXXXXX", tmp);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static int
test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
test_rm_tree(const char *dir)
{
    nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An envelope with a fresh ID, one recipient and the given schedule. */
static envelope_t *
test_env(enum queue_state state, int64_t next_us)
{
    envelope_t *env = envelope_new();

    queue_id_new(env->id);
    envelope_set(&env->sender, "sender@example.org");
    envelope_add_rcpt(env, "rcpt@example.com");
    env->state = state;
    env->arrival_us = test_now_us();
    env->next_us = next_us;
    return env;
}

/* Commit one new message with body text; returns its envelope. */
static envelope_t *
test_enqueue(store_t *s, enum queue_state state, int64_t next_us,
             const char *body)
{
    envelope_t *env = test_env(state, next_us);
    store_batch_t *b = store_batch_new();
    char *err = NULL;

    env->size = (int64_t)strlen(body);
    store_batch_enqueue(b, env, body, strlen(body));
    assert_int_equal(store_commit(s, b, &err), 0);
    assert_null(err);
    return env;
}

/* Open the queue database directly, for tests that plant or inspect raw
 * records.  The family names are the ones queue/README documents. */
static const char *const test_cf_names[] = {
    "default", "meta", "body", "sched", "corrupt",
};
enum {
    TEST_CF_DEFAULT,
    TEST_CF_META,
    TEST_CF_BODY,
    TEST_CF_SCHED,
    TEST_CF_CORRUPT,
    TEST_NCF
};

struct test_raw {
    rocksdb_t *db;
    rocksdb_options_t *opt;
    rocksdb_column_family_handle_t *cf[TEST_NCF];
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
};

static void
test_raw_open(struct test_raw *r, const char *dir)
{
    const rocksdb_options_t *opts[TEST_NCF];
    char *err = NULL;
    int i;

    r->opt = rocksdb_options_create();
    for (i = 0; i < TEST_NCF; i++)
        opts[i] = r->opt;
    r->db = rocksdb_open_column_families(r->opt, dir, TEST_NCF, test_cf_names,
                                         opts, r->cf, &err);
    assert_null(err);
    r->wo = rocksdb_writeoptions_create();
    r->ro = rocksdb_readoptions_create();
}

static void
test_raw_put(struct test_raw *r, int cf, const char *key, size_t klen,
             const char *val, size_t vlen)
{
    char *err = NULL;

    rocksdb_put_cf(r->db, r->wo, r->cf[cf], key, klen, val, vlen, &err);
    assert_null(err);
}

/* The value of key as a string the caller frees, or NULL. */
static char *
test_raw_get(struct test_raw *r, int cf, const char *key)
{
    char *err = NULL;
    char *v;
    char *copy = NULL;
    size_t vlen;

    v = rocksdb_get_cf(r->db, r->ro, r->cf[cf], key, strlen(key), &vlen, &err);
    assert_null(err);
    if (v != NULL)
        copy = mem_strndup(v, vlen);
    rocksdb_free(v);
    return copy;
}

static void
test_raw_close(struct test_raw *r)
{
    int i;

    for (i = 0; i < TEST_NCF; i++)
        rocksdb_column_family_handle_destroy(r->cf[i]);
    rocksdb_close(r->db);
    rocksdb_options_destroy(r->opt);
    rocksdb_writeoptions_destroy(r->wo);
    rocksdb_readoptions_destroy(r->ro);
}

/*
 * Queue IDs.
 */

static void
test_id_codec(void **state)
{
    static const struct {
        uint64_t us;
        const char *id;
    } cases[] = {
        {0, "0000000000"},
        {9, "0000000009"},
        {10, "000000000A"},
        {36, "000000000a"},
        {61, "000000000z"},
        {62, "0000000010"},
        {1700000000000000ULL, "07mjS6b2rg"},
        {839299365868340223ULL, "zzzzzzzzzz"},
    };
    char id[QUEUE_ID_SIZE];
    uint64_t us;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        queue_id_encode(cases[i].us, id);
        assert_string_equal(id, cases[i].id);
        assert_true(queue_id_decode(id, &us));
        assert_true(us == cases[i].us);
        assert_true(queue_id_valid(id));
    }
}

static void
test_id_invalid(void **state)
{
    static const char *const bad[] = {
        "",           "000000000",   "00000000000",   "000000000-",
        "00000 0000", "0000\n00000", "\377000000000", "000000000_",
    };
    uint64_t us = 42;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(queue_id_valid(bad[i]));
        assert_false(queue_id_decode(bad[i], &us));
        assert_true(us == 42);
    }
    assert_false(queue_id_valid(NULL));
}

static void
test_id_sorts(void **state)
{
    char a[QUEUE_ID_SIZE];
    char b[QUEUE_ID_SIZE];
    uint64_t seed = 1;
    uint64_t x;
    uint64_t y;
    int i;
    int c;

    (void)state;
    for (i = 0; i < 100000; i++) {
        x = (test_rand(&seed) << 29 ^ test_rand(&seed)) % 839299365868340224ULL;
        y = i % 3 ? x + test_rand(&seed) % 100 : test_rand(&seed);
        if (y >= 839299365868340224ULL)
            y = x;
        queue_id_encode(x, a);
        queue_id_encode(y, b);
        c = strcmp(a, b);
        assert_true((x < y && c < 0) || (x == y && c == 0) || (x > y && c > 0));
    }
}

#define TEST_ID_THREADS 8
#define TEST_ID_PER_THREAD 20000

static void *
test_id_worker(void *arg)
{
    char(*ids)[QUEUE_ID_SIZE] = arg;
    int i;

    for (i = 0; i < TEST_ID_PER_THREAD; i++)
        queue_id_new(ids[i]);
    return NULL;
}

static int
test_id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_id_threads(void **state)
{
    pthread_t t[TEST_ID_THREADS];
    char(*ids)[QUEUE_ID_SIZE];
    size_t n = (size_t)TEST_ID_THREADS * TEST_ID_PER_THREAD;
    size_t i;
    int k;

    (void)state;
    ids = mem_calloc(n, QUEUE_ID_SIZE);
    for (k = 0; k < TEST_ID_THREADS; k++)
        assert_int_equal(pthread_create(&t[k], NULL, test_id_worker,
                                        ids + k * TEST_ID_PER_THREAD),
                         0);
    for (k = 0; k < TEST_ID_THREADS; k++)
        pthread_join(t[k], NULL);

    /* Each thread's IDs rise; all of them together hold no duplicate. */
    for (i = 0; i < n; i++) {
        assert_true(queue_id_valid(ids[i]));
        if (i % TEST_ID_PER_THREAD)
            assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    }
    qsort(ids, n, QUEUE_ID_SIZE, test_id_cmp);
    for (i = 1; i < n; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
}

/* A restart whose clock is behind the last recorded ID: the floor keeps
 * new IDs above it, and a lower floor changes nothing. */
static void
test_id_floor(void **state)
{
    uint64_t last = (uint64_t)test_now_us() + 3600ULL * 1000000;
    char id[QUEUE_ID_SIZE];
    char prev[QUEUE_ID_SIZE];
    uint64_t us;

    (void)state;
    queue_id_floor(last);
    queue_id_new(id);
    assert_true(queue_id_decode(id, &us));
    assert_true(us == last + 1);

    queue_id_floor(1);
    memcpy(prev, id, sizeof(id));
    queue_id_new(id);
    assert_true(strcmp(prev, id) < 0);
}

/*
 * Envelopes.
 */

static envelope_t *
test_env_full(void)
{
    envelope_t *env = envelope_new();
    rcpt_t *r;

    queue_id_encode(1700000000123456ULL, env->id);
    env->state = QS_DEFERRED;
    envelope_set(&env->sender, "alice@example.org");
    env->arrival_us = 1700000000123456LL;
    env->size = 12345;
    env->next_us = 1700000300000000LL;
    env->sched_us = 1700000300000000LL;
    env->attempts = 3;
    env->max_lifetime = 432000;
    env->bounce_lifetime = 86400;
    envelope_set(&env->client_name, "mx.example.org");
    envelope_set(&env->client_addr, "192.0.2.1");
    envelope_set(&env->helo, "mx.example.org");
    envelope_set(&env->protocol, "ESMTPS");
    envelope_set(&env->sasl_user, "alice");
    envelope_set(&env->message_id, "<1@example.org>");
    envelope_set(&env->envid, "QQ314159");
    env->ret = DSN_RET_HDRS;
    env->body_8bit = 1;
    env->smtputf8 = 1;
    envelope_set(&env->reason, "connect to mx: Connection \"refused\"\n");
    envelope_set(&env->filter, "smtp:[127.0.0.1]:10024");

    r = envelope_add_rcpt(env, "bob@example.com");
    envelope_set(&r->orcpt, "rfc822;bob@example.com");
    envelope_set(&r->orig, "Bob@Example.com");
    r->notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    r->state = RCPT_DEFERRED;
    envelope_set(&r->dsn, "4.4.1");
    envelope_set(&r->reason, "connect to mx: refused");
    r->attempts = 3;
    r = envelope_add_rcpt(env, "j\xc3\xb6rg@example.de");
    r->state = RCPT_SENT;
    r->attempts = 1;
    r = envelope_add_rcpt(env, "carol@example.net");
    r->state = RCPT_BOUNCED;
    r->notify = DSN_NOTIFY_NEVER;
    envelope_set(&r->dsn, "5.1.1");
    return env;
}

static void
test_str_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void
test_env_same(const envelope_t *a, const envelope_t *b)
{
    size_t i;

    assert_string_equal(a->id, b->id);
    assert_int_equal(a->state, b->state);
    assert_string_equal(a->sender, b->sender);
    assert_true(a->arrival_us == b->arrival_us);
    assert_true(a->size == b->size);
    assert_true(a->next_us == b->next_us);
    assert_true(a->sched_us == b->sched_us);
    assert_int_equal(a->attempts, b->attempts);
    assert_true(a->max_lifetime == b->max_lifetime);
    assert_true(a->bounce_lifetime == b->bounce_lifetime);
    test_str_same(a->client_name, b->client_name);
    test_str_same(a->client_addr, b->client_addr);
    test_str_same(a->helo, b->helo);
    test_str_same(a->protocol, b->protocol);
    test_str_same(a->sasl_user, b->sasl_user);
    test_str_same(a->message_id, b->message_id);
    test_str_same(a->envid, b->envid);
    assert_int_equal(a->ret, b->ret);
    assert_int_equal(a->body_8bit, b->body_8bit);
    assert_int_equal(a->smtputf8, b->smtputf8);
    test_str_same(a->reason, b->reason);
    test_str_same(a->filter, b->filter);
    assert_int_equal(a->nrcpt, b->nrcpt);
    for (i = 0; i < a->nrcpt; i++) {
        assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
        test_str_same(a->rcpts[i].orig, b->rcpts[i].orig);
        test_str_same(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
        assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
        test_str_same(a->rcpts[i].dsn, b->rcpts[i].dsn);
        test_str_same(a->rcpts[i].reason, b->rcpts[i].reason);
        assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
    }
}

static void
test_env_roundtrip(void **state)
{
    envelope_t *env = test_env_full();
    envelope_t *back;
    char err[128];
    char *text;
    char *again;
    size_t len;
    size_t len2;

    (void)state;
    text = envelope_encode(env, &len);
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "\"v\":1"));
    back = envelope_decode(text, len, err, sizeof(err));
    assert_non_null(back);
    test_env_same(env, back);
    assert_int_equal(envelope_pending(back), 1);

    /* Encoding is stable, so records can be compared byte for byte. */
    again = envelope_encode(back, &len2);
    assert_string_equal(text, again);
    free(again);
    free(text);
    envelope_free(&back);
    envelope_free(&env);
    assert_null(env);
    envelope_free(&env);
    envelope_free(NULL);
}

static void
test_env_minimal(void **state)
{
    envelope_t *env = envelope_new();
    envelope_t *back;
    char err[128];
    char *text;
    size_t len;

    (void)state;
    queue_id_encode(1, env->id);
    text = envelope_encode(env, &len);
    back = envelope_decode(text, len, err, sizeof(err));
    assert_non_null(back);
    test_env_same(env, back);
    assert_string_equal(back->sender, "");
    assert_null(back->client_name);
    assert_int_equal(back->nrcpt, 0);
    free(text);
    envelope_free(&back);
    envelope_free(&env);
}

#define TEST_HEAD "{\"v\":1,\"id\":\"0123456789\",\"state\":\"incoming\","
#define TEST_TAIL ",\"rcpts\":[{\"addr\":\"c@d\",\"state\":\"pending\"}]}"
#define TEST_OK TEST_HEAD "\"sender\":\"a@b\",\"arrival\":1" TEST_TAIL
#define TEST_RCPT(r)                                                           \
    TEST_HEAD "\"sender\":\"a@b\",\"arrival\":1,\"rcpts\":[" r "]}"
#define TEST_WITH(f) TEST_HEAD "\"sender\":\"a@b\",\"arrival\":1," f TEST_TAIL

static void
test_env_malformed(void **state)
{
    static const struct {
        const char *json;
        const char *why;
    } cases[] = {
        {"", "empty record"},
        {"not json", "not JSON"},
        {"{", "not JSON"},
        {"[]", "not a JSON object"},
        {"\"x\"", "not JSON"},
        {"null", "not JSON"},
        {"{}", "missing field \"id\""},
        {TEST_OK " trailing", "not JSON"},
        {TEST_OK TEST_OK, "not JSON"},
        /* Each required field missing, null or of the wrong type. */
        {"{\"state\":\"incoming\",\"sender\":\"\",\"arrival\":1,\"rcpts\":[]}",
         "missing field \"id\""},
        {"{\"id\":\"0123456789\",\"sender\":\"\",\"arrival\":1,\"rcpts\":[]}",
         "missing field \"state\""},
        {TEST_HEAD "\"arrival\":1" TEST_TAIL, "missing field \"sender\""},
        {TEST_HEAD "\"sender\":null,\"arrival\":1" TEST_TAIL,
         "missing field \"sender\""},
        {TEST_HEAD "\"sender\":\"\"" TEST_TAIL, "missing field \"arrival\""},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":1}", "missing field \"rcpts\""},
        {"{\"id\":123,\"state\":\"incoming\"}", "\"id\" is not a string"},
        {"{\"id\":\"012345678\",\"state\":\"incoming\"}", "not a queue ID"},
        {"{\"id\":\"01234567890\",\"state\":\"incoming\"}", "not a queue ID"},
        {"{\"id\":\"012345678!\",\"state\":\"incoming\"}", "not a queue ID"},
        {"{\"id\":\"0123456789\",\"state\":1}", "\"state\" is not a string"},
        {"{\"id\":\"0123456789\",\"state\":\"flying\"}", "unknown value"},
        {TEST_HEAD "\"sender\":[],\"arrival\":1" TEST_TAIL,
         "\"sender\" is not a string"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":\"1\"" TEST_TAIL,
         "\"arrival\" is not an integer"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":1.5" TEST_TAIL,
         "\"arrival\" is not an integer"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":-1" TEST_TAIL,
         "\"arrival\" is out of range"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":true" TEST_TAIL,
         "\"arrival\" is not an integer"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":"
                   "123456789012345678901234567890" TEST_TAIL,
         "not JSON"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":1,\"rcpts\":{}}",
         "\"rcpts\" is not an array"},
        {TEST_HEAD "\"sender\":\"\",\"arrival\":1,\"rcpts\":\"x\"}",
         "\"rcpts\" is not an array"},
        /* Recipients. */
        {TEST_RCPT("1"), "rcpts[0]: not an object"},
        {TEST_RCPT("{\"addr\":\"c@d\",\"state\":\"pending\"},[]"),
         "rcpts[1]: not an object"},
        {TEST_RCPT("{\"state\":\"pending\"}"),
         "rcpts[0]: missing field \"addr\""},
        {TEST_RCPT("{\"addr\":7,\"state\":\"pending\"}"),
         "rcpts[0]: field \"addr\" is not a string"},
        {TEST_RCPT("{\"addr\":\"c@d\"}"), "rcpts[0]: missing field \"state\""},
        {TEST_RCPT("{\"addr\":\"c@d\",\"state\":\"lost\"}"), "unknown value"},
        {TEST_RCPT("{\"addr\":\"c@d\",\"state\":\"sent\",\"notify\":99}"),
         "\"notify\" is out of range"},
        {TEST_RCPT("{\"addr\":\"c@d\",\"state\":\"sent\",\"attempts\":-1}"),
         "\"attempts\" is out of range"},
        {TEST_RCPT("{\"addr\":\"c@d\",\"state\":\"sent\",\"dsn\":5}"),
         "\"dsn\" is not a string"},
        /* Optional fields of the wrong type. */
        {TEST_WITH("\"size\":-5"), "\"size\" is out of range"},
        {TEST_WITH("\"attempts\":4294967296"), "\"attempts\" is out of range"},
        {TEST_WITH("\"next\":{}"), "\"next\" is not an integer"},
        {TEST_WITH("\"helo\":1"), "\"helo\" is not a string"},
        {TEST_WITH("\"ret\":\"some\""), "\"ret\" has unknown value"},
        {TEST_WITH("\"body_8bit\":\"yes\""), "\"body_8bit\" is not a boolean"},
        {TEST_WITH("\"smtputf8\":1"), "\"smtputf8\" is not a boolean"},
        {TEST_WITH("\"v\":2"), "not JSON"}, /* duplicate key */
        {"{\"v\":2,\"id\":\"0123456789\"}", "version 2 is newer"},
        {"{\"v\":\"1\",\"id\":\"0123456789\"}", "\"v\" is not an integer"},
        {"{\"v\":0,\"id\":\"0123456789\"}", "\"v\" is out of range"},
        /* What jansson refuses for us. */
        {TEST_HEAD "\"sender\":\"a\\u0000b\",\"arrival\":1" TEST_TAIL,
         "not JSON"},
        {TEST_HEAD "\"sender\":\"\xff\",\"arrival\":1" TEST_TAIL, "not JSON"},
        {TEST_HEAD "\"sender\":\"\xc0\xaf\",\"arrival\":1" TEST_TAIL,
         "not JSON"},
        {"\xef\xbb\xbf" TEST_OK, "not JSON"},
    };
    envelope_t *env;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        env = envelope_decode(cases[i].json, strlen(cases[i].json), err,
                              sizeof(err));
        if (env != NULL || strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: %s: got \"%s\", want \"%s\"", i, cases[i].json,
                     env ? "success" : err, cases[i].why);
    }

    /* The template itself is valid, and unknown fields are ignored. */
    env = envelope_decode(TEST_OK, strlen(TEST_OK), err, sizeof(err));
    assert_non_null(env);
    envelope_free(&env);
    env = envelope_decode(TEST_WITH("\"later\":{\"x\":[1,{}]}"),
                          strlen(TEST_WITH("\"later\":{\"x\":[1,{}]}")), err,
                          sizeof(err));
    assert_non_null(env);
    envelope_free(&env);
}

/* Pathological nesting is refused without exhausting the stack. */
static void
test_env_deep(void **state)
{
    size_t n = 200000;
    char *text = mem_alloc(2 * n);
    envelope_t *env;
    char err[256];

    (void)state;
    memset(text, '[', n);
    memset(text + n, ']', n);
    env = envelope_decode(text, 2 * n, err, sizeof(err));
    assert_null(env);
    assert_non_null(strstr(err, "not JSON"));
    free(text);
}

/* Small or absent error buffers are respected. */
static void
test_env_errbuf(void **state)
{
    char err[4] = "xyz";

    (void)state;
    assert_null(envelope_decode("{}", 2, NULL, 0));
    assert_null(envelope_decode("{}", 2, err, 0));
    assert_string_equal(err, "xyz");
    assert_null(envelope_decode("{}", 2, err, 1));
    assert_string_equal(err, "");
    assert_null(envelope_decode("{}", 2, err, sizeof(err)));
    assert_string_equal(err, "mis");
    assert_null(envelope_decode(TEST_RCPT("1"), strlen(TEST_RCPT("1")), err,
                                sizeof(err)));
    assert_string_equal(err, "rcp");
    assert_null(envelope_decode(NULL, 0, err, sizeof(err)));
}

/* Every proper prefix of a valid record fails, from a buffer of exactly
 * that size so that a read past the end would be caught. */
static void
test_env_truncated(void **state)
{
    envelope_t *env = test_env_full();
    envelope_t *back;
    char err[256];
    char *text;
    char *copy;
    size_t len;
    size_t i;

    (void)state;
    text = envelope_encode(env, &len);
    for (i = 0; i < len; i++) {
        copy = mem_alloc(i);
        memcpy(copy, text, i);
        err[0] = '\0';
        back = envelope_decode(copy, i, err, sizeof(err));
        if (back != NULL || err[0] == '\0')
            fail_msg("prefix of %zu bytes decoded", i);
        free(copy);
    }
    free(text);
    envelope_free(&env);
}

/* Random damage to a valid record never crashes the decoder; when the
 * damage still decodes the result is well formed. */
static void
test_env_mutated(void **state)
{
    envelope_t *env = test_env_full();
    envelope_t *back;
    uint64_t seed = 7;
    char err[256];
    char *text;
    char *copy;
    size_t len;
    size_t n;
    size_t pos;
    int i;
    int k;

    (void)state;
    text = envelope_encode(env, &len);
    for (i = 0; i < 20000; i++) {
        copy = mem_alloc(len);
        memcpy(copy, text, len);
        n = len;
        for (k = 0; k < 1 + (int)(test_rand(&seed) % 4); k++) {
            pos = test_rand(&seed) % n;
            switch (test_rand(&seed) % 3) {
            case 0:
                copy[pos] = (char)test_rand(&seed);
                break;
            case 1:
                copy[pos] ^= (char)(1 << (test_rand(&seed) % 8));
                break;
            default:
                n = pos + 1;
                break;
            }
        }
        err[0] = '\0';
        back = envelope_decode(copy, n, err, sizeof(err));
        if (back == NULL) {
            assert_true(err[0] != '\0');
        } else {
            assert_true(queue_id_valid(back->id));
            assert_non_null(back->sender);
        }
        envelope_free(&back);
        free(copy);
    }
    free(text);
    envelope_free(&env);
}

/* Text that is not UTF-8 still encodes to a record that decodes. */
static void
test_env_utf8(void **state)
{
    envelope_t *env = envelope_new();
    envelope_t *back;
    char err[128];
    char *text;
    size_t len;

    (void)state;
    queue_id_encode(5, env->id);
    envelope_set(&env->sender, "a\xff"
                               "b\xc3\xa9"
                               "c\xed\xa0\x80"
                               "d\xe2\x82");
    envelope_set(&env->helo, "caf\xc3\xa9");
    text = envelope_encode(env, &len);
    back = envelope_decode(text, len, err, sizeof(err));
    assert_non_null(back);
    assert_string_equal(back->sender, "a\xef\xbf\xbd"
                                      "b\xc3\xa9"
                                      "c"
                                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                      "d\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(back->helo, "caf\xc3\xa9");
    free(text);
    envelope_free(&back);
    envelope_free(&env);
}

static void
test_env_names(void **state)
{
    enum queue_state qs;
    int i;

    (void)state;
    for (i = QS_INCOMING; i <= QS_CORRUPT; i++) {
        assert_int_equal(queue_state_parse(queue_state_name(i), &qs), 0);
        assert_int_equal(qs, i);
    }
    assert_int_equal(queue_state_parse("nope", &qs), -1);
    assert_string_equal(queue_state_name(QS_HOLD), "hold");
    assert_string_equal(queue_state_name((enum queue_state)99), "unknown");
    assert_string_equal(rcpt_state_name(RCPT_BOUNCED), "bounced");
}

/*
 * The store.
 */

struct test_store {
    char *dir;
    store_t *s;
};

static int
test_store_setup(void **state)
{
    struct test_store *t = mem_calloc(1, sizeof(*t));
    char *err = NULL;

    t->dir = test_mkdtemp();
    t->s = store_open(t->dir, &err);
    if (t->s == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = t;
    return 0;
}

static int
test_store_teardown(void **state)
{
    struct test_store *t = *state;

    store_close(&t->s);
    test_rm_tree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static void
test_store_reopen(struct test_store *t)
{
    char *err = NULL;

    store_close(&t->s);
    assert_null(t->s);
    t->s = store_open(t->dir, &err);
    if (t->s == NULL)
        fail_msg("reopen: %s", err);
}

static void
test_store_enqueue_get(void **state)
{
    struct test_store *t = *state;
    envelope_t *env = test_env(QS_INCOMING, 0);
    envelope_t *back = NULL;
    store_batch_t *b = store_batch_new();
    size_t big = 5 * 1024 * 1024 + 17;
    char *body = mem_alloc(big);
    char *err = NULL;
    char missing[QUEUE_ID_SIZE];
    buf_t out;
    size_t i;

    for (i = 0; i < big; i++)
        body[i] = (char)(i * 131 + 7);
    store_batch_enqueue(b, env, body, big);
    assert_true(env->sched_us == env->arrival_us);
    assert_int_equal(store_commit(t->s, b, &err), 0);

    assert_int_equal(store_get_envelope(t->s, env->id, &back, NULL, &err), 1);
    test_env_same(env, back);
    buf_init(&out);
    buf_puts(&out, "x");
    assert_int_equal(store_get_body(t->s, env->id, &out), 1);
    assert_int_equal(out.len, big + 1);
    assert_memory_equal(out.data + 1, body, big);

    /* Large bodies live in blob files and survive a reopen. */
    test_store_reopen(t);
    buf_reset(&out);
    assert_int_equal(store_get_body(t->s, env->id, &out), 1);
    assert_int_equal(out.len, big);
    assert_memory_equal(out.data, body, big);

    queue_id_new(missing);
    envelope_free(&back);
    assert_int_equal(store_get_envelope(t->s, missing, &back, NULL, NULL), 0);
    assert_null(back);
    assert_int_equal(store_get_body(t->s, missing, &out), 0);

    buf_free(&out);
    free(body);
    envelope_free(&env);
}

struct test_due {
    char ids[8][QUEUE_ID_SIZE];
    int64_t when[8];
    int n;
    int stop_at;
};

static int
test_due_fn(void *arg, const char *id, int64_t when)
{
    struct test_due *d = arg;

    assert_true(d->n < 8);
    memcpy(d->ids[d->n], id, QUEUE_ID_SIZE);
    d->when[d->n++] = when;
    return d->n == d->stop_at;
}

static void
test_store_scan_due(void **state)
{
    struct test_store *t = *state;
    envelope_t *e300 = test_enqueue(t->s, QS_DEFERRED, 300, "a");
    envelope_t *e100 = test_enqueue(t->s, QS_DEFERRED, 100, "b");
    envelope_t *e200 = test_enqueue(t->s, QS_DEFERRED, 200, "c");
    envelope_t *hold = test_enqueue(t->s, QS_HOLD, 150, "d");
    struct test_due d = {.n = 0};
    int64_t when = 0;

    assert_true(hold->sched_us == 0);
    assert_int_equal(store_scan_due(t->s, 250, 10, test_due_fn, &d), 2);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.ids[0], e100->id);
    assert_true(d.when[0] == 100);
    assert_string_equal(d.ids[1], e200->id);
    assert_true(d.when[1] == 200);

    memset(&d, 0, sizeof(d));
    assert_int_equal(store_scan_due(t->s, 300, 10, test_due_fn, &d), 3);
    assert_string_equal(d.ids[2], e300->id);

    memset(&d, 0, sizeof(d));
    assert_int_equal(store_scan_due(t->s, INT64_MAX, 1, test_due_fn, &d), 1);
    memset(&d, 0, sizeof(d));
    d.stop_at = 2;
    assert_int_equal(store_scan_due(t->s, INT64_MAX, 10, test_due_fn, &d), 2);
    memset(&d, 0, sizeof(d));
    assert_int_equal(store_scan_due(t->s, 99, 10, test_due_fn, &d), 0);
    assert_int_equal(store_scan_due(t->s, -1, 10, test_due_fn, &d), 0);
    assert_int_equal(store_scan_due(t->s, 250, 0, test_due_fn, &d), 0);
    assert_int_equal(d.n, 0);

    assert_int_equal(store_next_due(t->s, &when), 1);
    assert_true(when == 100);

    envelope_free(&e300);
    envelope_free(&e100);
    envelope_free(&e200);
    envelope_free(&hold);
}

static void
test_store_update(void **state)
{
    struct test_store *t = *state;
    envelope_t *env = test_enqueue(t->s, QS_DEFERRED, 100, "body");
    envelope_t *back = NULL;
    store_batch_t *b;
    struct test_due d = {.n = 0};
    int64_t when;

    b = store_batch_new();
    env->attempts++;
    store_batch_update(b, env, 500);
    assert_true(env->sched_us == 500);
    assert_int_equal(store_commit(t->s, b, NULL), 0);

    assert_int_equal(store_scan_due(t->s, 250, 10, test_due_fn, &d), 0);
    assert_int_equal(store_scan_due(t->s, 600, 10, test_due_fn, &d), 1);
    assert_string_equal(d.ids[0], env->id);
    assert_true(d.when[0] == 500);
    assert_int_equal(store_get_envelope(t->s, env->id, &back, NULL, NULL), 1);
    assert_true(back->sched_us == 500);
    assert_int_equal(back->attempts, 1);
    envelope_free(&back);

    /* Same time again: the key must survive its own delete. */
    b = store_batch_new();
    store_batch_update(b, env, 500);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_int_equal(store_next_due(t->s, &when), 1);
    assert_true(when == 500);

    /* Active mail has no key. */
    b = store_batch_new();
    env->state = QS_ACTIVE;
    store_batch_update(b, env, 0);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_int_equal(store_next_due(t->s, &when), 0);
    assert_int_equal(store_get_envelope(t->s, env->id, &back, NULL, NULL), 1);
    assert_true(back->sched_us == 0);
    assert_int_equal(back->state, QS_ACTIVE);
    envelope_free(&back);
    envelope_free(&env);
}

static void
test_store_remove(void **state)
{
    struct test_store *t = *state;
    envelope_t *env = test_enqueue(t->s, QS_INCOMING, 0, "body");
    envelope_t *back = NULL;
    store_batch_t *b = store_batch_new();
    int64_t when;
    buf_t out;

    store_batch_remove(b, env);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_int_equal(store_get_envelope(t->s, env->id, &back, NULL, NULL), 0);
    buf_init(&out);
    assert_int_equal(store_get_body(t->s, env->id, &out), 0);
    assert_int_equal(store_next_due(t->s, &when), 0);
    buf_free(&out);
    envelope_free(&env);

    /* A batch that is never committed is simply freed. */
    b = store_batch_new();
    env = test_env(QS_INCOMING, 0);
    store_batch_enqueue(b, env, "x", 1);
    store_batch_free(&b);
    assert_null(b);
    store_batch_free(&b);
    envelope_free(&env);
}

struct test_seen {
    int n;
    int bad;
    int stop_at;
    char last[QUEUE_ID_SIZE + 8];
    char raw[64];
};

static int
test_seen_fn(void *arg, const char *id, envelope_t *env, const char *raw,
             size_t rawlen)
{
    struct test_seen *s = arg;

    assert_true(strcmp(s->last, id) < 0);
    snprintf(s->last, sizeof(s->last), "%s", id);
    assert_non_null(raw);
    if (env == NULL) {
        s->bad++;
        snprintf(s->raw, sizeof(s->raw), "%.*s", (int)rawlen, raw);
    } else {
        assert_string_equal(env->id, id);
    }
    return ++s->n == s->stop_at;
}

static void
test_store_corrupt(void **state)
{
    struct test_store *t = *state;
    envelope_t *good = test_enqueue(t->s, QS_DEFERRED, 1000, "good");
    envelope_t *other = test_env(QS_INCOMING, 0);
    envelope_t *back = NULL;
    struct test_seen seen = {.n = 0};
    struct test_raw r;
    store_batch_t *b;
    char bad[QUEUE_ID_SIZE];
    char key[8 + QUEUE_ID_LEN];
    char *text;
    char *err = NULL;
    char *v;
    size_t len;
    buf_t raw;
    int64_t when;

    /* Plant a torn record with a sched key and a body, and a record
     * filed under the wrong ID. */
    queue_id_new(bad);
    store_close(&t->s);
    test_raw_open(&r, t->dir);
    test_raw_put(&r, TEST_CF_META, bad, QUEUE_ID_LEN, "{\"v\":1,\"id\"", 11);
    memset(key, 0, 8);
    key[7] = 10;
    memcpy(key + 8, bad, QUEUE_ID_LEN);
    test_raw_put(&r, TEST_CF_SCHED, key, sizeof(key), "", 0);
    test_raw_put(&r, TEST_CF_BODY, bad, QUEUE_ID_LEN, "content", 7);
    text = envelope_encode(good, &len);
    test_raw_put(&r, TEST_CF_META, other->id, QUEUE_ID_LEN, text, len);
    free(text);
    test_raw_close(&r);
    test_store_reopen(t);

    buf_init(&raw);
    assert_int_equal(store_get_envelope(t->s, bad, &back, &raw, &err), -2);
    assert_null(back);
    assert_string_equal(raw.data, "{\"v\":1,\"id\"");
    assert_non_null(err);
    assert_non_null(strstr(err, "not JSON"));
    mem_freep(&err);
    assert_int_equal(store_get_envelope(t->s, other->id, &back, NULL, &err),
                     -2);
    assert_non_null(strstr(err, good->id));
    mem_freep(&err);
    assert_int_equal(store_get_envelope(t->s, bad, &back, NULL, NULL), -2);

    store_foreach(t->s, test_seen_fn, &seen);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.bad, 2);

    /* Move it aside: envelope and sched key go, the content stays. */
    assert_int_equal(store_next_due(t->s, &when), 1);
    assert_true(when == 10);
    b = store_batch_new();
    store_batch_corrupt(b, bad, raw.data, raw.len, 10);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_int_equal(store_get_envelope(t->s, bad, &back, NULL, NULL), 0);
    assert_int_equal(store_next_due(t->s, &when), 1);
    assert_true(when == 1000);
    buf_reset(&raw);
    assert_int_equal(store_get_body(t->s, bad, &raw), 1);
    assert_string_equal(raw.data, "content");

    store_close(&t->s);
    test_raw_open(&r, t->dir);
    v = test_raw_get(&r, TEST_CF_CORRUPT, bad);
    assert_string_equal(v, "{\"v\":1,\"id\"");
    free(v);
    test_raw_close(&r);
    test_store_reopen(t);

    buf_free(&raw);
    envelope_free(&good);
    envelope_free(&other);
}

static void
test_store_foreach(void **state)
{
    struct test_store *t = *state;
    struct test_seen seen = {.n = 0};
    envelope_t *env;
    int i;

    for (i = 0; i < 5; i++) {
        env = test_enqueue(t->s, i % 2 ? QS_HOLD : QS_INCOMING, 0, "m");
        envelope_free(&env);
    }
    store_foreach(t->s, test_seen_fn, &seen);
    assert_int_equal(seen.n, 5);
    assert_int_equal(seen.bad, 0);

    memset(&seen, 0, sizeof(seen));
    seen.stop_at = 2;
    store_foreach(t->s, test_seen_fn, &seen);
    assert_int_equal(seen.n, 2);
}

/* last_id outlives the messages and keeps new IDs above it after a
 * restart, even when the clock is far behind it. */
static void
test_store_last_id(void **state)
{
    struct test_store *t = *state;
    uint64_t future = (uint64_t)test_now_us() + 10ULL * 365 * 86400000000ULL;
    envelope_t *env = test_env(QS_INCOMING, 0);
    envelope_t *old = test_env(QS_INCOMING, 0);
    store_batch_t *b;
    char id[QUEUE_ID_SIZE];
    uint64_t us;

    assert_true(store_last_id_us(t->s) == 0);
    queue_id_encode(future, env->id);
    b = store_batch_new();
    store_batch_enqueue(b, env, "x", 1);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_true(store_last_id_us(t->s) == future);
    b = store_batch_new();
    store_batch_remove(b, env);
    assert_int_equal(store_commit(t->s, b, NULL), 0);

    /* An older ID does not lower it. */
    b = store_batch_new();
    store_batch_enqueue(b, old, "y", 1);
    assert_int_equal(store_commit(t->s, b, NULL), 0);
    assert_true(store_last_id_us(t->s) == future);

    test_store_reopen(t);
    assert_true(store_last_id_us(t->s) == future);
    queue_id_new(id);
    assert_true(queue_id_decode(id, &us));
    assert_true(us > future);
    envelope_free(&env);
    envelope_free(&old);
}

#define TEST_COMMITTERS 16
#define TEST_COMMITS 25

struct test_committer {
    store_t *s;
    int failures;
    uint64_t max_us;
};

static void *
test_committer_fn(void *arg)
{
    struct test_committer *c = arg;
    char body[2048];
    char *err = NULL;
    envelope_t *env;
    store_batch_t *b;
    uint64_t us;
    int i;

    memset(body, 'm', sizeof(body));
    for (i = 0; i < TEST_COMMITS; i++) {
        env = test_env(QS_INCOMING, 0);
        b = store_batch_new();
        store_batch_enqueue(b, env, body, sizeof(body));
        if (store_commit(c->s, b, &err) != 0) {
            c->failures++;
            free(err);
        }
        queue_id_decode(env->id, &us);
        if (us > c->max_us)
            c->max_us = us;
        envelope_free(&env);
    }
    return NULL;
}

static void
test_store_threads(void **state)
{
    struct test_store *t = *state;
    struct test_committer c[TEST_COMMITTERS];
    pthread_t th[TEST_COMMITTERS];
    struct test_seen seen = {.n = 0};
    uint64_t max_us = 0;
    int i;

    memset(c, 0, sizeof(c));
    for (i = 0; i < TEST_COMMITTERS; i++) {
        c[i].s = t->s;
        assert_int_equal(pthread_create(&th[i], NULL, test_committer_fn, &c[i]),
                         0);
    }
    for (i = 0; i < TEST_COMMITTERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].failures, 0);
        if (c[i].max_us > max_us)
            max_us = c[i].max_us;
    }
    store_foreach(t->s, test_seen_fn, &seen);
    assert_int_equal(seen.n, TEST_COMMITTERS * TEST_COMMITS);
    assert_true(store_last_id_us(t->s) == max_us);
}

struct test_async {
    pthread_mutex_t lock;
    int calls;
    int failures;
};

static void
test_async_done(void *arg, int status, const char *err)
{
    struct test_async *a = arg;

    (void)err;
    pthread_mutex_lock(&a->lock);
    a->calls++;
    a->failures += status != 0;
    pthread_mutex_unlock(&a->lock);
}

/* store_close writes what is queued and runs its completions. */
static void
test_store_async(void **state)
{
    struct test_store *t = *state;
    struct test_async a = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    char ids[10][QUEUE_ID_SIZE];
    envelope_t *env;
    envelope_t *back = NULL;
    store_batch_t *b;
    int i;

    for (i = 0; i < 10; i++) {
        env = test_env(QS_INCOMING, 0);
        memcpy(ids[i], env->id, QUEUE_ID_SIZE);
        b = store_batch_new();
        store_batch_enqueue(b, env, "async", 5);
        store_commit_async(t->s, b, test_async_done, &a);
        envelope_free(&env);
    }
    store_commit_async(t->s, store_batch_new(), NULL, NULL);
    store_close(&t->s);
    assert_int_equal(a.calls, 10);
    assert_int_equal(a.failures, 0);
    test_store_reopen(t);
    for (i = 0; i < 10; i++) {
        assert_int_equal(store_get_envelope(t->s, ids[i], &back, NULL, NULL),
                         1);
        envelope_free(&back);
    }
}

/* Commit count messages, reporting each ID on fd once its commit
 * returns, then die without closing anything.  This runs in a fresh
 * process image (see test_crash_run), as RocksDB's background threads
 * would not survive a bare fork. */
static int
test_crash_child(const char *dir, int fd, int count)
{
    char body[4096];
    char *err = NULL;
    envelope_t *env;
    store_batch_t *b;
    store_t *s;
    int i;

    memset(body, 'c', sizeof(body));
    if ((s = store_open(dir, &err)) == NULL)
        return 2;
    for (i = 0; i < count; i++) {
        env = test_env(QS_INCOMING, 0);
        b = store_batch_new();
        store_batch_enqueue(b, env, body, sizeof(body));
        if (store_commit(s, b, &err) != 0)
            return 3;
        if (write(fd, env->id, QUEUE_ID_LEN) != QUEUE_ID_LEN)
            return 4;
        envelope_free(&env);
    }
    kill(getpid(), SIGKILL);
    return 5;
}

/* This program's path, for starting it again.  Read from /proc/self/exe
 * with readlink, which valgrind answers with the program it runs. */
static char test_self[4096];

/* Run the child; return how many IDs it acknowledged, into ids. */
static int
test_crash_run(const char *dir, int count, char (*ids)[QUEUE_ID_SIZE])
{
    int fds[2];
    int status;
    int n = 0;
    pid_t pid;
    ssize_t r;

    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char fdarg[16];
        char countarg[16];

        close(fds[0]);
        snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
        snprintf(countarg, sizeof(countarg), "%d", count);
        execl(test_self, "test_queue", "--crash-child", dir, fdarg, countarg,
              (char *)NULL);
        _exit(6);
    }
    close(fds[1]);
    while (n < count &&
           (r = read(fds[0], ids[n], QUEUE_ID_LEN)) == QUEUE_ID_LEN)
        ids[n++][QUEUE_ID_LEN] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    return n;
}

static void
test_store_crash(void **state)
{
    struct test_store *t = *state;
    char ids[30][QUEUE_ID_SIZE];
    envelope_t *back = NULL;
    uint64_t us;
    buf_t out;
    int n;
    int i;

    store_close(&t->s);
    n = test_crash_run(t->dir, 30, ids);
    assert_int_equal(n, 30);
    test_store_reopen(t);
    buf_init(&out);
    for (i = 0; i < n; i++) {
        assert_int_equal(store_get_envelope(t->s, ids[i], &back, NULL, NULL),
                         1);
        envelope_free(&back);
        buf_reset(&out);
        assert_int_equal(store_get_body(t->s, ids[i], &out), 1);
        assert_int_equal(out.len, 4096);
    }
    queue_id_decode(ids[n - 1], &us);
    assert_true(store_last_id_us(t->s) == us);
    buf_free(&out);
}

/* The newest non-empty WAL file of dir, or NULL. */
static char *
test_newest_wal(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;
    char *best = NULL;
    char *path;
    unsigned long num;
    unsigned long best_num = 0;
    char *end;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        num = strtoul(e->d_name, &end, 10);
        if (end == e->d_name || strcmp(end, ".log") != 0)
            continue;
        path = mem_printf("%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && st.st_size > 0 &&
            (best == NULL || num > best_num)) {
            free(best);
            best = path;
            best_num = num;
        } else {
            free(path);
        }
    }
    closedir(d);
    return best;
}

/* A crash that tears the last WAL record loses that batch whole, last_id
 * with it, and the database still opens with everything before it. */
static void
test_store_torn_tail(void **state)
{
    struct test_store *t = *state;
    char ids[10][QUEUE_ID_SIZE];
    envelope_t *back = NULL;
    struct stat st;
    char *wal;
    uint64_t us;
    buf_t out;
    int n;
    int i;

    store_close(&t->s);
    n = test_crash_run(t->dir, 10, ids);
    assert_int_equal(n, 10);
    wal = test_newest_wal(t->dir);
    assert_non_null(wal);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(truncate(wal, st.st_size - 3), 0);
    free(wal);

    test_store_reopen(t);
    buf_init(&out);
    for (i = 0; i < n - 1; i++) {
        assert_int_equal(store_get_envelope(t->s, ids[i], &back, NULL, NULL),
                         1);
        envelope_free(&back);
        buf_reset(&out);
        assert_int_equal(store_get_body(t->s, ids[i], &out), 1);
    }
    assert_int_equal(store_get_envelope(t->s, ids[n - 1], &back, NULL, NULL),
                     0);
    buf_reset(&out);
    assert_int_equal(store_get_body(t->s, ids[n - 1], &out), 0);
    queue_id_decode(ids[n - 2], &us);
    assert_true(store_last_id_us(t->s) == us);
    buf_free(&out);
}

/* The size of the largest file in dir. */
static off_t
test_largest_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;
    off_t max = 0;
    char *path;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        path = mem_printf("%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > max)
            max = st.st_size;
        free(path);
    }
    closedir(d);
    return max;
}

/* A write that fails (here a WAL append past RLIMIT_FSIZE, as a full
 * disk would fail it) leaves RocksDB refusing writes; the store reopens
 * the database by itself and takes writes again, keeping what it had. */
static void
test_store_write_fails(void **state)
{
    struct test_store *t = *state;
    envelope_t *before = test_enqueue(t->s, QS_INCOMING, 0, "before\n");
    envelope_t *big = test_env(QS_INCOMING, 0);
    envelope_t *back = NULL;
    envelope_t *after;
    struct rlimit old;
    struct rlimit small;
    store_batch_t *b;
    size_t bodylen = 4 * 1024 * 1024;
    char *body = mem_alloc(bodylen);
    char *err = NULL;
    void (*oldsig)(int);
    buf_t out;
    int i;

    memset(body, 'x', bodylen);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)test_largest_file(t->dir) + 512 * 1024;
    oldsig = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);

    b = store_batch_new();
    store_batch_enqueue(b, big, body, bodylen);
    assert_int_equal(store_commit(t->s, b, &err), -1);
    assert_non_null(err);
    free(err);
    err = NULL;

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);

    /* The reopen is at once, then once a second while it fails. */
    for (i = 0; i < 100 && !store_healthy(t->s, NULL); i++)
        usleep(50 * 1000);
    assert_true(store_healthy(t->s, NULL));

    after = test_enqueue(t->s, QS_INCOMING, 0, "after\n");
    assert_int_equal(store_get_envelope(t->s, before->id, &back, NULL, NULL),
                     1);
    envelope_free(&back);
    assert_int_equal(store_get_envelope(t->s, big->id, &back, NULL, NULL), 0);

    /* And a restart finds the same. */
    test_store_reopen(t);
    buf_init(&out);
    assert_int_equal(store_get_body(t->s, before->id, &out), 1);
    assert_int_equal(store_get_body(t->s, after->id, &out), 1);
    assert_int_equal(store_get_envelope(t->s, big->id, &back, NULL, NULL), 0);
    buf_free(&out);
    free(body);
    envelope_free(&before);
    envelope_free(&big);
    envelope_free(&after);
}

static void
test_store_open_fails(void **state)
{
    char *dir = test_mkdtemp();
    char *file = mem_printf("%s/file", dir);
    char *err = NULL;
    FILE *fp;

    (void)state;
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(store_open(file, &err));
    assert_non_null(err);
    free(err);
    store_close(NULL);
    test_rm_tree(dir);
    free(file);
    free(dir);
}

#define STORE_TEST(f)                                                          \
    cmocka_unit_test_setup_teardown(f, test_store_setup, test_store_teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_codec),
        cmocka_unit_test(test_id_invalid),
        cmocka_unit_test(test_id_sorts),
        cmocka_unit_test(test_id_threads),
        cmocka_unit_test(test_id_floor),
        cmocka_unit_test(test_env_roundtrip),
        cmocka_unit_test(test_env_minimal),
        cmocka_unit_test(test_env_malformed),
        cmocka_unit_test(test_env_deep),
        cmocka_unit_test(test_env_errbuf),
        cmocka_unit_test(test_env_truncated),
        cmocka_unit_test(test_env_mutated),
        cmocka_unit_test(test_env_utf8),
        cmocka_unit_test(test_env_names),
        STORE_TEST(test_store_enqueue_get),
        STORE_TEST(test_store_scan_due),
        STORE_TEST(test_store_update),
        STORE_TEST(test_store_remove),
        STORE_TEST(test_store_corrupt),
        STORE_TEST(test_store_foreach),
        STORE_TEST(test_store_last_id),
        STORE_TEST(test_store_threads),
        STORE_TEST(test_store_async),
        STORE_TEST(test_store_crash),
        STORE_TEST(test_store_torn_tail),
        STORE_TEST(test_store_write_fails),
        cmocka_unit_test(test_store_open_fails),
    };

    ssize_t n = readlink("/proc/self/exe", test_self, sizeof(test_self) - 1);

    if (n <= 0)
        snprintf(test_self, sizeof(test_self), "%s", argv[0]);
    if (argc == 5 && strcmp(argv[1], "--crash-child") == 0)
        return test_crash_child(argv[2], atoi(argv[3]), atoi(argv[4]));
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
