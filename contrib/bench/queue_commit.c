/* SPDX-License-Identifier: ISC */
/*
 * queue_commit: how many messages a second the queue makes durable.
 *
 * For each thread count N, N threads enqueue messages with a 2 KB body
 * through the real queue code (store_batch_enqueue, store_commit) for
 * the given time; then, in a separate plain RocksDB on the same disk, N
 * threads do synced rocksdb_put calls of 2 KB values for as long.  The
 * first shows what the commit queue achieves by sharing one fsync among
 * all waiting writers, the second what RocksDB's own write grouping gives
 * to the same number of threads.  One line per N:
 *
 *     committers=N queue=X/s plain=Y/s ratio=X/Y
 *
 * Each run gets a fresh directory under -d, removed afterwards.  The
 * queue writes more per message than the plain run (an envelope and a
 * sched key besides the body), so a ratio above 1 is all batching.
 */
#include "autoconf.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/store.h"

#define BENCH_BODY 2048
#define BENCH_MAX_THREADS 1024

struct bench_run {
    store_t *store; /* queue runs */
    rocksdb_t *db;  /* plain runs */
    rocksdb_writeoptions_t *wopt;
    pthread_barrier_t start;
    atomic_int stop;
    char body[BENCH_BODY];
};

struct bench_thread {
    struct bench_run *run;
    pthread_t tid;
    int num;
    unsigned long long done;
};

static double
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
bench_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
bench_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
bench_rm_tree(const char *dir)
{
    if (nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 &&
        errno != ENOENT)
        msg_warn("remove %s: %m", dir);
}

static void *
bench_queue_worker(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    store_batch_t *b;
    envelope_t *env;
    char *err = NULL;

    pthread_barrier_wait(&run->start);
    while (!atomic_load(&run->stop)) {
        env = envelope_new();
        queue_id_new(env->id);
        envelope_set(&env->sender, "bench@example.org");
        envelope_add_rcpt(env, "sink@example.com");
        env->arrival_us = bench_now_us();
        env->size = BENCH_BODY;
        b = store_batch_new();
        store_batch_enqueue(b, env, run->body, BENCH_BODY);
        if (store_commit(run->store, b, &err) < 0)
            msg_fatal("queue commit: %s", err);
        envelope_free(&env);
        t->done++;
    }
    return NULL;
}

static void *
bench_plain_worker(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_run *run = t->run;
    char key[32];
    char *err = NULL;
    int klen;

    pthread_barrier_wait(&run->start);
    while (!atomic_load(&run->stop)) {
        klen = snprintf(key, sizeof(key), "%04d-%012llu", t->num, t->done);
        rocksdb_put(run->db, run->wopt, key, (size_t)klen, run->body,
                    BENCH_BODY, &err);
        if (err != NULL)
            msg_fatal("rocksdb_put: %s", err);
        t->done++;
    }
    return NULL;
}

/* Run n threads of fn for secs seconds; returns operations a second. */
static double
bench_threads(struct bench_run *run, int n, int secs, void *(*fn)(void *))
{
    struct bench_thread *t = mem_calloc((size_t)n, sizeof(*t));
    unsigned long long total = 0;
    double began;
    double elapsed;
    int i;

    atomic_store(&run->stop, 0);
    pthread_barrier_init(&run->start, NULL, (unsigned)n + 1);
    for (i = 0; i < n; i++) {
        t[i].run = run;
        t[i].num = i;
        if ((errno = pthread_create(&t[i].tid, NULL, fn, &t[i])) != 0)
            msg_fatal("pthread_create: %m");
    }
    pthread_barrier_wait(&run->start);
    began = bench_now();
    sleep((unsigned)secs);
    atomic_store(&run->stop, 1);
    for (i = 0; i < n; i++) {
        pthread_join(t[i].tid, NULL);
        total += t[i].done;
    }
    elapsed = bench_now() - began;
    pthread_barrier_destroy(&run->start);
    free(t);
    return (double)total / elapsed;
}

static double
bench_queue(const char *top, int n, int secs, struct bench_run *run)
{
    char *dir = mem_printf("%s/queue-%d", top, n);
    char *err = NULL;
    double rate;

    if ((run->store = store_open(dir, &err)) == NULL)
        msg_fatal("%s", err);
    rate = bench_threads(run, n, secs, bench_queue_worker);
    store_close(&run->store);
    bench_rm_tree(dir);
    free(dir);
    return rate;
}

static double
bench_plain(const char *top, int n, int secs, struct bench_run *run)
{
    char *dir = mem_printf("%s/plain-%d", top, n);
    rocksdb_options_t *opt = rocksdb_options_create();
    char *err = NULL;
    double rate;

    rocksdb_options_set_create_if_missing(opt, 1);
    if ((run->db = rocksdb_open(opt, dir, &err)) == NULL)
        msg_fatal("open %s: %s", dir, err);
    run->wopt = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(run->wopt, 1);
    rate = bench_threads(run, n, secs, bench_plain_worker);
    rocksdb_close(run->db);
    rocksdb_writeoptions_destroy(run->wopt);
    rocksdb_options_destroy(opt);
    bench_rm_tree(dir);
    free(dir);
    return rate;
}

static void
bench_usage(void)
{
    fprintf(stderr, "usage: queue_commit [-t seconds] [-d dir] "
                    "[threads ...]\n");
    exit(2);
}

static int
bench_number(const char *s, int min, int max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        bench_usage();
    return (int)v;
}

int
main(int argc, char **argv)
{
    static const int defaults[] = {1, 8, 64};
    struct bench_run *run = mem_calloc(1, sizeof(*run));
    const char *base = getenv("TMPDIR");
    char *top;
    double q;
    double p;
    int *counts;
    size_t ncounts;
    size_t i;
    int secs = 5;
    int n;
    int c;

    if (base == NULL || *base == '\0')
        base = "/tmp";
    while ((c = getopt(argc, argv, "d:t:")) != -1) {
        switch (c) {
        case 'd':
            base = optarg;
            break;
        case 't':
            secs = bench_number(optarg, 1, 86400);
            break;
        default:
            bench_usage();
        }
    }
    log_set_role("bench");
    top = mem_printf("%s/tern-bench-XXXXXX", base);
    if (mkdtemp(top) == NULL)
        msg_fatal("mkdtemp %s: %m", top);
    memset(run->body, 'x', sizeof(run->body));

    if (optind == argc) {
        ncounts = sizeof(defaults) / sizeof(defaults[0]);
        counts = mem_calloc(ncounts, sizeof(*counts));
        memcpy(counts, defaults, sizeof(defaults));
    } else {
        ncounts = (size_t)(argc - optind);
        counts = mem_calloc(ncounts, sizeof(*counts));
        for (i = 0; i < ncounts; i++)
            counts[i] =
                bench_number(argv[optind + (int)i], 1, BENCH_MAX_THREADS);
    }

    for (i = 0; i < ncounts; i++) {
        n = counts[i];
        q = bench_queue(top, n, secs, run);
        p = bench_plain(top, n, secs, run);
        printf("committers=%d queue=%.0f/s plain=%.0f/s ratio=%.2f\n", n, q, p,
               q / p);
        fflush(stdout);
    }
    bench_rm_tree(top);
    free(counts);
    free(top);
    free(run);
    return 0;
}
