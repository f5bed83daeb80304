/* SPDX-License-Identifier: ISC */
/*
 * cleanup: content checks, address rewriting, header processing and the
 * commit of new messages.
 *
 * A worker turns a request into the stored message in one pass:
 *   0. The edits smtpd's Milters asked for (cleanup_edit): headers
 *      added, inserted, changed or deleted, the body replaced,
 *      recipients added or removed, the sender changed, the message
 *      held.  They refer to the message as the Milters saw it, so they
 *      come before everything else below, which then treats the edited
 *      message as if it had been received that way.
 *   1. message_size_limit (smtpd enforces it on the wire already; this
 *      is the check for local submissions, which have no wire).
 *   2. The envelope sender is rewritten (cleanup_rewrite: @$myorigin,
 *      canonical maps, masquerading).
 *   3. The header block: the headers smtpd's restrictions PREPENDed,
 *      our Received: header (RFC 5321 section 4.4), then the headers
 *      as received.  Each logical header is held to header_size_limit
 *      (refused, not truncated), looked up once in
 *      header_checks, or mime_header_checks for MIME-Version: and
 *      Content-*: (cleanup_checks), left out if message_drop_headers
 *      names it, and for local submissions its addresses are rewritten.
 *      Message-ID: and Date: are added at the end of the block when the
 *      message lacks them (RFC 5322 section 3.6 requires Date, and
 *      Postfix adds both), and From: for a local submission without
 *      one.
 *   4. The body, each line looked up in body_checks up to
 *      body_checks_size_limit bytes.  Its MIME structure is followed
 *      (cleanup_mime) unless disable_mime_input_processing is set: the
 *      headers of body parts and attached messages go to
 *      mime_header_checks (MIME headers) or nested_header_checks (the
 *      others) instead, all the way through, both defaulting to
 *      $header_checks so that a rule for attachments in header_checks
 *      sees them, as in Postfix.  With none of these tables the body is
 *      copied whole without looking at its lines.
 *   5. The recipients, with always_bcc, sender_bcc_maps and
 *      recipient_bcc_maps added: rewritten, then expanded by
 *      virtual_alias_maps;
 *      a recipient that changed keeps its original address as its DSN
 *      ORCPT when it had none, which is what delivery logs as orig_to.
 *      A REDIRECT replaces them all.
 *   6. content_filter (or a FILTER action): the envelope names the filter
 *      every recipient goes to first, unless the message is the
 *      server's own or comes back from the filter (a listener with the
 *      "nofilter" option).
 * A REJECT, a size limit or a failed virtual expansion ends the request
 * with its reply and nothing is written; a DISCARD ends it as if it had
 * been queued; a HOLD queues it in the hold state, where the qmgr does
 * not look.  smtpd's restrictions may have asked for HOLD, DISCARD or
 * REDIRECT already (the request says so); header_checks may add to that,
 * and a REDIRECT of theirs wins, being the later one.
 *
 * Headers are rewritten only for local submissions, as Postfix does
 * with its default local_header_rewrite_clients (permit_inet_interfaces):
 * mail from SMTP clients keeps its headers as they were written, while
 * its envelope is rewritten like any other.
 *
 * It then hands one batch (envelope, content, schedule key) to the store
 * and returns to the pool without waiting: the store's committer calls
 * back when the batch is synced, and that callback completes the request
 * and wakes delivery.  Many workers' batches thus share one fsync.
 *
 * A crash before the callback leaves either nothing (the batch was not
 * written; the client got no 250 and will retry) or the whole message
 * (written, the 250 perhaps not sent: delivered, maybe twice).
 */
#include "autoconf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"
#include "queue/cleanup.h"
#include "queue/cleanup_checks.h"
#include "queue/cleanup_mime.h"
#include "queue/cleanup_rewrite.h"

#define CLEANUP_QUEUE_MAX 4096

struct cleanup {
    store_t *store;
    pool_t *pool;
    cleanup_notify_fn notify;
    void *notify_arg;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    size_t in_flight; /* commits whose completion has not yet run */
};

struct cleanup_commit {
    cleanup_t *c;
    cleanup_req_t *req;
};

/* One message on its way through a worker. */
struct cleanup_state {
    cleanup_req_t *req;
    const config_t *cfg;
    envelope_t *env;
    cleanup_checks_t checks;
    table_t *const *header_checks;
    table_t *const *mime_header_checks;
    table_t *const *nested_header_checks;
    table_t *const *body_checks;
    int mime;             /* follow the MIME structure */
    cleanup_mime_t parts; /* where in it we are */
    size_t header_limit;
    int rewrite_headers;
    int has_mid;
    int has_date;
    int has_from;
    buf_t *out;
    buf_t prepend;
    buf_t replace;
    buf_t rewritten;
};

/* RFC 5322 date-time for t. */
static void
cleanup_date(time_t t, char *out, size_t len)
{
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Take the message ID from a Message-ID: header, for the log. */
static void
cleanup_note_mid(struct cleanup_state *st, const char *hdr, size_t len)
{
    const char *v = hdr + 11;
    const char *ve = hdr + len;

    while (v < ve && isspace((unsigned char)*v))
        v++;
    if (v < ve && *v == '<')
        v++;
    while (ve > v && (ve[-1] == '>' || isspace((unsigned char)ve[-1])))
        ve--;
    envelope_set(&st->env->message_id, NULL);
    st->env->message_id = mem_strndup(v, (size_t)(ve - v));
    msg_info("%s: message-id=<%s>", st->env->id, st->env->message_id);
}

/* Nonzero if message_drop_headers names the header: Postfix removes
 * Bcc: (the recipients must not see it), Content-Length: (wrong once
 * the message is rewritten) and Return-Path: (final delivery adds the
 * true one). */
static int
cleanup_header_dropped(const struct cleanup_state *st, const char *hdr,
                       size_t len)
{
    char *const *names = config_list(st->cfg, P_MESSAGE_DROP_HEADERS, NULL);
    size_t i;

    for (i = 0; names && names[i]; i++)
        if (cleanup_mime_named(hdr, len, names[i]))
            return 1;
    return 0;
}

/* A logical header through header_size_limit and the check tables of
 * param; what they prepend goes to out.  Returns 1 with *hdr and *len
 * the header to keep (perhaps replaced), 0 when it is left out or the
 * message is refused. */
static int
cleanup_header_check(struct cleanup_state *st, table_t *const *tables,
                     const char *param, const char **hdr, size_t *len)
{
    enum cleanup_checks_verdict v;

    if (st->header_limit > 0 && *len > st->header_limit) {
        cleanup_checks_reject(&st->checks, 552, "header", *hdr, *len,
                              "5.3.4 Message header size exceeds limit");
        return 0;
    }
    buf_reset(&st->prepend);
    buf_reset(&st->replace);
    v = cleanup_checks_apply(&st->checks, tables, param, "header", *hdr,
                             *len, &st->prepend, &st->replace);
    if (st->checks.stop)
        return 0;
    buf_append(st->out, st->prepend.data, st->prepend.len);
    if (v == CLEANUP_CHECKS_DROP)
        return 0;
    if (v == CLEANUP_CHECKS_REPLACE) {
        *hdr = st->replace.data;
        *len = st->replace.len;
    }
    return 1;
}

/* One logical header, without its final newline: limits, checks,
 * dropped names, rewriting, then out. */
static void
cleanup_header(struct cleanup_state *st, const char *hdr, size_t len)
{
    int is_mime = st->mime && cleanup_mime_is_mime_header(hdr, len);

    if (st->mime)
        cleanup_mime_header(&st->parts, hdr, len);
    if (!cleanup_header_check(st,
                              is_mime ? st->mime_header_checks
                                      : st->header_checks,
                              is_mime ? "mime_header_checks" : "header_checks",
                              &hdr, &len))
        return;
    if (cleanup_header_dropped(st, hdr, len))
        return;
    buf_reset(&st->rewritten);
    if (st->rewrite_headers &&
        cleanup_rewrite_header(st->cfg, hdr, len, &st->rewritten)) {
        hdr = st->rewritten.data;
        len = st->rewritten.len;
    }
    if (!st->has_mid && cleanup_mime_named(hdr, len, "Message-ID")) {
        st->has_mid = 1;
        cleanup_note_mid(st, hdr, len);
    }
    if (cleanup_mime_named(hdr, len, "Date"))
        st->has_date = 1;
    if (cleanup_mime_named(hdr, len, "From"))
        st->has_from = 1;
    buf_append(st->out, hdr, len);
    buf_putc(st->out, '\n');
}

/* The Received: header, as the first header of the message. */
static void
cleanup_received(struct cleanup_state *st, const char *date)
{
    envelope_t *env = st->env;
    const config_t *cfg = st->cfg;
    const char *host = config_str(cfg, P_MYHOSTNAME);
    buf_t r;

    buf_init(&r);
    if (st->req->local) {
        buf_printf(&r, "Received: by %s (%s)\n\tid %s; %s", host,
                   config_str(cfg, P_MAIL_NAME), env->id, date);
    } else {
        /* RFC 5321 section 4.1.3: IPv6 address literals say so. */
        buf_printf(&r, "Received: from %s (%s [%s%s])\n",
                   env->helo ? env->helo : "unknown",
                   env->client_name ? env->client_name : "unknown",
                   env->client_addr && strchr(env->client_addr, ':')
                       ? "IPv6:" : "",
                   env->client_addr ? env->client_addr : "unknown");
        if (st->req->tls_info &&
            config_num(cfg, P_SMTPD_TLS_RECEIVED_HEADER))
            buf_printf(&r, "\t(using %s)\n", st->req->tls_info);
        buf_printf(&r, "\tby %s (%s) with %s id %s", host,
                   config_str(cfg, P_MAIL_NAME),
                   env->protocol ? env->protocol : "SMTP", env->id);
        /* Postfix names the recipient only when there is just one, so
         * that a Bcc list is not disclosed. */
        if (env->nrcpt == 1)
            buf_printf(&r, "\n\tfor <%s>", env->rcpts[0].addr);
        buf_printf(&r, "; %s", date);
    }
    cleanup_header(st, r.data, r.len);
    buf_free(&r);
}

/* From: for a local submission that has none, from the envelope
 * sender and the full name sendmail -F gave. */
static void
cleanup_add_from(struct cleanup_state *st)
{
    const char *sender = st->env->sender;
    const char *name = st->req->fullname;
    const char *p;

    buf_puts(st->out, "From: ");
    if (name && *name && *sender) {
        /* A name with specials goes in quotes (RFC 5322 section 3.2.5);
         * line breaks would end the header, so they become spaces. */
        int quote = strpbrk(name, "()<>[]:;@\\,.\"") != NULL;

        if (quote)
            buf_putc(st->out, '"');
        for (p = name; *p; p++) {
            if (*p == '\r' || *p == '\n')
                buf_putc(st->out, ' ');
            else if (quote && (*p == '"' || *p == '\\'))
                buf_printf(st->out, "\\%c", *p);
            else
                buf_putc(st->out, *p);
        }
        if (quote)
            buf_putc(st->out, '"');
        buf_printf(st->out, " <%s>\n", sender);
    } else if (*sender) {
        buf_printf(st->out, "%s\n", sender);
    } else {
        buf_printf(st->out, "MAILER-DAEMON@%s\n",
                   config_str(st->cfg, P_MYORIGIN));
    }
}

/* One body line of llen bytes (nl: a newline follows it in the
 * message) through body_checks, then out. */
static void
cleanup_body_line(struct cleanup_state *st, const char *line, size_t llen,
                  int nl)
{
    enum cleanup_checks_verdict v;

    buf_reset(&st->prepend);
    buf_reset(&st->replace);
    v = cleanup_checks_apply(&st->checks, st->body_checks, "body_checks",
                             "body", line, llen, &st->prepend, &st->replace);
    buf_append(st->out, st->prepend.data, st->prepend.len);
    if (v == CLEANUP_CHECKS_REPLACE) {
        buf_append(st->out, st->replace.data, st->replace.len);
        buf_putc(st->out, '\n');
    } else if (v == CLEANUP_CHECKS_KEEP) {
        buf_append(st->out, line, llen + (nl != 0));
    }
}

/* One logical header of a body part or an attached message: the size
 * limit, mime_header_checks or nested_header_checks, then out. */
static void
cleanup_part_header(struct cleanup_state *st, const char *hdr, size_t len)
{
    int is_mime = cleanup_mime_is_mime_header(hdr, len);

    cleanup_mime_header(&st->parts, hdr, len);
    if (!cleanup_header_check(
            st, is_mime ? st->mime_header_checks : st->nested_header_checks,
            is_mime ? "mime_header_checks" : "nested_header_checks", &hdr,
            &len))
        return;
    buf_append(st->out, hdr, len);
    buf_putc(st->out, '\n');
}

/* Nonzero if the line starts a header: a name of printable characters
 * and a colon. */
static int
cleanup_is_header_line(const char *line, size_t llen)
{
    size_t n = 0;

    while (n < llen && line[n] != ':' && line[n] > 32 && line[n] < 127)
        n++;
    return n > 0 && n < llen && line[n] == ':';
}

/* The end of the primary headers or of a part's: refuse nesting past
 * mime_nesting_limit, as Postfix does, rather than leave deeper parts
 * unchecked. */
static void
cleanup_part_headers_end(struct cleanup_state *st)
{
    cleanup_mime_headers_end(&st->parts);
    if (st->parts.too_deep && !st->checks.stop)
        cleanup_checks_reject(&st->checks, 552, NULL, NULL, 0,
                              "5.6.0 Message content rejected: MIME nesting "
                              "exceeds safety limit");
}

/* The body from msg + pos on: body_checks up to body_checks_size_limit,
 * and when the MIME structure is followed, the headers of parts and
 * attached messages through their checks all the way to the end. */
static void
cleanup_body(struct cleanup_state *st, size_t pos)
{
    const char *msg = st->req->msg.data;
    size_t len = st->req->msg.len;
    size_t limit = (size_t)config_num(st->cfg, P_BODY_CHECKS_SIZE_LIMIT);
    int body_checks = st->body_checks && st->body_checks[0];
    int parts = st->mime && ((st->mime_header_checks &&
                              st->mime_header_checks[0]) ||
                             (st->nested_header_checks &&
                              st->nested_header_checks[0]));
    size_t seen = 0;
    buf_t hdr;

    buf_init(&hdr);
    while (pos < len && !st->checks.stop &&
           (parts || (body_checks && seen < limit))) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        size_t next = pos + llen + (nl != NULL);

        if (parts && st->parts.in_headers) {
            if (hdr.len > 0 && llen > 0 && (line[0] == ' ' || line[0] == '\t')) {
                buf_putc(&hdr, '\n');
                buf_append(&hdr, line, llen);
                pos = next;
                continue;
            }
            if (hdr.len > 0) {
                cleanup_part_header(st, hdr.data, hdr.len);
                buf_reset(&hdr);
                if (st->checks.stop)
                    break;
            }
            if (llen == 0) {
                cleanup_part_headers_end(st);
                buf_putc(st->out, '\n');
                pos = next;
                continue;
            }
            if (cleanup_is_header_line(line, llen)) {
                buf_append(&hdr, line, llen);
                pos = next;
                continue;
            }
            /* Not a header: the block ended without its empty line. */
            cleanup_part_headers_end(st);
            if (st->checks.stop)
                break;
        }
        if (parts)
            cleanup_mime_body_line(&st->parts, line, llen);
        if (body_checks && seen < limit)
            cleanup_body_line(st, line, llen, nl != NULL);
        else
            buf_append(st->out, line, llen + (nl != NULL));
        seen += llen + 1;
        pos = next;
    }
    if (hdr.len > 0 && !st->checks.stop)
        cleanup_part_header(st, hdr.data, hdr.len);
    buf_free(&hdr);
    if (pos < len && !st->checks.stop)
        buf_append(st->out, msg + pos, len - pos);
}

/* The headers that smtpd's restrictions PREPENDed, above our Received:
 * as in Postfix, each through the checks like any other header. */
static void
cleanup_prepended(struct cleanup_state *st)
{
    const char *p = st->req->prepend;

    while (p && *p && !st->checks.stop) {
        size_t len = strcspn(p, "\n");

        cleanup_header(st, p, len);
        p += len + (p[len] == '\n');
    }
}

/* Build the stored form of the message into out; st->checks says
 * whether it is to be kept. */
static void
cleanup_build(struct cleanup_state *st)
{
    envelope_t *env = st->env;
    const char *msg = st->req->msg.data ? st->req->msg.data : "";
    size_t len = st->req->msg.len;
    buf_t *out = st->out;
    char date[64];
    size_t pos = 0;
    size_t hlen;
    time_t now = time(NULL);

    cleanup_date(now, date, sizeof(date));
    buf_reserve(out, len + 512);
    cleanup_prepended(st);
    cleanup_received(st, date);
    while (!st->checks.stop && (hlen = cleanup_mime_header_len(msg, len, pos))) {
        size_t body = hlen - (msg[pos + hlen - 1] == '\n');

        cleanup_header(st, msg + pos, body);
        pos += hlen;
    }
    if (st->checks.stop)
        return;
    if (!st->has_mid) {
        struct tm tm;
        char stamp[32];

        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        envelope_set(&env->message_id, NULL);
        env->message_id = mem_printf("%s.%s@%s", stamp, env->id,
                                     config_str(st->cfg, P_MYHOSTNAME));
        buf_printf(out, "Message-ID: <%s>\n", env->message_id);
        msg_info("%s: message-id=<%s>", env->id, env->message_id);
    }
    if (!st->has_date)
        buf_printf(out, "Date: %s\n", date);
    if (st->req->local && !st->has_from)
        cleanup_add_from(st);
    buf_putc(out, '\n');
    /* The empty line that ended the headers has been written. */
    if (pos < len && msg[pos] == '\n')
        pos++;
    if (st->mime)
        cleanup_part_headers_end(st);
    if (!st->checks.stop)
        cleanup_body(st, pos);
    /* Every stored line ends in a newline, the last one too. */
    if (!st->checks.stop && out->data[out->len - 1] != '\n')
        buf_putc(out, '\n');
}

/* Rewrite the envelope sender. */
static void
cleanup_sender(struct cleanup_state *st)
{
    buf_t b;

    buf_init(&b);
    if (cleanup_rewrite_addr(st->cfg, CLEANUP_REWRITE_ENV_SENDER,
                             st->env->sender, &b))
        envelope_set(&st->env->sender, b.data);
    buf_free(&b);
}

/* Add a recipient that replaces orig: the same DSN request and, when
 * the address changed, the original address, kept for the log and as
 * ORCPT when it had none. */
static void
cleanup_rcpt_add(envelope_t *to, const rcpt_t *orig, const char *addr)
{
    rcpt_t *r = envelope_add_rcpt(to, addr);

    r->notify = orig->notify;
    if (orig->orcpt)
        envelope_set(&r->orcpt, orig->orcpt);
    else if (strcasecmp(addr, orig->addr) != 0)
        r->orcpt = mem_printf("rfc822;%s", orig->addr);
    if (orig->orig)
        envelope_set(&r->orig, orig->orig);
    else if (strcasecmp(addr, orig->addr) != 0)
        envelope_set(&r->orig, orig->addr);
}

/* Add addr's entry in the BCC maps parameter id to bcc, each address
 * once. */
static void
cleanup_bcc_lookup(struct cleanup_state *st, enum param_id id,
                   const char *addr, cleanup_rewrite_list_t *bcc)
{
    cleanup_rewrite_list_t found = {NULL, 0, 0};
    size_t i;

    cleanup_rewrite_lookup(st->cfg, id, addr, &found);
    for (i = 0; i < found.n; i++)
        if (!cleanup_rewrite_list_has(bcc, found.addr[i]))
            cleanup_rewrite_list_add(bcc, found.addr[i]);
    cleanup_rewrite_list_free(&found);
}

/* The automatic BCC recipients that do not depend on the recipients:
 * always_bcc and the sender's entry in sender_bcc_maps. */
static void
cleanup_bcc_sender(struct cleanup_state *st, cleanup_rewrite_list_t *bcc)
{
    const char *always = config_str(st->cfg, P_ALWAYS_BCC);

    if (always[0] != '\0')
        cleanup_rewrite_list_add(bcc, always);
    if (st->checks.bcc != NULL &&
        !cleanup_rewrite_list_has(bcc, st->checks.bcc))
        cleanup_rewrite_list_add(bcc, st->checks.bcc);
    if (st->env->sender[0] != '\0')
        cleanup_bcc_lookup(st, P_SENDER_BCC_MAPS, st->env->sender, bcc);
}

/* Rewrite and expand the recipients, and add the automatic BCC
 * recipients (always_bcc, sender_bcc_maps, recipient_bcc_maps) to mail
 * from outside this server; they go through the same rewriting and
 * expansion.  Returns 0, or -1 with the
 * message refused (st->checks says why). */
static int
cleanup_recipients(struct cleanup_state *st)
{
    envelope_t *env = st->env;
    envelope_t *tmp = envelope_new();
    cleanup_rewrite_list_t all = { NULL, 0, 0 };
    cleanup_rewrite_list_t bcc = { NULL, 0, 0 };
    buf_t addr;
    buf_t why;
    size_t i;
    size_t k;
    int rc = 0;

    buf_init(&addr);
    buf_init(&why);
    if (!st->req->internal)
        cleanup_bcc_sender(st, &bcc);
    for (i = 0; i < env->nrcpt + bcc.n && rc == 0; i++) {
        size_t before = all.n;
        const rcpt_t *r;
        rcpt_t extra;

        if (i < env->nrcpt) {
            r = &env->rcpts[i];
        } else {
            /* Postfix adds them as if with NOTIFY=NEVER: the sender is
             * not told of addresses it never named. */
            memset(&extra, 0, sizeof(extra));
            extra.addr = bcc.addr[i - env->nrcpt];
            extra.notify = DSN_NOTIFY_NEVER;
            r = &extra;
        }
        buf_reset(&addr);
        cleanup_rewrite_addr(st->cfg, CLEANUP_REWRITE_ENV_RCPT, r->addr,
                             &addr);
        if (i < env->nrcpt && !st->req->internal)
            cleanup_bcc_lookup(st, P_RECIPIENT_BCC_MAPS, addr.data, &bcc);
        if (cleanup_rewrite_virtual(st->cfg, addr.data, &all, &why) < 0) {
            msg_warn("%s: %s -- message not accepted, try again later",
                     env->id, why.data);
            cleanup_checks_reject(&st->checks, 451, NULL, NULL, 0,
                                  "4.3.0 Error: alias expansion error");
            rc = -1;
            break;
        }
        for (k = before; k < all.n; k++)
            cleanup_rcpt_add(tmp, r, all.addr[k]);
    }
    if (rc == 0 && st->checks.redirect) {
        envelope_t *one = envelope_new();
        rcpt_t first;

        /* With one recipient its address is still known afterwards; of
         * several, no one address is the original. */
        memset(&first, 0, sizeof(first));
        if (env->nrcpt == 1) {
            first = env->rcpts[0];
        } else {
            first.notify = env->nrcpt ? env->rcpts[0].notify : 0;
            first.addr = st->checks.redirect;
        }
        cleanup_rcpt_add(one, &first, st->checks.redirect);
        envelope_free(&tmp);
        tmp = one;
    }
    if (rc == 0) {
        rcpt_t *swap = env->rcpts;
        size_t n = env->nrcpt;
        size_t cap = env->rcpt_cap;

        env->rcpts = tmp->rcpts;
        env->nrcpt = tmp->nrcpt;
        env->rcpt_cap = tmp->rcpt_cap;
        tmp->rcpts = swap;
        tmp->nrcpt = n;
        tmp->rcpt_cap = cap;
    }
    envelope_free(&tmp);
    cleanup_rewrite_list_free(&all);
    cleanup_rewrite_list_free(&bcc);
    buf_free(&addr);
    buf_free(&why);
    return rc;
}

/* One commit fewer in flight; cleanup_stop waits for none. */
static void
cleanup_commit_end(cleanup_t *c)
{
    pthread_mutex_lock(&c->lock);
    if (--c->in_flight == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->lock);
}

static void
cleanup_committed(void *arg, int status, const char *err)
{
    struct cleanup_commit *cc = arg;
    cleanup_req_t *req = cc->req;
    cleanup_t *c = cc->c;

    free(cc);
    if (status != 0) {
        msg_warn("%s: queue commit failed: %s", req->env->id, err);
        snprintf(req->reply, sizeof(req->reply),
                 "451 4.3.0 Error: queue file write error");
        req->done(req, -1, req->reply);
        cleanup_commit_end(c);
        return;
    }
    req->done(req, 0, NULL);
    if (c->notify)
        c->notify(c->notify_arg);
    cleanup_commit_end(c);
}

static void
cleanup_state_init(struct cleanup_state *st, cleanup_req_t *req, buf_t *out)
{
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->cfg = req->cfg;
    st->env = req->env;
    st->out = out;
    st->header_checks = config_tables(req->cfg, P_HEADER_CHECKS);
    st->mime_header_checks = config_tables(req->cfg, P_MIME_HEADER_CHECKS);
    st->nested_header_checks = config_tables(req->cfg,
                                             P_NESTED_HEADER_CHECKS);
    st->body_checks = config_tables(req->cfg, P_BODY_CHECKS);
    st->mime = !config_num(req->cfg, P_DISABLE_MIME_INPUT_PROCESSING);
    cleanup_mime_init(&st->parts,
                      (size_t)config_num(req->cfg, P_MIME_NESTING_LIMIT));
    st->header_limit = (size_t)config_num(req->cfg, P_HEADER_SIZE_LIMIT);
    st->rewrite_headers = req->local;
    cleanup_checks_init(&st->checks, req->env);
    st->checks.hold = req->hold;
    if (req->redirect)
        envelope_set(&st->checks.redirect, req->redirect);
    if (req->filter)
        envelope_set(&st->checks.filter, req->filter);
    if (req->bcc)
        envelope_set(&st->checks.bcc, req->bcc);
    buf_init(&st->prepend);
    buf_init(&st->replace);
    buf_init(&st->rewritten);
}

static void
cleanup_state_free(struct cleanup_state *st)
{
    cleanup_checks_free(&st->checks);
    cleanup_mime_free(&st->parts);
    buf_free(&st->prepend);
    buf_free(&st->replace);
    buf_free(&st->rewritten);
}

/* The content filter the message goes to: a FILTER action, else
 * content_filter, for mail from outside (not what this server made or
 * forwards, nor what comes back from the filter). */
static void
cleanup_filter(struct cleanup_state *st)
{
    const char *filter = config_str(st->cfg, P_CONTENT_FILTER);

    if (st->req->internal || st->req->nofilter)
        return;
    if (st->checks.filter != NULL)
        envelope_set(&st->env->filter, st->checks.filter);
    else if (filter[0] != '\0')
        envelope_set(&st->env->filter, filter);
}

/* Run the checks, limits and rewriting; returns 0 when the message is to
 * be queued, 1 when it is discarded, -1 when it is refused (the reply
 * is in req->reply). */
static int
cleanup_process(struct cleanup_state *st)
{
    cleanup_req_t *req = st->req;
    long long size_limit = config_num(st->cfg, P_MESSAGE_SIZE_LIMIT);

    /* smtpd logged why when the recipient was accepted. */
    if (req->discard)
        return 1;
    if (req->edits) {
        cleanup_edits_message(req->edits, &req->msg);
        cleanup_edits_envelope(req->edits, st->env);
        if (req->edits->hold) {
            st->checks.hold = 1;
            msg_info("%s: milter-hold: %s", st->env->id,
                     req->edits->hold_reason ? req->edits->hold_reason
                                             : "quarantined");
        }
        if (st->env->nrcpt == 0) {
            /* Every recipient was taken away: nobody to deliver to. */
            msg_info("%s: discard: no recipients left after milter edits",
                     st->env->id);
            return 1;
        }
    }
    if (size_limit > 0 && req->msg.len > (unsigned long long)size_limit) {
        char what[64];

        snprintf(what, sizeof(what), "size %zu", req->msg.len);
        cleanup_checks_reject(&st->checks, 552, "message", what,
                              strlen(what),
                              "5.3.4 Message size exceeds fixed limit");
    } else {
        cleanup_sender(st);
        cleanup_build(st);
        if (!st->checks.stop)
            cleanup_recipients(st);
        cleanup_filter(st);
    }
    if (st->checks.reject) {
        cleanup_checks_reply(&st->checks, req->reply, sizeof(req->reply));
        return -1;
    }
    if (st->checks.discard)
        return 1;
    return 0;
}

static void
cleanup_work(void *ctx, void *item)
{
    cleanup_t *c = ctx;
    cleanup_req_t *req = item;
    envelope_t *env = req->env;
    struct cleanup_state st;
    struct cleanup_commit *cc;
    store_batch_t *b;
    buf_t out;
    int rc;

    buf_init(&out);
    cleanup_state_init(&st, req, &out);
    rc = cleanup_process(&st);
    if (rc == 0 && st.checks.hold)
        env->state = QS_HOLD;
    else
        env->state = QS_INCOMING;
    cleanup_state_free(&st);
    if (rc != 0) {
        /* Refused, or discarded: nothing is written.  A discarded
         * message is reported queued, as Postfix does. */
        buf_free(&out);
        if (rc < 0)
            req->done(req, -1, req->reply);
        else
            req->done(req, 0, NULL);
        return;
    }
    env->size = (int64_t)out.len;
    env->arrival_us = clock_wall_us();
    env->next_us = env->arrival_us;
    env->max_lifetime = config_num(req->cfg, P_MAXIMAL_QUEUE_LIFETIME);
    env->bounce_lifetime = config_num(req->cfg, P_BOUNCE_QUEUE_LIFETIME);
    b = store_batch_new();
    store_batch_enqueue(b, env, out.data ? out.data : "", out.len);
    buf_free(&out);
    cc = mem_alloc(sizeof(*cc));
    cc->c = c;
    cc->req = req;
    pthread_mutex_lock(&c->lock);
    c->in_flight++;
    pthread_mutex_unlock(&c->lock);
    store_commit_async(c->store, b, cleanup_committed, cc);
}

void
cleanup_register(void)
{
    cleanup_rewrite_register();
}

cleanup_t *
cleanup_new(store_t *store, int threads, cleanup_notify_fn notify,
            void *notify_arg)
{
    cleanup_t *c = mem_calloc(1, sizeof(*c));

    c->store = store;
    c->notify = notify;
    c->notify_arg = notify_arg;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->pool = pool_new("cleanup", threads, CLEANUP_QUEUE_MAX, cleanup_work,
                       c);
    return c;
}

int
cleanup_healthy(cleanup_t *c, char **why)
{
    return store_healthy(c->store, why);
}

int
cleanup_submit(cleanup_t *c, cleanup_req_t *req)
{
    return pool_submit(c->pool, req, 0);
}

/* A request still waiting when the pool stops is processed here, so
 * that nothing a client handed over is dropped. */
static void
cleanup_drain(void *ctx, void *item)
{
    cleanup_work(ctx, item);
}

void
cleanup_stop(cleanup_t **cp)
{
    cleanup_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    pool_stop(&c->pool, cleanup_drain);
    /* The committer may still be running completions that use c. */
    pthread_mutex_lock(&c->lock);
    while (c->in_flight > 0)
        pthread_cond_wait(&c->idle, &c->lock);
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->idle);
    free(c);
    *cp = NULL;
}

void
cleanup_req_free(cleanup_req_t **reqp)
{
    cleanup_req_t *req = reqp ? *reqp : NULL;

    if (req == NULL)
        return;
    envelope_free(&req->env);
    free(req->tls_info);
    free(req->fullname);
    free(req->prepend);
    free(req->redirect);
    free(req->filter);
    free(req->bcc);
    cleanup_edits_free(&req->edits);
    buf_free(&req->msg);
    config_unref(&req->cfg);
    free(req);
    *reqp = NULL;
}

size_t
cleanup_busy(cleanup_t *c)
{
    return pool_busy(c->pool) + pool_queued(c->pool);
}
