/* SPDX-License-Identifier: ISC */
/*
 * fuzz_admin_json: an admin API request as the steps that decode it see
 * it, before any handler touches the store.  The input is
 *     line 1   the query's arguments, "name=value" joined by "&", as
 *              libmicrohttpd hands them over (already %-decoded);
 *     line 2   the Content-Type header, empty for none;
 *     the rest the body.
 * The arguments go through a listing's decoding (queue_api_query_arg,
 * queue_api_limit, queue_api_cursor).  The body goes through
 * http_parse_body, as every POST's does, and then through what each
 * POST makes of it: a bulk change's filter (queue_api_body_filter), a
 * flush's domain (queue_api_flush_domain), and the empty object that a
 * reload or a change to one message accepts (http_check_fields with no
 * field allowed).  Each step either decodes the request and answers
 * nothing, or gives the answer the API would send: a 4xx status and
 * {"error": {"code", "message"[, "field"]}} as valid JSON, with the
 * field named whenever the error is about one.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/filter.h"
#include "admin/http.h"
#include "admin/queue_api.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "t/fuzz/fuzz.h"

#define FUZZ_NOW_US (1700000000LL * 1000000)

static envelope_t *fuzz_env;

static const char *const fuzz_field_codes[] = {
    "unknown_field", "invalid_field", "unknown_parameter",
    "invalid_parameter", NULL,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    fuzz_env = envelope_new();
    strcpy(fuzz_env->id, "0FUZZ00001");
    fuzz_env->state = QS_DEFERRED;
    envelope_set(&fuzz_env->sender, "alice@example.org");
    fuzz_env->arrival_us = FUZZ_NOW_US - 3600LL * 1000000;
    envelope_add_rcpt(fuzz_env, "bob@example.com");
    return 0;
}

static int
fuzz_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* r was given no answer: the request decoded. */
static void
fuzz_check_decoded(const http_req_t *r)
{
    const char *data;
    size_t len;

    FUZZ_CHECK(http_req_answer(r, &data, &len) == 0);
    FUZZ_CHECK(data == NULL && len == 0);
}

/* r was answered with status and an error whose code is one of codes. */
static void
fuzz_check_error(const http_req_t *r, unsigned status,
                 const char *const *codes)
{
    const char *data;
    size_t len;
    json_error_t jerr;
    json_t *j;
    json_t *err;
    json_t *field;
    const char *code;

    FUZZ_CHECK(http_req_answer(r, &data, &len) == status);
    FUZZ_CHECK(data != NULL && len > 0 && strlen(data) == len);
    FUZZ_CHECK(data[len - 1] == '\n');
    j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(json_is_object(j) && json_object_size(j) == 1);
    err = json_object_get(j, "error");
    FUZZ_CHECK(json_is_object(err));
    FUZZ_CHECK(json_is_string(json_object_get(err, "message")));
    FUZZ_CHECK(json_is_string(json_object_get(err, "code")));
    code = json_string_value(json_object_get(err, "code"));
    FUZZ_CHECK(fuzz_in(code, codes));
    field = json_object_get(err, "field");
    FUZZ_CHECK(field == NULL || json_is_string(field));
    FUZZ_CHECK(json_object_size(err) == (field ? 3u : 2u));
    if (fuzz_in(code, fuzz_field_codes))
        FUZZ_CHECK(field != NULL);
    json_decref(j);
}

static void
fuzz_match(const filter_t *f)
{
    int m = filter_match(f, fuzz_env, FUZZ_NOW_US);

    FUZZ_CHECK(m == 0 || m == 1);
    FUZZ_CHECK(!filter_empty(f) || m == 1);
}

/* A listing's query arguments, in the order queue_api_list takes them:
 * each argument, then the first limit and the first cursor. */
static void
fuzz_query(char *line)
{
    static const char *const codes[] = {
        "unknown_parameter", "invalid_parameter", NULL,
    };
    http_req_t *r = http_req_detached(NULL, 0);
    filter_t *f = filter_new();
    const char *limit = NULL;
    const char *cursor = NULL;
    int seen_limit = 0;
    int seen_cursor = 0;
    char *save = NULL;
    char *arg;
    size_t n = 0;
    int rc = 0;

    for (arg = strtok_r(line, "&", &save); arg;
         arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        const char *value = eq ? eq + 1 : NULL;

        if (eq)
            *eq = '\0';
        if (!seen_limit && strcmp(arg, "limit") == 0) {
            limit = value;
            seen_limit = 1;
        }
        if (!seen_cursor && strcmp(arg, "cursor") == 0) {
            cursor = value;
            seen_cursor = 1;
        }
        if (rc == 0)
            rc = queue_api_query_arg(r, f, arg, value ? value : "");
    }
    if (rc == 0 && (rc = queue_api_limit(r, limit, &n)) == 0)
        FUZZ_CHECK(n >= 1 && n <= QUEUE_API_LIMIT_MAX);
    if (rc == 0)
        rc = queue_api_cursor(r, cursor);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        fuzz_check_error(r, 400, codes);
    } else {
        fuzz_check_decoded(r);
        fuzz_match(f);
    }
    filter_free(&f);
    http_req_free(&r);
    FUZZ_CHECK(r == NULL);
}

/* A detached POST with the body, past http_parse_body; NULL if that
 * refused it (after checking its answer). */
static http_req_t *
fuzz_parsed(const char *type, const uint8_t *body, size_t len)
{
    static const char *const codes[] = {
        "unsupported_media_type", "malformed_json", NULL,
    };
    http_req_t *r = http_req_detached(body, len);
    const char *data;
    size_t dlen;
    json_t *j;
    int rc;

    rc = http_parse_body(r, type);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        unsigned status = http_req_answer(r, &data, &dlen);

        FUZZ_CHECK(len > 0 && (status == 415 || status == 400));
        fuzz_check_error(r, status, codes);
        http_req_free(&r);
        return NULL;
    }
    fuzz_check_decoded(r);
    j = http_req_body(r);
    FUZZ_CHECK(len == 0 ? j == NULL : json_is_object(j));
    return r;
}

/* POST /api/v1/queue/{delete,hold,release,requeue} */
static void
fuzz_bulk(const char *type, const uint8_t *body, size_t len)
{
    static const char *const codes[] = {
        "missing_body", "unknown_field", "invalid_field", "missing_filter",
        NULL,
    };
    http_req_t *r = fuzz_parsed(type, body, len);
    filter_t *f;

    if (r == NULL)
        return;
    f = queue_api_body_filter(r);
    if (f == NULL) {
        fuzz_check_error(r, 400, codes);
    } else {
        fuzz_check_decoded(r);
        FUZZ_CHECK(!filter_empty(f) ||
                   json_is_true(json_object_get(http_req_body(r), "all")));
        fuzz_match(f);
        filter_free(&f);
    }
    http_req_free(&r);
}

/* POST /api/v1/flush */
static void
fuzz_flush(const char *type, const uint8_t *body, size_t len)
{
    static const char *const codes[] = {
        "unknown_field", "invalid_field", NULL,
    };
    http_req_t *r = fuzz_parsed(type, body, len);
    const char *domain = "unset";
    json_t *j;

    if (r == NULL)
        return;
    j = http_req_body(r);
    if (queue_api_flush_domain(r, &domain) < 0) {
        fuzz_check_error(r, 400, codes);
        FUZZ_CHECK(domain == NULL);
    } else {
        fuzz_check_decoded(r);
        FUZZ_CHECK((domain == NULL) ==
                   (j == NULL || json_object_get(j, "domain") == NULL));
        if (domain != NULL)
            FUZZ_CHECK(domain[0] != '\0' && strchr(domain, '@') == NULL);
    }
    http_req_free(&r);
}

/* POST /api/v1/config/reload and /api/v1/queue/{id}/{op}: nothing or {}. */
static void
fuzz_empty(const char *type, const uint8_t *body, size_t len)
{
    static const char *const none[] = {NULL};
    static const char *const codes[] = {"unknown_field", NULL};
    http_req_t *r = fuzz_parsed(type, body, len);
    json_t *j;
    int rc;

    if (r == NULL)
        return;
    if ((j = http_req_body(r)) != NULL) {
        rc = http_check_fields(r, j, none);
        FUZZ_CHECK((rc == 0) == (json_object_size(j) == 0));
        if (rc < 0)
            fuzz_check_error(r, 400, codes);
        else
            fuzz_check_decoded(r);
    }
    http_req_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    const uint8_t *nl = memchr(data, '\n', size);
    const uint8_t *body = end;
    char *query;
    char *type = NULL;

    query = fuzz_strndup(data, nl ? (size_t)(nl - data) : size);
    if (nl != NULL) {
        const uint8_t *t = nl + 1;

        nl = memchr(t, '\n', (size_t)(end - t));
        body = nl ? nl + 1 : end;
        if ((nl ? nl : end) > t)
            type = fuzz_strndup(t, (size_t)((nl ? nl : end) - t));
    }

    fuzz_query(query);
    fuzz_bulk(type, body, (size_t)(end - body));
    fuzz_flush(type, body, (size_t)(end - body));
    fuzz_empty(type, body, (size_t)(end - body));
    free(query);
    free(type);
    return 0;
}
