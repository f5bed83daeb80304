/* SPDX-License-Identifier: ISC */
/*
 * local: delivery on this machine: aliases, commands, files, Maildir
 * and mbox mailboxes, and virtual mailboxes.
 *
 * Flow, for each recipient of a request: the local part (folded, the
 * extension after recipient_delimiter dropped) is looked up in the
 * alias tables in force (lib/aliases, alias_maps).  An alias expands to
 * addresses, which go out again as one new message through cleanup
 * with the original sender (a forward); "|command" targets, which get
 * the message on standard input; and "/file" targets, appended to in
 * mbox form ("/dir/" is a Maildir).  A name that is no alias is a
 * mailbox under mail_spool_directory.  The recipient's outcome is the
 * worst of its targets' (a deferral retries them all).
 *
 * Maildir: the message is written to tmp/ under a name no other writer
 * can choose (time, microseconds, process, a counter and the host),
 * fsynced, renamed into new/, and new/ is fsynced, so that a crash
 * leaves at worst a stray file in tmp/ and never a half message in new/.
 * Only then is the recipient reported sent.
 *
 * mbox: the file is locked with a dotlock (path.lock, created with
 * O_EXCL, stale after five minutes) and with fcntl, as
 * mailbox_delivery_lock says, the message is appended with a "From "
 * line and ">From " quoting, and fsynced; a failed write is cut off
 * again so the mailbox is never left with half a message.
 *
 * Commands run under /bin/sh -c with a clean environment (PATH, HOME,
 * SHELL, LOGNAME, USER and Postfix's SENDER, RECIPIENT, LOCAL, DOMAIN,
 * EXTENSION), in their own session, with all signals at their default,
 * and are killed (the whole process group) after command_time_limit.
 * Exit status 0 delivers, 75 (EX_TEMPFAIL) or a signal defers, anything
 * else bounces with the command's first output as the reason.
 *
 * Privileges: ternd gives up root before it opens the queue and never
 * runs as root again (server/ternd.c).  A recipient that is a system
 * account (other than root and mail_owner) gets its mailbox under
 * mail_spool_directory written with its own uid: ternd, started as
 * root, forks a small privileged process before the drop, and
 * local_priv.c hands it these deliveries (local_user_delivery turns
 * that off).  Every other mailbox is written as mail_owner: that is the
 * design of virtual mailboxes (one owner, no root).  Commands and files
 * are allowed only from the alias tables, which the administrator
 * writes (allow_mail_to_commands, allow_mail_to_files).
 * Commands and files of aliases run as default_privs through the same
 * privileged process, as Postfix runs them for a root-owned alias file;
 * only when ternd was not started as root do they run as mail_owner.
 * (Postfix runs them as the owner of an alias file that root does not
 * own; tern's alias files are the administrator's, so it does not.)
 *
 * Every delivery adds Return-Path: and Delivered-To:, and a message
 * that already carries Delivered-To: for the recipient is looping and
 * bounces.  Threads: any number of workers at once; files are
 * serialised by their locks.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
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
#include "deliver/local_cmd.h"
#include "deliver/local_priv.h"
#include "deliver/lmtp.h"
#include "deliver/smtp.h"
#include "deliver/resolve.h"
#include "lib/addr.h"
#include "lib/aliases.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

#define LOCAL_DOTLOCK_STALE 300
#define LOCAL_DOTLOCK_WAIT 30

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

/* Nonzero if the lock method name is in mailbox_delivery_lock. */
static int
local_lock_wanted(const config_t *cfg, const char *method)
{
    char *const *items = config_list(cfg, P_MAILBOX_DELIVERY_LOCK, NULL);

    for (; items && *items; items++)
        if (strcasecmp(*items, method) == 0)
            return 1;
    return 0;
}

/* Take the dotlock path.lock: create it with O_EXCL, waiting for a
 * holder, and break a lock older than LOCAL_DOTLOCK_STALE seconds, as
 * mail readers expect.  Returns the lock's path (the caller unlinks and
 * frees it), NULL when the directory does not let us (EACCES, EROFS:
 * fcntl alone then), or NULL with errno ETIMEDOUT or another error. */
static char *
local_dotlock(const char *path, int *failed)
{
    char *lock = mem_printf("%s.lock", path);
    int i;

    *failed = 0;
    for (i = 0; i < LOCAL_DOTLOCK_WAIT * 10; i++) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        struct stat st;
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd >= 0) {
            close(fd);
            return lock;
        }
        if (errno == EACCES || errno == EROFS || errno == EPERM) {
            free(lock);
            return NULL;
        }
        if (errno != EEXIST)
            break;
        if (stat(lock, &st) == 0 &&
            time(NULL) - st.st_mtime > LOCAL_DOTLOCK_STALE) {
            msg_warn("%s: removing a stale lock", lock);
            unlink(lock);
            continue;
        }
        nanosleep(&pause, NULL);
    }
    if (errno == EEXIST)
        errno = ETIMEDOUT;
    *failed = 1;
    free(lock);
    return NULL;
}

static void
local_mbox(const config_t *cfg, const char *path, const envelope_t *env,
           const char *prefix, const char *msg, size_t len,
           struct delivery_result *r)
{
    struct flock lk;
    struct stat st;
    char *dotlock = NULL;
    buf_t text;
    int failed = 0;
    int fd;

    if (local_lock_wanted(cfg, "dotlock")) {
        dotlock = local_dotlock(path, &failed);
        if (failed) {
            delivery_set(r, DELIVERY_DEFER, "4.2.0",
                         "cannot lock mailbox %s: %s.lock: %s", path, path,
                         strerror(errno));
            return;
        }
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot open mailbox %s: %s",
                     path, strerror(errno));
        goto unlock;
    }
    memset(&lk, 0, sizeof(lk));
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if ((local_lock_wanted(cfg, "fcntl") && fcntl(fd, F_SETLKW, &lk) < 0) ||
        fstat(fd, &st) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot lock mailbox %s: %s",
                     path, strerror(errno));
        close(fd);
        goto unlock;
    }
    if (!S_ISREG(st.st_mode)) {
        delivery_set(r, DELIVERY_BOUNCE, "5.2.0",
                     "cannot deliver to %s: not a regular file", path);
        close(fd);
        goto unlock;
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
unlock:
    if (dotlock) {
        unlink(dotlock);
        free(dotlock);
    }
}


/* The lines every delivery puts in front of the message. */
static char *
local_prefix(const envelope_t *env, const char *rcpt)
{
    return mem_printf("Return-Path: <%s>\nDelivered-To: %s\n", env->sender,
                      rcpt);
}

/* Deliver to a mailbox path: a Maildir when it ends in "/", else an
 * mbox file (its directory is created when missing). */
static void
local_to_path(const config_t *cfg, const char *path, const envelope_t *env,
              const char *prefix, const char *msg, size_t len,
              struct delivery_result *r)
{
    size_t plen = strlen(path);
    char *dir;
    char *slash;

    if (plen > 0 && path[plen - 1] == '/') {
        char *box = mem_strndup(path, plen - 1);

        local_maildir(box, env, prefix, msg, len, r);
        free(box);
        return;
    }
    dir = mem_strdup(path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (local_mkdirs(dir) < 0) {
            delivery_set(r, DELIVERY_DEFER, "4.2.0", "cannot create %s: %s",
                         dir, strerror(errno));
            free(dir);
            return;
        }
    }
    free(dir);
    local_mbox(cfg, path, env, prefix, msg, len, r);
}

static void local_command(const config_t *cfg, const envelope_t *env,
                          const char *rcpt, const char *cmd, const char *msg,
                          size_t len, const char *user,
                          struct delivery_result *r);

/* Hand addr to mailbox_transport, one LMTP (or SMTP) transaction from
 * this worker with the transport's connection cache, as Postfix's local
 * hands mailboxes to Dovecot. */
static void
local_handoff(struct delivery_req *req, const struct delivery_rcpt *orig,
              const char *addr, struct delivery_result *r)
{
    const char *spec = config_str(req->cfg, P_MAILBOX_TRANSPORT);
    size_t tlen = strcspn(spec, ":");
    char transport[32];
    struct delivery_req sub = *req;
    struct delivery_rcpt one;
    rcpt_t rc = *orig->rcpt;

    snprintf(transport, sizeof(transport), "%.*s", (int)tlen, spec);
    rc.addr = (char *)addr;
    memset(&one, 0, sizeof(one));
    one.rcpt = &rc;
    sub.transport = transport;
    sub.nexthop = spec[tlen] == ':' ? spec + tlen + 1 : "";
    sub.rcpts = &one;
    sub.nrcpt = 1;
    delivery_reset(&sub);
    if (strcmp(transport, "lmtp") == 0)
        lmtp_deliver(&sub);
    else
        smtp_deliver(&sub);
    if (delivery_undecided(&one.result))
        delivery_set(&one.result, DELIVERY_DEFER, "4.3.0",
                     "mailbox_transport %s gave no outcome", spec);
    *r = one.result;
}

/* The mailbox of a local user, in Postfix's order: mailbox_transport,
 * else mailbox_command (as the account for a system account, else as
 * default_privs), else home_mailbox below a system account's home (as
 * the account), else under mail_spool_directory (through the
 * privileged process, with the account's uid, for a system account; as
 * mail_owner for every other name).  rcpt is the recipient the message
 * was addressed to; addr is the one to hand over (rcpt, or the address
 * of a local name an alias gave). */
static void
local_mailbox(struct delivery_req *req, const struct delivery_rcpt *dr,
              const char *name, const char *addr, struct delivery_result *r)
{
    const config_t *cfg = req->cfg;
    const envelope_t *env = req->env;
    const char *rcpt = dr->rcpt->addr;
    const char *spool = config_str(cfg, P_MAIL_SPOOL_DIRECTORY);
    const char *command = config_str(cfg, P_MAILBOX_COMMAND);
    const char *home = config_str(cfg, P_HOME_MAILBOX);
    size_t slen = strlen(spool);
    char *prefix;
    char *path;

    if (config_str(cfg, P_MAILBOX_TRANSPORT)[0] != '\0') {
        local_handoff(req, dr, addr, r);
        return;
    }
    if (command[0] != '\0') {
        local_command(cfg, env, rcpt, command, req->msg, req->len,
                      local_priv_wanted(cfg, name) ? name : NULL, r);
        return;
    }
    prefix = local_prefix(env, rcpt);
    if (home[0] != '\0' && local_priv_wanted(cfg, name)) {
        size_t hlen = strlen(home);
        buf_t text;

        buf_init(&text);
        if (home[hlen - 1] == '/') {
            buf_puts(&text, prefix);
            buf_append(&text, req->msg, req->len);
        } else {
            local_mbox_text(env, prefix, req->msg, req->len, &text);
        }
        local_priv_deliver_home(name, home, env->id,
                                text.data ? text.data : "", text.len, r);
        buf_free(&text);
        free(prefix);
        return;
    }
    if (local_priv_wanted(cfg, name)) {
        buf_t text;

        buf_init(&text);
        if (slen > 0 && spool[slen - 1] == '/') {
            buf_puts(&text, prefix);
            buf_append(&text, req->msg, req->len);
        } else {
            local_mbox_text(env, prefix, req->msg, req->len, &text);
        }
        local_priv_deliver(name, env->id, text.data ? text.data : "",
                           text.len, r);
        buf_free(&text);
        free(prefix);
        return;
    }

    if (slen > 0 && spool[slen - 1] == '/')
        path = mem_printf("%s%s/", spool, name);
    else
        path = mem_printf("%s/%s", spool, name);
    local_to_path(cfg, path, env, prefix, req->msg, req->len, r);
    free(path);
    free(prefix);
}

/* Add "NAME=value" to the environment being built. */
static void
local_env_add(char ***envp, size_t *n, const char *name, const char *value)
{
    *envp = mem_reallocarray(*envp, *n + 2, sizeof(char *));
    (*envp)[(*n)++] = mem_printf("%s=%s", name, value ? value : "");
    (*envp)[*n] = NULL;
}

/* The clean environment of a command for recipient rcpt, for the
 * account that runs it: account (NULL for this process's own). */
static char **
local_command_env(const config_t *cfg, const envelope_t *env,
                  const char *rcpt, const char *account)
{
    const char *delim = config_str(cfg, P_RECIPIENT_DELIMITER);
    struct passwd pw;
    struct passwd *pwp = NULL;
    char pwbuf[1024];
    char *local = addr_localpart(rcpt);
    char *ext = NULL;
    char **envp = NULL;
    size_t n = 0;

    if (delim[0] && local[strcspn(local, delim)] != '\0') {
        ext = mem_strdup(local + strcspn(local, delim) + 1);
        local[strcspn(local, delim)] = '\0';
    }
    if (account != NULL)
        getpwnam_r(account, &pw, pwbuf, sizeof(pwbuf), &pwp);
    else
        getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp);
    local_env_add(&envp, &n, "PATH", "/usr/bin:/bin");
    local_env_add(&envp, &n, "SHELL", "/bin/sh");
    local_env_add(&envp, &n, "HOME", pwp ? pwp->pw_dir : "/");
    local_env_add(&envp, &n, "LOGNAME", pwp ? pwp->pw_name : "");
    local_env_add(&envp, &n, "USER", pwp ? pwp->pw_name : "");
    local_env_add(&envp, &n, "SENDER", env->sender);
    local_env_add(&envp, &n, "RECIPIENT", rcpt);
    local_env_add(&envp, &n, "LOCAL", local);
    local_env_add(&envp, &n, "DOMAIN", addr_domain(rcpt));
    local_env_add(&envp, &n, "EXTENSION", ext ? ext : "");
    local_env_add(&envp, &n, "QUEUE_ID", env->id);
    free(local);
    free(ext);
    return envp;
}

static void
local_env_free(char **envp)
{
    size_t i;

    for (i = 0; envp && envp[i]; i++)
        free(envp[i]);
    free(envp);
}

/* Pipe the message into cmd, in mbox form (From_ line, Return-Path:,
 * Delivered-To:), as Postfix's local does: through the privileged
 * process as user (a system account the caller checked) or else as
 * default_privs when ternd started as root; as mail_owner otherwise. */
static void
local_command(const config_t *cfg, const envelope_t *env, const char *rcpt,
              const char *cmd, const char *msg, size_t len, const char *user,
              struct delivery_result *r)
{
    long long limit = config_num(cfg, P_COMMAND_TIME_LIMIT);
    int privs = user != NULL || local_priv_default_ok(cfg);
    char **envp = local_command_env(
        cfg, env, rcpt,
        user ? user : privs ? config_str(cfg, P_DEFAULT_PRIVS) : NULL);
    char *prefix = local_prefix(env, rcpt);
    buf_t data;

    buf_init(&data);
    local_mbox_text(env, prefix, msg, len, &data);
    if (privs)
        local_priv_command(cmd, envp, env->id, user,
                           data.data ? data.data : "", data.len, limit, r);
    else
        local_cmd_run(cmd, envp, data.data ? data.data : "", data.len, limit,
                      r);
    buf_free(&data);
    free(prefix);
    local_env_free(envp);
}

/* Nonzero if the list parameter id allows deliveries of this origin
 * ("alias" from an alias file, "include" from an :include: file). */
static int
local_allowed(const config_t *cfg, enum param_id id,
              const aliases_target_t *t)
{
    const char *want = t->from_include ? "include" : "alias";
    char *const *items = config_list(cfg, id, NULL);

    for (; items && *items; items++)
        if (strcasecmp(*items, want) == 0)
            return 1;
    return 0;
}

/* Fold outcome b into a: a deferral beats a bounce beats a delivery. */
static void
local_worst(struct delivery_result *a, const struct delivery_result *b,
            int *first)
{
    if (*first || b->status == DELIVERY_DEFER ||
        (b->status == DELIVERY_BOUNCE && a->status == DELIVERY_SENT)) {
        a->status = b->status;
        memcpy(a->dsn, b->dsn, sizeof(a->dsn));
        memcpy(a->text, b->text, sizeof(a->text));
    }
    *first = 0;
}

/* A file of an alias, written as default_privs: mbox form, or the
 * Maildir file when the path ends in "/". */
static void
local_file_privs(const envelope_t *env, const char *path, const char *prefix,
                 const char *msg, size_t len, struct delivery_result *r)
{
    size_t plen = strlen(path);
    buf_t text;

    buf_init(&text);
    if (plen > 0 && path[plen - 1] == '/') {
        buf_puts(&text, prefix);
        buf_append(&text, msg, len);
    } else {
        local_mbox_text(env, prefix, msg, len, &text);
    }
    local_priv_file(path, env->id, text.data ? text.data : "", text.len, r);
    buf_free(&text);
}

/* The mailbox of a local name an alias gave; to a mailbox_transport it
 * goes as name@$myhostname, as Postfix resolves a bare name. */
static void
local_alias_mailbox(struct delivery_req *req, const struct delivery_rcpt *dr,
                    const char *name, struct delivery_result *r)
{
    char *addr = mem_printf("%s@%s", name,
                            config_str(req->cfg, P_MYHOSTNAME));

    local_mailbox(req, dr, name, addr, r);
    free(addr);
}

/* Deliver to the targets of an alias; returns 1 if name is an alias. */
static int
local_alias(struct delivery_req *req, struct delivery_rcpt *dr,
            const char *name)
{
    const config_t *cfg = req->cfg;
    const envelope_t *env = req->env;
    const char *rcpt = dr->rcpt->addr;
    struct delivery_result *r = &dr->result;
    aliases_t *al = aliases_current();
    aliases_result_t res;
    char **fwd = NULL;
    size_t nfwd = 0;
    size_t i;
    buf_t err;
    int first = 1;
    int rc;

    if (al == NULL)
        return 0;
    memset(&res, 0, sizeof(res));
    buf_init(&err);
    rc = aliases_expand(al, name, &res, &err);
    if (rc == 0) {
        aliases_unref(&al);
        buf_free(&err);
        return 0;
    }
    if (rc < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0", "alias %s: %s", name,
                     err.data ? err.data : "cannot expand");
        goto done;
    }
    for (i = 0; i < res.n; i++) {
        const aliases_target_t *t = &res.v[i];
        struct delivery_result one;

        memset(&one, 0, sizeof(one));
        switch (t->kind) {
        case ALIASES_COMMAND:
            if (!local_allowed(cfg, P_ALLOW_MAIL_TO_COMMANDS, t))
                delivery_set(&one, DELIVERY_BOUNCE, "5.7.1",
                             "mail to command is restricted");
            else
                local_command(cfg, env, rcpt, t->value, req->msg, req->len,
                              NULL, &one);
            break;
        case ALIASES_FILE: {
            char *prefix = local_prefix(env, rcpt);

            if (!local_allowed(cfg, P_ALLOW_MAIL_TO_FILES, t))
                delivery_set(&one, DELIVERY_BOUNCE, "5.7.1",
                             "mail to file is restricted");
            else if (local_priv_default_ok(cfg))
                local_file_privs(env, t->value, prefix, req->msg, req->len,
                                 &one);
            else
                local_to_path(cfg, t->value, env, prefix, req->msg,
                              req->len, &one);
            if (one.status == DELIVERY_SENT)
                delivery_set(&one, DELIVERY_SENT, "2.0.0",
                             "delivered to file: %s", t->value);
            free(prefix);
            break;
        }
        case ALIASES_ADDRESS:
            if (strchr(t->value, '@') == NULL) {
                char *box = addr_mailbox_name(t->value, "");

                if (box == NULL)
                    delivery_set(&one, DELIVERY_BOUNCE, "5.1.3",
                                 "alias %s: bad mailbox name %s", name,
                                 t->value);
                else
                    local_alias_mailbox(req, dr, box, &one);
                free(box);
            } else {
                fwd = mem_reallocarray(fwd, nfwd + 1, sizeof(char *));
                fwd[nfwd++] = t->value;
                continue;
            }
            break;
        default:
            continue;
        }
        local_worst(r, &one, &first);
    }
    if (nfwd > 0) {
        struct delivery_result one;
        char newid[QUEUE_ID_SIZE];
        buf_t copy;

        memset(&one, 0, sizeof(one));
        buf_init(&copy);
        /* Delivered-To: goes with the copy, so that a forward that
         * comes back here is seen as a loop. */
        buf_printf(&copy, "Delivered-To: %s\n", rcpt);
        buf_append(&copy, req->msg, req->len);
        if (req->submit == NULL ||
            req->submit(req->submit_arg, cfg, env->sender, fwd, nfwd,
                        copy.data, copy.len, newid) < 0)
            delivery_set(&one, DELIVERY_DEFER, "4.3.0",
                         "cannot queue the forwarded message");
        else
            delivery_set(&one, DELIVERY_SENT, "2.0.0", "forwarded as %s",
                         newid);
        buf_free(&copy);
        local_worst(r, &one, &first);
    }
    if (first)
        delivery_set(r, DELIVERY_SENT, "2.0.0", "alias %s has no targets",
                     name);
done:
    free(fwd);
    aliases_result_free(&res);
    aliases_unref(&al);
    buf_free(&err);
    return 1;
}

void
local_deliver(struct delivery_req *req)
{
    const char *delim = config_str(req->cfg, P_RECIPIENT_DELIMITER);
    size_t i;

    for (i = 0; i < req->nrcpt; i++) {
        struct delivery_rcpt *dr = &req->rcpts[i];
        const char *rcpt = dr->rcpt->addr;
        struct delivery_result *r = &dr->result;
        char *name;

        snprintf(r->relay, sizeof(r->relay), "local");
        name = addr_mailbox_name(rcpt, delim);
        if (name == NULL) {
            delivery_set(r, DELIVERY_BOUNCE, "5.1.3",
                         "not a valid mailbox name");
            continue;
        }
        if (local_looping(req->msg, req->len, rcpt)) {
            delivery_set(r, DELIVERY_BOUNCE, "5.4.6",
                         "mail forwarding loop for %s", rcpt);
        } else if (!local_alias(req, dr, name)) {
            local_mailbox(req, dr, name, rcpt, r);
        }
        free(name);
    }
}

/* Nonzero if rel is a relative path without "." or ".." components. */
static int
local_safe_relative(const char *rel)
{
    const char *p = rel;

    if (rel[0] == '/' || rel[0] == '\0')
        return 0;
    while (*p) {
        size_t n = strcspn(p, "/");

        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n;
        while (*p == '/')
            p++;
    }
    return 1;
}

void
local_virtual_deliver(struct delivery_req *req)
{
    const config_t *cfg = req->cfg;
    const char *base = config_str(cfg, P_VIRTUAL_MAILBOX_BASE);
    size_t i;

    for (i = 0; i < req->nrcpt; i++) {
        struct delivery_rcpt *dr = &req->rcpts[i];
        const char *rcpt = dr->rcpt->addr;
        struct delivery_result *r = &dr->result;
        const char *rel = NULL;
        char *prefix;
        char *path;

        snprintf(r->relay, sizeof(r->relay), "virtual");
        /* The address, then the domain's catch-all "@domain". */
        if (!config_maps_lookup_addr(cfg, P_VIRTUAL_MAILBOX_MAPS, rcpt, &rel))
            rel = NULL;
        if (rel == NULL) {
            delivery_set(r, DELIVERY_BOUNCE, "5.1.1",
                         "unknown user: \"%s\"", rcpt);
            continue;
        }
        if (base[0] == '\0' || !local_safe_relative(rel)) {
            delivery_set(r, DELIVERY_DEFER, "4.3.5",
                         "bad virtual mailbox \"%s\" for %s (needs "
                         "virtual_mailbox_base and a relative path)",
                         rel, rcpt);
            continue;
        }
        if (local_looping(req->msg, req->len, rcpt)) {
            delivery_set(r, DELIVERY_BOUNCE, "5.4.6",
                         "mail forwarding loop for %s", rcpt);
            continue;
        }
        path = mem_printf("%s/%s", base, rel);
        prefix = local_prefix(req->env, rcpt);
        local_to_path(cfg, path, req->env, prefix, req->msg, req->len, r);
        if (r->status == DELIVERY_SENT)
            delivery_set(r, DELIVERY_SENT, "2.0.0", "delivered to %s",
                         rel[strlen(rel) - 1] == '/' ? "maildir"
                                                     : "mailbox");
        free(prefix);
        free(path);
    }
}
