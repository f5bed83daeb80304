/* SPDX-License-Identifier: ISC */
/*
 * log: formatting and output of log lines.  Each line is written with
 * one write(2) to a file opened O_APPEND, so lines from many threads
 * never interleave.  syslog(3) is thread-safe on its own.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 4096

static enum log_dest log_dest = LOG_DEST_STDERR;
static char log_name[64] = "tern";
static int log_fd = 2;
static int log_verbosity;
static char log_host[256];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread const char *log_role = "master";

int
log_open(enum log_dest dest, const char *name, const char *path)
{
    int fd = -1;

    if (dest == LOG_DEST_FILE) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    pthread_mutex_lock(&log_lock);
    if (log_dest == LOG_DEST_FILE && log_fd > 2)
        close(log_fd);
    if (log_dest == LOG_DEST_SYSLOG)
        closelog();
    log_dest = dest;
    snprintf(log_name, sizeof(log_name), "%s", name);
    gethostname(log_host, sizeof(log_host) - 1);
    if (strchr(log_host, '.'))
        *strchr(log_host, '.') = '\0';
    log_fd = dest == LOG_DEST_FILE ? fd : 2;
    if (dest == LOG_DEST_SYSLOG)
        openlog(log_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void
log_set_role(const char *role)
{
    log_role = role;
}

void
log_set_verbose(int level)
{
    log_verbosity = level;
}

int
log_verbose(void)
{
    return log_verbosity;
}

static void
log_emit(int prio, const char *prefix, const char *fmt, va_list ap)
{
    char text[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 512];
    char stamp[32];
    struct tm tm;
    time_t now;
    int n;
    int saved = errno;

    vsnprintf(text, sizeof(text), fmt, ap);
    now = time(NULL);
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    /* log_open may switch the destination (SIGHUP): read it, and write,
     * under the same lock, so no line goes to a closed descriptor. */
    pthread_mutex_lock(&log_lock);
    if (log_dest == LOG_DEST_SYSLOG) {
        syslog(prio, "%s%s", prefix, text);
        pthread_mutex_unlock(&log_lock);
        errno = saved;
        return;
    }
    if (log_host[0] == '\0')
        gethostname(log_host, sizeof(log_host) - 1);
    n = snprintf(line, sizeof(line), "%s %s %s/%s[%ld]: %s%s\n", stamp,
                 log_host, log_name, log_role, (long)getpid(), prefix, text);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (write(log_fd, line, (size_t)n) < 0) {
        /* Nowhere left to report it. */
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}

void
msg_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_INFO, "", fmt, ap);
    va_end(ap);
}

void
msg_debug(const char *fmt, ...)
{
    va_list ap;

    if (log_verbosity <= 0)
        return;
    va_start(ap, fmt);
    log_emit(LOG_DEBUG, "", fmt, ap);
    va_end(ap);
}

void
msg_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_WARNING, "warning: ", fmt, ap);
    va_end(ap);
}

void
msg_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

void
msg_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}
