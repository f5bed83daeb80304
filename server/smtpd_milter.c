/* SPDX-License-Identifier: ISC */
/*
 * smtpd_milter: Milter conversations for smtpd_milters.
 *
 * Each session has its own connection to each Milter, opened at the
 * connect event and negotiated with SMFIC_OPTNEG: we offer protocol
 * version milter_protocol, every action this module can carry out and
 * every step that may be left out or left unanswered; the Milter
 * answers with the subset it wants, and from then on a step it left
 * out is not sent (SMFIP_NO*) and a step it does not answer is not
 * waited for (SMFIP_NR_*).  Before each command go the macros its
 * milter_*_macros parameter names, the ones whose value is known.
 *
 * Milters are asked in the order listed; the first to refuse decides.
 * SMFIR_ACCEPT at the connect or HELO step means "this session is
 * fine": the Milter is not asked again.  At MAIL, RCPT or in the
 * message it means "this message is fine": the Milter is skipped until
 * the next MAIL.  A refusal at the connect step is kept and given to
 * every later MAIL (HELO is answered normally), and so is the default
 * action tempfail or reject of a Milter that failed.
 *
 * The message goes over as DATA, each header (the value without the
 * blank after the colon unless the Milter asked for SMFIP_HDR_LEADSPC;
 * folded headers keep their newlines), SMFIC_EOH, the body with CRLF
 * line endings in chunks of at most SMTPD_MILTER_CHUNK bytes (a Milter
 * that negotiated SMFIP_SKIP may stop them with SMFIR_SKIP), and
 * SMFIC_BODYEOB, whose answer may be preceded by modification replies:
 * they become cleanup edits, applied before the message is stored.  A
 * modification the Milter did not negotiate is ignored with a warning.
 *
 * XXX SMFIC_DATA is sent with the content, after the client's final
 * dot, not when the client says DATA: a Milter that refuses at DATA is
 * answered at the end of the message.  Sending it earlier needs a job
 * between the DATA command and its 354.
 * XXX Macro lists that a Milter asks for in its OPTNEG reply
 * (SMFIF_SETSYMLIST) are not used; the milter_*_macros lists decide.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "server/smtpd_milter.h"

/* What we offer in OPTNEG. */
#define SMTPD_MILTER_ACTIONS                                                  \
    (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT |          \
     SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR |   \
     SMFIF_SETSYMLIST)
#define SMTPD_MILTER_STEPS 0x1fffff

#define SMTPD_MILTER_TEMPFAIL "451 4.7.1 Service unavailable - try again later"
#define SMTPD_MILTER_REJECTED "550 5.7.1 Command rejected"

/* Where in the session a reply comes. */
enum smtpd_milter_stage {
    STAGE_CONNECT,
    STAGE_HELO,
    STAGE_MESSAGE, /* MAIL, RCPT, the content */
    STAGE_RCPT,
    STAGE_EOM,
};

struct smtpd_milter_conn {
    char *service;
    int fd;           /* -1 when not connected */
    int on;           /* still asked in this session */
    int skip_message; /* accepted the current message */
    int in_tx;        /* has seen a MAIL not yet ended by BODYEOB */
    int skip_body;    /* answered SMFIR_SKIP to a body chunk */
    uint32_t version;
    uint32_t actions;
    uint32_t steps;
    buf_t in;         /* bytes read and not yet taken */
};

struct smtpd_milters {
    config_t *cfg;
    smtpd_policy_t *io;
    struct smtpd_milter_conn *v;
    size_t n;
    char *sticky;     /* the reply to every later MAIL, or NULL */
    int hold;         /* quarantine every message (default action) */
    int discard;      /* discard the current message */
    buf_t pkt;        /* scratch: the packet being built */
    buf_t data;       /* scratch: the reply being read */
};

/*
 * The codec.
 */

void
smtpd_milter_packet(buf_t *out, int cmd, const void *data, size_t len)
{
    uint32_t n = (uint32_t)len + 1;
    unsigned char hdr[5] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n,
                            (unsigned char)cmd};

    buf_append(out, hdr, sizeof(hdr));
    if (len > 0)
        buf_append(out, data, len);
}

int
smtpd_milter_take(buf_t *in, int *cmd, buf_t *data, const char **why)
{
    const unsigned char *p = (const unsigned char *)in->data;
    uint32_t n;

    if (in->len < 4)
        return 0;
    n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
        p[3];
    if (n == 0 || n > SMTPD_MILTER_PACKET_MAX) {
        *why = n == 0 ? "empty packet" : "packet too long";
        return -1;
    }
    if (in->len - 4 < n)
        return 0;
    *cmd = p[4];
    buf_reset(data);
    buf_append(data, p + 5, n - 1);
    buf_consume(in, 4 + (size_t)n);
    return 1;
}

/* The NUL-terminated string at data + *off: returns it and moves *off
 * past its NUL, or NULL when there is no NUL. */
static const char *
smtpd_milter_string(const char *data, size_t len, size_t *off)
{
    const char *s = data + *off;
    const char *nul;

    if (*off >= len)
        return NULL;
    nul = memchr(s, '\0', len - *off);
    if (nul == NULL)
        return NULL;
    *off = (size_t)(nul - data) + 1;
    return s;
}

static uint32_t
smtpd_milter_u32(const char *data)
{
    const unsigned char *p = (const unsigned char *)data;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Nonzero if name can be a header field name (RFC 5322 section 2.2). */
static int
smtpd_milter_field_name(const char *name)
{
    if (*name == '\0')
        return 0;
    for (; *name; name++)
        if ((unsigned char)*name <= ' ' || (unsigned char)*name >= 127 ||
            *name == ':')
            return 0;
    return 1;
}

/* A header reply: [index] name NUL value NUL. */
static int
smtpd_milter_parse_header(const char *data, size_t len, int indexed,
                          struct smtpd_milter_reply *r, const char **why)
{
    size_t off = 0;

    if (indexed) {
        if (len < 4) {
            *why = "header reply without its index";
            return -1;
        }
        r->index = smtpd_milter_u32(data);
        off = 4;
    }
    r->name = smtpd_milter_string(data, len, &off);
    r->value = r->name ? smtpd_milter_string(data, len, &off) : NULL;
    if (r->value == NULL) {
        *why = "header reply without its name and value";
        return -1;
    }
    if (!smtpd_milter_field_name(r->name)) {
        *why = "bad header name";
        return -1;
    }
    return 0;
}

/* A reply text: "4xx" or "5xx", then a blank, a hyphen or the end. */
static int
smtpd_milter_reply_text(const char *t)
{
    return (t[0] == '4' || t[0] == '5') && t[1] >= '0' && t[1] <= '9' &&
           t[2] >= '0' && t[2] <= '9' &&
           (t[3] == ' ' || t[3] == '-' || t[3] == '\0');
}

int
smtpd_milter_parse(int cmd, const char *data, size_t len,
                   struct smtpd_milter_reply *r, const char **why)
{
    size_t off = 0;

    memset(r, 0, sizeof(*r));
    r->cmd = cmd;
    switch (cmd) {
    case SMFIR_CONTINUE:
    case SMFIR_ACCEPT:
    case SMFIR_REJECT:
    case SMFIR_TEMPFAIL:
    case SMFIR_DISCARD:
    case SMFIR_SKIP:
    case SMFIR_PROGRESS:
    case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        return 0;
    case SMFIR_REPLYCODE:
        r->text = smtpd_milter_string(data, len, &off);
        if (r->text == NULL || !smtpd_milter_reply_text(r->text)) {
            *why = "bad reply code";
            return -1;
        }
        return 0;
    case SMFIR_ADDHEADER:
        return smtpd_milter_parse_header(data, len, 0, r, why);
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        return smtpd_milter_parse_header(data, len, 1, r, why);
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        r->name = smtpd_milter_string(data, len, &off);
        if (r->name == NULL || r->name[0] == '\0') {
            *why = "address reply without an address";
            return -1;
        }
        if (cmd == SMFIR_ADDRCPT_PAR || cmd == SMFIR_CHGFROM)
            r->value = smtpd_milter_string(data, len, &off);
        return 0;
    case SMFIR_QUARANTINE:
        r->name = smtpd_milter_string(data, len, &off);
        if (r->name == NULL) {
            *why = "quarantine without its reason";
            return -1;
        }
        return 0;
    case SMFIR_REPLBODY:
        r->body = data;
        r->body_len = len;
        return 0;
    case SMFIC_OPTNEG:
        if (len < 12) {
            *why = "short option negotiation";
            return -1;
        }
        r->version = smtpd_milter_u32(data);
        r->actions = smtpd_milter_u32(data + 4);
        r->protocol = smtpd_milter_u32(data + 8);
        return 0;
    default:
        *why = "unknown reply";
        return -1;
    }
}

/*
 * The conversation.
 */

int
smtpd_milter_action_valid(const char *action)
{
    return strcasecmp(action, "accept") == 0 ||
                   strcasecmp(action, "tempfail") == 0 ||
                   strcasecmp(action, "reject") == 0 ||
                   strcasecmp(action, "quarantine") == 0
               ? 0
               : -1;
}

smtpd_milters_t *
smtpd_milters_new(const config_t *cfg, char *const *names, smtpd_policy_t *io)
{
    smtpd_milters_t *m;

    if (names == NULL || names[0] == NULL)
        return NULL;
    m = mem_calloc(1, sizeof(*m));
    m->cfg = config_ref((config_t *)cfg);
    m->io = io;
    for (; *names; names++) {
        struct smtpd_milter_conn *c;

        m->v = mem_reallocarray(m->v, m->n + 1, sizeof(*m->v));
        c = &m->v[m->n++];
        memset(c, 0, sizeof(*c));
        c->service = mem_strdup(*names);
        c->fd = -1;
        c->on = 1;
        buf_init(&c->in);
    }
    buf_init(&m->pkt);
    buf_init(&m->data);
    return m;
}

static void
smtpd_milter_close(struct smtpd_milter_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->on = 0;
    buf_reset(&c->in);
}

void
smtpd_milters_free(smtpd_milters_t **mp)
{
    smtpd_milters_t *m = mp ? *mp : NULL;
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->n; i++) {
        struct smtpd_milter_conn *c = &m->v[i];

        if (c->fd >= 0) {
            /* Five bytes fit in any socket buffer: this never waits. */
            buf_reset(&m->pkt);
            smtpd_milter_packet(&m->pkt, SMFIC_QUIT, NULL, 0);
            if (send(c->fd, m->pkt.data, m->pkt.len,
                     MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                msg_debug("milter %s: quit: %s", c->service, strerror(errno));
        }
        smtpd_milter_close(c);
        free(c->service);
        buf_free(&c->in);
    }
    free(m->v);
    free(m->sticky);
    buf_free(&m->pkt);
    buf_free(&m->data);
    config_unref(&m->cfg);
    free(m);
    *mp = NULL;
}

int
smtpd_milters_active(const smtpd_milters_t *m)
{
    size_t i;

    if (m == NULL)
        return 0;
    if (m->sticky || m->hold)
        return 1;
    for (i = 0; i < m->n; i++)
        if (m->v[i].on)
            return 1;
    return 0;
}

/* Close a Milter that failed and apply milter_default_action; returns
 * the verdict that follows for the event under way. */
static enum smtpd_milter_verdict
smtpd_milter_fail(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                  const char *why, buf_t *reply)
{
    const char *action = config_str(m->cfg, P_MILTER_DEFAULT_ACTION);

    if (c->on)
        msg_warn("milter %s: %s; default action %s", c->service, why,
                 action);
    smtpd_milter_close(c);
    if (strcasecmp(action, "accept") == 0)
        return SMTPD_MILTER_CONTINUE;
    if (strcasecmp(action, "quarantine") == 0) {
        m->hold = 1;
        return SMTPD_MILTER_CONTINUE;
    }
    if (m->sticky == NULL)
        m->sticky = mem_strdup(strcasecmp(action, "reject") == 0
                                   ? SMTPD_MILTER_REJECTED
                                   : SMTPD_MILTER_TEMPFAIL);
    buf_reset(reply);
    buf_puts(reply, m->sticky);
    return SMTPD_MILTER_REJECT;
}

void
smtpd_milters_unavailable(smtpd_milters_t *m, const char *why)
{
    buf_t reply;
    size_t i;

    buf_init(&reply);
    for (i = 0; i < m->n; i++)
        if (m->v[i].on)
            smtpd_milter_fail(m, &m->v[i], why, &reply);
    buf_free(&reply);
}

/* A deadline secs (a timeout parameter) from now. */
static int64_t
smtpd_milter_deadline(const smtpd_milters_t *m, enum param_id id)
{
    long long secs = config_num(m->cfg, id);

    return clock_mono_ms() + (secs > 0 ? secs : 1) * 1000;
}

/* Send the packet in m->pkt; 0 or -1 with why. */
static int
smtpd_milter_send(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                  enum param_id timeout, buf_t *why)
{
    return smtpd_policy_send(m->io, c->fd, m->pkt.data, m->pkt.len,
                             smtpd_milter_deadline(m, timeout), why);
}

/* Read one reply into r (its strings point into m->data).  Progress
 * reports restart the clock and are not returned.  0 or -1 with why. */
static int
smtpd_milter_read(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                  enum param_id timeout, struct smtpd_milter_reply *r,
                  buf_t *why)
{
    int64_t deadline = smtpd_milter_deadline(m, timeout);

    for (;;) {
        char chunk[4096];
        const char *bad = NULL;
        ssize_t n;
        int cmd = 0;
        int rc = smtpd_milter_take(&c->in, &cmd, &m->data, &bad);

        if (rc < 0) {
            buf_puts(why, bad);
            return -1;
        }
        if (rc > 0) {
            if (smtpd_milter_parse(cmd, m->data.data, m->data.len, r,
                                   &bad) < 0) {
                buf_printf(why, "%s (0x%02x)", bad, (unsigned)cmd & 0xff);
                return -1;
            }
            if (r->cmd == SMFIR_PROGRESS) {
                deadline = smtpd_milter_deadline(m, timeout);
                continue;
            }
            return 0;
        }
        n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n > 0) {
            buf_append(&c->in, chunk, (size_t)n);
            continue;
        }
        if (n == 0) {
            buf_puts(why, "read: connection closed");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            buf_printf(why, "read: %s", strerror(errno));
            return -1;
        }
        if (smtpd_policy_wait_read(m->io, c->fd, deadline, why) < 0)
            return -1;
    }
}

/* The value of macro name, or NULL when not known. */
static const char *
smtpd_milter_macro(const smtpd_milters_t *m,
                   const struct smtpd_milter_info *info, const char *name,
                   char *tmp, size_t tmplen)
{
    if (strcmp(name, "j") == 0)
        return config_str(m->cfg, P_MYHOSTNAME);
    if (strcmp(name, "{daemon_name}") == 0)
        return config_str(m->cfg, P_MILTER_MACRO_DAEMON_NAME);
    if (strcmp(name, "v") == 0)
        return config_str(m->cfg, P_MILTER_MACRO_V);
    if (strcmp(name, "_") == 0) {
        snprintf(tmp, tmplen, "%s [%s]", info->client_name,
                 info->client_addr);
        return tmp;
    }
    if (strcmp(name, "{daemon_addr}") == 0 || strcmp(name, "{if_addr}") == 0)
        return info->server_addr;
    if (strcmp(name, "{if_name}") == 0)
        return config_str(m->cfg, P_MYHOSTNAME);
    if (strcmp(name, "{client_addr}") == 0)
        return info->client_addr;
    if (strcmp(name, "{client_name}") == 0 ||
        strcmp(name, "{client_ptr}") == 0)
        return info->client_name;
    if (strcmp(name, "{client_port}") == 0) {
        snprintf(tmp, tmplen, "%d", info->client_port);
        return tmp;
    }
    if (strcmp(name, "i") == 0)
        return info->queue_id && info->queue_id[0] ? info->queue_id : NULL;
    if (strcmp(name, "{auth_type}") == 0)
        return info->sasl_method;
    if (strcmp(name, "{auth_authen}") == 0)
        return info->sasl_user;
    if (strcmp(name, "{mail_addr}") == 0)
        return info->sender;
    if (strcmp(name, "{rcpt_addr}") == 0)
        return info->rcpt;
    if (strcmp(name, "{tls_version}") == 0)
        return info->tls_version;
    if (strcmp(name, "{cipher}") == 0)
        return info->tls_cipher;
    if (strcmp(name, "{cipher_bits}") == 0 && info->tls_version) {
        snprintf(tmp, tmplen, "%d", info->tls_bits);
        return tmp;
    }
    return NULL;
}

/* Send the macros of list for the command cmd, if any is known. */
static int
smtpd_milter_macros(smtpd_milters_t *m, struct smtpd_milter_conn *c, int cmd,
                    enum param_id list, const struct smtpd_milter_info *info,
                    buf_t *why)
{
    char *const *names = config_list(m->cfg, list, NULL);
    buf_t data;
    int rc = 0;

    buf_init(&data);
    buf_putc(&data, cmd);
    for (; names && *names; names++) {
        char tmp[320];
        const char *v = smtpd_milter_macro(m, info, *names, tmp, sizeof(tmp));

        if (v == NULL)
            continue;
        buf_append(&data, *names, strlen(*names) + 1);
        buf_append(&data, v, strlen(v) + 1);
    }
    if (data.len > 1) {
        buf_reset(&m->pkt);
        smtpd_milter_packet(&m->pkt, SMFIC_MACRO, data.data, data.len);
        rc = smtpd_milter_send(m, c, P_MILTER_COMMAND_TIMEOUT, why);
    }
    buf_free(&data);
    return rc;
}

/* What a reply to an event means for the session. */
static enum smtpd_milter_verdict
smtpd_milter_verdict(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                     enum smtpd_milter_stage stage,
                     const struct smtpd_milter_reply *r, buf_t *reply)
{
    const char *text = NULL;

    switch (r->cmd) {
    case SMFIR_CONTINUE:
        return SMTPD_MILTER_CONTINUE;
    case SMFIR_ACCEPT:
        if (stage == STAGE_CONNECT || stage == STAGE_HELO)
            c->on = 0;
        else
            c->skip_message = 1;
        return SMTPD_MILTER_CONTINUE;
    case SMFIR_DISCARD:
        if (stage == STAGE_CONNECT || stage == STAGE_HELO)
            return SMTPD_MILTER_CONTINUE;
        m->discard = 1;
        c->skip_message = 1;
        return SMTPD_MILTER_DISCARD;
    case SMFIR_REJECT:
        text = SMTPD_MILTER_REJECTED;
        break;
    case SMFIR_TEMPFAIL:
        text = SMTPD_MILTER_TEMPFAIL;
        break;
    case SMFIR_REPLYCODE:
        text = r->text;
        break;
    case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        text = "421 4.7.0 Service unavailable - closing connection";
        break;
    default:
        return smtpd_milter_fail(m, c, "reply out of turn", reply);
    }
    buf_reset(reply);
    buf_puts(reply, text);
    if (stage == STAGE_CONNECT && m->sticky == NULL)
        m->sticky = mem_strdup(text);
    return SMTPD_MILTER_REJECT;
}

/* One command to one Milter: its macros, the command, and unless the
 * Milter said it will not answer (nr), its answer. */
static enum smtpd_milter_verdict
smtpd_milter_step(smtpd_milters_t *m, struct smtpd_milter_conn *c, int cmd,
                  const void *data, size_t len, uint32_t nr,
                  enum param_id macros, enum param_id timeout,
                  enum smtpd_milter_stage stage,
                  const struct smtpd_milter_info *info, buf_t *reply)
{
    struct smtpd_milter_reply r;
    enum smtpd_milter_verdict v;
    buf_t why;

    buf_init(&why);
    if (macros != P_COUNT &&
        smtpd_milter_macros(m, c, cmd, macros, info, &why) < 0)
        goto fail;
    buf_reset(&m->pkt);
    smtpd_milter_packet(&m->pkt, cmd, data, len);
    if (smtpd_milter_send(m, c, timeout, &why) < 0)
        goto fail;
    if (c->version >= 6 && (c->steps & nr)) {
        buf_free(&why);
        return SMTPD_MILTER_CONTINUE;
    }
    if (smtpd_milter_read(m, c, timeout, &r, &why) < 0)
        goto fail;
    buf_free(&why);
    if (r.cmd == SMFIR_SKIP && cmd == SMFIC_BODY && (c->steps & SMFIP_SKIP)) {
        c->skip_body = 1;
        return SMTPD_MILTER_CONTINUE;
    }
    v = smtpd_milter_verdict(m, c, stage, &r, reply);
    return v;
fail:
    v = smtpd_milter_fail(m, c, why.data, reply);
    buf_free(&why);
    return v;
}

/* The session-wide verdict that an earlier failure left, if any. */
static int
smtpd_milter_sticky(const smtpd_milters_t *m, buf_t *reply)
{
    if (m->sticky == NULL)
        return 0;
    buf_reset(reply);
    buf_puts(reply, m->sticky);
    return 1;
}

/* Connect to one Milter and negotiate; 0 or -1 with why. */
static int
smtpd_milter_open(smtpd_milters_t *m, struct smtpd_milter_conn *c, buf_t *why)
{
    uint32_t version = (uint32_t)config_num(m->cfg, P_MILTER_PROTOCOL);
    unsigned char opt[12];
    struct smtpd_milter_reply r;
    uint32_t steps = version >= 6 ? SMTPD_MILTER_STEPS : 0x7f;
    int i;

    c->fd = smtpd_policy_connect(m->io, m->cfg, c->service,
                                 smtpd_milter_deadline(m,
                                                       P_MILTER_CONNECT_TIMEOUT),
                                 why);
    if (c->fd < 0)
        return -1;
    for (i = 0; i < 4; i++) {
        opt[i] = (unsigned char)(version >> (24 - 8 * i));
        opt[4 + i] = (unsigned char)(SMTPD_MILTER_ACTIONS >> (24 - 8 * i));
        opt[8 + i] = (unsigned char)(steps >> (24 - 8 * i));
    }
    buf_reset(&m->pkt);
    smtpd_milter_packet(&m->pkt, SMFIC_OPTNEG, opt, sizeof(opt));
    if (smtpd_milter_send(m, c, P_MILTER_CONNECT_TIMEOUT, why) < 0 ||
        smtpd_milter_read(m, c, P_MILTER_CONNECT_TIMEOUT, &r, why) < 0)
        return -1;
    if (r.cmd != SMFIC_OPTNEG) {
        buf_puts(why, "no option negotiation reply");
        return -1;
    }
    if (r.version < 2 || r.version > version) {
        buf_printf(why, "protocol version %u is not supported",
                   (unsigned)r.version);
        return -1;
    }
    if ((r.protocol & ~steps) != 0) {
        buf_printf(why, "asks for protocol options 0x%x we do not offer",
                   (unsigned)(r.protocol & ~steps));
        return -1;
    }
    c->version = r.version;
    c->actions = r.actions & SMTPD_MILTER_ACTIONS;
    c->steps = r.protocol;
    return 0;
}

enum smtpd_milter_verdict
smtpd_milters_connect(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                      buf_t *reply)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        struct smtpd_milter_conn *c = &m->v[i];
        enum smtpd_milter_verdict v;
        buf_t data;
        buf_t why;

        if (!c->on)
            continue;
        buf_init(&why);
        if (smtpd_milter_open(m, c, &why) < 0) {
            v = smtpd_milter_fail(m, c, why.data, reply);
            buf_free(&why);
            if (v == SMTPD_MILTER_REJECT)
                return v;
            continue;
        }
        buf_free(&why);
        if (c->steps & SMFIP_NOCONNECT)
            continue;
        /* Sendmail's convention, which Milters expect: an unknown
         * name is the address in brackets. */
        buf_init(&data);
        if (strcmp(info->client_name, "unknown") == 0)
            buf_printf(&data, "[%s]", info->client_addr);
        else
            buf_puts(&data, info->client_name);
        buf_putc(&data, '\0');
        if (info->family == AF_INET || info->family == AF_INET6) {
            buf_putc(&data, info->family == AF_INET ? '4' : '6');
            buf_putc(&data, (info->client_port >> 8) & 0xff);
            buf_putc(&data, info->client_port & 0xff);
            buf_append(&data, info->client_addr,
                       strlen(info->client_addr) + 1);
        } else {
            buf_putc(&data, 'U');
        }
        v = smtpd_milter_step(m, c, SMFIC_CONNECT, data.data, data.len,
                              SMFIP_NR_CONN, P_MILTER_CONNECT_MACROS,
                              P_MILTER_COMMAND_TIMEOUT, STAGE_CONNECT, info,
                              reply);
        buf_free(&data);
        if (v == SMTPD_MILTER_REJECT)
            return v;
    }
    return SMTPD_MILTER_CONTINUE;
}

enum smtpd_milter_verdict
smtpd_milters_helo(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                   buf_t *reply)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        struct smtpd_milter_conn *c = &m->v[i];
        enum smtpd_milter_verdict v;

        if (!c->on || (c->steps & SMFIP_NOHELO))
            continue;
        v = smtpd_milter_step(m, c, SMFIC_HELO, info->helo,
                              strlen(info->helo) + 1, SMFIP_NR_HELO,
                              P_MILTER_HELO_MACROS, P_MILTER_COMMAND_TIMEOUT,
                              STAGE_HELO, info, reply);
        if (v == SMTPD_MILTER_REJECT)
            return v;
    }
    return SMTPD_MILTER_CONTINUE;
}

void
smtpd_milters_end_transaction(smtpd_milters_t *m)
{
    size_t i;

    if (m == NULL)
        return;
    m->discard = 0;
    for (i = 0; i < m->n; i++)
        m->v[i].skip_message = 0;
}

/* "<addr>" NUL and the ESMTP arguments, each NUL-terminated. */
static void
smtpd_milter_addr_data(buf_t *data, const char *addr,
                       const struct smtpd_milter_info *info)
{
    size_t i;

    buf_printf(data, "<%s>", addr ? addr : "");
    buf_putc(data, '\0');
    for (i = 0; i < info->nargs; i++)
        buf_append(data, info->mail_args[i], strlen(info->mail_args[i]) + 1);
}

/* An envelope event (MAIL or RCPT) to every Milter still asked. */
static enum smtpd_milter_verdict
smtpd_milter_envelope(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                      int cmd, buf_t *reply)
{
    int is_mail = cmd == SMFIC_MAIL;
    enum smtpd_milter_verdict result = SMTPD_MILTER_CONTINUE;
    buf_t data;
    size_t i;

    if (smtpd_milter_sticky(m, reply))
        return SMTPD_MILTER_REJECT;
    buf_init(&data);
    smtpd_milter_addr_data(&data, is_mail ? info->sender : info->rcpt, info);
    for (i = 0; i < m->n && result != SMTPD_MILTER_REJECT; i++) {
        struct smtpd_milter_conn *c = &m->v[i];
        enum smtpd_milter_verdict v;
        buf_t why;

        if (!c->on || c->skip_message)
            continue;
        buf_init(&why);
        if (is_mail && c->in_tx) {
            /* The last transaction ended without its BODYEOB. */
            buf_reset(&m->pkt);
            smtpd_milter_packet(&m->pkt, SMFIC_ABORT, NULL, 0);
            if (smtpd_milter_send(m, c, P_MILTER_COMMAND_TIMEOUT, &why) < 0) {
                result = smtpd_milter_fail(m, c, why.data, reply);
                buf_free(&why);
                continue;
            }
        }
        buf_free(&why);
        if (is_mail)
            c->in_tx = 1;
        if (c->steps & (is_mail ? SMFIP_NOMAIL : SMFIP_NORCPT))
            continue;
        v = smtpd_milter_step(
            m, c, cmd, data.data, data.len,
            is_mail ? SMFIP_NR_MAIL : SMFIP_NR_RCPT,
            is_mail ? P_MILTER_MAIL_MACROS : P_MILTER_RCPT_MACROS,
            P_MILTER_COMMAND_TIMEOUT, is_mail ? STAGE_MESSAGE : STAGE_RCPT,
            info, reply);
        if (v != SMTPD_MILTER_CONTINUE)
            result = v;
    }
    buf_free(&data);
    return result;
}

enum smtpd_milter_verdict
smtpd_milters_mail(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                   buf_t *reply)
{
    smtpd_milters_end_transaction(m);
    return smtpd_milter_envelope(m, info, SMFIC_MAIL, reply);
}

enum smtpd_milter_verdict
smtpd_milters_rcpt(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                   buf_t *reply)
{
    enum smtpd_milter_verdict v =
        smtpd_milter_envelope(m, info, SMFIC_RCPT, reply);

    /* A DISCARD at RCPT is for the whole message, which is accepted. */
    return v == SMTPD_MILTER_DISCARD ? SMTPD_MILTER_CONTINUE : v;
}

/* Take a modification reply at the end of the message into edits.
 * Returns 1 for a modification, 0 for a final reply. */
static int
smtpd_milter_edit(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                  const struct smtpd_milter_reply *r, cleanup_edits_t *edits)
{
    static const struct {
        int cmd;
        uint32_t action;
        int op; /* enum cleanup_edit_op, or -1 */
    } mods[] = {
        {SMFIR_ADDHEADER, SMFIF_ADDHDRS, CLEANUP_EDIT_ADD_HEADER},
        {SMFIR_INSHEADER, SMFIF_ADDHDRS, CLEANUP_EDIT_INS_HEADER},
        {SMFIR_CHGHEADER, SMFIF_CHGHDRS, CLEANUP_EDIT_CHG_HEADER},
        {SMFIR_ADDRCPT, SMFIF_ADDRCPT, CLEANUP_EDIT_ADD_RCPT},
        {SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR, CLEANUP_EDIT_ADD_RCPT},
        {SMFIR_DELRCPT, SMFIF_DELRCPT, CLEANUP_EDIT_DEL_RCPT},
        {SMFIR_CHGFROM, SMFIF_CHGFROM, CLEANUP_EDIT_CHG_FROM},
        {SMFIR_REPLBODY, SMFIF_CHGBODY, -1},
        {SMFIR_QUARANTINE, SMFIF_QUARANTINE, -1},
    };
    size_t i;

    for (i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
        if (mods[i].cmd == r->cmd)
            break;
    if (i == sizeof(mods) / sizeof(mods[0]))
        return 0;
    if (!(c->actions & mods[i].action)) {
        msg_warn("milter %s: modification 0x%02x it did not negotiate; "
                 "ignored", c->service, (unsigned)r->cmd & 0xff);
        return 1;
    }
    if (r->cmd == SMFIR_REPLBODY) {
        if (!edits->replace_body)
            buf_reset(&edits->body);
        edits->replace_body = 1;
        buf_append(&edits->body, r->body, r->body_len);
    } else if (r->cmd == SMFIR_QUARANTINE) {
        edits->hold = 1;
        envelope_set(&edits->hold_reason, r->name);
    } else {
        /* In header replies the index counts from 1; INSHEADER's
         * counts positions from 0, the top. */
        cleanup_edits_add(edits, (enum cleanup_edit_op)mods[i].op, r->index,
                          r->name,
                          mods[i].op <= CLEANUP_EDIT_CHG_HEADER ? r->value
                                                                : NULL);
    }
    return 1;
}

/* The headers of msg, one SMFIC_HEADER each; returns where the body
 * begins (past the empty line), or with a verdict in *v. */
static size_t
smtpd_milter_headers(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                     const struct smtpd_milter_info *info, const char *msg,
                     size_t len, enum smtpd_milter_verdict *v, buf_t *reply)
{
    buf_t data;
    size_t pos = 0;
    size_t hlen;
    size_t name;

    buf_init(&data);
    while ((hlen = cleanup_edits_header(msg, len, pos, &name)) > 0) {
        size_t vpos = pos + name + 1;
        size_t vend = pos + hlen;

        if (!(c->steps & SMFIP_HDR_LEADSPC))
            while (vpos < vend && (msg[vpos] == ' ' || msg[vpos] == '\t'))
                vpos++;
        if (vend > vpos && msg[vend - 1] == '\n')
            vend--;
        pos += hlen;
        if (*v != SMTPD_MILTER_CONTINUE || (c->steps & SMFIP_NOHDRS) ||
            !c->on || c->skip_message)
            continue;
        buf_reset(&data);
        buf_append(&data, msg + pos - hlen, name);
        buf_putc(&data, '\0');
        buf_append(&data, msg + vpos, vend > vpos ? vend - vpos : 0);
        buf_putc(&data, '\0');
        *v = smtpd_milter_step(m, c, SMFIC_HEADER, data.data, data.len,
                               SMFIP_NR_HDR, P_COUNT, P_MILTER_CONTENT_TIMEOUT,
                               STAGE_MESSAGE, info, reply);
    }
    buf_free(&data);
    if (pos < len && msg[pos] == '\n')
        pos++;
    return pos;
}

/* The body from msg + pos in CRLF chunks. */
static enum smtpd_milter_verdict
smtpd_milter_body(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                  const struct smtpd_milter_info *info, const char *msg,
                  size_t len, size_t pos, buf_t *reply)
{
    enum smtpd_milter_verdict v = SMTPD_MILTER_CONTINUE;
    buf_t chunk;

    buf_init(&chunk);
    c->skip_body = 0;
    while (pos < len && v == SMTPD_MILTER_CONTINUE && c->on &&
           !c->skip_message && !c->skip_body) {
        buf_reset(&chunk);
        while (pos < len && chunk.len < SMTPD_MILTER_CHUNK - 1) {
            if (msg[pos] == '\n')
                buf_putc(&chunk, '\r');
            buf_putc(&chunk, msg[pos++]);
        }
        v = smtpd_milter_step(m, c, SMFIC_BODY, chunk.data, chunk.len,
                              SMFIP_NR_BODY, P_COUNT, P_MILTER_CONTENT_TIMEOUT,
                              STAGE_MESSAGE, info, reply);
    }
    buf_free(&chunk);
    return v;
}

/* BODYEOB and the replies up to the final one. */
static enum smtpd_milter_verdict
smtpd_milter_eom(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                 const struct smtpd_milter_info *info, cleanup_edits_t *edits,
                 buf_t *reply)
{
    struct smtpd_milter_reply r;
    buf_t why;

    buf_init(&why);
    if (smtpd_milter_macros(m, c, SMFIC_BODYEOB, P_MILTER_END_OF_DATA_MACROS,
                            info, &why) < 0)
        goto fail;
    buf_reset(&m->pkt);
    smtpd_milter_packet(&m->pkt, SMFIC_BODYEOB, NULL, 0);
    if (smtpd_milter_send(m, c, P_MILTER_CONTENT_TIMEOUT, &why) < 0)
        goto fail;
    for (;;) {
        if (smtpd_milter_read(m, c, P_MILTER_CONTENT_TIMEOUT, &r, &why) < 0)
            goto fail;
        if (!smtpd_milter_edit(m, c, &r, edits))
            break;
    }
    buf_free(&why);
    c->in_tx = 0;
    return smtpd_milter_verdict(m, c, STAGE_EOM, &r, reply);
fail:
    {
        enum smtpd_milter_verdict v = smtpd_milter_fail(m, c, why.data, reply);

        buf_free(&why);
        return v;
    }
}

/* The message to one Milter. */
static enum smtpd_milter_verdict
smtpd_milter_message(smtpd_milters_t *m, struct smtpd_milter_conn *c,
                     const struct smtpd_milter_info *info, const char *msg,
                     size_t len, cleanup_edits_t *edits, buf_t *reply)
{
    enum smtpd_milter_verdict v = SMTPD_MILTER_CONTINUE;
    size_t body;

    if (!(c->steps & SMFIP_NODATA))
        v = smtpd_milter_step(m, c, SMFIC_DATA, NULL, 0, SMFIP_NR_DATA,
                              P_MILTER_DATA_MACROS, P_MILTER_COMMAND_TIMEOUT,
                              STAGE_MESSAGE, info, reply);
    if (v != SMTPD_MILTER_CONTINUE || !c->on || c->skip_message)
        return v;
    body = smtpd_milter_headers(m, c, info, msg, len, &v, reply);
    if (v != SMTPD_MILTER_CONTINUE || !c->on || c->skip_message)
        return v;
    if (!(c->steps & SMFIP_NOEOH))
        v = smtpd_milter_step(m, c, SMFIC_EOH, NULL, 0, SMFIP_NR_EOH,
                              P_MILTER_END_OF_HEADER_MACROS,
                              P_MILTER_CONTENT_TIMEOUT, STAGE_MESSAGE, info,
                              reply);
    if (v != SMTPD_MILTER_CONTINUE || !c->on || c->skip_message)
        return v;
    if (!(c->steps & SMFIP_NOBODY))
        v = smtpd_milter_body(m, c, info, msg, len, body, reply);
    if (v != SMTPD_MILTER_CONTINUE || !c->on || c->skip_message)
        return v;
    return smtpd_milter_eom(m, c, info, edits, reply);
}

enum smtpd_milter_verdict
smtpd_milters_message(smtpd_milters_t *m, const struct smtpd_milter_info *info,
                      const char *msg, size_t len, cleanup_edits_t *edits,
                      buf_t *reply)
{
    enum smtpd_milter_verdict v = SMTPD_MILTER_CONTINUE;
    size_t i;

    if (smtpd_milter_sticky(m, reply))
        return SMTPD_MILTER_REJECT;
    for (i = 0; i < m->n && v == SMTPD_MILTER_CONTINUE && !m->discard; i++) {
        struct smtpd_milter_conn *c = &m->v[i];

        if (!c->on || c->skip_message)
            continue;
        v = smtpd_milter_message(m, c, info, msg, len, edits, reply);
    }
    if (m->hold && !edits->hold) {
        edits->hold = 1;
        envelope_set(&edits->hold_reason, "milter_default_action");
    }
    if (m->discard && v != SMTPD_MILTER_REJECT)
        return SMTPD_MILTER_DISCARD;
    return v;
}
