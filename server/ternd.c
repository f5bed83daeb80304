/* SPDX-License-Identifier: ISC */
/*
 * ternd: the mail daemon.  main() reads the configuration, opens the
 * queue, starts the pools (cleanup, delivery, smtpd I/O), the acceptors
 * and the admin endpoint, and then waits for signals:
 *   SIGTERM, SIGINT  stop: listeners close, sessions get 421, cleanup
 *                    finishes what it holds, deliveries finish or go
 *                    back to the queue, the database is closed;
 *   SIGHUP           reload the configuration file.
 * Every thread is started with all signals blocked; only this thread
 * takes them, with sigwait.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/http.h"
#include "deliver/local_priv.h"
#include "deliver/qmgr.h"
#include "lib/aliases.h"
#include "lib/config.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/tls.h"
#include "queue/cleanup.h"
#include "queue/store.h"
#include "server/listen.h"
#include "server/pickup.h"
#include "server/smtpd_auth.h"
#include "server/smtpd_check.h"
#include "server/smtpd_session.h"

#define TERND_DEFAULT_CONFIG TERN_SYSCONFDIR "/tern/tern.conf"
#define TERND_MAX_OVERRIDES 256

struct ternd {
    const char *path;
    char *overrides[TERND_MAX_OVERRIDES];
    size_t noverrides;
    int foreground;
    int pidfd;
    store_t *store;
    cleanup_t *cleanup;
    qmgr_t *qmgr;
    smtpd_server_t *smtpd;
    listener_t **listeners;
    size_t nlisteners;
    http_server_t *http;
    pickup_t *pickup;
    int listening;
};

/* The SIGHUP handler and the admin API may reload at the same time. */
static pthread_mutex_t ternd_reload_lock = PTHREAD_MUTEX_INITIALIZER;

static int ternd_reload(struct ternd *t, buf_t *changed, buf_t *errs);

static void
ternd_usage(void)
{
    fprintf(stderr, "usage: ternd [-c FILE] [-o name=value]... [-f] [-n] "
                    "[-v]\n");
    exit(1);
}

/* The file to read: -c, else $TERN_CONFIG, else the default path if it
 * exists, else none (the embedded defaults). */
static const char *
ternd_config_path(const char *given)
{
    const char *env = getenv("TERN_CONFIG");

    if (given)
        return given;
    if (env && *env)
        return env;
    if (access(TERND_DEFAULT_CONFIG, F_OK) == 0)
        return TERND_DEFAULT_CONFIG;
    return NULL;
}

/* Print each line of errs to stderr. */
static void
ternd_print_errors(const buf_t *errs)
{
    fprintf(stderr, "%s", errs->data ? errs->data : "");
}

/* Log each line of errs as a warning. */
static void
ternd_log_errors(const buf_t *errs)
{
    char *copy = mem_strdup(errs->data ? errs->data : "");
    char *save = NULL;
    char *line;

    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        msg_warn("%s", line);
    free(copy);
}

static void
ternd_mkdir(const char *dir)
{
    char *path = mem_strdup(dir);
    char *p;

    for (p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            msg_fatal("cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        msg_fatal("cannot create %s: %s", path, strerror(errno));
    free(path);
}

/* One ternd per queue: hold a lock on a pid file in data_directory. */
static void
ternd_lock_pidfile(struct ternd *t, const config_t *cfg)
{
    char *path = mem_printf("%s/ternd.pid", config_str(cfg, P_DATA_DIRECTORY));
    char pid[32];
    int n;

    t->pidfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->pidfd < 0)
        msg_fatal("cannot open %s: %s", path, strerror(errno));
    if (flock(t->pidfd, LOCK_EX | LOCK_NB) < 0)
        msg_fatal("%s is locked: another ternd is running with this "
                  "data_directory", path);
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(t->pidfd, 0) < 0 || write(t->pidfd, pid, (size_t)n) != n)
        msg_warn("cannot write %s: %s", path, strerror(errno));
    free(path);
}

/*
 * Started as root, ternd gives the queue and data directories to
 * mail_owner, binds its listeners, and then becomes mail_owner for good
 * (supplementary groups, group, user, in that order, each checked)
 * before it opens the queue or accepts mail.  It never runs as root
 * past this point: if root cannot be dropped, it stops.
 */
static void
ternd_drop_privileges(const config_t *cfg)
{
    const char *owner = config_str(cfg, P_MAIL_OWNER);
    const char *dirs[3];
    struct passwd *pw;
    size_t i;

    if (geteuid() != 0)
        return;
    pw = getpwnam(owner);
    if (pw == NULL)
        msg_fatal("mail_owner %s: no such user; create it (useradd "
                  "--system %s) or set mail_owner", owner, owner);
    if (pw->pw_uid == 0)
        msg_fatal("mail_owner %s has user ID 0; choose an unprivileged "
                  "account", owner);
    dirs[0] = config_str(cfg, P_QUEUE_DIRECTORY);
    dirs[1] = config_str(cfg, P_DATA_DIRECTORY);
    /* Mailboxes below the spool belong to mail_owner too: local
     * delivery writes them as mail_owner. */
    dirs[2] = config_str(cfg, P_MAIL_SPOOL_DIRECTORY);
    ternd_mkdir(dirs[2]);
    for (i = 0; i < 3; i++)
        if (chown(dirs[i], pw->pw_uid, pw->pw_gid) < 0)
            msg_fatal("cannot give %s to %s: %s", dirs[i], owner,
                      strerror(errno));
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0)
        msg_fatal("cannot become %s: %s", owner, strerror(errno));
    if (getuid() == 0 || geteuid() == 0 || setuid(0) == 0)
        msg_fatal("still root after dropping privileges to %s", owner);
    msg_info("running as %s (uid %ld)", owner, (long)pw->pw_uid);
}

/* Allow the descriptors the connection limit needs, up to the hard
 * limit, and say so when that is not enough. */
static void
ternd_raise_nofile(const config_t *cfg)
{
    rlim_t need = (rlim_t)config_num(cfg, P_SMTPD_CONNECTION_LIMIT) + 256;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        msg_warn("cannot raise the open file limit to %llu: %s",
                 (unsigned long long)rl.rlim_cur, strerror(errno));
    else if (rl.rlim_cur < need)
        msg_warn("open file limit %llu (the hard limit) is below the %llu "
                 "that smtpd_connection_limit needs; raise it (ulimit -Hn) "
                 "or lower smtpd_connection_limit",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static void
ternd_setup_log(const config_t *cfg, int foreground)
{
    const char *file = config_str(cfg, P_MAILLOG_FILE);
    const char *name = config_str(cfg, P_SYSLOG_NAME);

    if (file[0] != '\0') {
        if (log_open(LOG_DEST_FILE, name, file) < 0)
            msg_fatal("cannot open maillog_file %s: %s", file,
                      strerror(errno));
    } else {
        log_open(foreground ? LOG_DEST_STDERR : LOG_DEST_SYSLOG, name, NULL);
    }
}

static void
ternd_accept(void *arg, int fd, const struct sockaddr *sa, socklen_t salen,
             unsigned flags)
{
    smtpd_server_accept(arg, fd, sa, salen, flags);
}

/* The options of smtp_listen items, which lib/config leaves to us. */
static void
ternd_check_listen(const config_t *cfg, enum param_id id, buf_t *err)
{
    char *const *items = config_list(cfg, id, NULL);
    char addr[300];
    unsigned flags;
    const char *why;

    for (; items && *items; items++)
        if (listen_parse(*items, addr, sizeof(addr), &flags, &why) < 0)
            buf_printf(err, "\"%s\": %s\n", *items, why);
}

/* A certificate that cannot be loaded is an error with file:line. */
static void
ternd_check_tls(const config_t *cfg, enum param_id id, buf_t *err)
{
    const char *cert = config_str(cfg, P_SMTPD_TLS_CERT_FILE);
    const char *level = config_str(cfg, P_SMTPD_TLS_SECURITY_LEVEL);
    tls_ctx_t *ctx;

    if (id == P_SMTPD_TLS_SECURITY_LEVEL) {
        if (strcmp(level, "") != 0 && strcmp(level, "none") != 0 &&
            strcmp(level, "may") != 0 && strcmp(level, "encrypt") != 0)
            buf_printf(err, "\"%s\" is not none, may or encrypt\n", level);
        else if (strcmp(level, "encrypt") == 0 && cert[0] == '\0')
            buf_printf(err, "encrypt needs smtpd_tls_cert_file\n");
        return;
    }
    if (cert[0] == '\0')
        return;
    ctx = tls_server_ctx_new(cert, config_str(cfg, P_SMTPD_TLS_KEY_FILE), err);
    tls_ctx_unref(&ctx);
}

/* The AUTH password file must be readable and well formed. */
static void
ternd_check_sasl(const config_t *cfg, enum param_id id, buf_t *err)
{
    smtpd_auth_db_t *db;

    if (!config_num(cfg, P_SMTPD_SASL_AUTH_ENABLE))
        return;
    if (strcmp(config_str(cfg, P_SMTPD_SASL_TYPE), "passwd") != 0) {
        buf_printf(err, "smtpd_sasl_type \"%s\" is not supported (passwd)\n",
                   config_str(cfg, P_SMTPD_SASL_TYPE));
        return;
    }
    if (config_str(cfg, P_SMTPD_SASL_PATH)[0] == '\0') {
        buf_printf(err, "smtpd_sasl_auth_enable = yes needs smtpd_sasl_path "
                        "(a password file)\n");
        return;
    }
    db = smtpd_auth_db_open(config_str(cfg, P_SMTPD_SASL_PATH), err);
    smtpd_auth_db_free(&db);
}

static void
ternd_notify(void *arg)
{
    qmgr_wakeup(arg);
}

/* What the admin API may call back: the reload SIGHUP runs, the number
 * of SMTP sessions, and whether the listeners are up. */
static int
ternd_api_reload(void *arg, buf_t *changed, buf_t *errs)
{
    return ternd_reload(arg, changed, errs);
}

static long
ternd_api_sessions(void *arg)
{
    struct ternd *t = arg;

    return t->smtpd ? smtpd_server_sessions(t->smtpd) : 0;
}

static int
ternd_api_ready(void *arg)
{
    struct ternd *t = arg;

    return __atomic_load_n(&t->listening, __ATOMIC_ACQUIRE);
}

/* Start everything that serves mail; fatal on any failure. */
static void
ternd_start(struct ternd *t, config_t *cfg)
{
    char *const *addrs;
    size_t n;
    size_t i;
    char *err = NULL;
    char *dbdir;

    /* Bind first: ports below 1024 need root, which goes next. */
    addrs = config_list(cfg, P_SMTP_LISTEN, &n);
    t->listeners = mem_calloc(n + 1, sizeof(listener_t *));
    for (i = 0; i < n; i++) {
        t->listeners[i] = listen_open(addrs[i], &err);
        if (t->listeners[i] == NULL)
            msg_fatal("smtp_listen %s", err);
        t->nlisteners++;
    }
    /* The one process that keeps root, while there is one thread. */
    local_priv_start(cfg);
    ternd_drop_privileges(cfg);
    ternd_lock_pidfile(t, cfg);
    dbdir = mem_printf("%s/db", config_str(cfg, P_QUEUE_DIRECTORY));
    t->store = store_open(dbdir, &err);
    if (t->store == NULL)
        msg_fatal("cannot open the queue in %s: %s", dbdir, err);
    free(dbdir);
    t->qmgr = qmgr_start(t->store, (int)config_num(cfg, P_DELIVERY_THREADS));
    t->cleanup = cleanup_new(t->store, (int)config_num(cfg, P_CLEANUP_THREADS),
                             ternd_notify, t->qmgr);
    qmgr_set_cleanup(t->qmgr, t->cleanup);
    t->smtpd = smtpd_server_new((int)config_num(cfg, P_SMTPD_IO_THREADS),
                                t->cleanup);
    t->pickup = pickup_start(config_str(cfg, P_QUEUE_DIRECTORY), t->cleanup);
    if (config_list(cfg, P_ADMIN_LISTEN, &n) && n > 0) {
        struct http_hooks hooks = {t->store, t->qmgr, t->cleanup,
                                   ternd_api_reload, ternd_api_sessions,
                                   ternd_api_ready, t};

        t->http = http_start(cfg, &hooks, &err);
        if (t->http == NULL)
            msg_fatal("admin_listen %s", err);
    }
    for (i = 0; i < t->nlisteners; i++)
        listen_start(t->listeners[i], ternd_accept, t->smtpd);
    __atomic_store_n(&t->listening, 1, __ATOMIC_RELEASE);
}

static void
ternd_stop(struct ternd *t)
{
    size_t i;

    /* The API stops taking work first: its handlers use the queue. */
    __atomic_store_n(&t->listening, 0, __ATOMIC_RELEASE);
    http_quiesce(t->http);
    for (i = 0; i < t->nlisteners; i++)
        listen_close(&t->listeners[i]);
    free(t->listeners);
    smtpd_server_shutdown(t->smtpd);
    pickup_stop(&t->pickup);
    qmgr_set_cleanup(t->qmgr, NULL);
    cleanup_stop(&t->cleanup);
    qmgr_stop(&t->qmgr);
    http_stop(&t->http);
    smtpd_server_free(&t->smtpd);
    store_close(&t->store);
}

/* Re-read the file; a bad one leaves the running config alone.  The
 * admin API's reload calls this same function. */
static int
ternd_reload(struct ternd *t, buf_t *changed, buf_t *errs)
{
    config_t *old;
    config_t *cfg;
    aliases_t *aliases;

    pthread_mutex_lock(&ternd_reload_lock);
    old = config_current();
    cfg = config_load(t->path, t->overrides, t->noverrides, errs);
    if (cfg == NULL) {
        msg_warn("reload failed; the configuration in force is unchanged");
        ternd_log_errors(errs);
        config_unref(&old);
        pthread_mutex_unlock(&ternd_reload_lock);
        return -1;
    }
    /* The alias files are part of the configuration: a bad one refuses
     * the reload, with its FILE:LINE. */
    aliases = aliases_open(config_list(cfg, P_ALIAS_MAPS, NULL), errs);
    if (aliases == NULL) {
        msg_warn("reload failed; the configuration in force is unchanged");
        ternd_log_errors(errs);
        config_unref(&cfg);
        config_unref(&old);
        pthread_mutex_unlock(&ternd_reload_lock);
        return -1;
    }
    config_diff(old, cfg, changed);
    if (strcmp(config_str(old, P_SMTP_LISTEN), config_str(cfg, P_SMTP_LISTEN))
        || strcmp(config_str(old, P_QUEUE_DIRECTORY),
                  config_str(cfg, P_QUEUE_DIRECTORY)))
        msg_warn("smtp_listen or queue_directory changed: restart ternd to "
                 "apply that");
    dns_set_server(config_str(cfg, P_DNS_SERVER));
    config_set_current(cfg);
    aliases_set_current(aliases);
    config_unref(&old);
    /* Reopen the log file, so that a rotated log is let go. */
    ternd_setup_log(cfg, t->foreground);
    msg_info("reload -- version %s, configuration %s", PACKAGE_VERSION,
             t->path ? t->path : "(embedded defaults)");
    pthread_mutex_unlock(&ternd_reload_lock);
    return 0;
}

/* Read the alias files of alias_maps and put them in force; -1 after
 * printing their errors. */
static int
ternd_open_aliases(const config_t *cfg)
{
    aliases_t *aliases;
    buf_t errs;

    buf_init(&errs);
    aliases = aliases_open(config_list(cfg, P_ALIAS_MAPS, NULL), &errs);
    if (aliases == NULL)
        ternd_print_errors(&errs);
    buf_free(&errs);
    if (aliases == NULL)
        return -1;
    aliases_set_current(aliases);
    return 0;
}

/* Detach from the terminal, as a daemon started without -f does. */
static void
ternd_daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        msg_fatal("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

int
main(int argc, char **argv)
{
    struct ternd t;
    const char *given = NULL;
    int print_changed = 0;
    int verbose = 0;
    config_t *cfg;
    buf_t errs;
    sigset_t sigs;
    int c;

    memset(&t, 0, sizeof(t));
    log_set_role("master");
    while ((c = getopt(argc, argv, "c:o:fnv")) != -1) {
        switch (c) {
        case 'c':
            given = optarg;
            break;
        case 'o':
            if (t.noverrides == TERND_MAX_OVERRIDES)
                msg_fatal("too many -o options");
            t.overrides[t.noverrides++] = optarg;
            break;
        case 'f':
            t.foreground = 1;
            break;
        case 'n':
            print_changed = 1;
            break;
        case 'v':
            verbose++;
            break;
        default:
            ternd_usage();
        }
    }
    if (optind != argc)
        ternd_usage();
    log_set_verbose(verbose);
    smtpd_check_register();
    cleanup_register();
    qmgr_register();
    config_register_check(P_SMTP_LISTEN, ternd_check_listen);
    config_register_check(P_SMTPD_TLS_SECURITY_LEVEL, ternd_check_tls);
    config_register_check(P_SMTPD_TLS_CERT_FILE, ternd_check_tls);
    config_register_check(P_SMTPD_SASL_PATH, ternd_check_sasl);
    t.path = ternd_config_path(given);
    buf_init(&errs);
    cfg = config_load(t.path, t.overrides, t.noverrides, &errs);
    if (cfg == NULL) {
        ternd_print_errors(&errs);
        buf_free(&errs);
        return 1;
    }
    buf_free(&errs);
    if (print_changed) {
        config_print_changed(cfg, stdout);
        config_unref(&cfg);
        return 0;
    }
    if (ternd_open_aliases(cfg) < 0) {
        config_unref(&cfg);
        return 1;
    }
    ternd_mkdir(config_str(cfg, P_QUEUE_DIRECTORY));
    ternd_mkdir(config_str(cfg, P_DATA_DIRECTORY));
    if (!t.foreground)
        ternd_daemonize();
    ternd_setup_log(cfg, t.foreground);
    ternd_raise_nofile(cfg);

    /* Block the signals before any thread exists, so all inherit it. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    dns_set_server(config_str(cfg, P_DNS_SERVER));
    config_set_current(config_ref(cfg));
    ternd_start(&t, cfg);
    msg_info("daemon started -- version %s, configuration %s",
             PACKAGE_VERSION, t.path ? t.path : "(embedded defaults)");
    config_unref(&cfg);
    for (;;) {
        int sig;

        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            buf_t changed;

            buf_init(&changed);
            buf_init(&errs);
            ternd_reload(&t, &changed, &errs);
            buf_free(&changed);
            buf_free(&errs);
            continue;
        }
        msg_info("terminating on signal %d", sig);
        break;
    }
    ternd_stop(&t);
    config_set_current(NULL);
    msg_info("stopped");
    return 0;
}
