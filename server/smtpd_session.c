/* SPDX-License-Identifier: ISC */
/*
 * smtpd_session: SMTP sessions on epoll loops (RFC 5321).
 *
 * Threads: a session lives on one I/O thread from accept to close and
 * is touched only there.  Acceptor threads hand a socket over with
 * event_post; the store's committer thread hands a commit result back
 * the same way.  Nothing in a session is locked.
 *
 * Input is processed in arrival order.  Replies are collected and
 * written when the input at hand is used up, which is what PIPELINING
 * (RFC 2920) asks of a server: a client may send a group of commands and
 * read the group's replies together.  While a message is being
 * committed the session stops reading; commands the client pipelined
 * behind the final dot wait in the input buffer and are processed, in
 * order, after the 250.
 *
 * Line endings: command lines and message lines may end in CRLF or in a
 * bare LF (read as CRLF, as Postfix's "normalize" does).  The end of
 * DATA is only CRLF "." CRLF: a "." line that ends in a bare LF, or that
 * follows a line ending in a bare LF, is message content.  This keeps
 * the SMTP smuggling attacks of 2023 from ending a message early.
 * Messages are stored with LF line endings.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/cleanup.h"
#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "server/smtpd_parse.h"
#include "server/smtpd_session.h"

#define SMTPD_READ_SIZE 16384
#define SMTPD_OUT_HIGH 65536   /* stop processing input above this */
#define SMTPD_DATA_CHUNK 65536 /* long message lines go over in parts */
#define SMTPD_VERBS (SMTP_BDAT + 1)

enum smtpd_state {
    S_CONNECTED, /* before HELO/EHLO */
    S_READY,     /* greeted, no transaction */
    S_MAIL,      /* MAIL accepted, no recipient yet */
    S_RCPT,      /* at least one recipient */
    S_DATA,      /* reading message content */
    S_COMMIT,    /* waiting for cleanup and the queue commit */
};

struct smtpd_io;

typedef struct smtpd_session {
    event_watch_t watch;
    struct smtpd_io *io;
    struct smtpd_session *prev;
    struct smtpd_session *next;
    config_t *cfg;
    enum smtpd_state state;
    buf_t in;
    buf_t out;
    char addr[64];      /* numeric client address */
    char name[256];     /* client host name, "unknown" without DNS */
    char *helo;
    int esmtp;
    int in_mynetworks;
    int closing;        /* close once out is written */
    int dead;           /* the socket is gone; free after the commit */
    int skip_line;      /* discarding the rest of an overlong line */
    time_t last_active;
    enum smtp_verb last_verb;
    int errors;
    int ok[SMTPD_VERBS];
    int total[SMTPD_VERBS];
    /* The transaction. */
    envelope_t *env;
    buf_t data;
    int64_t data_size;
    int data_too_big;
    int data_prev_crlf; /* the previous message line ended in CRLF */
    int data_mid_line;  /* part of a long line has been taken */
} smtpd_session_t;

struct smtpd_io {
    smtpd_server_t *srv;
    event_loop_t *loop;
    pthread_t thread;
    smtpd_session_t *sessions;
    int shutting_down;
};

struct smtpd_server {
    int nio;
    struct smtpd_io *io;
    cleanup_t *cleanup;
    unsigned next_io;
    long nsessions;
};

struct smtpd_accepted {
    struct smtpd_io *io;
    int fd;
    struct sockaddr_storage sa;
};

static const char *
smtpd_state_name(enum smtpd_state state)
{
    static const char *names[] = {
        "CONNECT", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE",
    };

    return names[state];
}

/* Append one reply line (CRLF added) to the output. */
static void smtpd_reply(smtpd_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
smtpd_reply(smtpd_session_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    buf_append(&s->out, "\r\n", 2);
}

/* Log a refused command the way Postfix does, for pflogsumm and
 * fail2ban: "ID: reject: RCPT from host[addr]: 554 ...; from=<> ...". */
static void
smtpd_log_reject(smtpd_session_t *s, const char *verb, const char *reply,
                 const char *rcpt)
{
    buf_t line;

    buf_init(&line);
    buf_printf(&line, "%s: reject: %s from %s[%s]: %s;",
               s->env && s->env->id[0] ? s->env->id : "NOQUEUE", verb,
               s->name, s->addr, reply);
    if (s->env) {
        buf_puts(&line, " from=<");
        buf_escape(&line, s->env->sender, strlen(s->env->sender));
        buf_puts(&line, ">");
    }
    if (rcpt) {
        buf_puts(&line, " to=<");
        buf_escape(&line, rcpt, strlen(rcpt));
        buf_puts(&line, ">");
    }
    buf_printf(&line, " proto=%s helo=<", s->esmtp ? "ESMTP" : "SMTP");
    if (s->helo)
        buf_escape(&line, s->helo, strlen(s->helo));
    buf_puts(&line, ">");
    msg_info("%s", line.data);
    buf_free(&line);
}

static void
smtpd_reset(smtpd_session_t *s)
{
    envelope_free(&s->env);
    buf_free(&s->data);
    s->data_size = 0;
    s->data_too_big = 0;
    if (s->state > S_READY)
        s->state = S_READY;
}

/* Write as much output as the socket takes. */
static void
smtpd_flush(smtpd_session_t *s)
{
    while (s->out.len > 0 && !s->dead) {
        ssize_t n = send(s->watch.fd, s->out.data, s->out.len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            s->dead = 1;
            buf_reset(&s->out);
            break;
        }
        buf_consume(&s->out, (size_t)n);
    }
}

static void
smtpd_log_disconnect(smtpd_session_t *s)
{
    buf_t line;
    int ok = 0;
    int total = 0;
    int v;

    buf_init(&line);
    buf_printf(&line, "disconnect from %s[%s]", s->name, s->addr);
    for (v = 1; v <= SMTPD_VERBS; v++) {
        int i = v % SMTPD_VERBS; /* "unknown" last, as Postfix does */

        if (s->total[i] == 0)
            continue;
        if (s->ok[i] == s->total[i])
            buf_printf(&line, " %s=%d", smtpd_verb_name(i), s->total[i]);
        else
            buf_printf(&line, " %s=%d/%d", smtpd_verb_name(i), s->ok[i],
                       s->total[i]);
        ok += s->ok[i];
        total += s->total[i];
    }
    if (ok == total)
        buf_printf(&line, " commands=%d", total);
    else
        buf_printf(&line, " commands=%d/%d", ok, total);
    msg_info("%s", line.data);
    buf_free(&line);
}

static void
smtpd_session_free(smtpd_session_t *s)
{
    struct smtpd_io *io = s->io;

    if (s->prev)
        s->prev->next = s->next;
    else
        io->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    envelope_free(&s->env);
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->data);
    free(s->helo);
    config_unref(&s->cfg);
    free(s);
    __atomic_sub_fetch(&io->srv->nsessions, 1, __ATOMIC_RELAXED);
    if (io->shutting_down && io->sessions == NULL)
        event_loop_stop(io->loop);
}

/* Close the connection; the session itself goes once no commit is
 * outstanding. */
static void
smtpd_close(smtpd_session_t *s)
{
    if (s->watch.fd >= 0) {
        smtpd_flush(s);
        smtpd_log_disconnect(s);
        event_watch_del(s->io->loop, &s->watch);
        close(s->watch.fd);
        s->watch.fd = -1;
    }
    s->dead = 1;
    if (s->state != S_COMMIT)
        smtpd_session_free(s);
}

/* Account for a command and its outcome in the disconnect line. */
static void
smtpd_count(smtpd_session_t *s, enum smtp_verb verb, int ok)
{
    s->total[verb]++;
    if (ok)
        s->ok[verb]++;
    else
        s->errors++;
}

static void
smtpd_cmd_helo(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    const char *host = config_str(s->cfg, P_MYHOSTNAME);
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);

    if (cmd->arg[0] == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", cmd->name);
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    smtpd_reset(s);
    free(s->helo);
    s->helo = mem_strdup(cmd->arg);
    s->esmtp = cmd->verb == SMTP_EHLO;
    s->state = S_READY;
    smtpd_count(s, cmd->verb, 1);
    if (!s->esmtp) {
        smtpd_reply(s, "250 %s", host);
        return;
    }
    smtpd_reply(s, "250-%s", host);
    smtpd_reply(s, "250-PIPELINING");
    if (limit > 0)
        smtpd_reply(s, "250-SIZE %lld", limit);
    else
        smtpd_reply(s, "250-SIZE");
    smtpd_reply(s, "250-8BITMIME");
    smtpd_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* Check the ESMTP parameters of MAIL (RFC 1870 SIZE, RFC 6152 BODY). */
static int
smtpd_mail_params(smtpd_session_t *s, struct smtp_path *path)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);
    size_t i;

    for (i = 0; i < path->nparams; i++) {
        struct smtp_param *p = &path->params[i];

        if (strcmp(p->key, "SIZE") == 0 && p->value) {
            char *end;
            unsigned long long size;

            errno = 0;
            size = strtoull(p->value, &end, 10);
            if (*p->value < '0' || *p->value > '9' || *end != '\0' ||
                errno != 0) {
                smtpd_reply(s, "501 5.5.4 Bad message size syntax");
                return -1;
            }
            if (limit > 0 && size > (unsigned long long)limit) {
                smtpd_reply(s, "552 5.3.4 Message size exceeds fixed "
                               "limit");
                return -1;
            }
        } else if (strcmp(p->key, "BODY") == 0 && p->value &&
                   (strcasecmp(p->value, "7BIT") == 0 ||
                    strcasecmp(p->value, "8BITMIME") == 0)) {
            s->env->body_8bit = strcasecmp(p->value, "8BITMIME") == 0;
        } else {
            smtpd_reply(s, "555 5.5.4 Unsupported option: %s", p->key);
            return -1;
        }
    }
    return 0;
}

static void
smtpd_cmd_mail(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    struct smtp_path path;
    const char *why;

    if (s->state == S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto fail;
    }
    if (s->state != S_READY) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        goto fail;
    }
    if (smtpd_parse_path(cmd->arg, "FROM:", 1, &path, &why) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> (%s)", why);
        goto fail;
    }
    if (path.nparams > 0 && !s->esmtp) {
        smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                    path.params[0].key);
        goto fail;
    }
    s->env = envelope_new();
    envelope_set(&s->env->sender, path.addr);
    if (smtpd_mail_params(s, &path) < 0) {
        envelope_free(&s->env);
        goto fail;
    }
    envelope_set(&s->env->client_name, s->name);
    envelope_set(&s->env->client_addr, s->addr);
    envelope_set(&s->env->helo, s->helo);
    envelope_set(&s->env->protocol, s->esmtp ? "ESMTP" : "SMTP");
    s->state = S_MAIL;
    smtpd_reply(s, "250 2.1.0 Ok");
    smtpd_count(s, cmd->verb, 1);
    return;
fail:
    smtpd_count(s, cmd->verb, 0);
}

/* Decide whether a recipient may be accepted: relay control and, for
 * our own domains, local_recipient_maps.  Returns NULL to accept, or
 * the reply text (without code) written into why. */
static const char *
smtpd_rcpt_policy(smtpd_session_t *s, const char *rcpt, char *why,
                  size_t len)
{
    char *const *dest = config_list(s->cfg, P_MYDESTINATION, NULL);
    const char *domain = addr_domain(rcpt);
    const char *value;
    char *mailbox;
    char *local;

    /* RFC 5321 section 4.5.1: postmaster with no domain is ours. */
    if (domain[0] != '\0' && !addr_domain_listed(domain, dest)) {
        if (s->in_mynetworks)
            return NULL;
        snprintf(why, len, "554 5.7.1 <%s>: Relay access denied", rcpt);
        return why;
    }
    mailbox = addr_mailbox_name(rcpt, config_str(s->cfg,
                                                 P_RECIPIENT_DELIMITER));
    if (mailbox == NULL) {
        snprintf(why, len, "550 5.1.1 <%s>: Recipient address rejected: "
                           "not a valid mailbox name", rcpt);
        return why;
    }
    local = addr_localpart(rcpt);
    if (config_tables(s->cfg, P_LOCAL_RECIPIENT_MAPS)[0] != NULL &&
        !config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, rcpt, &value) &&
        !config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, local, &value) &&
        !config_maps_lookup(s->cfg, P_LOCAL_RECIPIENT_MAPS, mailbox,
                            &value)) {
        snprintf(why, len, "550 5.1.1 <%s>: Recipient address rejected: "
                           "User unknown in local recipient table", rcpt);
        free(local);
        free(mailbox);
        return why;
    }
    free(local);
    free(mailbox);
    return NULL;
}

static void
smtpd_cmd_rcpt(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    struct smtp_path path;
    const char *why;
    const char *refusal;
    char text[600];

    if (s->state != S_MAIL && s->state != S_RCPT) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        goto fail;
    }
    if (smtpd_parse_path(cmd->arg, "TO:", 0, &path, &why) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address> (%s)", why);
        goto fail;
    }
    if (path.nparams > 0) {
        smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
                    path.params[0].key);
        goto fail;
    }
    if ((long long)s->env->nrcpt >=
        config_num(s->cfg, P_SMTPD_RECIPIENT_LIMIT)) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        goto fail;
    }
    refusal = smtpd_rcpt_policy(s, path.addr, text, sizeof(text));
    if (refusal != NULL) {
        smtpd_reply(s, "%s", refusal);
        smtpd_log_reject(s, "RCPT", refusal, path.addr);
        goto fail;
    }
    if (s->env->id[0] == '\0') {
        /* Like Postfix, a queue ID is given with the first recipient. */
        queue_id_new(s->env->id);
        msg_info("%s: client=%s[%s]", s->env->id, s->name, s->addr);
    }
    envelope_add_rcpt(s->env, path.addr);
    s->state = S_RCPT;
    smtpd_reply(s, "250 2.1.5 Ok");
    smtpd_count(s, cmd->verb, 1);
    return;
fail:
    smtpd_count(s, cmd->verb, 0);
}

static void
smtpd_cmd_data(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    if (s->state == S_READY || s->state == S_CONNECTED) {
        smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (s->state == S_MAIL) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    if (cmd->arg[0] != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    buf_reset(&s->data);
    s->data_size = 0;
    s->data_too_big = 0;
    s->data_prev_crlf = 1;
    s->data_mid_line = 0;
    s->state = S_DATA;
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtpd_cmd_simple(smtpd_session_t *s, struct smtp_cmd *cmd)
{
    switch (cmd->verb) {
    case SMTP_RSET:
        if (cmd->arg[0] != '\0') {
            smtpd_reply(s, "501 5.5.4 Syntax: RSET");
            smtpd_count(s, cmd->verb, 0);
            return;
        }
        smtpd_reset(s);
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_NOOP:
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_QUIT:
        smtpd_reply(s, "221 2.0.0 Bye");
        s->closing = 1;
        break;
    case SMTP_VRFY:
        /* RFC 5321 section 3.5.3: 252 when we will not say. */
        smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
                       "message and attempt delivery");
        break;
    case SMTP_HELP:
        smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
                       "NOOP VRFY HELP QUIT");
        break;
    default:
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        smtpd_count(s, cmd->verb, 0);
        return;
    }
    smtpd_count(s, cmd->verb, 1);
}

static const struct {
    enum smtp_verb verb;
    void (*fn)(smtpd_session_t *, struct smtp_cmd *);
} smtpd_commands[] = {
    {SMTP_HELO, smtpd_cmd_helo},     {SMTP_EHLO, smtpd_cmd_helo},
    {SMTP_MAIL, smtpd_cmd_mail},     {SMTP_RCPT, smtpd_cmd_rcpt},
    {SMTP_DATA, smtpd_cmd_data},     {SMTP_RSET, smtpd_cmd_simple},
    {SMTP_NOOP, smtpd_cmd_simple},   {SMTP_QUIT, smtpd_cmd_simple},
    {SMTP_VRFY, smtpd_cmd_simple},   {SMTP_HELP, smtpd_cmd_simple},
    {SMTP_EXPN, smtpd_cmd_simple},   {SMTP_STARTTLS, smtpd_cmd_simple},
    {SMTP_AUTH, smtpd_cmd_simple},   {SMTP_BDAT, smtpd_cmd_simple},
};

/* Run one command line (line ending removed). */
static void
smtpd_command(smtpd_session_t *s, char *line, size_t len)
{
    struct smtp_cmd cmd;
    size_t i;

    if (memchr(line, '\0', len) != NULL) {
        smtpd_reply(s, "500 5.5.2 Error: NUL character in command");
        smtpd_count(s, SMTP_UNKNOWN, 0);
        return;
    }
    smtpd_parse_command(line, &cmd);
    s->last_verb = cmd.verb;
    for (i = 0; i < sizeof(smtpd_commands) / sizeof(smtpd_commands[0]);
         i++) {
        if (smtpd_commands[i].verb == cmd.verb) {
            smtpd_commands[i].fn(s, &cmd);
            return;
        }
    }
    smtpd_reply(s, "500 5.5.2 Error: command not recognized");
    smtpd_count(s, SMTP_UNKNOWN, 0);
}

/* Take message bytes into the transaction, minding the size limit. */
static void
smtpd_data_add(smtpd_session_t *s, const char *p, size_t len, int newline)
{
    long long limit = config_num(s->cfg, P_MESSAGE_SIZE_LIMIT);

    s->data_size += (int64_t)len + (newline != 0);
    if (limit > 0 && s->data_size > limit) {
        s->data_too_big = 1;
        buf_free(&s->data);
        return;
    }
    buf_append(&s->data, p, len);
    if (newline)
        buf_putc(&s->data, '\n');
}

static void smtpd_data_end(smtpd_session_t *s);

/* Consume message lines from the input; returns 0 when more input is
 * needed, 1 when the end of the message was reached. */
static int
smtpd_data_step(smtpd_session_t *s)
{
    for (;;) {
        char *p = s->in.data;
        char *nl = s->in.len ? memchr(p, '\n', s->in.len) : NULL;
        size_t llen;
        size_t start = 0;
        int crlf;

        if (nl == NULL) {
            /* A very long line is taken in parts, keeping a final CR
             * back in case the LF follows. */
            if (s->in.len >= SMTPD_DATA_CHUNK) {
                size_t take = s->in.len - (p[s->in.len - 1] == '\r');

                if (!s->data_mid_line && p[0] == '.')
                    start = 1;
                smtpd_data_add(s, p + start, take - start, 0);
                buf_consume(&s->in, take);
                s->data_mid_line = 1;
            }
            return 0;
        }
        llen = (size_t)(nl - p);
        crlf = llen > 0 && p[llen - 1] == '\r';
        if (crlf)
            llen--;
        if (!s->data_mid_line && s->data_prev_crlf && crlf && llen == 1 &&
            p[0] == '.') {
            buf_consume(&s->in, 3);
            smtpd_data_end(s);
            return 1;
        }
        /* RFC 5321 section 4.5.2: drop the first of a leading dot. */
        if (!s->data_mid_line && llen > 0 && p[0] == '.')
            start = 1;
        smtpd_data_add(s, p + start, llen - start, 1);
        s->data_prev_crlf = crlf;
        s->data_mid_line = 0;
        buf_consume(&s->in, (size_t)(nl - p) + 1);
    }
}

static void smtpd_process(smtpd_session_t *s);

/* Back on the session's thread with the commit's outcome. */
static void
smtpd_commit_finish(void *arg)
{
    cleanup_req_t *req = arg;
    smtpd_session_t *s = req->arg;

    if (req->reply[0] == '\0') {
        msg_debug("%s: queued", req->env->id);
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", req->env->id);
        smtpd_count(s, SMTP_DATA, 1);
    } else {
        smtpd_reply(s, "%s", req->reply);
        smtpd_count(s, SMTP_DATA, 0);
    }
    cleanup_req_free(&req);
    s->state = S_READY;
    if (s->dead) {
        smtpd_close(s);
        return;
    }
    if (s->io->shutting_down) {
        smtpd_reply(s, "421 4.3.2 Service shutting down");
        smtpd_close(s);
        return;
    }
    event_watch_mod(s->io->loop, &s->watch, EPOLLIN);
    smtpd_process(s);
}

/* Called on the committer (or a cleanup) thread. */
static void
smtpd_committed(cleanup_req_t *req, int status, const char *reply)
{
    smtpd_session_t *s = req->arg;

    if (status == 0)
        req->reply[0] = '\0';
    event_post(s->io->loop, smtpd_commit_finish, req);
}

static void
smtpd_data_end(smtpd_session_t *s)
{
    cleanup_req_t *req;

    if (s->data_too_big) {
        smtpd_reply(s, "552 5.3.4 Error: message file too big");
        smtpd_count(s, SMTP_DATA, 0);
        smtpd_reset(s);
        return;
    }
    req = mem_calloc(1, sizeof(*req));
    req->env = s->env;
    req->msg = s->data;
    req->cfg = config_ref(s->cfg);
    req->done = smtpd_committed;
    req->arg = s;
    s->env = NULL;
    buf_init(&s->data);
    s->state = S_COMMIT;
    if (cleanup_submit(s->io->srv->cleanup, req) < 0) {
        s->env = req->env;
        req->env = NULL;
        cleanup_req_free(&req);
        s->state = S_RCPT;
        smtpd_reply(s, "451 4.3.0 Error: queue busy, try again later");
        smtpd_count(s, SMTP_DATA, 0);
        smtpd_reset(s);
        return;
    }
    /* Read nothing more until the commit is done. */
    event_watch_mod(s->io->loop, &s->watch, 0);
}

/* Handle every complete command or message line in the input. */
static void
smtpd_process(smtpd_session_t *s)
{
    size_t limit = (size_t)config_num(s->cfg, P_LINE_LENGTH_LIMIT);

    while (!s->closing && !s->dead && s->state != S_COMMIT &&
           s->out.len < SMTPD_OUT_HIGH) {
        char *nl;
        size_t len;
        char *line;

        if (s->state == S_DATA) {
            if (smtpd_data_step(s) == 0)
                break;
            continue;
        }
        nl = s->in.len ? memchr(s->in.data, '\n', s->in.len) : NULL;
        if (nl == NULL) {
            if (s->in.len > limit) {
                buf_reset(&s->in);
                s->skip_line = 1;
            }
            break;
        }
        len = (size_t)(nl - s->in.data);
        if (s->skip_line) {
            s->skip_line = 0;
            buf_consume(&s->in, len + 1);
            smtpd_reply(s, "500 5.5.2 Error: line too long");
            smtpd_count(s, SMTP_UNKNOWN, 0);
            continue;
        }
        if (len > 0 && s->in.data[len - 1] == '\r')
            len--;
        line = mem_strndup(s->in.data, len);
        buf_consume(&s->in, (size_t)(nl - s->in.data) + 1);
        smtpd_command(s, line, len);
        free(line);
        if (s->errors >= config_num(s->cfg, P_SMTPD_HARD_ERROR_LIMIT)) {
            smtpd_reply(s, "421 4.7.0 %s Error: too many errors",
                        config_str(s->cfg, P_MYHOSTNAME));
            msg_info("too many errors after %s from %s[%s]",
                     smtpd_verb_name(s->last_verb), s->name, s->addr);
            s->closing = 1;
        }
    }
    smtpd_flush(s);
    if (s->dead && s->state != S_COMMIT) {
        smtpd_close(s);
        return;
    }
    if (s->closing && s->out.len == 0) {
        smtpd_close(s);
        return;
    }
    if (s->state != S_COMMIT && s->watch.fd >= 0)
        event_watch_mod(s->io->loop, &s->watch,
                        s->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void
smtpd_on_io(void *arg, uint32_t events)
{
    smtpd_session_t *s = arg;
    char chunk[SMTPD_READ_SIZE];
    ssize_t n;

    if (events & EPOLLOUT)
        smtpd_flush(s);
    if (s->state == S_COMMIT) {
        /* Not reading; a hangup is noticed once the commit is done. */
        if (events & (EPOLLHUP | EPOLLERR))
            event_watch_mod(s->io->loop, &s->watch, 0);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        n = read(s->watch.fd, chunk, sizeof(chunk));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            if (!s->closing)
                msg_info("lost connection after %s from %s[%s]",
                         smtpd_state_name(s->state), s->name, s->addr);
            s->dead = 1;
            smtpd_close(s);
            return;
        }
        s->last_active = time(NULL);
        buf_append(&s->in, chunk, (size_t)n);
    }
    smtpd_process(s);
}

/* Start a session for an accepted socket, on its I/O thread. */
static void
smtpd_session_start(void *arg)
{
    struct smtpd_accepted *acc = arg;
    struct smtpd_io *io = acc->io;
    smtpd_session_t *s;
    char *const *nets;

    if (io->shutting_down) {
        close(acc->fd);
        free(acc);
        __atomic_sub_fetch(&io->srv->nsessions, 1, __ATOMIC_RELAXED);
        return;
    }
    s = mem_calloc(1, sizeof(*s));
    s->io = io;
    s->watch.fd = acc->fd;
    s->watch.fn = smtpd_on_io;
    s->watch.arg = s;
    s->cfg = config_current();
    addr_numeric((struct sockaddr *)&acc->sa, s->addr, sizeof(s->addr));
    snprintf(s->name, sizeof(s->name), "unknown");
    nets = config_list(s->cfg, P_MYNETWORKS, NULL);
    s->in_mynetworks = addr_in_networks((struct sockaddr *)&acc->sa, nets);
    s->last_active = time(NULL);
    s->state = S_CONNECTED;
    free(acc);
    s->next = io->sessions;
    if (io->sessions)
        io->sessions->prev = s;
    io->sessions = s;
    msg_info("connect from %s[%s]", s->name, s->addr);
    if (event_watch_add(io->loop, &s->watch, EPOLLIN) < 0) {
        msg_warn("epoll_ctl: %s", strerror(errno));
        smtpd_close(s);
        return;
    }
    smtpd_reply(s, "220 %s", config_str(s->cfg, P_SMTPD_BANNER));
    smtpd_flush(s);
}

/* Once a second: end sessions that have been silent too long. */
static void
smtpd_io_tick(void *arg)
{
    struct smtpd_io *io = arg;
    smtpd_session_t *s = io->sessions;
    time_t now = time(NULL);

    while (s) {
        smtpd_session_t *next = s->next;

        if (s->state != S_COMMIT && !s->dead &&
            now - s->last_active > config_num(s->cfg, P_SMTPD_TIMEOUT)) {
            msg_info("timeout after %s from %s[%s]",
                     smtpd_state_name(s->state), s->name, s->addr);
            smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded",
                        config_str(s->cfg, P_MYHOSTNAME));
            smtpd_close(s);
        }
        s = next;
    }
}

/* Tell every session on this thread that we are going away. */
static void
smtpd_io_shutdown(void *arg)
{
    struct smtpd_io *io = arg;
    smtpd_session_t *s = io->sessions;

    io->shutting_down = 1;
    while (s) {
        smtpd_session_t *next = s->next;

        /* A session waiting for its commit is answered first. */
        if (s->state != S_COMMIT) {
            smtpd_reply(s, "421 4.3.2 Service shutting down");
            smtpd_close(s);
        }
        s = next;
    }
    if (io->sessions == NULL)
        event_loop_stop(io->loop);
}

static void *
smtpd_io_main(void *arg)
{
    struct smtpd_io *io = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    log_set_role("smtpd");
    event_loop_run(io->loop);
    return NULL;
}

smtpd_server_t *
smtpd_server_new(int io_threads, cleanup_t *cleanup)
{
    smtpd_server_t *srv = mem_calloc(1, sizeof(*srv));
    int i;
    int err;

    if (io_threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        io_threads = cpus > 0 ? (int)cpus : 1;
    }
    srv->nio = io_threads;
    srv->cleanup = cleanup;
    srv->io = mem_calloc((size_t)io_threads, sizeof(*srv->io));
    for (i = 0; i < io_threads; i++) {
        struct smtpd_io *io = &srv->io[i];

        io->srv = srv;
        io->loop = event_loop_new();
        event_loop_tick(io->loop, 1000, smtpd_io_tick, io);
        err = pthread_create(&io->thread, NULL, smtpd_io_main, io);
        if (err != 0)
            msg_fatal("cannot start smtpd thread: %s", strerror(err));
    }
    return srv;
}

void
smtpd_server_accept(smtpd_server_t *srv, int fd, const struct sockaddr *sa,
                    socklen_t salen)
{
    struct smtpd_accepted *acc = mem_calloc(1, sizeof(*acc));
    unsigned n = __atomic_fetch_add(&srv->next_io, 1, __ATOMIC_RELAXED);

    acc->fd = fd;
    acc->io = &srv->io[n % (unsigned)srv->nio];
    if (salen > sizeof(acc->sa))
        salen = sizeof(acc->sa);
    memcpy(&acc->sa, sa, salen);
    __atomic_add_fetch(&srv->nsessions, 1, __ATOMIC_RELAXED);
    event_post(acc->io->loop, smtpd_session_start, acc);
}

void
smtpd_server_shutdown(smtpd_server_t *srv)
{
    int i;

    for (i = 0; i < srv->nio; i++)
        event_post(srv->io[i].loop, smtpd_io_shutdown, &srv->io[i]);
    for (i = 0; i < srv->nio; i++)
        pthread_join(srv->io[i].thread, NULL);
}

void
smtpd_server_free(smtpd_server_t **srvp)
{
    smtpd_server_t *srv = srvp ? *srvp : NULL;
    int i;

    if (srv == NULL)
        return;
    for (i = 0; i < srv->nio; i++)
        event_loop_free(&srv->io[i].loop);
    free(srv->io);
    free(srv);
    *srvp = NULL;
}

long
smtpd_server_sessions(smtpd_server_t *srv)
{
    return __atomic_load_n(&srv->nsessions, __ATOMIC_RELAXED);
}
