/* SPDX-License-Identifier: ISC */
/*
 * sendmail_smtp: the SMTP server of "sendmail -bs".
 *
 * Flow: programs that speak SMTP to a local pipe rather than a socket
 * (some MUAs, and scripts written for Sendmail's and Postfix's -bs) run
 * "sendmail -bs" and hold an RFC 5321 dialogue on its standard input and
 * output.  Each message accepted becomes one maildrop file, written
 * whole before the 250 reply, so ternd need not be running; pickup
 * takes it from there as it takes any sendmail file.
 *
 * The server is minimal on purpose: HELO, EHLO, MAIL, RCPT, DATA, RSET,
 * NOOP, VRFY, HELP and QUIT, with the SIZE, 8BITMIME, DSN, PIPELINING
 * and ENHANCEDSTATUSCODES extensions.  It parses commands with the same
 * parser as ternd's smtpd, and runs one command at a time from a table,
 * driven by an explicit state.  Replies are flushed before the next
 * command is read only when no more input is waiting, which is what
 * PIPELINING asks of a server (RFC 2920 section 3.2).
 *
 * Guarantees: "250 ... queued" is sent only after maildrop_write() made
 * the file durable.  A crash before that leaves at most a temporary file
 * that pickup ignores and removes when it is old; the client, without a
 * 250, still holds the message.
 *
 * Threads: one; the process is this dialogue.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "server/maildrop.h"
#include "server/sendmail_smtp.h"
#include "server/smtpd_parse.h"

/* RFC 5321 section 4.5.3.1.4: 512 octets for a command line; a text
 * line of the message may be longer, up to line_length_limit. */
#define SENDMAIL_SMTP_CMD_MAX 512
#define SENDMAIL_SMTP_READ 65536

enum sendmail_smtp_state {
    SS_READY, /* no transaction */
    SS_MAIL,  /* MAIL given */
    SS_RCPT,  /* at least one recipient */
    SS_QUIT,  /* QUIT given or input ended */
};

struct sendmail_smtp {
    const config_t *cfg;
    const struct sendmail_smtp_who *who;
    int in;
    int out;
    int write_failed;
    int eof;
    enum sendmail_smtp_state state;
    int esmtp;
    buf_t rbuf; /* bytes read and not yet consumed */
    buf_t wbuf; /* replies not yet written */
    maildrop_t md;
};

struct sendmail_smtp_cmd {
    enum smtp_verb verb;
    void (*fn)(struct sendmail_smtp *s, char *arg);
};

static const char *
sendmail_smtp_state_name(enum sendmail_smtp_state st)
{
    switch (st) {
    case SS_READY:
        return "READY";
    case SS_MAIL:
        return "MAIL";
    case SS_RCPT:
        return "RCPT";
    case SS_QUIT:
        return "QUIT";
    }
    return "?";
}

static void sendmail_smtp_reply(struct sendmail_smtp *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sendmail_smtp_reply(struct sendmail_smtp *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&s->wbuf, fmt, ap);
    va_end(ap);
    buf_puts(&s->wbuf, "\r\n");
}

static void
sendmail_smtp_flush(struct sendmail_smtp *s)
{
    size_t off = 0;

    while (off < s->wbuf.len && !s->write_failed) {
        ssize_t n = write(s->out, s->wbuf.data + off, s->wbuf.len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s->write_failed = 1;
        else
            off += (size_t)n;
    }
    buf_reset(&s->wbuf);
}

/* Nonzero if input is waiting to be read without blocking. */
static int
sendmail_smtp_pending(struct sendmail_smtp *s)
{
    struct pollfd pfd = {.fd = s->in, .events = POLLIN};

    return s->rbuf.len > 0 || poll(&pfd, 1, 0) > 0;
}

/* The next line into line (without its CRLF or LF).  Returns 1, 0 at
 * the end of input, or -1 for a line longer than max (which is then
 * skipped to its end). */
static int
sendmail_smtp_getline(struct sendmail_smtp *s, buf_t *line, size_t max)
{
    int too_long = 0;

    buf_reset(line);
    for (;;) {
        char *nl = s->rbuf.len ? memchr(s->rbuf.data, '\n', s->rbuf.len) : NULL;
        size_t take = nl ? (size_t)(nl - s->rbuf.data) : s->rbuf.len;
        char chunk[SENDMAIL_SMTP_READ];
        ssize_t n;

        if (!too_long && line->len + take > max)
            too_long = 1;
        if (!too_long)
            buf_append(line, s->rbuf.data, take);
        if (nl) {
            buf_consume(&s->rbuf, take + 1);
            if (line->len > 0 && line->data[line->len - 1] == '\r')
                line->data[--line->len] = '\0';
            return too_long ? -1 : 1;
        }
        buf_reset(&s->rbuf);
        if (!sendmail_smtp_pending(s))
            sendmail_smtp_flush(s);
        n = read(s->in, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->eof = 1;
            return 0;
        }
        buf_append(&s->rbuf, chunk, (size_t)n);
    }
}

static void
sendmail_smtp_reset(struct sendmail_smtp *s)
{
    maildrop_clear(&s->md);
    s->state = SS_READY;
}

static void
sendmail_smtp_helo(struct sendmail_smtp *s, char *arg)
{
    if (*arg == '\0') {
        sendmail_smtp_reply(s, "501 5.5.4 Syntax: HELO hostname");
        return;
    }
    sendmail_smtp_reset(s);
    s->esmtp = 0;
    sendmail_smtp_reply(s, "250 %s", config_str(s->cfg, P_MYHOSTNAME));
}

static void
sendmail_smtp_ehlo(struct sendmail_smtp *s, char *arg)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);

    if (*arg == '\0') {
        sendmail_smtp_reply(s, "501 5.5.4 Syntax: EHLO hostname");
        return;
    }
    sendmail_smtp_reset(s);
    s->esmtp = 1;
    sendmail_smtp_reply(s, "250-%s", config_str(s->cfg, P_MYHOSTNAME));
    sendmail_smtp_reply(s, "250-PIPELINING");
    if (limit > 0)
        sendmail_smtp_reply(s, "250-SIZE %lld", limit);
    else
        sendmail_smtp_reply(s, "250-SIZE");
    sendmail_smtp_reply(s, "250-8BITMIME");
    sendmail_smtp_reply(s, "250-DSN");
    sendmail_smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* The ESMTP parameters of MAIL; -1 after a reply that refuses them. */
static int
sendmail_smtp_mail_params(struct sendmail_smtp *s, struct smtp_path *path)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);
    size_t i;

    for (i = 0; i < path->nparams; i++) {
        struct smtp_param *p = &path->params[i];
        const char *v = p->value;

        if (strcmp(p->key, "SIZE") == 0 && v) {
            char *end;
            unsigned long long size;

            errno = 0;
            size = strtoull(v, &end, 10);
            if (*v < '0' || *v > '9' || *end != '\0' || errno != 0) {
                sendmail_smtp_reply(s, "501 5.5.4 Bad message size syntax");
                return -1;
            }
            if (limit > 0 && size > (unsigned long long)limit) {
                sendmail_smtp_reply(s, "552 5.3.4 Message size exceeds "
                                       "fixed limit");
                return -1;
            }
        } else if (strcmp(p->key, "BODY") == 0 && v &&
                   (strcasecmp(v, "7BIT") == 0 ||
                    strcasecmp(v, "8BITMIME") == 0)) {
            s->md.body_8bit = strcasecmp(v, "8BITMIME") == 0;
        } else if (strcmp(p->key, "RET") == 0 && v &&
                   s->md.ret == DSN_RET_DEFAULT &&
                   (strcasecmp(v, "FULL") == 0 || strcasecmp(v, "HDRS") == 0)) {
            s->md.ret =
                strcasecmp(v, "FULL") == 0 ? DSN_RET_FULL : DSN_RET_HDRS;
        } else if (strcmp(p->key, "ENVID") == 0 && v && !s->md.envid) {
            buf_t id;

            /* RFC 3461 section 4.4: at most 100 characters of xtext. */
            buf_init(&id);
            if (strlen(v) > 100 || smtpd_parse_xtext(v, &id) < 0 ||
                id.len == 0 || !maildrop_text_ok(id.data)) {
                buf_free(&id);
                sendmail_smtp_reply(s, "501 5.5.4 Bad ENVID parameter "
                                       "syntax");
                return -1;
            }
            s->md.envid = buf_steal(&id);
        } else {
            sendmail_smtp_reply(s, "555 5.5.4 Unsupported option: %s", p->key);
            return -1;
        }
    }
    return 0;
}

static void
sendmail_smtp_mail(struct sendmail_smtp *s, char *arg)
{
    struct smtp_path path;
    const char *why;

    if (s->state != SS_READY) {
        sendmail_smtp_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (smtpd_parse_path(arg, "FROM:", 1, &path, &why) < 0) {
        sendmail_smtp_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> (%s)",
                            why);
        return;
    }
    if (path.nparams > 0 && !s->esmtp) {
        sendmail_smtp_reply(s, "555 5.5.4 Unsupported option: %s",
                            path.params[0].key);
        return;
    }
    if (!maildrop_text_ok(path.addr)) {
        sendmail_smtp_reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    maildrop_clear(&s->md);
    if (sendmail_smtp_mail_params(s, &path) < 0) {
        maildrop_clear(&s->md);
        return;
    }
    s->md.uid = s->who->uid;
    maildrop_set(&s->md.user, s->who->user);
    maildrop_set(&s->md.sender, path.addr);
    s->state = SS_MAIL;
    sendmail_smtp_reply(s, "250 2.1.0 Ok");
}

static void
sendmail_smtp_rcpt(struct sendmail_smtp *s, char *arg)
{
    struct smtp_path path;
    maildrop_rcpt_t *r;
    const char *why;
    char *orcpt = NULL;
    int notify = 0;
    size_t i;

    if (s->state != SS_MAIL && s->state != SS_RCPT) {
        sendmail_smtp_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (smtpd_parse_path(arg, "TO:", 0, &path, &why) < 0) {
        sendmail_smtp_reply(s, "501 5.5.4 Syntax: RCPT TO:<address> (%s)", why);
        return;
    }
    if (path.nparams > 0 && !s->esmtp) {
        sendmail_smtp_reply(s, "555 5.5.4 Unsupported option: %s",
                            path.params[0].key);
        return;
    }
    if (!maildrop_text_ok(path.addr)) {
        sendmail_smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    for (i = 0; i < path.nparams; i++) {
        struct smtp_param *p = &path.params[i];

        if (strcmp(p->key, "NOTIFY") == 0 && p->value && notify == 0) {
            notify = smtpd_parse_notify(p->value);
            if (notify < 0) {
                sendmail_smtp_reply(s, "501 5.5.4 Bad NOTIFY parameter "
                                       "syntax");
                free(orcpt);
                return;
            }
        } else if (strcmp(p->key, "ORCPT") == 0 && p->value && !orcpt) {
            const char *semi = strchr(p->value, ';');
            buf_t addr;

            buf_init(&addr);
            if (semi == NULL || semi == p->value ||
                smtpd_parse_xtext(semi + 1, &addr) < 0 || addr.len == 0 ||
                !maildrop_text_ok(addr.data)) {
                buf_free(&addr);
                sendmail_smtp_reply(s, "501 5.5.4 Bad ORCPT parameter "
                                       "syntax");
                return;
            }
            orcpt = mem_printf("%.*s;%s", (int)(semi - p->value), p->value,
                               addr.data);
            buf_free(&addr);
        } else {
            sendmail_smtp_reply(s, "555 5.5.4 Unsupported option: %s", p->key);
            free(orcpt);
            return;
        }
    }
    if (s->md.nrcpt >= (size_t)config_num(s->cfg, P_SMTPD_RECIPIENT_LIMIT)) {
        sendmail_smtp_reply(s, "452 4.5.3 Error: too many recipients");
        free(orcpt);
        return;
    }
    r = maildrop_add_rcpt(&s->md, path.addr);
    r->notify = notify;
    r->orcpt = orcpt;
    s->state = SS_RCPT;
    sendmail_smtp_reply(s, "250 2.1.5 Ok");
}

/* Read the message up to its lone "." (RFC 5321 section 4.5.2: a line
 * that starts with a dot has it doubled, and loses one here).  Returns
 * 1 at the end of the data, 0 at the end of input. */
static int
sendmail_smtp_data_read(struct sendmail_smtp *s, buf_t *msg, int *too_big)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);
    size_t max = (size_t)config_num(s->cfg, P_LINE_LENGTH_LIMIT);
    buf_t line;
    int rc;

    buf_init(&line);
    if (max < 1000)
        max = 1000;
    for (;;) {
        rc = sendmail_smtp_getline(s, &line, 64 * max);
        if (rc == 0)
            break;
        if (rc < 0) {
            /* Longer than any line we take: the message is refused,
             * but the data is read to its end first. */
            *too_big = 1;
            continue;
        }
        if (line.len == 1 && line.data[0] == '.') {
            rc = 1;
            break;
        }
        if (*too_big)
            continue;
        if (line.len > 0 && line.data[0] == '.')
            buf_append(msg, line.data + 1, line.len - 1);
        else
            buf_append(msg, line.data, line.len);
        buf_putc(msg, '\n');
        if (limit > 0 && msg->len > (unsigned long long)limit) {
            *too_big = 1;
            buf_free(msg);
        }
    }
    buf_free(&line);
    return rc;
}

static void
sendmail_smtp_data(struct sendmail_smtp *s, char *arg)
{
    char name[MAILDROP_NAME_SIZE];
    struct timeval tv;
    buf_t msg;
    buf_t err;
    int too_big = 0;

    if (*arg != '\0') {
        sendmail_smtp_reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (s->state == SS_MAIL) {
        sendmail_smtp_reply(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    if (s->state != SS_RCPT) {
        sendmail_smtp_reply(s, "503 5.5.1 Error: need RCPT command");
        return;
    }
    sendmail_smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    sendmail_smtp_flush(s);
    buf_init(&msg);
    buf_init(&err);
    if (sendmail_smtp_data_read(s, &msg, &too_big) == 0) {
        /* The client went away in the middle: nothing is queued. */
        s->state = SS_QUIT;
    } else if (too_big) {
        sendmail_smtp_reply(s, "552 5.3.4 Error: message file too big");
        sendmail_smtp_reset(s);
    } else {
        gettimeofday(&tv, NULL);
        s->md.time_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
        if (maildrop_write(s->who->maildrop, &s->md, msg.data ? msg.data : "",
                           msg.len, name, &err) < 0) {
            fprintf(stderr, "sendmail: %s\n", err.data ? err.data : "");
            sendmail_smtp_reply(s, "451 4.3.0 Error: queue file write "
                                   "error");
        } else {
            sendmail_smtp_reply(s, "250 2.0.0 Ok: queued as %s", name);
        }
        sendmail_smtp_reset(s);
    }
    buf_free(&msg);
    buf_free(&err);
}

static void
sendmail_smtp_rset(struct sendmail_smtp *s, char *arg)
{
    sendmail_smtp_reset(s);
    sendmail_smtp_reply(s, "250 2.0.0 Ok");
}

static void
sendmail_smtp_noop(struct sendmail_smtp *s, char *arg)
{
    sendmail_smtp_reply(s, "250 2.0.0 Ok");
}

static void
sendmail_smtp_vrfy(struct sendmail_smtp *s, char *arg)
{
    /* RFC 5321 section 3.5.3: neither verified nor denied. */
    sendmail_smtp_reply(s, "252 2.0.0 Send mail to find out");
}

static void
sendmail_smtp_help(struct sendmail_smtp *s, char *arg)
{
    sendmail_smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
                           "RSET NOOP VRFY HELP QUIT");
}

static void
sendmail_smtp_quit(struct sendmail_smtp *s, char *arg)
{
    sendmail_smtp_reply(s, "221 2.0.0 Bye");
    s->state = SS_QUIT;
}

static const struct sendmail_smtp_cmd sendmail_smtp_cmds[] = {
    {SMTP_HELO, sendmail_smtp_helo}, {SMTP_EHLO, sendmail_smtp_ehlo},
    {SMTP_MAIL, sendmail_smtp_mail}, {SMTP_RCPT, sendmail_smtp_rcpt},
    {SMTP_DATA, sendmail_smtp_data}, {SMTP_RSET, sendmail_smtp_rset},
    {SMTP_NOOP, sendmail_smtp_noop}, {SMTP_VRFY, sendmail_smtp_vrfy},
    {SMTP_HELP, sendmail_smtp_help}, {SMTP_QUIT, sendmail_smtp_quit},
};

static void
sendmail_smtp_command(struct sendmail_smtp *s, char *line)
{
    struct smtp_cmd cmd;
    size_t i;

    smtpd_parse_command(line, &cmd);
    for (i = 0; i < sizeof(sendmail_smtp_cmds) / sizeof(sendmail_smtp_cmds[0]);
         i++) {
        if (sendmail_smtp_cmds[i].verb == cmd.verb) {
            sendmail_smtp_cmds[i].fn(s, cmd.arg);
            return;
        }
    }
    if (cmd.verb == SMTP_UNKNOWN)
        sendmail_smtp_reply(s, "502 5.5.2 Error: command not recognized");
    else
        sendmail_smtp_reply(s, "502 5.5.1 Error: command not implemented");
}

int
sendmail_smtp_run(const config_t *cfg, const struct sendmail_smtp_who *who,
                  int in, int out)
{
    struct sendmail_smtp s;
    buf_t line;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.who = who;
    s.in = in;
    s.out = out;
    s.state = SS_READY;
    buf_init(&s.rbuf);
    buf_init(&s.wbuf);
    buf_init(&line);
    maildrop_init(&s.md);
    sendmail_smtp_reply(&s, "220 %s", config_str(cfg, P_SMTPD_BANNER));
    while (s.state != SS_QUIT && !s.write_failed) {
        int rc = sendmail_smtp_getline(&s, &line, SENDMAIL_SMTP_CMD_MAX);

        if (rc == 0)
            break;
        if (rc < 0) {
            sendmail_smtp_reply(&s, "500 5.5.0 Error: line too long");
            continue;
        }
        if (line.data == NULL) {
            buf_reserve(&line, 0); /* an empty line, with storage */
            line.data[0] = '\0';
        }
        sendmail_smtp_command(&s, line.data);
    }
    if (s.eof && s.state != SS_QUIT && s.state != SS_READY)
        fprintf(stderr,
                "sendmail: input ended in state %s; the message "
                "in progress was not queued\n",
                sendmail_smtp_state_name(s.state));
    sendmail_smtp_flush(&s);
    maildrop_clear(&s.md);
    buf_free(&s.rbuf);
    buf_free(&s.wbuf);
    buf_free(&line);
    return s.write_failed ? -1 : 0;
}
