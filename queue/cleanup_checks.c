/* SPDX-License-Identifier: ISC */
/*
 * cleanup_checks: the actions of header_checks and body_checks.
 *
 * Flow: cleanup hands over each logical header (continuation lines
 * joined with their newlines kept, as Postfix matches them, so that a
 * pattern sees "Subject: a\n\tb") and each body line.  The line is
 * looked up once in the parameter's tables, the first table with a
 * match deciding; the result's first word is the action, the rest its
 * text, both as header_checks(5) describes them:
 *
 *   REJECT [text]   refuse the message: 550 5.7.1 text (a text that
 *                   starts with its own 4.x.x or 5.x.x status keeps it;
 *                   4.x.x gives 451), nothing is queued
 *   DISCARD [text]  claim success and queue nothing
 *   HOLD [text]     queue the message in the hold state
 *   WARN [text]     log a warning line; INFO [text] logs an info line
 *   IGNORE          leave the line out; STRIP [text] too, with a log line
 *   REDIRECT addr   replace all recipients by addr (the last one wins)
 *   FILTER t:dest   send the message to content filter t:dest instead
 *                   of its recipients' destinations (the last one wins)
 *   BCC addr        one more, blind recipient (the last one wins)
 *   PREPEND text    insert a line before this one
 *   REPLACE text    put text in place of this line
 *   DUNNO, OK       nothing
 * For headers, PREPEND and REPLACE need "name: value" text.  After
 * REJECT or DISCARD nothing more is inspected.  Unknown actions and
 * those tern does not have (PASS) are logged as warnings
 * and otherwise ignored, so that a table shared with Postfix still loads.
 *
 * Every action except IGNORE and DUNNO logs one line in Postfix's shape,
 * so that log readers count it:
 *   ID: reject: header Subject: x from host[addr]; from=<s> to=<r>
 *       proto=ESMTP helo=<h>: 5.7.1 text
 * with the matched text (at most 200 bytes, escaped) and "from local"
 * for local submissions.
 *
 * Threads: a cleanup_checks_t belongs to one message on one worker; the
 * tables are shared and read-only.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "queue/cleanup_checks.h"

/* Postfix logs at most this much of the matched text. */
#define CLEANUP_CHECKS_LOG_MAX 200

void
cleanup_checks_init(cleanup_checks_t *cc, const envelope_t *env)
{
    memset(cc, 0, sizeof(*cc));
    cc->env = env;
    buf_init(&cc->key);
    buf_init(&cc->result);
}

void
cleanup_checks_free(cleanup_checks_t *cc)
{
    mem_freep(&cc->reason);
    mem_freep(&cc->redirect);
    mem_freep(&cc->filter);
    mem_freep(&cc->bcc);
    buf_free(&cc->key);
    buf_free(&cc->result);
}

/* Log "ID: action: cls content from client; from=<> to=<> ...[: text]". */
static void
cleanup_checks_log(const cleanup_checks_t *cc, const char *action,
                   const char *cls, const char *content, size_t len,
                   const char *text)
{
    const envelope_t *env = cc->env;
    buf_t b;

    buf_init(&b);
    buf_escape(&b, content,
               len > CLEANUP_CHECKS_LOG_MAX ? CLEANUP_CHECKS_LOG_MAX : len);
    if (env->client_addr)
        buf_printf(&b, " from %s[%s];",
                   env->client_name ? env->client_name : "unknown",
                   env->client_addr);
    else
        buf_puts(&b, " from local;");
    buf_printf(&b, " from=<%s>", env->sender);
    if (env->nrcpt > 0)
        buf_printf(&b, " to=<%s>", env->rcpts[0].addr);
    if (env->protocol)
        buf_printf(&b, " proto=%s", env->protocol);
    if (env->helo)
        buf_printf(&b, " helo=<%s>", env->helo);
    if (text && *text) {
        buf_puts(&b, ": ");
        buf_escape(&b, text, strlen(text));
    }
    msg_info("%s: %s: %s %s", env->id, action, cls, b.data);
    buf_free(&b);
}

/* Nonzero if s starts with an enhanced status code "c.s.d" followed by
 * white space or the end (RFC 3463 section 2). */
static int
cleanup_checks_has_dsn(const char *s)
{
    int part;

    if (!isdigit((unsigned char)s[0]) || s[1] != '.')
        return 0;
    s += 2;
    for (part = 0; part < 2; part++) {
        int n = 0;

        while (isdigit((unsigned char)*s) && n < 4) {
            s++;
            n++;
        }
        if (n == 0 || n > 3)
            return 0;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == '\0' || *s == ' ' || *s == '\t';
}

void
cleanup_checks_reject(cleanup_checks_t *cc, int code, const char *cls,
                      const char *content, size_t len, const char *reason)
{
    cc->reject = 1;
    cc->stop = 1;
    cc->code = code;
    envelope_set(&cc->reason, reason);
    if (cls)
        cleanup_checks_log(cc, "reject", cls, content, len, reason);
}

void
cleanup_checks_reply(const cleanup_checks_t *cc, char *out, size_t outlen)
{
    snprintf(out, outlen, "%d %s", cc->code ? cc->code : 550,
             cc->reason ? cc->reason : "5.7.1 Message content rejected");
}

/* REJECT: the reason keeps a status code of its own, else gets 5.7.1. */
static void
cleanup_checks_do_reject(cleanup_checks_t *cc, const char *cls,
                         const char *line, size_t len, const char *text)
{
    char *reason;
    char *p;

    if (*text == '\0')
        reason = mem_strdup("5.7.1 Message content rejected");
    else if (cleanup_checks_has_dsn(text))
        reason = mem_strdup(text);
    else
        reason = mem_printf("5.7.1 %s", text);
    /* $n may have brought a header's newline along: not in a reply. */
    for (p = reason; *p; p++)
        if ((unsigned char)*p < 32 || *p == 127)
            *p = ' ';
    if (reason[0] != '4' && reason[0] != '5') {
        msg_warn("%s: bad DSN action in %s -- need 4.x.x or 5.x.x", cc->env->id,
                 text);
        reason[0] = '4';
    }
    cleanup_checks_reject(cc, reason[0] == '4' ? 451 : 550, cls, line, len,
                          reason);
    free(reason);
}

/* REDIRECT, FILTER and BCC: keep text, the last one of the action's
 * kind, in *slot and log it as whatsup, when it holds mark ('@' for an
 * address, ':' for transport:destination); else warn. */
static void
cleanup_checks_target(cleanup_checks_t *cc, char **slot, const char *action,
                      const char *whatsup, char mark, const char *text,
                      const char *map_name, const char *cls, const char *line,
                      size_t len)
{
    if (strchr(text, mark) == NULL) {
        msg_warn("%s: bad %s target \"%s\" in %s map -- need %s",
                 cc->env->id, action, text, map_name,
                 mark == '@' ? "user@domain" : "transport:destination");
        return;
    }
    envelope_set(slot, text);
    cleanup_checks_log(cc, whatsup, cls, line, len, text);
}

/* Nonzero if text has the shape "name: value" that a header needs. */
static int
cleanup_checks_is_header(const char *text)
{
    size_t n = 0;

    while (text[n] > 32 && text[n] < 127 && text[n] != ':')
        n++;
    return n > 0 && text[n] == ':';
}

enum cleanup_checks_verdict
cleanup_checks_apply(cleanup_checks_t *cc, table_t *const *maps,
                     const char *map_name, const char *cls, const char *line,
                     size_t len, buf_t *prepend, buf_t *replace)
{
    const char *res;
    const char *text;
    size_t alen;
    size_t i;
    int header = strcmp(cls, "header") == 0;
    int found = 0;

    if (cc->stop || maps == NULL || maps[0] == NULL)
        return CLEANUP_CHECKS_KEEP;
    buf_reset(&cc->key);
    buf_append(&cc->key, line, len);
    buf_reset(&cc->result);
    for (i = 0; maps[i] && !found; i++)
        found = table_lookup_r(maps[i], cc->key.data, &cc->result);
    if (!found)
        return CLEANUP_CHECKS_KEEP;
    res = cc->result.data ? cc->result.data : "";
    while (isspace((unsigned char)*res))
        res++;
    for (alen = 0; res[alen] && !isspace((unsigned char)res[alen]); alen++)
        ;
    for (text = res + alen; isspace((unsigned char)*text); text++)
        ;
#define ACTION_IS(w) (alen == sizeof(w) - 1 && strncasecmp(res, w, alen) == 0)
    if (ACTION_IS("REJECT")) {
        cleanup_checks_do_reject(cc, cls, line, len, text);
    } else if (ACTION_IS("DISCARD")) {
        cc->discard = 1;
        cc->stop = 1;
        cleanup_checks_log(cc, "discard", cls, line, len, text);
    } else if (ACTION_IS("HOLD")) {
        cc->hold = 1;
        cleanup_checks_log(cc, "hold", cls, line, len, text);
    } else if (ACTION_IS("WARN")) {
        cleanup_checks_log(cc, "warning", cls, line, len, text);
    } else if (ACTION_IS("INFO")) {
        cleanup_checks_log(cc, "info", cls, line, len, text);
    } else if (ACTION_IS("IGNORE")) {
        return CLEANUP_CHECKS_DROP;
    } else if (ACTION_IS("STRIP")) {
        cleanup_checks_log(cc, "strip", cls, line, len, text);
        return CLEANUP_CHECKS_DROP;
    } else if (ACTION_IS("REDIRECT")) {
        cleanup_checks_target(cc, &cc->redirect, "REDIRECT", "redirect", '@',
                              text, map_name, cls, line, len);
    } else if (ACTION_IS("PREPEND") || ACTION_IS("REPLACE")) {
        int is_prepend = ACTION_IS("PREPEND");

        if (*text == '\0' || (header && !cleanup_checks_is_header(text))) {
            msg_warn("%s: bad %s %s text \"%s\" in %s map -- need "
                     "\"headername: headervalue\"",
                     cc->env->id, is_prepend ? "PREPEND" : "REPLACE", cls, text,
                     map_name);
            return CLEANUP_CHECKS_KEEP;
        }
        cleanup_checks_log(cc, is_prepend ? "prepend" : "replace", cls, line,
                           len, text);
        if (is_prepend) {
            buf_puts(prepend, text);
            buf_putc(prepend, '\n');
            return CLEANUP_CHECKS_KEEP;
        }
        buf_puts(replace, text);
        return CLEANUP_CHECKS_REPLACE;
    } else if (ACTION_IS("DUNNO") || ACTION_IS("OK")) {
        /* Nothing to do. */
    } else if (ACTION_IS("FILTER")) {
        cleanup_checks_target(cc, &cc->filter, "FILTER", "filter", ':', text,
                              map_name, cls, line, len);
    } else if (ACTION_IS("BCC")) {
        cleanup_checks_target(cc, &cc->bcc, "BCC", "bcc", '@', text, map_name,
                              cls, line, len);
    } else if (ACTION_IS("PASS")) {
        msg_warn("%s: %.*s action in %s map is not supported, ignored",
                 cc->env->id, (int)alen, res, map_name);
    } else {
        msg_warn("%s: unknown command in %s map: %.*s", cc->env->id, map_name,
                 (int)alen, res);
    }
#undef ACTION_IS
    return CLEANUP_CHECKS_KEEP;
}
