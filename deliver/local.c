/* SPDX-License-Identifier: ISC */
/*
 * local: Maildir and mbox delivery.
 *
 * Maildir: the message is written to tmp/ under a name no other writer
 * can choose (time, microseconds, process, a counter and the host),
 * fsynced, renamed into new/, and new/ is fsynced, so that a crash
 * leaves at worst a stray file in tmp/ and never a half message in new/.
 * Only then is the recipient reported sent.
 *
 * mbox: the file is locked with fcntl, the message is appended with a
 * "From " line and ">From " quoting, and fsynced; a failed write is cut
 * off again so the mailbox is never left with half a message.
 *
 * Both add Return-Path: and Delivered-To:, and a message that already
 * carries Delivered-To: for this recipient is looping and bounces.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "deliver/local.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

static unsigned long local_counter;

/* Create dir and its parents with mode 0700 where missing. */
static int
local_mkdirs(const char *dir)
{
    char *path = mem_strdup(dir);
    char *p;
    int rc = 0;

    for (p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(path, 0700) < 0 && errno != EEXIST)
        rc = -1;
    free(path);
    return rc;
}

static int
local_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
local_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Nonzero if the header block of msg has Delivered-To: rcpt. */
static int
local_looping(const char *msg, size_t len, const char *rcpt)
{
    const char *p = msg;
    const char *end = msg + len;
    size_t rlen = strlen(rcpt);

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (llen == 0)
            break;
        if (llen >= 13 && strncasecmp(p, "Delivered-To:", 13) == 0) {
            const char *v = p + 13;
            size_t vlen = llen - 13;

            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen == rlen && strncasecmp(v, rcpt, rlen) == 0)
                return 1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static void
local_maildir(const char *box, const envelope_t *env, const char *prefix,
              const char *msg, size_t len, struct delivery_result *r)
{
    char host[128];
    char *tmpdir = mem_printf("%s/tmp", box);
    char *newdir = mem_printf("%s/new", box);
    char *curdir = mem_printf("%s/cur", box);
    char *tmpname = NULL;
    char *newname = NULL;
    struct timeval tv;
    unsigned long seq;
    char *p;
    int fd = -1;

    if (local_mkdirs(tmpdir) < 0 || local_mkdirs(newdir) < 0 ||
        local_mkdirs(curdir) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0",
                     "cannot create maildir %s: %s", box, strerror(errno));
        goto done;
    }
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    /* "/" and ":" have meanings in Maildir names. */
    for (p = host; *p; p++)
        if (*p == '/' || *p == ':')
            *p = '_';
    gettimeofday(&tv, NULL);
    seq = __atomic_add_fetch(&local_counter, 1, __ATOMIC_RELAXED);
    tmpname = mem_printf("%s/%ld.M%ldP%ldQ%lu_%s.%s", tmpdir,
                         (long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
                         seq, env->id, host);
    newname = mem_printf("%s/%s", newdir, strrchr(tmpname, '/') + 1);
    fd = open(tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot create %s: %s",
                     tmpname, strerror(errno));
        goto done;
    }
    if (local_write_all(fd, prefix, strlen(prefix)) < 0 ||
        local_write_all(fd, msg, len) < 0 || fsync(fd) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0", "cannot write %s: %s",
                     tmpname, strerror(errno));
        unlink(tmpname);
        goto done;
    }
    if (close(fd) < 0 || rename(tmpname, newname) < 0 ||
        local_fsync_dir(newdir) < 0) {
        fd = -1;
        delivery_set(r, DELIVERY_DEFER, "4.3.0", "cannot deliver to %s: %s",
                     newdir, strerror(errno));
        unlink(tmpname);
        goto done;
    }
    fd = -1;
    delivery_set(r, DELIVERY_SENT, "2.0.0", "delivered to maildir");
done:
    if (fd >= 0)
        close(fd);
    free(tmpdir);
    free(newdir);
    free(curdir);
    free(tmpname);
    free(newname);
}

/* The message in mbox form: From_ line, >From quoting, a blank line. */
static void
local_mbox_text(const envelope_t *env, const char *prefix, const char *msg,
                size_t len, buf_t *out)
{
    time_t now = time(NULL);
    char stamp[32];
    struct tm tm;
    const char *p = msg;
    const char *end = msg + len;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%a %b %e %H:%M:%S %Y", &tm);
    buf_printf(out, "From %s %s\n%s", env->sender[0] ? env->sender
                                                     : "MAILER-DAEMON",
               stamp, prefix);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

        if (llen >= 5 && strncmp(p, "From ", 5) == 0)
            buf_putc(out, '>');
        buf_append(out, p, llen);
        p += llen;
    }
    if (len > 0 && msg[len - 1] != '\n')
        buf_putc(out, '\n');
    buf_putc(out, '\n');
}

static void
local_mbox(const char *path, const envelope_t *env, const char *prefix,
           const char *msg, size_t len, struct delivery_result *r)
{
    struct flock lk;
    struct stat st;
    buf_t text;
    int fd;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot open mailbox %s: %s",
                     path, strerror(errno));
        return;
    }
    memset(&lk, 0, sizeof(lk));
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLKW, &lk) < 0 || fstat(fd, &st) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot lock mailbox %s: %s",
                     path, strerror(errno));
        close(fd);
        return;
    }
    buf_init(&text);
    local_mbox_text(env, prefix, msg, len, &text);
    if (local_write_all(fd, text.data, text.len) < 0 || fsync(fd) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0", "cannot write mailbox %s: %s",
                     path, strerror(errno));
        if (ftruncate(fd, st.st_size) < 0)
            msg_warn("%s: cannot cut off a failed delivery: %s", path,
                     strerror(errno));
    } else {
        delivery_set(r, DELIVERY_SENT, "2.0.0", "delivered to mailbox");
    }
    buf_free(&text);
    close(fd);
}

static void
local_deliver_one(const config_t *cfg, const envelope_t *env,
                  const char *rcpt, const char *msg, size_t len,
                  struct delivery_result *r)
{
    const char *spool = config_str(cfg, P_MAIL_SPOOL_DIRECTORY);
    size_t slen = strlen(spool);
    char *name;
    char *prefix;

    snprintf(r->relay, sizeof(r->relay), "local");
    name = addr_mailbox_name(rcpt, config_str(cfg, P_RECIPIENT_DELIMITER));
    if (name == NULL) {
        delivery_set(r, DELIVERY_BOUNCE, "5.1.3",
                     "not a valid mailbox name");
        return;
    }
    if (local_looping(msg, len, rcpt)) {
        delivery_set(r, DELIVERY_BOUNCE, "5.4.6", "mail forwarding loop for "
                                                  "%s", rcpt);
        free(name);
        return;
    }
    prefix = mem_printf("Return-Path: <%s>\nDelivered-To: %s\n", env->sender,
                        rcpt);
    if (slen > 0 && spool[slen - 1] == '/') {
        char *box = mem_printf("%s%s", spool, name);

        local_maildir(box, env, prefix, msg, len, r);
        free(box);
    } else {
        char *path = mem_printf("%s/%s", spool, name);

        if (local_mkdirs(spool) < 0)
            delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot create %s: %s",
                         spool, strerror(errno));
        else
            local_mbox(path, env, prefix, msg, len, r);
        free(path);
    }
    free(prefix);
    free(name);
}

void
local_deliver(struct delivery_req *req)
{
    size_t i;

    for (i = 0; i < req->nrcpt; i++)
        local_deliver_one(req->cfg, req->env, req->rcpts[i].rcpt->addr,
                          req->msg, req->len, &req->rcpts[i].result);
}

void
local_virtual_deliver(struct delivery_req *req)
{
    delivery_set_rest(req, DELIVERY_DEFER, "4.3.0", "virtual",
                      "virtual mailbox delivery is not configured");
}
