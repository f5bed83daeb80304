/* SPDX-License-Identifier: ISC */
/*
 * bounce: delivery status notifications as RFC 3464 reports.
 *
 * A notice is multipart/report; report-type=delivery-status (RFC 6522)
 * with three parts: a text for people, the message/delivery-status part
 * (per-message fields, then one block per recipient: Final-Recipient,
 * Original-Recipient when the sender gave ORCPT, Action, Status,
 * Remote-MTA and Diagnostic-Code when a server answered), and the
 * original: the whole message (message/rfc822) for a failure unless the
 * sender asked RET=HDRS or it is larger than bounce_size_limit, else
 * its headers (text/rfc822-headers), as Postfix does.  Delay warnings
 * and success notices carry the headers only.
 *
 * The reasons are those the delivery agents logged.  An SMTP server's
 * refusal is worded "host NAME[ADDR] said: REPLY (in reply to X
 * command)"; that is taken apart into Remote-MTA: dns; NAME and
 * Diagnostic-Code: smtp; REPLY.  Other reasons become
 * Diagnostic-Code: X-Tern; REASON.
 *
 * Flow and guarantees: the notice is handed to cleanup like a local
 * submission from the null sender, and bounce_send returns only when it
 * is durable in the queue, so the caller may then record the
 * recipients as done.  A crash in between sends the notice again.
 *
 * Threads: called from delivery workers; keeps no state of its own.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver/bounce.h"
#include "deliver/delivery.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/queue_id.h"

#define BOUNCE_FIELD_MAX 900

static void
bounce_date(int64_t us, char *out, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Length of the header block of msg, without the empty line. */
static size_t
bounce_header_len(const char *msg, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (msg + pos)) : len - pos;

        if (llen == 0)
            return pos;
        pos += llen + (nl != NULL);
    }
    return pos;
}

/* Append s with CR and LF replaced by spaces, at most max bytes: a
 * reason from the network must not break the report's fields. */
static void
bounce_put_field(buf_t *out, const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] && i < max; i++)
        buf_putc(out, s[i] == '\r' || s[i] == '\n' ? ' ' : s[i]);
}

/* Split "host NAME[ADDR] said: REPLY (in reply to X command)". */
static int
bounce_split_reason(const char *reason, char *mta, size_t mtalen,
                    const char **reply, size_t *replylen)
{
    const char *p;
    const char *lb;
    const char *said;
    const char *tail;

    if (strncmp(reason, "host ", 5) != 0)
        return 0;
    p = reason + 5;
    said = strstr(p, "] said: ");
    lb = said ? memchr(p, '[', (size_t)(said - p)) : NULL;
    if (lb == NULL || (size_t)(lb - p) >= mtalen)
        return 0;
    snprintf(mta, mtalen, "%.*s", (int)(lb - p), p);
    *reply = said + 8;
    tail = strstr(*reply, " (in reply to ");
    *replylen = tail ? (size_t)(tail - *reply) : strlen(*reply);
    return 1;
}

static void
bounce_text_part(const config_t *cfg, const envelope_t *env,
                 enum bounce_kind kind, const struct bounce_rcpt *rcpts,
                 size_t n, buf_t *out)
{
    const char *host = config_str(cfg, P_MYHOSTNAME);
    size_t i;

    buf_printf(out, "Content-Description: Notification\n"
                    "Content-Type: text/plain; charset=utf-8\n\n"
                    "This is the mail system at host %s.\n\n",
               host);
    switch (kind) {
    case BOUNCE_FAILED:
        buf_puts(out, "I'm sorry to have to inform you that your message "
                      "could not\nbe delivered to one or more recipients. "
                      "It's attached below.\n\n"
                      "For further assistance, please send mail to "
                      "postmaster.\n\n"
                      "If you do so, please include this problem report. "
                      "You can\ndelete your own text from the attached "
                      "returned message.\n\n");
        break;
    case BOUNCE_DELAYED:
        buf_puts(out, "####################################################"
                      "################\n"
                      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
                      "YOUR MESSAGE. #\n"
                      "####################################################"
                      "################\n\n"
                      "Your message could not be delivered for more than "
                      "some time.\nIt will be retried until it is too old; "
                      "then it is returned to you.\n\n");
        break;
    case BOUNCE_DELIVERED:
        buf_puts(out, "Your message was successfully delivered to the "
                      "destination(s)\nlisted below. If the message was "
                      "delivered to mailbox you will\nreceive no further "
                      "notifications. Otherwise you may still receive\n"
                      "notifications of mail delivery errors from other "
                      "systems.\n\n");
        break;
    }
    buf_printf(out, "                   The mail system\n\n");
    for (i = 0; i < n; i++) {
        buf_printf(out, "<%s>: ", rcpts[i].rcpt->addr);
        bounce_put_field(out, rcpts[i].reason, BOUNCE_FIELD_MAX);
        buf_puts(out, "\n\n");
    }
    (void)env;
}

static void
bounce_status_part(const config_t *cfg, const envelope_t *env,
                   const struct bounce_rcpt *rcpts, size_t n, buf_t *out)
{
    char date[64];
    size_t i;

    bounce_date(env->arrival_us, date, sizeof(date));
    buf_printf(out, "Content-Description: Delivery report\n"
                    "Content-Type: message/delivery-status\n\n"
                    "Reporting-MTA: dns; %s\n"
                    "X-Tern-Queue-ID: %s\n"
                    "X-Tern-Sender: rfc822; %s\n",
               config_str(cfg, P_MYHOSTNAME), env->id, env->sender);
    if (env->envid) {
        buf_puts(out, "Original-Envelope-Id: ");
        bounce_put_field(out, env->envid, BOUNCE_FIELD_MAX);
        buf_putc(out, '\n');
    }
    buf_printf(out, "Arrival-Date: %s\n", date);
    for (i = 0; i < n; i++) {
        const struct bounce_rcpt *r = &rcpts[i];
        const char *reply;
        size_t replylen;
        char mta[256];

        buf_printf(out, "\nFinal-Recipient: rfc822; %s\n", r->rcpt->addr);
        if (r->rcpt->orcpt) {
            buf_puts(out, "Original-Recipient: ");
            bounce_put_field(out, r->rcpt->orcpt, BOUNCE_FIELD_MAX);
            buf_putc(out, '\n');
        }
        buf_printf(out, "Action: %s\nStatus: %s\n", r->action,
                   r->dsn[0] ? r->dsn
                   : strcmp(r->action, "failed") == 0  ? "5.0.0"
                   : strcmp(r->action, "delayed") == 0 ? "4.0.0"
                                                       : "2.0.0");
        if (bounce_split_reason(r->reason, mta, sizeof(mta), &reply,
                                &replylen)) {
            buf_printf(out, "Remote-MTA: dns; %s\nDiagnostic-Code: smtp; ",
                       mta);
            bounce_put_field(out, reply,
                             replylen < BOUNCE_FIELD_MAX ? replylen
                                                         : BOUNCE_FIELD_MAX);
            buf_putc(out, '\n');
        } else if (r->reason[0]) {
            buf_puts(out, "Diagnostic-Code: X-Tern; ");
            bounce_put_field(out, r->reason, BOUNCE_FIELD_MAX);
            buf_putc(out, '\n');
        }
    }
}

void
bounce_build(const config_t *cfg, const envelope_t *env,
             enum bounce_kind kind, const struct bounce_rcpt *rcpts,
             size_t n, const char *msg, size_t len, buf_t *out)
{
    const char *host = config_str(cfg, P_MYHOSTNAME);
    size_t limit = (size_t)config_num(cfg, P_BOUNCE_SIZE_LIMIT);
    size_t hlen = bounce_header_len(msg, len);
    int full = kind == BOUNCE_FAILED && env->ret != DSN_RET_HDRS &&
               len <= limit;
    char boundary[128];
    const char *subject;
    int eight = 0;
    size_t i;

    for (i = 0; i < (full ? len : hlen); i++)
        if ((unsigned char)msg[i] >= 0x80) {
            eight = 1;
            break;
        }
    snprintf(boundary, sizeof(boundary), "%s.%lld/%s", env->id,
             (long long)time(NULL), host);
    subject = kind == BOUNCE_FAILED    ? "Undelivered Mail Returned to Sender"
              : kind == BOUNCE_DELAYED ? "Delayed Mail (still being retried)"
                                       : "Successful Mail Delivery Report";
    buf_printf(out,
               "From: MAILER-DAEMON@%s (Mail Delivery System)\n"
               "To: %s\n"
               "Subject: %s\n"
               "Auto-Submitted: auto-replied\n"
               "MIME-Version: 1.0\n"
               "Content-Type: multipart/report; report-type=delivery-status;"
               "\n\tboundary=\"%s\"\n",
               host, env->sender, subject, boundary);
    if (eight)
        buf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    buf_printf(out, "\nThis is a MIME-encapsulated message.\n\n--%s\n",
               boundary);
    bounce_text_part(cfg, env, kind, rcpts, n, out);
    buf_printf(out, "--%s\n", boundary);
    bounce_status_part(cfg, env, rcpts, n, out);
    buf_printf(out, "\n--%s\n", boundary);
    if (full) {
        buf_printf(out, "Content-Description: Undelivered Message\n"
                        "Content-Type: message/rfc822\n%s\n",
                   eight ? "Content-Transfer-Encoding: 8bit\n" : "");
        buf_append(out, msg, len);
    } else {
        buf_printf(out, "Content-Description: %s\n"
                        "Content-Type: text/rfc822-headers\n%s\n",
                   kind == BOUNCE_FAILED ? "Undelivered Message Headers"
                                         : "Message Headers",
                   eight ? "Content-Transfer-Encoding: 8bit\n" : "");
        buf_append(out, msg, hlen);
        if (hlen > 0 && msg[hlen - 1] != '\n')
            buf_putc(out, '\n');
    }
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        buf_putc(out, '\n');
    buf_printf(out, "\n--%s--\n", boundary);
}

int
bounce_send(cleanup_t *c, store_t *store, const config_t *cfg,
            const envelope_t *env, enum bounce_kind kind,
            const struct bounce_rcpt *rcpts, size_t n,
            char newid[QUEUE_ID_SIZE])
{
    cleanup_req_t *req;
    buf_t body;

    newid[0] = '\0';
    if (env->sender[0] == '\0' || n == 0)
        return 1;
    buf_init(&body);
    if (store_get_body(store, env->id, &body) < 0) {
        buf_free(&body);
        return -1;
    }
    req = mem_calloc(1, sizeof(*req));
    req->env = envelope_new();
    queue_id_new(req->env->id);
    envelope_add_rcpt(req->env, env->sender);
    envelope_set(&req->env->protocol, "LOCAL");
    req->env->body_8bit = env->body_8bit;
    req->env->smtputf8 = env->smtputf8;
    buf_init(&req->msg);
    bounce_build(cfg, env, kind, rcpts, n, body.data ? body.data : "",
                 body.len, &req->msg);
    buf_free(&body);
    req->cfg = config_ref((config_t *)cfg);
    req->local = 1;
    req->internal = 1;
    snprintf(newid, QUEUE_ID_SIZE, "%s", req->env->id);
    if (delivery_submit_wait(c, req) < 0) {
        newid[0] = '\0';
        return -1;
    }
    return 0;
}
