/* SPDX-License-Identifier: ISC */
/*
 * mailq: Postfix's queue listing, from GET /api/v1/queue page by page.
 *
 * The text is Postfix's, so that scripts that read mailq keep working:
 *
 *   -Queue ID- --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   08E5PA2xfr*     246 Thu Dec  3 20:41:42  a1@x.test
 *   (Host or domain name not found. ...)
 *                                            b@remote.test
 *
 *   -- 0 Kbytes in 1 Request.
 *
 * '*' marks a message being delivered, '!' one on hold; recipients
 * still to be delivered follow, under the reason of their last deferral
 * when there is one; the null sender shows as MAILER-DAEMON.  Corrupt
 * messages are not listed, as Postfix's showq does not list them.  The
 * JSON form (-j) has postqueue -j's fields, one message a line.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/client.h"
#include "admin/mailq.h"
#include "lib/mem.h"

#define MAILQ_EX_UNAVAILABLE 69
#define MAILQ_EX_TEMPFAIL 75
#define MAILQ_PAGE "1000"
#define MAILQ_RCPT_INDENT 41

struct mailq_sum {
    long long bytes;
    long count;
};

static const char *
mailq_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

static int
mailq_rcpt_pending(json_t *rc)
{
    const char *st = mailq_str(rc, "state");

    return strcmp(st, "pending") == 0 || strcmp(st, "deferred") == 0;
}

/* One message in Postfix's text form. */
static void
mailq_text_one(json_t *m, struct mailq_sum *sum, FILE *out)
{
    const char *state = mailq_str(m, "state");
    const char *sender = mailq_str(m, "sender");
    json_t *rcpts = json_object_get(m, "recipients");
    time_t t = (time_t)json_integer_value(json_object_get(m, "arrival_time"));
    long long size = json_integer_value(json_object_get(m, "size"));
    char when[32];
    struct tm tm;
    size_t i;
    size_t j;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %e %H:%M:%S ", &tm);
    if (sum->count > 0)
        fputc('\n', out);
    else
        fprintf(out, "%-10s %8s %-20s %s\n", "-Queue ID-", "--Size--",
                "----Arrival Time----", "-Sender/Recipient-------");
    fprintf(out, "%-10s%c%8lld %-20.20s %s\n", mailq_str(m, "id"),
            strcmp(state, "active") == 0 ? '*'
            : strcmp(state, "hold") == 0 ? '!'
                                         : ' ',
            size, when, sender[0] ? sender : "MAILER-DAEMON");

    /* Recipients grouped under their reasons, in the order the reasons
     * first appear; those without a reason come last. */
    for (i = 0; i < json_array_size(rcpts); i++) {
        json_t *rc = json_array_get(rcpts, i);
        const char *why = mailq_str(rc, "reason");
        int seen = 0;

        if (!mailq_rcpt_pending(rc) || why[0] == '\0')
            continue;
        for (j = 0; j < i && !seen; j++) {
            json_t *prev = json_array_get(rcpts, j);

            seen = mailq_rcpt_pending(prev) &&
                   strcmp(mailq_str(prev, "reason"), why) == 0;
        }
        if (seen)
            continue;
        fprintf(out, "(%s)\n", why);
        for (j = i; j < json_array_size(rcpts); j++) {
            json_t *same = json_array_get(rcpts, j);

            if (mailq_rcpt_pending(same) &&
                strcmp(mailq_str(same, "reason"), why) == 0)
                fprintf(out, "%*s%s\n", MAILQ_RCPT_INDENT, "",
                        mailq_str(same, "address"));
        }
    }
    for (i = 0; i < json_array_size(rcpts); i++) {
        json_t *rc = json_array_get(rcpts, i);

        if (mailq_rcpt_pending(rc) && mailq_str(rc, "reason")[0] == '\0')
            fprintf(out, "%*s%s\n", MAILQ_RCPT_INDENT, "",
                    mailq_str(rc, "address"));
    }
    sum->bytes += size;
    sum->count++;
}

/* One message as postqueue -j writes it. */
static void
mailq_json_one(json_t *m, FILE *out)
{
    json_t *rcpts = json_object_get(m, "recipients");
    json_t *o;
    json_t *arr = json_array();
    char *text;
    size_t i;

    for (i = 0; i < json_array_size(rcpts); i++) {
        json_t *rc = json_array_get(rcpts, i);
        json_t *r;

        if (!mailq_rcpt_pending(rc))
            continue;
        r = json_pack("{s:s}", "address", mailq_str(rc, "address"));
        if (mailq_str(rc, "reason")[0] != '\0')
            json_object_set_new(r, "delay_reason",
                                json_string(mailq_str(rc, "reason")));
        json_array_append_new(arr, r);
    }
    o = json_pack("{s:s,s:s,s:O,s:O,s:b,s:s,s:o}", "queue_name",
                  mailq_str(m, "state"), "queue_id", mailq_str(m, "id"),
                  "arrival_time", json_object_get(m, "arrival_time"),
                  "message_size", json_object_get(m, "size"),
                  "forced_expire", 0, "sender", mailq_str(m, "sender"),
                  "recipients", arr);
    text = json_dumps(o, JSON_COMPACT);
    fprintf(out, "%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
}

/* Report a failure of the API; returns the exit status. */
static int
mailq_fail(const char *prog, client_t *c, int status, const buf_t *body,
           int down, const char *err)
{
    char *msg;

    if (status < 0) {
        if (down)
            fprintf(stderr, "%s: fatal: Queue report unavailable - mail "
                            "system is down (nothing answers at %s)\n",
                    prog, client_where(c));
        else
            fprintf(stderr, "%s: fatal: %s\n", prog, err);
        return down ? MAILQ_EX_UNAVAILABLE : MAILQ_EX_TEMPFAIL;
    }
    msg = client_error_message(status, body);
    fprintf(stderr, "%s: fatal: %s\n", prog, msg);
    free(msg);
    return MAILQ_EX_TEMPFAIL;
}

static client_t *
mailq_client(const config_t *cfg, const char *prog)
{
    char *err = NULL;
    client_t *c = client_new(cfg, NULL, NULL, &err);

    if (c == NULL) {
        fprintf(stderr, "%s: fatal: %s\n", prog, err);
        free(err);
    }
    return c;
}

int
mailq_print(const config_t *cfg, const char *prog, int json, FILE *out)
{
    struct mailq_sum sum = {0, 0};
    client_t *c = mailq_client(cfg, prog);
    char *cursor = NULL;
    int rc = 0;

    if (c == NULL)
        return MAILQ_EX_TEMPFAIL;
    for (;;) {
        char *path = mem_printf("/api/v1/queue?limit=" MAILQ_PAGE "%s%s",
                                cursor ? "&cursor=" : "",
                                cursor ? cursor : "");
        char *err = NULL;
        json_t *page;
        json_t *msgs;
        const char *next;
        int down;
        int status;
        size_t i;
        buf_t body;

        buf_init(&body);
        status = client_request(c, "GET", path, NULL, &body, &down, &err);
        free(path);
        if (status != 200) {
            rc = mailq_fail(prog, c, status, &body, down, err);
            free(err);
            buf_free(&body);
            break;
        }
        page = json_loadb(body.data, body.len, 0, NULL);
        buf_free(&body);
        msgs = json_object_get(page, "messages");
        for (i = 0; i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);

            if (json_object_get(m, "arrival_time") == NULL)
                continue; /* a record that does not decode */
            if (json)
                mailq_json_one(m, out);
            else
                mailq_text_one(m, &sum, out);
        }
        next = json_string_value(json_object_get(page, "next_cursor"));
        free(cursor);
        cursor = next ? mem_strdup(next) : NULL;
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    free(cursor);
    if (rc == 0 && !json) {
        if (sum.count == 0)
            fprintf(out, "Mail queue is empty\n");
        else
            fprintf(out, "\n-- %lld Kbytes in %ld Request%s.\n",
                    sum.bytes / 1024, sum.count, sum.count == 1 ? "" : "s");
    }
    client_free(&c);
    return rc;
}

int
mailq_flush(const config_t *cfg, const char *prog, const char *domain)
{
    client_t *c = mailq_client(cfg, prog);
    char *body = NULL;
    char *err = NULL;
    buf_t out;
    int status;
    int down;
    int rc = 0;

    if (c == NULL)
        return MAILQ_EX_TEMPFAIL;
    if (domain != NULL) {
        json_t *j = json_pack("{s:s}", "domain", domain);

        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    buf_init(&out);
    status = client_request(c, "POST", "/api/v1/flush", body, &out, &down,
                            &err);
    if (status != 200)
        rc = mailq_fail(prog, c, status, &out, down, err);
    free(err);
    free(body);
    buf_free(&out);
    client_free(&c);
    return rc;
}

static void
mailq_usage(const char *prog)
{
    fprintf(stderr, "usage: %s [-C FILE] [-j] [-v]\n", prog);
    exit(64);
}

int
mailq_main(int argc, char **argv)
{
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1
                                             : argv[0];
    const char *given = NULL;
    config_t *cfg;
    int json = 0;
    int opt;
    int rc;

    while ((opt = getopt(argc, argv, "C:c:jv")) != -1) {
        switch (opt) {
        case 'C':
        case 'c':
            given = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'v':
            break;
        default:
            mailq_usage(prog);
        }
    }
    if (optind != argc)
        mailq_usage(prog);
    if ((cfg = client_load_config(prog, client_config_path(given))) == NULL)
        return 78;
    rc = mailq_print(cfg, prog, json, stdout);
    config_unref(&cfg);
    return rc;
}
