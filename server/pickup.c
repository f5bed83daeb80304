/* SPDX-License-Identifier: ISC */
/*
 * pickup: from the maildrop directory to cleanup.
 *
 * Flow: sendmail renames a finished file into $queue_directory/maildrop;
 * the pickup thread hears of it through inotify (IN_MOVED_TO, and
 * IN_CLOSE_WRITE for writers that create files in place), and also
 * scans the whole directory at start, every 60 seconds and after an
 * inotify overflow, so that mail dropped while ternd was stopped, or
 * missed for any reason, is still taken.  For each file it reads and
 * validates the whole file (server/maildrop.c), logs Postfix's
 * "ID: uid=N from=<sender>" line, builds a cleanup request (local, with
 * protocol LOCAL) and submits it.  When cleanup's completion reports the
 * commit durable, the file is unlinked.
 *
 * Guarantees:
 *  - A file is removed only after its message is on disk in the queue.
 *    A crash between the commit and the unlink leaves the file, which is
 *    picked up again at the next start: the message may be delivered
 *    twice, never lost.  A crash before the commit leaves the file and
 *    nothing in the queue.
 *  - A file that does not validate (bad header, cut short, not a
 *    regular file, a uid that is not the file's owner) is moved, not
 *    removed, into $queue_directory/corrupt with a warning that says
 *    why; ternd goes on.  A name that is not a maildrop name is moved
 *    there as well.  Temporary files of writers are left alone for a
 *    day, then removed with a warning (their writer has died).
 *  - The file's owner, not the file, says which uid submitted it.
 *  - When cleanup's queue is full, or too many files are in flight, the
 *    rest wait in maildrop and are tried again a second later; a
 *    temporary cleanup failure is tried again after five seconds.
 *  - Files are submitted in directory order, not submission order.
 *
 * Threads: one pickup thread owns the directory and the set of files in
 * flight.  Completions arrive on cleanup's committer thread, which only
 * queues them under a mutex and wakes the pickup thread with an
 * eventfd; the unlink happens on the pickup thread (or, at stop, on the
 * thread that stops pickup, after the pickup thread has ended).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/queue_id.h"
#include "server/maildrop.h"
#include "server/pickup.h"

#define PICKUP_SCAN_INTERVAL 60   /* seconds between full scans */
#define PICKUP_SCAN_NO_INOTIFY 5  /* the same, when inotify failed */
#define PICKUP_RETRY_BUSY 1       /* seconds, when cleanup was full */
#define PICKUP_RETRY_TEMPFAIL 5   /* seconds, after a 4xx from cleanup */
#define PICKUP_TEMP_MAX_AGE 86400 /* seconds a temporary file may live */
#define PICKUP_INFLIGHT_MAX 64

struct pickup_job {
    struct pickup_job *next; /* on the done list */
    pickup_t *pk;
    char name[MAILDROP_NAME_SIZE];
    char id[QUEUE_ID_SIZE];
    int status;
    char reply[256];
};

struct pickup {
    char *dir;     /* the maildrop directory */
    char *corrupt; /* where bad files go */
    cleanup_t *cleanup;
    pthread_t thread;
    int ino_fd; /* -1 if inotify could not be had */
    int event_fd;

    pthread_mutex_t lock; /* guards the fields up to the next blank */
    pthread_cond_t idle;
    struct pickup_job *done;
    size_t inflight;
    int stopping;

    /* Only the pickup thread (and pickup_stop after it) touch these. */
    char **busy; /* names handed to cleanup, not yet finished */
    size_t nbusy;
    char **stuck; /* names that cannot be removed: never again */
    size_t nstuck;
    time_t next_scan;
    time_t retry_at; /* 0, or when to scan again because of a backlog */
};

/* Name sets (small: at most PICKUP_INFLIGHT_MAX busy names) */

static int
pickup_in(char **set, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(set[i], name) == 0)
            return 1;
    return 0;
}

static void
pickup_add(char ***set, size_t *n, const char *name)
{
    *set = mem_reallocarray(*set, *n + 1, sizeof(char *));
    (*set)[(*n)++] = mem_strdup(name);
}

static void
pickup_remove(char **set, size_t *n, const char *name)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if (strcmp(set[i], name) == 0) {
            free(set[i]);
            set[i] = set[--*n];
            return;
        }
    }
}

static void
pickup_wake(pickup_t *pk)
{
    uint64_t one = 1;

    if (write(pk->event_fd, &one, sizeof(one)) < 0) {
        /* The counter is saturated: the thread is awake anyway. */
    }
}

static void
pickup_retry(pickup_t *pk, int secs)
{
    time_t at = time(NULL) + secs;

    if (pk->retry_at == 0 || at < pk->retry_at)
        pk->retry_at = at;
}

/* Move a bad file out of the way, with the reason in the log. */
static void
pickup_corrupt(pickup_t *pk, const char *name, const char *why)
{
    char *from = mem_printf("%s/%s", pk->dir, name);
    char *to = mem_printf("%s/%s", pk->corrupt, name);
    int n;

    /* Never replace a file already in corrupt/. */
    for (n = 1; access(to, F_OK) == 0 && n < 1000; n++) {
        free(to);
        to = mem_printf("%s/%s.%d", pk->corrupt, name, n);
    }
    if (rename(from, to) == 0) {
        msg_warn("maildrop/%s: %s: moved to %s", name, why, to);
    } else if (errno != ENOENT) {
        msg_warn("maildrop/%s: %s; cannot move it to %s: %s; leaving it", name,
                 why, to, strerror(errno));
        if (!pickup_in(pk->stuck, pk->nstuck, name))
            pickup_add(&pk->stuck, &pk->nstuck, name);
    }
    free(from);
    free(to);
}

/* Called by cleanup once the message is committed, or has failed. */
static void
pickup_committed(cleanup_req_t *req, int status, const char *reply)
{
    struct pickup_job *job = req->arg;
    pickup_t *pk = job->pk;

    job->status = status;
    snprintf(job->reply, sizeof(job->reply), "%s", reply ? reply : "");
    cleanup_req_free(&req);
    pthread_mutex_lock(&pk->lock);
    job->next = pk->done;
    pk->done = job;
    /* Wake the thread before letting go of the lock: once it is let
     * go, pickup_stop may free pk. */
    pickup_wake(pk);
    if (--pk->inflight == 0)
        pthread_cond_broadcast(&pk->idle);
    pthread_mutex_unlock(&pk->lock);
}

/* Finish one completed file: remove it, or keep it for another try. */
static void
pickup_finish(pickup_t *pk, struct pickup_job *job)
{
    char *path = mem_printf("%s/%s", pk->dir, job->name);

    pickup_remove(pk->busy, &pk->nbusy, job->name);
    if (job->status == 0) {
        if (unlink(path) < 0 && errno != ENOENT) {
            /* Taking it again would queue the message twice. */
            msg_warn("%s: cannot remove %s after queueing it: %s; it will "
                     "not be picked up again until ternd restarts",
                     job->id, path, strerror(errno));
            pickup_add(&pk->stuck, &pk->nstuck, job->name);
        }
    } else if (job->reply[0] == '5') {
        /* XXX a message that cleanup refuses for good should bounce to
         * its sender; until tern has bounces it is kept in corrupt/,
         * where postmaster can see it. */
        msg_warn("%s: reject: %s", job->id, job->reply);
        pickup_corrupt(pk, job->name, "refused by cleanup");
    } else {
        msg_warn("%s: %s; maildrop/%s will be tried again", job->id,
                 job->reply[0] ? job->reply : "cleanup failed", job->name);
        pickup_retry(pk, PICKUP_RETRY_TEMPFAIL);
    }
    free(path);
    free(job);
}

static void
pickup_finish_done(pickup_t *pk)
{
    struct pickup_job *list;

    pthread_mutex_lock(&pk->lock);
    list = pk->done;
    pk->done = NULL;
    pthread_mutex_unlock(&pk->lock);
    while (list) {
        struct pickup_job *next = list->next;

        pickup_finish(pk, list);
        list = next;
    }
}

/* Read all of fd (at most max bytes) into b; -1 with errno, or -2 if
 * the file is larger than max. */
static int
pickup_read(int fd, size_t max, buf_t *b)
{
    char chunk[65536];

    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (b->len + (size_t)n > max)
            return -2;
        buf_append(b, chunk, (size_t)n);
    }
}

static int
pickup_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* The request for a validated file. */
static cleanup_req_t *
pickup_request(pickup_t *pk, maildrop_t *md, const char *body, size_t len,
               struct pickup_job *job)
{
    cleanup_req_t *req = mem_calloc(1, sizeof(*req));
    envelope_t *env = envelope_new();
    size_t i;

    req->cfg = config_current();
    req->local = 1;
    req->done = pickup_committed;
    req->arg = job;
    req->env = env;
    buf_init(&req->msg);
    queue_id_new(env->id);
    envelope_set(&env->sender, md->sender);
    envelope_set(&env->protocol, "LOCAL");
    envelope_set(&env->envid, md->envid);
    env->ret = md->ret;
    env->body_8bit = md->body_8bit;
    env->smtputf8 = !pickup_ascii(md->sender);
    for (i = 0; i < md->nrcpt; i++) {
        rcpt_t *r = envelope_add_rcpt(env, md->rcpts[i].addr);

        r->notify = md->rcpts[i].notify;
        envelope_set(&r->orcpt, md->rcpts[i].orcpt);
        if (!pickup_ascii(md->rcpts[i].addr))
            env->smtputf8 = 1;
    }
    /* cleanup adds From: to a local submission that lacks it, with the
     * -F name. */
    if (md->fullname)
        req->fullname = mem_strdup(md->fullname);
    buf_append(&req->msg, body, len);
    memcpy(job->id, env->id, sizeof(job->id));
    return req;
}

/* Take one maildrop file, if it is one and not already on its way. */
static void
pickup_file(pickup_t *pk, const char *name)
{
    char err[300];
    config_t *cfg;
    long long limit;
    struct stat st;
    cleanup_req_t *req;
    struct pickup_job *job;
    maildrop_t md;
    size_t body;
    char *path;
    buf_t data;
    int fd;
    int rc;

    if (!maildrop_name_final(name)) {
        if (!maildrop_name_temp(name)) {
            pickup_corrupt(pk, name, "not a maildrop file name");
            return;
        }
        path = mem_printf("%s/%s", pk->dir, name);
        if (lstat(path, &st) == 0 &&
            st.st_mtime + PICKUP_TEMP_MAX_AGE < time(NULL)) {
            msg_warn("maildrop/%s: removing a temporary file left by a "
                     "writer that did not finish",
                     name);
            unlink(path);
        }
        free(path);
        return;
    }
    if (pickup_in(pk->busy, pk->nbusy, name) ||
        pickup_in(pk->stuck, pk->nstuck, name))
        return;
    if (pk->nbusy >= PICKUP_INFLIGHT_MAX) {
        pickup_retry(pk, PICKUP_RETRY_BUSY);
        return;
    }
    path = mem_printf("%s/%s", pk->dir, name);
    /* Look before opening: opening a device or a FIFO may itself do
     * something.  Only sendmail writes here, but nothing is trusted. */
    if (lstat(path, &st) < 0) {
        int saved = errno;

        free(path);
        /* ENOENT: taken already, or an event for a rename away. */
        if (saved != ENOENT)
            msg_warn("maildrop/%s: cannot stat: %s", name, strerror(saved));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        free(path);
        pickup_corrupt(pk, name,
                       S_ISLNK(st.st_mode) ? "a symbolic link"
                                           : "not a regular file");
        return;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    free(path);
    if (fd < 0) {
        int saved = errno;

        if (saved == ENOENT)
            return;
        if (saved == ELOOP)
            pickup_corrupt(pk, name, "a symbolic link");
        else
            msg_warn("maildrop/%s: cannot open: %s", name, strerror(saved));
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        pickup_corrupt(pk, name, "not a regular file");
        return;
    }
    cfg = config_current();
    limit = config_num(cfg, P_MESSAGE_SIZE_LIMIT);
    config_unref(&cfg);
    buf_init(&data);
    rc = pickup_read(fd,
                     limit > 0 ? (size_t)limit + 2 * MAILDROP_HEADER_MAX
                               : (size_t)1 << 31,
                     &data);
    close(fd);
    if (rc < 0) {
        buf_free(&data);
        if (rc == -2)
            pickup_corrupt(pk, name, "larger than message_size_limit allows");
        else
            msg_warn("maildrop/%s: read error: %s", name, strerror(errno));
        return;
    }
    maildrop_init(&md);
    if (maildrop_parse(data.data ? data.data : "", data.len, &md, &body, err,
                       sizeof(err)) < 0) {
        maildrop_clear(&md);
        buf_free(&data);
        pickup_corrupt(pk, name, err);
        return;
    }
    if ((uid_t)md.uid != st.st_uid) {
        snprintf(err, sizeof(err),
                 "the file says uid %ld, but uid %lu owns "
                 "it",
                 md.uid, (unsigned long)st.st_uid);
        maildrop_clear(&md);
        buf_free(&data);
        pickup_corrupt(pk, name, err);
        return;
    }
    job = mem_calloc(1, sizeof(*job));
    job->pk = pk;
    snprintf(job->name, sizeof(job->name), "%s", name);
    req = pickup_request(pk, &md, data.data + body, data.len - body, job);
    buf_free(&data);
    msg_info("%s: uid=%lu from=<%s>", job->id, (unsigned long)st.st_uid,
             md.sender);
    maildrop_clear(&md);
    pthread_mutex_lock(&pk->lock);
    pk->inflight++;
    pthread_mutex_unlock(&pk->lock);
    pickup_add(&pk->busy, &pk->nbusy, name);
    if (cleanup_submit(pk->cleanup, req) < 0) {
        msg_warn("%s: the cleanup queue is full; maildrop/%s will be "
                 "tried again",
                 job->id, name);
        pickup_remove(pk->busy, &pk->nbusy, name);
        pthread_mutex_lock(&pk->lock);
        if (--pk->inflight == 0)
            pthread_cond_broadcast(&pk->idle);
        pthread_mutex_unlock(&pk->lock);
        cleanup_req_free(&req);
        free(job);
        pickup_retry(pk, PICKUP_RETRY_BUSY);
    }
}

/* Look at every name in the directory. */
static void
pickup_scan(pickup_t *pk)
{
    DIR *d = opendir(pk->dir);
    struct dirent *de;

    if (d == NULL) {
        msg_warn("cannot scan %s: %s", pk->dir, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        pickup_file(pk, de->d_name);
    }
    closedir(d);
}

/* Handle what inotify reports; returns nonzero if a full scan is due. */
static int
pickup_events(pickup_t *pk)
{
    char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int rescan = 0;

    for (;;) {
        ssize_t n = read(pk->ino_fd, ev, sizeof(ev));
        char *p;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (p = ev; p < ev + n;) {
            struct inotify_event *e = (struct inotify_event *)p;

            if (e->mask & IN_Q_OVERFLOW)
                rescan = 1;
            else if (e->len > 0 && e->name[0] != '\0')
                pickup_file(pk, e->name);
            p += sizeof(*e) + e->len;
        }
    }
    return rescan;
}

static void *
pickup_main(void *arg)
{
    pickup_t *pk = arg;
    int interval =
        pk->ino_fd >= 0 ? PICKUP_SCAN_INTERVAL : PICKUP_SCAN_NO_INOTIFY;

    log_set_role("pickup");
    pickup_scan(pk);
    pk->next_scan = time(NULL) + interval;
    for (;;) {
        struct pollfd pfd[2];
        time_t now = time(NULL);
        time_t wake = pk->next_scan;
        int stopping;
        int scan = 0;

        if (pk->retry_at && pk->retry_at < wake)
            wake = pk->retry_at;
        pfd[0].fd = pk->event_fd;
        pfd[0].events = POLLIN;
        pfd[1].fd = pk->ino_fd;
        pfd[1].events = POLLIN;
        poll(pfd, pk->ino_fd >= 0 ? 2 : 1,
             wake > now ? (int)(wake - now) * 1000 : 0);
        if (pfd[0].revents & POLLIN) {
            uint64_t v;

            if (read(pk->event_fd, &v, sizeof(v)) < 0) {
                /* Nothing was pending after all. */
            }
        }
        pthread_mutex_lock(&pk->lock);
        stopping = pk->stopping;
        pthread_mutex_unlock(&pk->lock);
        if (stopping)
            break;
        pickup_finish_done(pk);
        if (pk->ino_fd >= 0 && (pfd[1].revents & POLLIN))
            scan = pickup_events(pk);
        now = time(NULL);
        if (now >= pk->next_scan) {
            scan = 1;
            pk->next_scan = now + interval;
        }
        if (pk->retry_at && now >= pk->retry_at) {
            scan = 1;
            pk->retry_at = 0;
        }
        if (scan)
            pickup_scan(pk);
    }
    return NULL;
}

static void
pickup_mkdir(const char *dir, mode_t mode)
{
    if (mkdir(dir, mode) == 0) {
        /* The umask took bits away: the mode is the point. */
        if (chmod(dir, mode) < 0)
            msg_fatal("cannot chmod %s: %s", dir, strerror(errno));
    } else if (errno != EEXIST) {
        msg_fatal("cannot create %s: %s", dir, strerror(errno));
    }
}

pickup_t *
pickup_start(const char *queue_directory, cleanup_t *cleanup)
{
    pickup_t *pk = mem_calloc(1, sizeof(*pk));
    int rc;

    pk->dir = mem_printf("%s/maildrop", queue_directory);
    pk->corrupt = mem_printf("%s/corrupt", queue_directory);
    pk->cleanup = cleanup;
    /* Mode 1730: the setgid group may create files but not list or
     * open them, and the sticky bit keeps writers from removing each
     * other's files. */
    pickup_mkdir(pk->dir, 01730);
    pickup_mkdir(pk->corrupt, 0700);
    pthread_mutex_init(&pk->lock, NULL);
    pthread_cond_init(&pk->idle, NULL);
    pk->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pk->event_fd < 0)
        msg_fatal("eventfd: %s", strerror(errno));
    pk->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (pk->ino_fd >= 0 &&
        inotify_add_watch(pk->ino_fd, pk->dir, IN_MOVED_TO | IN_CLOSE_WRITE) <
            0) {
        close(pk->ino_fd);
        pk->ino_fd = -1;
    }
    if (pk->ino_fd < 0)
        msg_warn("cannot watch %s with inotify: %s; scanning it every %d "
                 "seconds instead",
                 pk->dir, strerror(errno), PICKUP_SCAN_NO_INOTIFY);
    rc = pthread_create(&pk->thread, NULL, pickup_main, pk);
    if (rc != 0)
        msg_fatal("cannot start the pickup thread: %s", strerror(rc));
    return pk;
}

void
pickup_stop(pickup_t **pp)
{
    pickup_t *pk = pp ? *pp : NULL;
    size_t i;

    if (pk == NULL)
        return;
    pthread_mutex_lock(&pk->lock);
    pk->stopping = 1;
    pthread_mutex_unlock(&pk->lock);
    pickup_wake(pk);
    pthread_join(pk->thread, NULL);
    /* What cleanup holds still completes: wait for it, so that every
     * file it committed is removed now rather than taken again at the
     * next start. */
    pthread_mutex_lock(&pk->lock);
    while (pk->inflight > 0)
        pthread_cond_wait(&pk->idle, &pk->lock);
    pthread_mutex_unlock(&pk->lock);
    pickup_finish_done(pk);
    for (i = 0; i < pk->nbusy; i++)
        free(pk->busy[i]);
    for (i = 0; i < pk->nstuck; i++)
        free(pk->stuck[i]);
    free(pk->busy);
    free(pk->stuck);
    if (pk->ino_fd >= 0)
        close(pk->ino_fd);
    close(pk->event_fd);
    pthread_mutex_destroy(&pk->lock);
    pthread_cond_destroy(&pk->idle);
    free(pk->dir);
    free(pk->corrupt);
    free(pk);
    *pp = NULL;
}
