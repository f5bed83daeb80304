/* SPDX-License-Identifier: ISC */
/*
 * sendmail: local submission, with the options of Sendmail's and
 * Postfix's sendmail that cron, mutt, git send-email, PHP's mail() and
 * msmtp-style scripts use.  Installed also as "mailq" (sendmail -bp) and
 * "newaliases" (sendmail -bi); the name it is run by picks the mode.
 *
 * Flow: read the message from standard input (up to the end, or up to a
 * lone "." without -i), take the recipients from the arguments and with
 * -t from the To:, Cc: and Bcc: headers (Bcc: is then removed), and
 * write one file into $queue_directory/maildrop (server/maildrop.c:
 * temporary name, fsync, rename).  ternd's pickup feeds it to cleanup.
 * sendmail never talks to ternd: mail submitted while ternd is stopped
 * waits in maildrop until it starts.  "-bs" speaks SMTP on standard
 * input and output instead (server/sendmail_smtp.c).
 *
 * The configuration is found as ternd finds it: -C FILE, else
 * $TERN_CONFIG, else the default file if it exists, else the embedded
 * defaults.
 *
 * Privileges: installed by root, sendmail is setgid to setgid_group,
 * the only group that may write into maildrop (mode 1730): that is how
 * users who cannot write into the queue submit mail, as Postfix's
 * postdrop does.  It records the real uid and its login name, never an
 * identity it was told.  While setgid it does not let the caller choose
 * the configuration: with -C or TERN_CONFIG, and a real uid other than
 * root or mail_owner, it first gives up the group for good (as
 * Sendmail does with -C), so the other file only works for a maildrop
 * the caller may write to anyway.  It reads no other environment
 * variable when setgid.  When ternd runs as an ordinary user (a private
 * instance, the tests), sendmail is that user's program and needs no
 * group at all.
 *
 * Exit status: 0 when the file is durable in maildrop; otherwise a
 * <sysexits.h> code (64 usage, 65 bad input, 73 cannot create, 75 try
 * again, 78 configuration), with the reason on standard error.
 *
 * A crash (or a signal) before the rename leaves a temporary file that
 * pickup ignores and removes when it is a day old; the caller has no
 * 0 exit status and still has the message.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin/mailq.h"
#include "lib/aliases.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "server/maildrop.h"
#include "server/sendmail_rcpt.h"
#include "server/sendmail_smtp.h"
#include "server/smtpd_parse.h"

#define SENDMAIL_DEFAULT_CONFIG TERN_SYSCONFDIR "/tern/tern.conf"
#define SENDMAIL_READ 65536

enum sendmail_mode {
    SM_MAIL,    /* -bm: a message on standard input */
    SM_SMTP,    /* -bs */
    SM_QUEUE,   /* -bp, mailq */
    SM_ALIASES, /* -bi, -I, newaliases */
    SM_FLUSH,   /* -q */
};

struct sendmail {
    const char *prog;
    enum sendmail_mode mode;
    const char *config_given; /* -C */
    const char *alias_file;   /* -oA */
    int extract;              /* -t */
    int ignore_dots;          /* -i, -oi */
    const char *sender;       /* -f, -r */
    const char *fullname;     /* -F */
    int notify;               /* -N */
    enum dsn_ret ret;         /* -R */
    const char *envid;        /* -V */
    int body_8bit;            /* -B 8BITMIME */
    int privileged;           /* setgid or setuid now */
    int dropped;              /* gave the group up for -C or TERN_CONFIG */
    config_t *cfg;
    uid_t uid;
    char *user;     /* login name, or the uid in decimal */
    int have_login; /* user is a real login name */
    char *maildrop;
};

static void sendmail_fatal(const struct sendmail *sm, int status,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Say why on standard error and exit with status. */
static void
sendmail_fatal(const struct sendmail *sm, int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: fatal: ", sm->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

static void
sendmail_usage(const struct sendmail *sm)
{
    fprintf(stderr,
            "usage: %s [-t] [-i] [-f sender] [-F fullname] [-N dsn] "
            "[-R full|hdrs] [-V envid] [-C config] [--] [recipient ...]\n"
            "       %s -bs | -bp | -bi | -q\n",
            sm->prog, sm->prog);
    exit(EX_USAGE);
}

/* A process that may have been started with fds 0-2 closed must not
 * write its files where stdout would be. */
static void
sendmail_sane_fds(void)
{
    int fd;

    for (fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 &&
            open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
            _exit(EX_OSERR);
    }
}

/* Nonzero if the real user may choose the configuration while sendmail
 * is privileged: root, or the mail owner. */
static int
sendmail_trusted_caller(void)
{
    struct passwd *pw;

    if (getuid() == 0)
        return 1;
    pw = getpwnam(TERN_MAIL_OWNER);
    return pw != NULL && pw->pw_uid == getuid();
}

/* Give up setgid (and setuid) privileges for good. */
static void
sendmail_drop_privileges(struct sendmail *sm)
{
    if (setgid(getgid()) < 0 || setuid(getuid()) < 0)
        sendmail_fatal(sm, EX_OSERR, "cannot give up privileges: %s",
                       strerror(errno));
    sm->privileged = 0;
    sm->dropped = 1;
}

/* The configuration file, as ternd chooses it. */
static const char *
sendmail_config_path(struct sendmail *sm)
{
    const char *env = sm->privileged ? NULL : getenv("TERN_CONFIG");

    if (sm->privileged && (sm->config_given || getenv("TERN_CONFIG")) &&
        !sendmail_trusted_caller()) {
        sendmail_drop_privileges(sm);
        env = getenv("TERN_CONFIG");
    }
    if (sm->config_given)
        return sm->config_given;
    if (env && *env)
        return env;
    if (access(SENDMAIL_DEFAULT_CONFIG, F_OK) == 0)
        return SENDMAIL_DEFAULT_CONFIG;
    return NULL;
}

static void
sendmail_load_config(struct sendmail *sm)
{
    const char *path = sendmail_config_path(sm);
    buf_t errs;

    /* XXX config_load opens every lookup table the file names, so a
     * table the submitting user may not read (a password file, say)
     * makes sendmail fail although it needs none of them.  A load mode
     * that leaves tables closed would fix it. */
    buf_init(&errs);
    sm->cfg = config_load(path, NULL, 0, &errs);
    if (sm->cfg == NULL) {
        fprintf(stderr, "%s", errs.data ? errs.data : "");
        sendmail_fatal(sm, EX_CONFIG, "bad configuration %s",
                       path ? path : "(embedded defaults)");
    }
    buf_free(&errs);
}

/* Who is submitting: the real uid and its login name. */
static void
sendmail_identify(struct sendmail *sm)
{
    struct passwd *pw;

    sm->uid = getuid();
    pw = getpwuid(sm->uid);
    if (pw && pw->pw_name[0] && maildrop_text_ok(pw->pw_name)) {
        sm->user = mem_strdup(pw->pw_name);
        sm->have_login = 1;
    } else {
        sm->user = mem_printf("%lu", (unsigned long)sm->uid);
    }
}

/* Create dir and its parents (the last with mode), as ternd does for
 * queue_directory. */
static int
sendmail_mkdirs(const char *dir, mode_t mode)
{
    char *path = mem_strdup(dir);
    char *p;
    int rc = 0;

    for (p = path + 1; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(path, mode) < 0 && errno != EEXIST)
        rc = -1;
    free(path);
    return rc;
}

/* Give a maildrop that root made to mail_owner and setgid_group (the
 * owner's own group if that group does not exist). */
static void
sendmail_chown_maildrop(const struct sendmail *sm)
{
    struct passwd *pw = getpwnam(config_str(sm->cfg, P_MAIL_OWNER));
    struct group *gr = getgrnam(config_str(sm->cfg, P_SETGID_GROUP));

    if (pw == NULL)
        return;
    if (chown(sm->maildrop, pw->pw_uid, gr ? gr->gr_gid : pw->pw_gid) < 0)
        fprintf(stderr, "%s: warning: cannot give %s to %s: %s\n", sm->prog,
                sm->maildrop, pw->pw_name, strerror(errno));
}

/* Find (for an ordinary user's own instance, make) the maildrop. */
static void
sendmail_find_maildrop(struct sendmail *sm)
{
    const char *qdir = config_str(sm->cfg, P_QUEUE_DIRECTORY);
    struct stat st;

    sm->maildrop = mem_printf("%s/maildrop", qdir);
    if (stat(sm->maildrop, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            sendmail_fatal(sm, EX_CONFIG, "%s is not a directory",
                           sm->maildrop);
        return;
    }
    if (errno != ENOENT)
        sendmail_fatal(sm, EX_TEMPFAIL, "%s: %s", sm->maildrop,
                       strerror(errno));
    /* Installed systems have it (make install creates it); a private
     * instance that ternd has not run on yet gets it here, with the
     * mode pickup gives it. */
    if (sm->privileged)
        sendmail_fatal(sm, EX_TEMPFAIL,
                       "%s does not exist: is tern "
                       "installed?",
                       sm->maildrop);
    if (sendmail_mkdirs(qdir, 0700) < 0 ||
        (mkdir(sm->maildrop, 0700) < 0 && errno != EEXIST) ||
        chmod(sm->maildrop, 01730) < 0)
        sendmail_fatal(sm, EX_CANTCREAT, "cannot create %s: %s", sm->maildrop,
                       strerror(errno));
    /* Made by root, it must still be pickup's: ternd gives the queue
     * directory to mail_owner when it starts, but not what is in it. */
    if (geteuid() == 0)
        sendmail_chown_maildrop(sm);
}

/* The message on standard input: CRLF becomes LF, a leading "From "
 * line (an mbox separator) is dropped as Postfix drops it, and without
 * -i a line holding only "." ends the message. */
static void
sendmail_read_message(struct sendmail *sm, buf_t *msg)
{
    long long limit = config_num(sm->cfg, P_MESSAGE_SIZE_LIMIT);
    char chunk[SENDMAIL_READ];
    buf_t line;
    int first = 1;
    int eof = 0;

    buf_init(&line);
    while (!eof) {
        ssize_t n = read(0, chunk, sizeof(chunk));
        size_t pos = 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            sendmail_fatal(sm, EX_IOERR, "reading the message: %s",
                           strerror(errno));
        if (n == 0) {
            if (line.len == 0)
                break;
            /* The last line had no newline: it gets one. */
            chunk[0] = '\n';
            n = 1;
            eof = 1;
        }
        while (pos < (size_t)n) {
            char *nl = memchr(chunk + pos, '\n', (size_t)n - pos);
            size_t take = nl ? (size_t)(nl - chunk) - pos : (size_t)n - pos;

            buf_append(&line, chunk + pos, take);
            pos += take;
            if (limit > 0 && msg->len + line.len > (unsigned long long)limit)
                sendmail_fatal(sm, EX_DATAERR,
                               "message file too big "
                               "(message_size_limit is "
                               "%lld bytes)",
                               limit);
            if (nl == NULL)
                break;
            pos++;
            if (line.len > 0 && line.data[line.len - 1] == '\r')
                line.len--;
            if (!sm->ignore_dots && line.len == 1 && line.data[0] == '.') {
                eof = 1;
                break;
            }
            if (!(first && line.len >= 5 &&
                  memcmp(line.data, "From ", 5) == 0)) {
                buf_append(msg, line.data ? line.data : "", line.len);
                buf_putc(msg, '\n');
            }
            first = 0;
            buf_reset(&line);
        }
    }
    buf_free(&line);
}

/* Add the addresses of one argument ("a@x", "A <a@x>", "a@x, b@y");
 * one that names none is a usage error. */
static void
sendmail_add_arg(struct sendmail *sm, const char *arg,
                 sendmail_rcpt_list_t *rcpts)
{
    if (sendmail_rcpt_parse(arg, strlen(arg), rcpts) == 0)
        sendmail_fatal(sm, EX_USAGE, "no address in the recipient \"%s\"", arg);
}

/* The envelope sender: -f, else the login name. */
static char *
sendmail_sender(struct sendmail *sm)
{
    sendmail_rcpt_list_t one;
    char *addr;

    if (sm->sender == NULL) {
        if (!sm->have_login)
            sendmail_fatal(sm, EX_USAGE,
                           "no login name for uid %lu: name "
                           "a sender with -f",
                           (unsigned long)sm->uid);
        return mem_strdup(sm->user);
    }
    memset(&one, 0, sizeof(one));
    sendmail_rcpt_parse(sm->sender, strlen(sm->sender), &one);
    if (one.n > 1)
        sendmail_fatal(sm, EX_USAGE, "more than one sender in \"%s\"",
                       sm->sender);
    /* "-f ''" and "-f '<>'" name the null sender; other text without
     * an address is a mistake. */
    if (one.n == 0 && sm->sender[strspn(sm->sender, " ")] != '\0' &&
        strstr(sm->sender, "<>") == NULL)
        sendmail_fatal(sm, EX_USAGE, "no address in the sender \"%s\"",
                       sm->sender);
    addr = mem_strdup(one.n ? one.v[0] : "");
    sendmail_rcpt_free(&one);
    if (!maildrop_text_ok(addr))
        sendmail_fatal(sm, EX_USAGE, "bad sender \"%s\"", sm->sender);
    return addr;
}

/* sendmail [-t] [recipients]: one message into maildrop. */
static int
sendmail_submit(struct sendmail *sm, char **argv, int argc)
{
    char name[MAILDROP_NAME_SIZE];
    sendmail_rcpt_list_t rcpts;
    struct timeval tv;
    maildrop_t md;
    buf_t msg;
    buf_t err;
    size_t i;

    memset(&rcpts, 0, sizeof(rcpts));
    for (i = 0; i < (size_t)argc; i++)
        sendmail_add_arg(sm, argv[i], &rcpts);
    if (!sm->extract && rcpts.n == 0)
        sendmail_fatal(sm, EX_USAGE, "no recipients specified");
    maildrop_init(&md);
    md.sender = sendmail_sender(sm);
    buf_init(&msg);
    sendmail_read_message(sm, &msg);
    if (sm->extract) {
        sendmail_rcpt_extract(&msg, &rcpts);
        if (rcpts.n == 0)
            sendmail_fatal(sm, EX_USAGE,
                           "no recipient addresses found in "
                           "the message header");
    }
    md.uid = (long)sm->uid;
    md.user = mem_strdup(sm->user);
    gettimeofday(&tv, NULL);
    md.time_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    if (sm->fullname)
        md.fullname = mem_strdup(sm->fullname);
    if (sm->envid)
        md.envid = mem_strdup(sm->envid);
    md.ret = sm->ret;
    md.body_8bit = sm->body_8bit;
    for (i = 0; i < rcpts.n; i++) {
        if (!maildrop_text_ok(rcpts.v[i]))
            sendmail_fatal(sm, EX_USAGE, "bad recipient address");
        maildrop_add_rcpt(&md, rcpts.v[i])->notify = sm->notify;
    }
    sendmail_rcpt_free(&rcpts);
    buf_init(&err);
    if (maildrop_write(sm->maildrop, &md, msg.data ? msg.data : "", msg.len,
                       name, &err) < 0)
        sendmail_fatal(sm, errno == ENOSPC ? EX_TEMPFAIL : EX_CANTCREAT, "%s%s",
                       err.data ? err.data : "",
                       sm->dropped ? " (sendmail gave up its setgid group "
                                     "because -C or TERN_CONFIG chose the "
                                     "configuration)"
                                   : "");
    buf_free(&err);
    buf_free(&msg);
    maildrop_clear(&md);
    return EX_OK;
}

/* Nonzero if a ternd holds the lock on data_directory/ternd.pid; its
 * pid in *pid (0 if the file could not be read). */
static int
sendmail_ternd_running(const struct sendmail *sm, long *pid)
{
    char *path =
        mem_printf("%s/ternd.pid", config_str(sm->cfg, P_DATA_DIRECTORY));
    char text[32];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int running = 0;

    free(path);
    *pid = 0;
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        running = 1;
        n = read(fd, text, sizeof(text) - 1);
        if (n > 0) {
            text[n] = '\0';
            *pid = strtol(text, NULL, 10);
        }
    }
    close(fd);
    return running;
}

/* -bi: check the alias files and have a running ternd read them. */
static int
sendmail_newaliases(struct sendmail *sm)
{
    char *one[2] = {NULL, NULL};
    char *const *files;
    aliases_t *a;
    buf_t err;
    size_t n;
    long pid;

    /* "sendmail -bi" is newaliases, and says so, as in Postfix. */
    sm->prog = "newaliases";
    if (sm->alias_file) {
        one[0] = (char *)sm->alias_file;
        files = one;
        n = 1;
    } else {
        files = config_list(sm->cfg, P_ALIAS_DATABASE, &n);
    }
    if (n == 0) {
        printf("%s: alias_database is empty: no alias files to check\n",
               sm->prog);
        return EX_OK;
    }
    buf_init(&err);
    a = aliases_open(files, &err);
    if (a == NULL) {
        char *save = NULL;
        char *line;

        for (line = strtok_r(err.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            fprintf(stderr, "%s: %s\n", sm->prog, line);
        buf_free(&err);
        return EX_DATAERR;
    }
    buf_free(&err);
    printf("%s: %zu aliases\n", sm->prog, aliases_count(a));
    aliases_unref(&a);
    /* ternd holds the aliases in memory: a reload makes it read them. */
    if (sendmail_ternd_running(sm, &pid) && pid > 0) {
        if (kill((pid_t)pid, SIGHUP) == 0)
            printf("%s: ternd (pid %ld) reloads them now\n", sm->prog, pid);
        else
            printf("%s: cannot signal ternd (pid %ld): %s; reload it to "
                   "use the new aliases\n",
                   sm->prog, pid, strerror(errno));
    }
    return EX_OK;
}

/* -N: "never", or a list of success, failure and delay. */
static int
sendmail_parse_notify(struct sendmail *sm, const char *arg)
{
    int bits = smtpd_parse_notify(arg);

    if (bits < 0)
        sendmail_fatal(sm, EX_USAGE,
                       "bad -N argument \"%s\": never, or a "
                       "list of success, failure and delay",
                       arg);
    return bits;
}

static void
sendmail_option_b(struct sendmail *sm, const char *arg)
{
    switch (arg[0] && !arg[1] ? arg[0] : '?') {
    case 'm':
        sm->mode = SM_MAIL;
        break;
    case 's':
        sm->mode = SM_SMTP;
        break;
    case 'p':
        sm->mode = SM_QUEUE;
        break;
    case 'i':
        sm->mode = SM_ALIASES;
        break;
    case 'd':
    case 'D':
        sendmail_fatal(sm, EX_UNAVAILABLE,
                       "-b%s is not supported: start "
                       "ternd instead",
                       arg);
    default:
        sendmail_fatal(sm, EX_USAGE, "-b%s is not supported", arg);
    }
}

/* -o options of Sendmail: -oi is -i, -oA names the alias file for -bi,
 * the others are accepted and ignored, as Postfix ignores them. */
static void
sendmail_option_o(struct sendmail *sm, const char *arg)
{
    if (strcmp(arg, "i") == 0)
        sm->ignore_dots = 1;
    else if (arg[0] == 'A' && arg[1])
        sm->alias_file = arg + 1;
}

static void
sendmail_options(struct sendmail *sm, int argc, char **argv)
{
    int c;

    /* "+": options end at the first recipient, as in Sendmail. */
    while ((c = getopt(argc, argv,
                       "+A:B:C:F:GIL:N:O:R:UV:X:b:f:h:imno:p:q::r:tv")) != -1) {
        switch (c) {
        case 'B':
            if (strcasecmp(optarg, "8BITMIME") == 0)
                sm->body_8bit = 1;
            else if (strcasecmp(optarg, "7BIT") != 0)
                sendmail_fatal(sm, EX_USAGE,
                               "bad -B argument \"%s\": 7BIT "
                               "or 8BITMIME",
                               optarg);
            break;
        case 'C':
            sm->config_given = optarg;
            break;
        case 'F':
            sm->fullname = optarg;
            if (!maildrop_text_ok(optarg))
                sendmail_fatal(sm, EX_USAGE, "bad -F argument");
            break;
        case 'I':
            sm->mode = SM_ALIASES;
            break;
        case 'N':
            sm->notify = sendmail_parse_notify(sm, optarg);
            break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                sm->ret = DSN_RET_FULL;
            else if (strcasecmp(optarg, "hdrs") == 0)
                sm->ret = DSN_RET_HDRS;
            else
                sendmail_fatal(sm, EX_USAGE,
                               "bad -R argument \"%s\": full "
                               "or hdrs",
                               optarg);
            break;
        case 'V':
            /* RFC 3461 section 4.4: at most 100 printable characters. */
            if (optarg[0] == '\0' || strlen(optarg) > 100 ||
                !maildrop_text_ok(optarg))
                sendmail_fatal(sm, EX_USAGE,
                               "bad -V argument: an envelope "
                               "ID of 1 to 100 printable "
                               "characters");
            sm->envid = optarg;
            break;
        case 'b':
            sendmail_option_b(sm, optarg);
            break;
        case 'f':
        case 'r':
            sm->sender = optarg;
            break;
        case 'i':
            sm->ignore_dots = 1;
            break;
        case 'o':
            sendmail_option_o(sm, optarg);
            break;
        case 'q':
            sm->mode = SM_FLUSH;
            break;
        case 't':
            sm->extract = 1;
            break;
        case 'A':
        case 'G':
        case 'L':
        case 'O':
        case 'U':
        case 'X':
        case 'h':
        case 'm':
        case 'n':
        case 'p':
        case 'v':
            /* Accepted and ignored, as Postfix's sendmail does. */
            break;
        default:
            sendmail_usage(sm);
        }
    }
}

int
main(int argc, char **argv)
{
    static struct sendmail sm; /* held until exit, and reachable then */
    const char *base;

    sendmail_sane_fds();
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    memset(&sm, 0, sizeof(sm));
    base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    sm.prog = "sendmail";
    sm.mode = SM_MAIL;
    if (strcmp(base, "mailq") == 0)
        return mailq_main(argc, argv);
    if (strcmp(base, "newaliases") == 0) {
        sm.prog = "newaliases";
        sm.mode = SM_ALIASES;
    }
    sm.privileged = getegid() != getgid() || geteuid() != getuid();
    log_set_role("sendmail");
    log_open(LOG_DEST_STDERR, "tern", NULL);
    sendmail_options(&sm, argc, argv);
    sendmail_load_config(&sm);
    sendmail_identify(&sm);
    switch (sm.mode) {
    case SM_QUEUE:
        /* -bp, as mailq: ask the running ternd over its admin API. */
        return mailq_print(sm.cfg, sm.prog, 0, stdout);
    case SM_FLUSH:
        return mailq_flush(sm.cfg, sm.prog, NULL);
    case SM_ALIASES:
        return sendmail_newaliases(&sm);
    case SM_SMTP: {
        struct sendmail_smtp_who who;

        sendmail_find_maildrop(&sm);
        who.uid = (long)sm.uid;
        who.user = sm.user;
        who.maildrop = sm.maildrop;
        return sendmail_smtp_run(sm.cfg, &who, 0, 1) < 0 ? EX_IOERR : EX_OK;
    }
    case SM_MAIL:
        break;
    }
    sendmail_find_maildrop(&sm);
    return sendmail_submit(&sm, argv + optind, argc - optind);
}
