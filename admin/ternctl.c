/* SPDX-License-Identifier: ISC */
/*
 * ternctl: the command-line face of the admin API.
 *
 *   ternctl [-c FILE] [--json] [--url URL] [--token TOKEN] COMMAND
 *     queue list [FILTER] [--limit N]     list (every page)
 *     queue show ID                       envelope and headers
 *     queue delete|hold|release|requeue ID...
 *     queue delete|hold|release|requeue FILTER | --all
 *     queue flush [DOMAIN]
 *     reload                              re-read the configuration
 *     stats                               counts and pools
 *     config                              the parameters in force
 *   FILTER: --state S --sender X --recipient X --domain D --older-than T
 *
 * It finds the configuration as ternd does (-c, $TERN_CONFIG, the
 * default path) and from it the admin listener and the token.  --json
 * prints the API's answers as they come; otherwise text for people.  On
 * an error the API's message goes to stderr and the exit status is 1
 * (2 for a usage error, 69 when ternd does not answer).
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin/client.h"
#include "lib/mem.h"

#define TERNCTL_EX_USAGE 2
#define TERNCTL_EX_DOWN 69

struct ternctl {
    client_t *client;
    int json;
    const char *filter[5]; /* state, sender, recipient, domain, older_than */
    int all;
    const char *limit;
};

static const char *const ternctl_filter_names[5] = {
    "state", "sender", "recipient", "domain", "older_than",
};

static void
ternctl_usage(void)
{
    fprintf(stderr,
            "usage: ternctl [-c FILE] [--json] [--url URL] [--token TOKEN] "
            "COMMAND\n"
            "  queue list [FILTER] [--limit N]\n"
            "  queue show ID\n"
            "  queue delete|hold|release|requeue ID... | FILTER | --all\n"
            "  queue flush [DOMAIN]\n"
            "  reload | stats | config\n"
            "  map query TABLE KEY... | map build TABLE\n"
            "FILTER: --state S --sender X --recipient X --domain D "
            "--older-than T\n");
    exit(TERNCTL_EX_USAGE);
}

/* Send a request; returns the parsed body of a 2xx answer (or a JSON
 * string holding the text of a non-JSON one), or exits after printing
 * the API's message. */
static json_t *
ternctl_call(struct ternctl *t, const char *method, const char *path,
             json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char *err = NULL;
    json_t *j;
    buf_t out;
    int status;
    int down;

    buf_init(&out);
    status = client_request(t->client, method, path, text, &out, &down, &err);
    free(text);
    if (status < 0) {
        fprintf(stderr, "ternctl: %s%s\n", err,
                down ? " (is ternd running?)" : "");
        exit(down ? TERNCTL_EX_DOWN : 1);
    }
    if (status < 200 || status > 299) {
        char *msg = client_error_message(status, &out);

        if (t->json)
            fprintf(stderr, "%s", out.data ? out.data : "");
        else
            fprintf(stderr, "ternctl: %s\n", msg);
        free(msg);
        exit(1);
    }
    j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    if (j == NULL)
        j = json_stringn(out.data ? out.data : "", out.len);
    buf_free(&out);
    return j;
}

static void
ternctl_print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    printf("%s\n", text ? text : "null");
    free(text);
}

static const char *
ternctl_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* The filter as a query string or a JSON object. */
static char *
ternctl_query(struct ternctl *t)
{
    CURL *curl = curl_easy_init();
    buf_t q;
    int i;

    buf_init(&q);
    for (i = 0; i < 5; i++) {
        char *esc;

        if (t->filter[i] == NULL)
            continue;
        esc = curl_easy_escape(curl, t->filter[i], 0);
        buf_printf(&q, "%s%s=%s", q.len ? "&" : "", ternctl_filter_names[i],
                   esc);
        curl_free(esc);
    }
    curl_easy_cleanup(curl);
    if (q.len == 0)
        buf_puts(&q, "");
    return buf_steal(&q);
}

static json_t *
ternctl_filter_json(struct ternctl *t)
{
    json_t *o = json_object();
    int i;

    for (i = 0; i < 5; i++)
        if (t->filter[i] != NULL)
            json_object_set_new(o, ternctl_filter_names[i],
                                json_string(t->filter[i]));
    if (t->all)
        json_object_set_new(o, "all", json_true());
    return o;
}

static int
ternctl_has_filter(struct ternctl *t)
{
    int i;

    for (i = 0; i < 5; i++)
        if (t->filter[i] != NULL)
            return 1;
    return t->all;
}

static void
ternctl_print_message(json_t *m)
{
    json_t *rcpts = json_object_get(m, "recipients");
    size_t i;

    printf("%-10s %-8s %8lld %s <%s>\n", ternctl_str(m, "id"),
           ternctl_str(m, "state"),
           (long long)json_integer_value(json_object_get(m, "size")),
           ternctl_str(m, "arrival"), ternctl_str(m, "sender"));
    for (i = 0; i < json_array_size(rcpts); i++) {
        json_t *rc = json_array_get(rcpts, i);

        printf("    %-8s <%s>%s%s%s\n", ternctl_str(rc, "state"),
               ternctl_str(rc, "address"),
               ternctl_str(rc, "reason")[0] ? " (" : "",
               ternctl_str(rc, "reason"),
               ternctl_str(rc, "reason")[0] ? ")" : "");
    }
}

static int
ternctl_list(struct ternctl *t)
{
    char *query = ternctl_query(t);
    char *cursor = NULL;
    json_t *all = json_array();
    size_t n = 0;

    for (;;) {
        char *path = mem_printf("/api/v1/queue?limit=%s%s%s%s%s",
                                t->limit ? t->limit : "1000",
                                query[0] ? "&" : "", query,
                                cursor ? "&cursor=" : "",
                                cursor ? cursor : "");
        json_t *page = ternctl_call(t, "GET", path, NULL);
        json_t *msgs = json_object_get(page, "messages");
        const char *next = json_string_value(
            json_object_get(page, "next_cursor"));
        size_t i;

        free(path);
        for (i = 0; i < json_array_size(msgs); i++) {
            if (t->json)
                json_array_append(all, json_array_get(msgs, i));
            else
                ternctl_print_message(json_array_get(msgs, i));
            n++;
        }
        free(cursor);
        cursor = next && !t->limit ? mem_strdup(next) : NULL;
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    if (t->json)
        ternctl_print_json(all);
    else
        printf("%zu message%s\n", n, n == 1 ? "" : "s");
    json_decref(all);
    free(query);
    return 0;
}

static int
ternctl_show(struct ternctl *t, const char *id)
{
    char *path = mem_printf("/api/v1/queue/%s", id);
    json_t *m = ternctl_call(t, "GET", path, NULL);
    json_t *hdrs = json_object_get(m, "headers");
    size_t i;

    free(path);
    if (t->json) {
        ternctl_print_json(m);
    } else {
        ternctl_print_message(m);
        printf("client: %s[%s] helo=%s protocol=%s\n",
               ternctl_str(m, "client_name"), ternctl_str(m, "client_addr"),
               ternctl_str(m, "helo"), ternctl_str(m, "protocol"));
        for (i = 0; i < json_array_size(hdrs); i++)
            printf("%s: %s\n", ternctl_str(json_array_get(hdrs, i), "name"),
                   ternctl_str(json_array_get(hdrs, i), "value"));
    }
    json_decref(m);
    return 0;
}

/* delete, hold, release, requeue: on IDs, or on a filter. */
static int
ternctl_change(struct ternctl *t, const char *op, char **ids, int nids)
{
    int i;

    if (nids == 0 && !ternctl_has_filter(t))
        ternctl_usage();
    if (nids == 0) {
        char *path = mem_printf("/api/v1/queue/%s", op);
        json_t *body = ternctl_filter_json(t);
        json_t *r = ternctl_call(t, "POST", path, body);

        if (t->json)
            ternctl_print_json(r);
        else
            printf("%s: %lld matched, %lld changed\n", op,
                   (long long)json_integer_value(json_object_get(r,
                                                                 "matched")),
                   (long long)json_integer_value(json_object_get(r,
                                                                 "changed")));
        json_decref(r);
        json_decref(body);
        free(path);
        return 0;
    }
    for (i = 0; i < nids; i++) {
        int del = strcmp(op, "delete") == 0;
        char *path = del ? mem_printf("/api/v1/queue/%s", ids[i])
                         : mem_printf("/api/v1/queue/%s/%s", ids[i], op);
        json_t *r = ternctl_call(t, del ? "DELETE" : "POST", path, NULL);

        if (t->json)
            ternctl_print_json(r);
        else if (del)
            printf("%s: removed\n", ids[i]);
        else
            printf("%s: %s\n", ids[i], ternctl_str(r, "state"));
        json_decref(r);
        free(path);
    }
    return 0;
}

static int
ternctl_flush(struct ternctl *t, const char *domain)
{
    json_t *body = domain ? json_pack("{s:s}", "domain", domain) : NULL;
    json_t *r = ternctl_call(t, "POST", "/api/v1/flush", body);

    if (t->json)
        ternctl_print_json(r);
    else
        printf("flush: %lld deferred message%s to try now\n",
               (long long)json_integer_value(json_object_get(r, "messages")),
               json_integer_value(json_object_get(r, "messages")) == 1 ? ""
                                                                       : "s");
    json_decref(r);
    json_decref(body);
    return 0;
}

static int
ternctl_reload(struct ternctl *t)
{
    json_t *r = ternctl_call(t, "POST", "/api/v1/config/reload", NULL);
    json_t *ch = json_object_get(r, "changed");
    size_t i;

    if (t->json) {
        ternctl_print_json(r);
    } else {
        printf("reloaded;");
        if (json_array_size(ch) == 0)
            printf(" nothing changed");
        for (i = 0; i < json_array_size(ch); i++)
            printf(" %s", json_string_value(json_array_get(ch, i)));
        printf("\n");
    }
    json_decref(r);
    return 0;
}

static int
ternctl_stats(struct ternctl *t)
{
    json_t *s = ternctl_call(t, "GET", "/api/v1/stats", NULL);
    json_t *q = json_object_get(s, "queue");
    json_t *tot = json_object_get(s, "totals");
    json_t *pools = json_object_get(s, "pools");
    const char *key;
    json_t *v;

    if (t->json) {
        ternctl_print_json(s);
        json_decref(s);
        return 0;
    }
    printf("tern %s, up %.0f s\n", ternctl_str(s, "version"),
           json_number_value(json_object_get(s, "uptime")));
    printf("queue:");
    json_object_foreach(q, key, v)
        if (json_is_integer(v))
            printf(" %s=%lld", key, (long long)json_integer_value(v));
    printf("\nsince start:");
    json_object_foreach(tot, key, v)
        printf(" %s=%lld", key, (long long)json_integer_value(v));
    printf("\npools:");
    json_object_foreach(pools, key, v)
        printf(" %s=%lld/%lld", key,
               (long long)json_integer_value(json_object_get(v, "busy")),
               (long long)json_integer_value(json_object_get(v, "threads")));
    printf("\n");
    json_decref(s);
    return 0;
}

static int
ternctl_config(struct ternctl *t)
{
    json_t *c = ternctl_call(t, "GET", "/api/v1/config", NULL);
    const char *key;
    json_t *v;

    if (t->json)
        ternctl_print_json(c);
    else
        json_object_foreach(json_object_get(c, "parameters"), key, v)
            printf("%s = %s\n", key, json_string_value(v));
    json_decref(c);
    return 0;
}

/* "map query TABLE KEY..." prints each key's value, as postmap -q does
 * (exit 1 if one is missing); "map build TABLE" checks the table and
 * says how it went, with file:line for a bad line. */
static int
ternctl_map(int argc, char **argv)
{
    table_t *tbl;
    buf_t err;
    int rc = 0;
    int i;

    if (argc < 2 || (strcmp(argv[0], "query") == 0 && argc < 3) ||
        (strcmp(argv[0], "query") != 0 && strcmp(argv[0], "build") != 0))
        ternctl_usage();
    buf_init(&err);
    tbl = table_open(argv[1], &err);
    if (tbl == NULL) {
        fprintf(stderr, "ternctl: %s\n", err.data ? err.data : argv[1]);
        buf_free(&err);
        return 1;
    }
    if (strcmp(argv[0], "build") == 0) {
        printf("%s: ok\n", argv[1]);
    } else {
        for (i = 2; i < argc; i++) {
            buf_t value;

            buf_init(&value);
            if (table_lookup_r(tbl, argv[i], &value) == 1)
                printf("%s\n", value.data ? value.data : "");
            else
                rc = 1;
            buf_free(&value);
        }
    }
    table_free(&tbl);
    buf_free(&err);
    return rc;
}

static int
ternctl_queue(struct ternctl *t, int argc, char **argv)
{
    const char *sub;

    if (argc < 1)
        ternctl_usage();
    sub = argv[0];
    if (strcmp(sub, "list") == 0 && argc == 1)
        return ternctl_list(t);
    if (strcmp(sub, "show") == 0 && argc == 2)
        return ternctl_show(t, argv[1]);
    if (strcmp(sub, "flush") == 0 && argc <= 2)
        return ternctl_flush(t, argc == 2 ? argv[1] : NULL);
    if (strcmp(sub, "delete") == 0 || strcmp(sub, "hold") == 0 ||
        strcmp(sub, "release") == 0 || strcmp(sub, "requeue") == 0)
        return ternctl_change(t, sub, argv + 1, argc - 1);
    ternctl_usage();
    return TERNCTL_EX_USAGE;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},
        {"state", required_argument, NULL, 1},
        {"sender", required_argument, NULL, 2},
        {"recipient", required_argument, NULL, 3},
        {"domain", required_argument, NULL, 4},
        {"older-than", required_argument, NULL, 5},
        {"all", no_argument, NULL, 'a'},
        {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ternctl t;
    const char *given = NULL;
    const char *url = NULL;
    const char *token = getenv("TERN_ADMIN_TOKEN");
    config_t *cfg;
    char *err = NULL;
    int opt;
    int rc;

    memset(&t, 0, sizeof(t));
    /* GNU getopt moves the options before the command words, so they
     * may come anywhere: "ternctl queue list --state deferred". */
    while ((opt = getopt_long(argc, argv, "c:j", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            given = optarg;
            break;
        case 'j':
            t.json = 1;
            break;
        case 'u':
            url = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 1: case 2: case 3: case 4: case 5:
            t.filter[opt - 1] = optarg;
            break;
        case 'a':
            t.all = 1;
            break;
        case 'l':
            t.limit = optarg;
            break;
        default:
            ternctl_usage();
        }
    }
    if (optind >= argc)
        ternctl_usage();
    /* Tables are read here, as ternd would read them: no daemon needed. */
    if (strcmp(argv[optind], "map") == 0)
        return ternctl_map(argc - optind - 1, argv + optind + 1);
    if ((cfg = client_load_config("ternctl", client_config_path(given))) ==
        NULL)
        return 1;
    t.client = client_new(cfg, url, token && *token ? token : NULL, &err);
    config_unref(&cfg);
    if (t.client == NULL) {
        fprintf(stderr, "ternctl: %s\n", err);
        free(err);
        return 1;
    }
    if (strcmp(argv[optind], "queue") == 0)
        rc = ternctl_queue(&t, argc - optind - 1, argv + optind + 1);
    else if (strcmp(argv[optind], "reload") == 0 && optind + 1 == argc)
        rc = ternctl_reload(&t);
    else if (strcmp(argv[optind], "stats") == 0 && optind + 1 == argc)
        rc = ternctl_stats(&t);
    else if (strcmp(argv[optind], "config") == 0 && optind + 1 == argc)
        rc = ternctl_config(&t);
    else
        ternctl_usage();
    client_free(&t.client);
    return rc;
}
