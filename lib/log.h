/* SPDX-License-Identifier: ISC */
/*
 * log: one line per event, in Postfix's shape, so that pflogsumm,
 * fail2ban filters and log exporters read tern's logs unchanged:
 *
 *     Dec  3 19:44:46 host tern/smtpd[1234]: 0FtYp5x1Q2: client=...
 *
 * The part after the slash is the thread's role (smtpd, cleanup, qmgr,
 * local, ...), set once per thread with log_set_role().  Callers never
 * retype it.  Four levels that cannot be confused:
 *   msg_info   an event worth a line;
 *   msg_warn   something was wrong, we go on;
 *   msg_fatal  the environment is broken: log and exit(1);
 *   msg_panic  a bug in tern: log and abort().
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdarg.h>

enum log_dest {
    LOG_DEST_STDERR,
    LOG_DEST_SYSLOG,
    LOG_DEST_FILE,
};

/* Choose where lines go.  name is the syslog_name ("tern"); path is the
 * file for LOG_DEST_FILE.  Returns 0, or -1 with errno if the file
 * cannot be opened (the old destination stays). */
int log_open(enum log_dest dest, const char *name, const char *path);

/* Name this thread's role for the lines it logs ("smtpd", "qmgr"). */
void log_set_role(const char *role);

/* Raise verbosity: debug lines are logged when level > 0. */
void log_set_verbose(int level);
int log_verbose(void);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void msg_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
