/* SPDX-License-Identifier: ISC */
/*
 * queue_page: how long the admin API takes to answer one page of the
 * queue listing when the queue is large.
 *
 * It fills a fresh queue with -n messages (one million by default)
 * through the queue code (store_batch_enqueue and store_commit, -b
 * messages a batch), each deferred with two recipients, then times
 * queue_api_page(), the function behind GET /api/v1/queue, which builds
 * the JSON the API sends:
 *
 *     page first      the first page, no filter
 *     page middle     the page after the cursor in the middle
 *     page filtered   state=deferred&domain=d7.test (one in ten matches)
 *     page sparse     a filter nothing matches: one page-scan budget
 *     census          counting the queue by state (GET /api/v1/stats)
 *
 * Each page figure is the median of -r runs, in milliseconds; the
 * target for "page first" and "page middle" is under 50 ms.  The
 * directory (under -d, default $TMPDIR or /tmp) is removed at the end
 * unless -k is given.
 */
#include "autoconf.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/census.h"
#include "admin/filter.h"
#include "admin/queue_api.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

#define BENCH_BODY 256
#define BENCH_MAX_RUNS 101

static double
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
bench_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
bench_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* A deferred message with two recipients, one at d(i % 10).test. */
static envelope_t *
bench_envelope(long i, int64_t now)
{
    envelope_t *env = envelope_new();
    char addr[64];
    rcpt_t *rc;

    queue_id_new(env->id);
    snprintf(addr, sizeof(addr), "sender%ld@example.test", i % 5000);
    envelope_set(&env->sender, addr);
    env->state = QS_DEFERRED;
    env->arrival_us = now;
    env->next_us = now + 3600LL * 1000000;
    env->size = BENCH_BODY;
    env->attempts = 1;
    envelope_set(&env->reason, "connect to mx.example.test[192.0.2.1]:25: "
                               "Connection timed out");
    snprintf(addr, sizeof(addr), "user%ld@d%ld.test", i, i % 10);
    rc = envelope_add_rcpt(env, addr);
    rc->state = RCPT_DEFERRED;
    rc->attempts = 1;
    envelope_set(&rc->dsn, "4.4.1");
    envelope_set(&rc->reason, env->reason);
    snprintf(addr, sizeof(addr), "other%ld@example.org", i);
    envelope_add_rcpt(env, addr);
    return env;
}

static void
bench_fill(store_t *s, long n, long batch, char *mid)
{
    char body[BENCH_BODY];
    int64_t now = bench_wall_us();
    double t0 = bench_now();
    store_batch_t *b = store_batch_new();
    long in = 0;
    long i;
    char *err = NULL;

    memset(body, 'x', sizeof(body));
    for (i = 0; i < n; i++) {
        envelope_t *env = bench_envelope(i, now);

        if (i == n / 2)
            snprintf(mid, QUEUE_ID_SIZE, "%s", env->id);
        store_batch_enqueue(b, env, body, sizeof(body));
        envelope_free(&env);
        if (++in == batch || i == n - 1) {
            if (store_commit(s, b, &err) < 0)
                msg_fatal("commit: %s", err);
            b = store_batch_new();
            in = 0;
        }
    }
    store_batch_free(&b);
    printf("fill: %ld messages in %.1f s (%.0f/s)\n", n, bench_now() - t0,
           n / (bench_now() - t0));
}

/* Median time of runs pages, in ms; *count gets the page's length. */
static double
bench_page(store_t *s, const char *const *filter, const char *after,
           size_t limit, int runs, size_t *count)
{
    double t[BENCH_MAX_RUNS];
    int i;

    for (i = 0; i < runs; i++) {
        filter_t *f = filter_new();
        char *why = NULL;
        const char *const *p;
        json_t *page;
        char *text;
        double t0 = bench_now();

        for (p = filter; p && *p; p += 2)
            if (filter_set(f, p[0], p[1], &why) < 0)
                msg_fatal("filter: %s", why);
        page = queue_api_page(s, f, after, limit, bench_wall_us());
        /* The API sends the page as text: count the encoding too. */
        text = json_dumps(page, JSON_COMPACT);
        t[i] = (bench_now() - t0) * 1000;
        *count = json_array_size(json_object_get(page, "messages"));
        free(text);
        json_decref(page);
        filter_free(&f);
    }
    qsort(t, (size_t)runs, sizeof(t[0]), bench_cmp);
    return t[runs / 2];
}

static void
bench_usage(void)
{
    fprintf(stderr, "usage: queue_page [-n MESSAGES] [-b BATCH] [-l LIMIT] "
                    "[-r RUNS] [-d DIR] [-k]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static const char *const filtered[] = {"state", "deferred", "domain",
                                           "d7.test", NULL};
    static const char *const sparse[] = {"sender", "nobody@nowhere", NULL};
    const char *tmp = getenv("TMPDIR");
    long n = 1000000;
    long batch = 1000;
    size_t limit = QUEUE_API_LIMIT_DEFAULT;
    int runs = 11;
    int keep = 0;
    char mid[QUEUE_ID_SIZE] = "";
    char dir[4096];
    char *err = NULL;
    struct census_count cc;
    census_t *census;
    store_t *s;
    size_t count;
    double ms;
    double t0;
    int c;

    while ((c = getopt(argc, argv, "n:b:l:r:d:k")) != -1) {
        switch (c) {
        case 'n': n = atol(optarg); break;
        case 'b': batch = atol(optarg); break;
        case 'l': limit = (size_t)atol(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'd': tmp = optarg; break;
        case 'k': keep = 1; break;
        default: bench_usage();
        }
    }
    if (n < 2 || batch < 1 || limit < 1 || runs < 1 || runs > BENCH_MAX_RUNS)
        bench_usage();
    log_open(LOG_DEST_STDERR, "queue_page", NULL);
    snprintf(dir, sizeof(dir), "%s/queue_page.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        msg_fatal("mkdtemp %s", dir);
    if ((s = store_open(dir, &err)) == NULL)
        msg_fatal("%s", err);
    bench_fill(s, n, batch, mid);

    ms = bench_page(s, NULL, NULL, limit, runs, &count);
    printf("page first: %.2f ms (%zu messages)\n", ms, count);
    ms = bench_page(s, NULL, mid, limit, runs, &count);
    printf("page middle: %.2f ms (%zu messages)\n", ms, count);
    ms = bench_page(s, filtered, mid, limit, runs, &count);
    printf("page filtered: %.2f ms (%zu messages)\n", ms, count);
    ms = bench_page(s, sparse, NULL, limit, runs < 3 ? runs : 3, &count);
    printf("page sparse: %.2f ms (%zu messages, %d records scanned)\n", ms,
           count, QUEUE_API_SCAN_MAX);
    census = census_new(s);
    census_invalidate(census);
    t0 = bench_now();
    census_get(census, &cc);
    printf("census: %.0f ms (%llu messages)\n", (bench_now() - t0) * 1000,
           (unsigned long long)cc.total);
    census_free(&census);
    store_close(&s);
    if (!keep)
        nftw(dir, bench_rm, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("kept %s\n", dir);
    return 0;
}
