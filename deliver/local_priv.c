/* SPDX-License-Identifier: ISC */
/*
 * local_priv: the privileged part of local delivery.
 *
 * ternd gives up root before it opens the queue and never gets it back
 * (server/ternd.c), yet mail for a system account belongs in a mailbox
 * that the account owns, written with the account's uid, as Postfix's
 * local(8) does.  So, started as root and while it still has one
 * thread, ternd forks one small process that keeps root and does
 * nothing but this:
 *
 *   delivery worker (mail_owner)       privileged process (root)
 *     content into a memfd
 *     sendmsg(header, memfd, reply) --> recvmsg, fork a child:
 *                                          check the account (a system
 *                                          account, not root), name the
 *                                          mailbox from the spool it
 *                                          was started with, take the
 *                                          dotlock, open or create the
 *                                          mbox (O_NOFOLLOW, a regular
 *                                          file with one link, owned by
 *                                          the account) or the Maildir
 *                                          directory, then fork a
 *                                          grandchild that becomes the
 *                                          account (groups, gid, uid)
 *                                          and writes, fsyncs, renames;
 *     poll(reply) <-------------------  reply: outcome and reason
 *
 * The worker names only the account and sends the content; the path
 * comes from the mail_spool_directory the process was started with, so
 * a compromised ternd can at worst write mail into a mailbox, never a
 * file of its choosing.  The grandchild does every write with the
 * account's uid; root only creates the mailbox file or directory and
 * the lock beside it.  The process ends when ternd closes its end of
 * the socket (or dies: PR_SET_PDEATHSIG).
 *
 * Guarantees: as for mail_owner's mailboxes (local.c): the mbox is
 * locked (dotlock, fcntl), appended, fsynced and cut back on failure;
 * a Maildir file is written in tmp/, fsynced, renamed into new/ and
 * new/ fsynced.  A crash of either process before the reply leaves the
 * recipient undelivered in the queue, to be tried again.
 *
 * mailbox_command runs the same way as the recipient's account.  The
 * commands and files of aliases go the same way too, as Postfix runs
 * them with default_privs rather than with the queue owner's rights: the
 * child becomes default_privs (never root, never mail_owner: refused at
 * start) and runs the command (local_cmd) or appends to the file (or
 * writes into the Maildir a trailing "/" names), with the rights of
 * that account alone.  The worker sends the command, its environment
 * and the text; a compromised ternd gains nothing by it, since it can
 * run commands as mail_owner itself.
 *
 * Threads: any number of workers at once; each request has its own
 * reply socket, and SOCK_SEQPACKET keeps requests whole.  The
 * privileged process is single-threaded and forks per request.
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/local_cmd.h"
#include "deliver/local_priv.h"
#include "lib/log.h"
#include "lib/mem.h"

#define LOCAL_PRIV_MAGIC 0x7465726eu
#define LOCAL_PRIV_TIMEOUT_MS (600 * 1000)
#define LOCAL_PRIV_LOCK_WAIT 300 /* tenths of a second */
#define LOCAL_PRIV_LOCK_STALE 300

enum local_priv_kind {
    LOCAL_PRIV_MAILBOX, /* user's mailbox under the spool */
    LOCAL_PRIV_HOME,    /* user's home_mailbox (arg) below the home */
    LOCAL_PRIV_COMMAND, /* run arg as default_privs */
    LOCAL_PRIV_FILE,    /* append to the file arg as default_privs */
};

struct local_priv_req {
    uint32_t magic;
    uint32_t kind;
    char user[64];
    char id[32];
    int64_t limit;  /* a command's time limit, seconds */
    char arg[1024]; /* the command or the file */
    char env[4096]; /* a command's environment: NAME=value\0...\0 */
};

struct local_priv_reply {
    int32_t status; /* enum delivery_status */
    char dsn[16];
    char text[1024];
};

static int local_priv_fd = -1;
static char *local_priv_spool;
static uid_t local_priv_owner = (uid_t)-1;
/* default_privs as it was at start; no name when it was refused. */
static char local_priv_default[64];
static int local_priv_mailboxes; /* local_user_delivery at start */

/* ---- the privileged side ------------------------------------------ */

static void
local_priv_reply_set(struct local_priv_reply *r, enum delivery_status st,
                     const char *dsn, const char *text, int err)
{
    r->status = (int32_t)st;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    if (err)
        snprintf(r->text, sizeof(r->text), "%s: %s", text, strerror(err));
    else
        snprintf(r->text, sizeof(r->text), "%s", text);
}

/* Copy the memfd's content to fd; returns 0 or an errno value. */
static int
local_priv_copy(int from, int to)
{
    char buf[65536];
    off_t off = 0;

    for (;;) {
        ssize_t n = pread(from, buf, sizeof(buf), off);
        ssize_t done = 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return 0;
        while (done < n) {
            ssize_t w = write(to, buf + done, (size_t)(n - done));

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno;
            done += w;
        }
        off += n;
    }
}

/* Become pw for good; returns 0 or an errno value. */
static int
local_priv_become(const struct passwd *pw)
{
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0)
        return errno ? errno : EPERM;
    if (setuid(0) == 0)
        return EPERM;
    return 0;
}

/* In the grandchild, as the account: append to the open mbox. */
static int
local_priv_write_mbox(int box, int content)
{
    struct flock lk;
    struct stat st;
    int err;

    memset(&lk, 0, sizeof(lk));
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(box, F_SETLKW, &lk) < 0 || fstat(box, &st) < 0)
        return errno;
    err = local_priv_copy(content, box);
    if (err == 0 && fsync(box) < 0)
        err = errno;
    if (err != 0 && ftruncate(box, st.st_size) < 0)
        return err;
    return err;
}

/* In the grandchild, as the account: a new file in the Maildir whose
 * directory root opened as box (the spool above it need not be
 * searchable by the account: every name is relative to box). */
static int
local_priv_write_maildir(int box, const char *id, int content)
{
    static const char *const sub[] = {"tmp", "new", "cur"};
    char host[128];
    char tmp[512];
    char new[512];
    struct timeval tv;
    size_t i;
    char *p;
    int fd;
    int err;

    for (i = 0; i < 3; i++)
        if (mkdirat(box, sub[i], 0700) < 0 && errno != EEXIST)
            return errno;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    for (p = host; *p; p++)
        if (*p == '/' || *p == ':')
            *p = '_';
    gettimeofday(&tv, NULL);
    snprintf(tmp, sizeof(tmp), "tmp/%ld.M%ldP%ld_%s.%s", (long)tv.tv_sec,
             (long)tv.tv_usec, (long)getpid(), id, host);
    snprintf(new, sizeof(new), "new/%s", tmp + 4);
    fd = openat(box, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno;
    err = local_priv_copy(content, fd);
    if (err == 0 && fsync(fd) < 0)
        err = errno;
    if (close(fd) < 0 && err == 0)
        err = errno;
    if (err == 0 && renameat(box, tmp, box, new) < 0)
        err = errno;
    if (err != 0) {
        unlinkat(box, tmp, 0);
        return err;
    }
    fd = openat(box, "new", O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        if (fsync(fd) < 0)
            err = errno;
        close(fd);
    }
    return err;
}

/* Take the dotlock beside path, as root; returns 0 or an errno value
 * (0 too when the spool lets nobody lock, EACCES and the like). */
static int
local_priv_dotlock(const char *lock, int *held)
{
    int i;

    *held = 0;
    for (i = 0; i < LOCAL_PRIV_LOCK_WAIT; i++) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        struct stat st;
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);

        if (fd >= 0) {
            close(fd);
            *held = 1;
            return 0;
        }
        if (errno == EACCES || errno == EROFS || errno == EPERM)
            return 0;
        if (errno != EEXIST)
            return errno;
        if (stat(lock, &st) == 0 &&
            time(NULL) - st.st_mtime > LOCAL_PRIV_LOCK_STALE) {
            unlink(lock);
            continue;
        }
        nanosleep(&pause, NULL);
    }
    return ETIMEDOUT;
}

/* Write in a grandchild that has become pw: into the mbox open as box,
 * or the Maildir open as box when maildir is set.  Returns the
 * grandchild's errno value (0 when it delivered). */
static int
local_priv_as_user(const struct passwd *pw, int box, int maildir,
                   const char *id, int content)
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return errno;
    if (pid == 0) {
        int err = local_priv_become(pw);

        if (err == 0)
            err = maildir ? local_priv_write_maildir(box, id, content)
                          : local_priv_write_mbox(box, content);
        _exit(err > 255 ? EIO : err);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return errno;
    if (!WIFEXITED(status))
        return EINTR;
    return WEXITSTATUS(status);
}

/* One request, in a child of the privileged process. */
static void
local_priv_child(const struct local_priv_req *req, const char *spool,
                 int content, struct local_priv_reply *out)
{
    size_t slen = strlen(spool);
    struct passwd *pw;
    struct stat st;
    char path[4096];
    char lock[4200];
    int held = 0;
    int err;
    int box;

    if (req->user[0] == '\0' || req->user[0] == '.' ||
        strchr(req->user, '/') != NULL ||
        (pw = getpwnam(req->user)) == NULL || pw->pw_uid == 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "not a system account for privileged delivery",
                             0);
        return;
    }
    if (slen > 0 && spool[slen - 1] == '/') {
        snprintf(path, sizeof(path), "%s%s", spool, req->user);
        if (mkdir(path, 0700) == 0 && chown(path, pw->pw_uid, pw->pw_gid) < 0)
            rmdir(path);
        box = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (box < 0 || fstat(box, &st) < 0 || st.st_uid != pw->pw_uid) {
            local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                                 "the Maildir is not a directory of its "
                                 "owner",
                                 0);
            if (box >= 0)
                close(box);
            return;
        }
        err = local_priv_as_user(pw, box, 1, req->id, content);
        close(box);
        if (err)
            local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                                 "cannot deliver to maildir", err);
        else
            local_priv_reply_set(out, DELIVERY_SENT, "2.0.0",
                                 "delivered to maildir", 0);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", spool, req->user);
    snprintf(lock, sizeof(lock), "%s.lock", path);
    if ((err = local_priv_dotlock(lock, &held)) != 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "cannot lock mailbox", err);
        return;
    }
    box = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY,
               0600);
    if (box < 0 || fstat(box, &st) < 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "cannot open mailbox", errno);
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        local_priv_reply_set(out, DELIVERY_BOUNCE, "5.2.0",
                             "the mailbox is not a regular file", 0);
    } else if (st.st_uid != pw->pw_uid &&
               (st.st_uid != 0 || st.st_size != 0 ||
                fchown(box, pw->pw_uid, pw->pw_gid) < 0)) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "the mailbox belongs to another account", 0);
    } else if ((err = local_priv_as_user(pw, box, 0, req->id, content))) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "cannot write mailbox", err);
    } else {
        local_priv_reply_set(out, DELIVERY_SENT, "2.0.0",
                             "delivered to mailbox", 0);
    }
    if (box >= 0)
        close(box);
    if (held)
        unlink(lock);
}

/* The content of the memfd, read whole; NULL on failure. */
static char *
local_priv_slurp(int fd, size_t *len)
{
    struct stat st;
    char *data;
    ssize_t n;

    if (fstat(fd, &st) < 0 || st.st_size < 0)
        return NULL;
    data = mem_alloc((size_t)st.st_size + 1);
    *len = 0;
    while (*len < (size_t)st.st_size) {
        n = pread(fd, data + *len, (size_t)st.st_size - *len, (off_t)*len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(data);
            return NULL;
        }
        *len += (size_t)n;
    }
    return data;
}

/* home_mailbox: the path arg below the account's home, a Maildir when
 * it ends in "/", else an mbox file; written by a child that has become
 * the account, with no help from root. */
static void
local_priv_child_home(const struct local_priv_req *req, int content,
                      struct local_priv_reply *out)
{
    struct passwd *pw;
    size_t len = strlen(req->arg);
    int err;
    int box;
    int home;

    if (req->user[0] == '\0' || (pw = getpwnam(req->user)) == NULL ||
        pw->pw_uid == 0 || pw->pw_uid == local_priv_owner ||
        !local_priv_mailboxes) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "not a system account for privileged delivery",
                             0);
        return;
    }
    if ((err = local_priv_become(pw)) != 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "cannot become the recipient", err);
        return;
    }
    if ((home = open(pw->pw_dir, O_RDONLY | O_DIRECTORY)) < 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "cannot open the home directory", errno);
        return;
    }
    if (len > 0 && req->arg[len - 1] == '/') {
        char dir[1024];

        char *p;

        snprintf(dir, sizeof(dir), "%.*s", (int)(len - 1), req->arg);
        /* Each directory on the way, as the account. */
        for (p = strchr(dir, '/'); p != NULL; p = strchr(p + 1, '/')) {
            *p = '\0';
            mkdirat(home, dir, 0700);
            *p = '/';
        }
        mkdirat(home, dir, 0700);
        box = openat(home, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        err = box < 0 ? errno : local_priv_write_maildir(box, req->id, content);
    } else {
        box = openat(home, req->arg,
                     O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY,
                     0600);
        err = box < 0 ? errno : local_priv_write_mbox(box, content);
    }
    if (box >= 0)
        close(box);
    close(home);
    if (err)
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "cannot write the home mailbox", err);
    else
        local_priv_reply_set(out, DELIVERY_SENT, "2.0.0",
                             len > 0 && req->arg[len - 1] == '/'
                                 ? "delivered to maildir"
                                 : "delivered to mailbox",
                             0);
}

/* A command or a file of an alias, in a child that becomes
 * default_privs for good first. */
static void
local_priv_child_alias(const struct local_priv_req *req, int content,
                       struct local_priv_reply *out)
{
    struct delivery_result r;
    struct passwd *pw;
    char *envp[64];
    const char *e;
    size_t n = 0;
    size_t len;
    char *data;
    int err;
    int box;

    memset(&r, 0, sizeof(r));
    if (req->kind == LOCAL_PRIV_COMMAND && req->user[0] != '\0') {
        /* mailbox_command, as the recipient's own account. */
        pw = getpwnam(req->user);
        if (pw == NULL || pw->pw_uid == 0 || pw->pw_uid == local_priv_owner ||
            !local_priv_mailboxes) {
            local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                                 "not a system account for privileged "
                                 "delivery",
                                 0);
            return;
        }
    } else if (local_priv_default[0] == '\0' ||
               (pw = getpwnam(local_priv_default)) == NULL ||
               pw->pw_uid == 0 || pw->pw_uid == local_priv_owner) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "default_privs is not a usable account", 0);
        return;
    }
    if ((err = local_priv_become(pw)) != 0) {
        local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                             "cannot become default_privs", err);
        return;
    }
    if (req->kind == LOCAL_PRIV_COMMAND) {
        for (e = req->env; *e && n + 1 < sizeof(envp) / sizeof(envp[0]);
             e += strlen(e) + 1)
            envp[n++] = (char *)e;
        envp[n] = NULL;
        if ((data = local_priv_slurp(content, &len)) == NULL) {
            local_priv_reply_set(out, DELIVERY_DEFER, "4.3.0",
                                 "cannot read the message", errno);
            return;
        }
        local_cmd_run(req->arg, envp, data, len, req->limit, &r);
        free(data);
        out->status = (int32_t)r.status;
        snprintf(out->dsn, sizeof(out->dsn), "%s", r.dsn);
        snprintf(out->text, sizeof(out->text), "%s", r.text);
        return;
    }
    len = strlen(req->arg);
    if (len > 0 && req->arg[len - 1] == '/') {
        mkdir(req->arg, 0700);
        box = open(req->arg, O_RDONLY | O_DIRECTORY);
        err = box < 0 ? errno : local_priv_write_maildir(box, req->id, content);
    } else {
        box = open(req->arg, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
                                 O_NOCTTY,
                   0600);
        err = box < 0 ? errno : local_priv_write_mbox(box, content);
    }
    if (box >= 0)
        close(box);
    if (err)
        local_priv_reply_set(out, DELIVERY_DEFER, "4.2.0",
                             "cannot append to file", err);
    else
        local_priv_reply_set(out, DELIVERY_SENT, "2.0.0",
                             "delivered to file", 0);
}

/* Take one request off sock: the header and its two descriptors.
 * Returns 1, 0 at the end (ternd went away), -1 for a bad message. */
static int
local_priv_recv(int sock, struct local_priv_req *req, int *content,
                int *reply)
{
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {req, sizeof(*req)};
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t n;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    *content = *reply = -1;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0;
    c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
        memcpy(content, CMSG_DATA(c), sizeof(int));
        memcpy(reply, (char *)CMSG_DATA(c) + sizeof(int), sizeof(int));
    }
    if ((size_t)n != sizeof(*req) || req->magic != LOCAL_PRIV_MAGIC ||
        *content < 0 || *reply < 0 || (mh.msg_flags & MSG_CTRUNC))
        return -1;
    req->user[sizeof(req->user) - 1] = '\0';
    req->id[sizeof(req->id) - 1] = '\0';
    req->arg[sizeof(req->arg) - 1] = '\0';
    req->env[sizeof(req->env) - 2] = '\0';
    req->env[sizeof(req->env) - 1] = '\0';
    return 1;
}

static void __attribute__((noreturn))
local_priv_main(int sock, const char *spool)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "ternd-local", 0, 0, 0);
    if (getppid() == 1)
        _exit(0);
    for (;;) {
        struct local_priv_req req;
        int content;
        int reply;
        int rc = local_priv_recv(sock, &req, &content, &reply);
        pid_t pid;

        if (rc == 0)
            _exit(0);
        if (rc < 0) {
            if (content >= 0)
                close(content);
            if (reply >= 0)
                close(reply);
            continue;
        }
        pid = fork();
        if (pid == 0) {
            struct local_priv_reply out;

            memset(&out, 0, sizeof(out));
            close(sock);
            /* This child waits for its own grandchild. */
            signal(SIGCHLD, SIG_DFL);
            if (req.kind == LOCAL_PRIV_COMMAND || req.kind == LOCAL_PRIV_FILE)
                local_priv_child_alias(&req, content, &out);
            else if (req.kind == LOCAL_PRIV_HOME)
                local_priv_child_home(&req, content, &out);
            else if (local_priv_mailboxes)
                local_priv_child(&req, spool, content, &out);
            else
                local_priv_reply_set(&out, DELIVERY_DEFER, "4.3.0",
                                     "local_user_delivery is off", 0);
            if (send(reply, &out, sizeof(out), MSG_NOSIGNAL) < 0)
                _exit(1);
            _exit(0);
        }
        close(content);
        close(reply);
    }
}

void
local_priv_start(const config_t *cfg)
{
    const char *spool = config_str(cfg, P_MAIL_SPOOL_DIRECTORY);
    struct passwd *pw;
    int sv[2];
    pid_t pid;

    if (geteuid() != 0)
        return;
    local_priv_mailboxes = (int)config_num(cfg, P_LOCAL_USER_DELIVERY);
    pw = getpwnam(config_str(cfg, P_MAIL_OWNER));
    if (pw)
        local_priv_owner = pw->pw_uid;
    pw = getpwnam(config_str(cfg, P_DEFAULT_PRIVS));
    if (pw == NULL || pw->pw_uid == 0 || pw->pw_uid == local_priv_owner ||
        strlen(pw->pw_name) >= sizeof(local_priv_default))
        msg_warn("default_privs %s is not an account other than root and "
                 "mail_owner; commands and files of aliases run as "
                 "mail_owner",
                 config_str(cfg, P_DEFAULT_PRIVS));
    else
        snprintf(local_priv_default, sizeof(local_priv_default), "%s",
                 pw->pw_name);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        msg_warn("cannot start privileged local delivery: socketpair: %s",
                 strerror(errno));
        return;
    }
    pid = fork();
    if (pid < 0) {
        msg_warn("cannot start privileged local delivery: fork: %s",
                 strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return;
    }
    if (pid == 0) {
        /* Keep the standard descriptors and the socket, as fd 3. */
        if (sv[1] != 3) {
            dup2(sv[1], 3);
            sv[1] = 3;
        }
        close_range(4, ~0U, 0);
        local_priv_main(sv[1], spool);
    }
    close(sv[1]);
    local_priv_fd = sv[0];
    local_priv_spool = mem_strdup(spool);
    msg_info("privileged local delivery started (pid %ld) for %s",
             (long)pid, spool);
}

/* ---- the delivery worker's side ----------------------------------- */

int
local_priv_wanted(const config_t *cfg, const char *user)
{
    struct passwd pw;
    struct passwd *pwp = NULL;
    char buf[2048];

    if (local_priv_fd < 0 || !local_priv_mailboxes ||
        !config_num(cfg, P_LOCAL_USER_DELIVERY) ||
        strcmp(config_str(cfg, P_MAIL_SPOOL_DIRECTORY), local_priv_spool) !=
            0 ||
        strlen(user) >= sizeof(((struct local_priv_req *)0)->user))
        return 0;
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
        return 0;
    return pw.pw_uid != 0 && pw.pw_uid != local_priv_owner;
}

/* Hand req over with text as its content; the reply goes into r. */
static void
local_priv_call(struct local_priv_req *req, const char *text, size_t len,
                struct delivery_result *r)
{
    struct local_priv_reply out;
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {req, sizeof(*req)};
    struct msghdr mh;
    struct cmsghdr *c;
    struct pollfd pfd;
    int fds[2];
    int sp[2] = {-1, -1};
    int mfd;
    ssize_t n;

    req->magic = LOCAL_PRIV_MAGIC;
    mfd = memfd_create("tern-delivery", MFD_CLOEXEC);
    if (mfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                              sp) < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "cannot hand over the delivery: %s", strerror(errno));
        goto done;
    }
    for (n = 0; (size_t)n < len;) {
        ssize_t w = write(mfd, text + n, len - (size_t)n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            delivery_set(r, DELIVERY_DEFER, "4.3.0",
                         "cannot hand over the delivery: %s",
                         strerror(errno));
            goto done;
        }
        n += w;
    }
    memset(&mh, 0, sizeof(mh));
    memset(cbuf, 0, sizeof(cbuf));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    fds[0] = mfd;
    fds[1] = sp[1];
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    do
        n = sendmsg(local_priv_fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    close(sp[1]);
    sp[1] = -1;
    if (n != (ssize_t)sizeof(*req)) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "privileged local delivery is not running");
        goto done;
    }
    pfd.fd = sp[0];
    pfd.events = POLLIN;
    do
        n = poll(&pfd, 1, LOCAL_PRIV_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    if (n <= 0 || recv(sp[0], &out, sizeof(out), 0) != (ssize_t)sizeof(out)) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "privileged local delivery gave no answer");
        goto done;
    }
    out.dsn[sizeof(out.dsn) - 1] = '\0';
    out.text[sizeof(out.text) - 1] = '\0';
    delivery_set(r,
                 out.status == DELIVERY_SENT     ? DELIVERY_SENT
                 : out.status == DELIVERY_BOUNCE ? DELIVERY_BOUNCE
                                                 : DELIVERY_DEFER,
                 out.dsn, "%s", out.text);
done:
    if (mfd >= 0)
        close(mfd);
    if (sp[0] >= 0)
        close(sp[0]);
    if (sp[1] >= 0)
        close(sp[1]);
}

void
local_priv_deliver(const char *user, const char *id, const char *text,
                   size_t len, struct delivery_result *r)
{
    struct local_priv_req *req = mem_calloc(1, sizeof(*req));

    req->kind = LOCAL_PRIV_MAILBOX;
    snprintf(req->user, sizeof(req->user), "%s", user);
    snprintf(req->id, sizeof(req->id), "%s", id);
    local_priv_call(req, text, len, r);
    free(req);
}

void
local_priv_deliver_home(const char *user, const char *path, const char *id,
                        const char *text, size_t len,
                        struct delivery_result *r)
{
    struct local_priv_req *req = mem_calloc(1, sizeof(*req));

    req->kind = LOCAL_PRIV_HOME;
    snprintf(req->user, sizeof(req->user), "%s", user);
    snprintf(req->id, sizeof(req->id), "%s", id);
    if (strlen(path) >= sizeof(req->arg)) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0", "home_mailbox too long");
        free(req);
        return;
    }
    snprintf(req->arg, sizeof(req->arg), "%s", path);
    local_priv_call(req, text, len, r);
    free(req);
}

int
local_priv_default_ok(const config_t *cfg)
{
    return local_priv_fd >= 0 && local_priv_default[0] != '\0' &&
           strcmp(config_str(cfg, P_DEFAULT_PRIVS), local_priv_default) == 0;
}

/* A request for an alias's command or file; NULL if it does not fit. */
static struct local_priv_req *
local_priv_alias_req(enum local_priv_kind kind, const char *arg,
                     const char *id, struct delivery_result *r)
{
    struct local_priv_req *req = mem_calloc(1, sizeof(*req));

    req->kind = kind;
    snprintf(req->id, sizeof(req->id), "%s", id);
    if (strlen(arg) >= sizeof(req->arg)) {
        delivery_set(r, DELIVERY_BOUNCE, "5.3.0", "%s too long: %.64s...",
                     kind == LOCAL_PRIV_COMMAND ? "command" : "file name",
                     arg);
        free(req);
        return NULL;
    }
    snprintf(req->arg, sizeof(req->arg), "%s", arg);
    return req;
}

void
local_priv_command(const char *cmd, char *const *envp, const char *id,
                   const char *user, const char *text, size_t len,
                   long long limit, struct delivery_result *r)
{
    struct local_priv_req *req;
    size_t off = 0;
    size_t i;

    if ((req = local_priv_alias_req(LOCAL_PRIV_COMMAND, cmd, id, r)) == NULL)
        return;
    if (user != NULL)
        snprintf(req->user, sizeof(req->user), "%s", user);
    req->limit = limit;
    for (i = 0; envp && envp[i]; i++) {
        size_t n = strlen(envp[i]) + 1;

        /* Two NULs end the list. */
        if (off + n + 1 > sizeof(req->env)) {
            delivery_set(r, DELIVERY_DEFER, "4.3.0",
                         "command environment too large");
            free(req);
            return;
        }
        memcpy(req->env + off, envp[i], n);
        off += n;
    }
    local_priv_call(req, text, len, r);
    free(req);
}

void
local_priv_file(const char *path, const char *id, const char *text,
                size_t len, struct delivery_result *r)
{
    struct local_priv_req *req;

    if ((req = local_priv_alias_req(LOCAL_PRIV_FILE, path, id, r)) == NULL)
        return;
    local_priv_call(req, text, len, r);
    free(req);
}
