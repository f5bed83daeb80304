/* SPDX-License-Identifier: ISC */
/*
 * http: the admin HTTP server.  libmicrohttpd runs one daemon per
 * admin_listen item, each with its own polling threads (a small pool);
 * handlers run on those threads and touch only thread-safe interfaces:
 * the store, the qmgr's wakeups, the current config, the counters.
 *
 * A request goes through these steps, each of which may end it:
 *   1. the body is gathered, at most HTTP_BODY_MAX bytes (413);
 *   2. the path must not hold "." or ".." segments (400);
 *   3. while ternd stops, everything but /healthz gets 503;
 *   4. the status page and /healthz need nothing more;
 *   5. a token in the query string is refused (400); the bearer token
 *      of the Authorization header is checked (401), except on a unix
 *      socket, where the peer's uid decides;
 *   6. the route is found (404, or 405 with Allow);
 *   7. a read-only caller may not change things (403);
 *   8. a POST body must be a JSON object sent as application/json
 *      (415, 400);
 *   9. the handler answers.
 * Every answer but the page's files and /metrics is JSON; errors have
 * the shape {"error": {"code": "...", "message": "..."}}.
 *
 * Shutting down: http_quiesce() makes new requests fail with 503 and
 * waits for the handlers under way, so that ternd can then stop the
 * qmgr and close the store under the listeners without a handler using
 * them.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/assets.h"
#include "admin/census.h"
#include "admin/config_api.h"
#include "admin/http.h"
#include "admin/metrics.h"
#include "admin/queue_api.h"
#include "admin/stats_api.h"
#include "admin/token.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/utf8.h"
#include "lib/stats.h"

#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_MAX_LISTEN 8
#define HTTP_MAX_SEGMENTS 8
#define HTTP_THREADS 4
#define HTTP_CONNECTION_LIMIT 256
#define HTTP_TIMEOUT 30

struct http_listener {
    struct MHD_Daemon *mhd;
    char *unix_path; /* removed at stop; NULL for TCP */
};

struct http_server {
    struct http_listener listen[HTTP_MAX_LISTEN];
    int nlisten;
    struct http_hooks hooks;
    census_t *census;

    pthread_mutex_t lock;
    pthread_cond_t idle;
    int inflight;
    int quiescing;

    /* admin_token_file as it was at start; "" means no tokens at all. */
    char *token_path;
    token_set_t *tokens;
    struct stat token_st;
    int token_missing_warned;
};

typedef void (*http_handler_fn)(http_req_t *r);

struct http_route {
    const char *method;
    const char *path; /* "{id}" matches any one segment */
    enum http_scope scope;
    http_handler_fn fn;
};

struct http_req {
    http_server_t *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    char *segs[HTTP_MAX_SEGMENTS];
    int nsegs;
    int too_many_segs;
    buf_t body;
    int too_big;
    json_t *json;
    char who[64];
    char client[INET6_ADDRSTRLEN + 8];
    enum http_scope scope;
    int is_unix;

    /* The answer. */
    int replied;
    unsigned status;
    char *data;
    size_t len;
    const char *type;
    char allow[64];
    int auth_challenge;
};

static const struct http_route http_routes[] = {
    {"GET", "/api/v1/queue", HTTP_SCOPE_READ, queue_api_list},
    {"POST", "/api/v1/queue/delete", HTTP_SCOPE_FULL, queue_api_bulk},
    {"POST", "/api/v1/queue/hold", HTTP_SCOPE_FULL, queue_api_bulk},
    {"POST", "/api/v1/queue/release", HTTP_SCOPE_FULL, queue_api_bulk},
    {"POST", "/api/v1/queue/requeue", HTTP_SCOPE_FULL, queue_api_bulk},
    {"GET", "/api/v1/queue/{id}", HTTP_SCOPE_READ, queue_api_show},
    {"DELETE", "/api/v1/queue/{id}", HTTP_SCOPE_FULL, queue_api_delete},
    {"GET", "/api/v1/queue/{id}/message", HTTP_SCOPE_FULL, queue_api_message},
    {"POST", "/api/v1/queue/{id}/hold", HTTP_SCOPE_FULL, queue_api_change},
    {"POST", "/api/v1/queue/{id}/release", HTTP_SCOPE_FULL, queue_api_change},
    {"POST", "/api/v1/queue/{id}/requeue", HTTP_SCOPE_FULL, queue_api_change},
    {"POST", "/api/v1/flush", HTTP_SCOPE_FULL, queue_api_flush},
    {"GET", "/api/v1/config", HTTP_SCOPE_READ, config_api_get},
    {"POST", "/api/v1/config/reload", HTTP_SCOPE_FULL, config_api_reload},
    {"GET", "/api/v1/stats", HTTP_SCOPE_READ, stats_api_get},
    {"GET", "/readyz", HTTP_SCOPE_READ, stats_api_ready},
    {"GET", "/metrics", HTTP_SCOPE_READ, metrics_get},
};

#define HTTP_NROUTES (sizeof(http_routes) / sizeof(http_routes[0]))

/*
 * Answers.
 */

void
http_reply_raw(http_req_t *r, unsigned status, const char *type, char *data,
               size_t len)
{
    if (r->replied) {
        free(data);
        return;
    }
    r->replied = 1;
    r->status = status;
    r->type = type;
    r->data = data;
    r->len = len;
}

void
http_reply_json(http_req_t *r, unsigned status, json_t *body)
{
    char *text;
    size_t len;

    if (body == NULL)
        msg_fatal("out of memory building a JSON answer");
    text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    if (text == NULL)
        msg_fatal("out of memory encoding JSON");
    len = strlen(text);

    /* A final newline, so that curl output ends its line. */
    text = mem_reallocarray(text, len + 2, 1);
    text[len++] = '\n';
    text[len] = '\0';
    http_reply_raw(r, status, "application/json", text, len);
}

/* A JSON string of s, with each byte that is not part of well-formed
 * UTF-8 turned into '?'.  Error texts quote the client (a query
 * argument's name is any bytes), and a bounded message may be cut inside
 * a character; jansson refuses such a string, and the answer would be
 * lost.  NULL only when out of memory. */
static json_t *
http_text(const char *s)
{
    json_t *j = json_string(s);
    unsigned char *p;
    char *copy;
    size_t n;

    if (j != NULL)
        return j;
    copy = mem_strdup(s);
    for (p = (unsigned char *)copy; *p != '\0'; p += n)
        if ((n = utf8_len(p, (size_t)-1)) == 0) {
            *p = '?';
            n = 1;
        }
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *
http_error_object(const char *code, const char *field, const char *message)
{
    json_t *err = json_pack("{s:s,s:o}", "code", code, "message",
                            http_text(message));

    if (err != NULL && field != NULL)
        json_object_set_new(err, "field", http_text(field));
    return err;
}

void
http_reply_error(http_req_t *r, unsigned status, const char *code,
                 const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_reply_json(r, status,
                    json_pack("{s:o}", "error",
                              http_error_object(code, field, msg)));
}

void
http_reply_error_details(http_req_t *r, unsigned status, const char *code,
                         const char *message, json_t *details)
{
    json_t *err = http_error_object(code, NULL, message);

    if (details != NULL)
        json_object_set_new(err, "details", details);
    http_reply_json(r, status, json_pack("{s:o}", "error", err));
}

int
http_check_fields(http_req_t *r, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    int i;

    json_object_foreach(obj, key, val) {
        for (i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (allowed[i] == NULL) {
            http_reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown_field", key,
                             "unknown field \"%s\"", key);
            return -1;
        }
    }
    return 0;
}

/*
 * What handlers see.
 */

const struct http_hooks *
http_req_hooks(http_req_t *r)
{
    return &r->srv->hooks;
}

http_server_t *
http_req_server(http_req_t *r)
{
    return r->srv;
}

const char *
http_req_segment(http_req_t *r, int i)
{
    return i >= 0 && i < r->nsegs ? r->segs[i] : NULL;
}

const char *
http_req_query(http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct http_query_walk {
    int (*fn)(void *arg, const char *name, const char *value);
    void *arg;
};

static enum MHD_Result
http_query_one(void *cls, enum MHD_ValueKind kind, const char *key,
               const char *value)
{
    struct http_query_walk *w = cls;

    return w->fn(w->arg, key, value ? value : "") ? MHD_NO : MHD_YES;
}

void
http_req_query_each(http_req_t *r,
                    int (*fn)(void *arg, const char *name, const char *value),
                    void *arg)
{
    struct http_query_walk w = {fn, arg};

    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, http_query_one,
                              &w);
}

json_t *
http_req_body(http_req_t *r)
{
    return r->json;
}

census_t *
http_census(http_server_t *h)
{
    return h->census;
}

void
http_audit(http_req_t *r, const char *fmt, ...)
{
    va_list ap;
    buf_t line;

    buf_init(&line);
    va_start(ap, fmt);
    buf_vprintf(&line, fmt, ap);
    va_end(ap);
    msg_info("%s, token=%s, client=%s", line.data, r->who, r->client);
    buf_free(&line);
}

/*
 * Tokens.
 */

/* Reread the token file when it changed since it was read. */
static void
http_tokens_refresh(http_server_t *h)
{
    struct stat st;
    token_set_t *ts;
    char *err = NULL;

    if (stat(h->token_path, &st) < 0) {
        if (!h->token_missing_warned)
            msg_warn("admin_token_file %s: %s; every request is refused",
                     h->token_path, strerror(errno));
        h->token_missing_warned = 1;
        token_free(&h->tokens);
        memset(&h->token_st, 0, sizeof(h->token_st));
        return;
    }
    if (h->tokens != NULL && st.st_ino == h->token_st.st_ino &&
        st.st_dev == h->token_st.st_dev &&
        st.st_mtim.tv_sec == h->token_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == h->token_st.st_mtim.tv_nsec &&
        st.st_size == h->token_st.st_size)
        return;
    if ((ts = token_load(h->token_path, &err)) == NULL) {
        msg_warn("admin_token_file: %s", err);
        free(err);
        return;
    }
    if (st.st_mode & 077)
        msg_warn("admin_token_file %s can be read by others: chmod 600 it",
                 h->token_path);
    token_free(&h->tokens);
    h->tokens = ts;
    h->token_st = st;
    h->token_missing_warned = 0;
}

/* The uid at the other end of a unix socket, or -1. */
static long
http_peer_uid(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    struct ucred cred;
    socklen_t len = sizeof(cred);

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL ||
        getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    return (long)cred.uid;
}

/* Decide who is asking; 0, or -1 after answering. */
static int
http_authenticate(http_req_t *r)
{
    http_server_t *h = r->srv;
    const char *hdr;
    const char *name;
    int read_only = 0;
    long uid;

    if (http_req_query(r, "access_token") != NULL ||
        http_req_query(r, "token") != NULL) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "token_in_query",
                         http_req_query(r, "token") ? "token"
                                                    : "access_token",
                         "send the token in an Authorization: Bearer header, "
                         "never in the URL");
        return -1;
    }
    hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (r->is_unix && hdr == NULL) {
        /* File permissions guard the socket: the daemon's own user and
         * root may change things, anyone else who can connect may look. */
        uid = http_peer_uid(r->conn);
        snprintf(r->who, sizeof(r->who), "uid=%ld", uid);
        r->scope = uid == 0 || uid == (long)geteuid() ? HTTP_SCOPE_FULL
                                                       : HTTP_SCOPE_READ;
        return 0;
    }
    if (h->token_path[0] == '\0') {
        snprintf(r->who, sizeof(r->who), "anonymous");
        r->scope = HTTP_SCOPE_FULL;
        return 0;
    }
    if (hdr == NULL) {
        r->auth_challenge = 1;
        http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized", NULL,
                         "this needs an Authorization: Bearer TOKEN header "
                         "(the token is in admin_token_file)");
        return -1;
    }
    if (strncasecmp(hdr, "Bearer ", 7) != 0) {
        r->auth_challenge = 1;
        http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized", NULL,
                         "only Bearer authorization is supported");
        return -1;
    }
    hdr += 7;
    hdr += strspn(hdr, " ");
    pthread_mutex_lock(&h->lock);
    http_tokens_refresh(h);
    name = token_check(h->tokens, hdr, strlen(hdr), &read_only);
    if (name != NULL)
        snprintf(r->who, sizeof(r->who), "%s", name);
    pthread_mutex_unlock(&h->lock);
    if (name == NULL) {
        r->auth_challenge = 1;
        http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_token", NULL,
                         "the token is not valid");
        return -1;
    }
    r->scope = read_only ? HTTP_SCOPE_READ : HTTP_SCOPE_FULL;
    return 0;
}

/*
 * Routing.
 */

/* Split the path into segments; -1 if it holds "." or "..". */
static int
http_split(http_req_t *r)
{
    char *p;
    char *save = NULL;
    char *copy;

    if (r->path[0] != '/')
        return -1;
    copy = r->path + 1;
    if (*copy == '\0')
        return 0;
    for (p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
            return -1;
        if (r->nsegs == HTTP_MAX_SEGMENTS) {
            r->too_many_segs = 1;
            return 0;
        }
        r->segs[r->nsegs++] = p;
    }
    return 0;
}

static int
http_route_matches(const struct http_route *rt, http_req_t *r)
{
    char pat[128];
    char *save = NULL;
    char *p;
    int i = 0;

    if (r->too_many_segs)
        return 0;
    snprintf(pat, sizeof(pat), "%s", rt->path + 1);
    for (p = strtok_r(pat, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (i >= r->nsegs)
            return 0;
        if (strcmp(p, "{id}") != 0 && strcmp(p, r->segs[i]) != 0)
            return 0;
        i++;
    }
    return i == r->nsegs;
}

/* An exact route wins over one with {id} for the same method. */
static const struct http_route *
http_route_find(http_req_t *r, const char *method)
{
    const struct http_route *best = NULL;
    size_t i;

    for (i = 0; i < HTTP_NROUTES; i++) {
        const struct http_route *rt = &http_routes[i];

        if (strcmp(rt->method, method) != 0 || !http_route_matches(rt, r))
            continue;
        if (best == NULL || strstr(best->path, "{id}") != NULL)
            best = rt;
    }
    return best;
}

/* The methods some route allows for this path, for 405's Allow. */
static void
http_route_allow(http_req_t *r)
{
    size_t i;
    size_t len = 0;

    r->allow[0] = '\0';
    for (i = 0; i < HTTP_NROUTES; i++) {
        const struct http_route *rt = &http_routes[i];
        const char *m = rt->method;

        if (!http_route_matches(rt, r) || strstr(r->allow, m) != NULL)
            continue;
        len = strlen(r->allow);
        snprintf(r->allow + len, sizeof(r->allow) - len, "%s%s%s",
                 len ? ", " : "", m,
                 strcmp(m, "GET") == 0 ? ", HEAD" : "");
    }
}

int
http_parse_body(http_req_t *r, const char *type)
{
    json_error_t jerr;
    size_t n;

    if (r->body.len == 0)
        return 0;
    n = strlen("application/json");
    if (type == NULL || strncasecmp(type, "application/json", n) != 0 ||
        (type[n] != '\0' && type[n] != ';' && type[n] != ' ')) {
        http_reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                         "unsupported_media_type", NULL,
                         "send the body as application/json");
        return -1;
    }
    r->json = json_loadb(r->body.data, r->body.len,
                         JSON_REJECT_DUPLICATES,
                         &jerr);
    if (r->json == NULL) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "malformed_json", NULL,
                         "malformed JSON at line %d, column %d: %s",
                         jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(r->json)) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "malformed_json", NULL,
                         "the body must be a JSON object");
        return -1;
    }
    return 0;
}

/* Run a handler unless ternd is stopping; counts it as under way. */
static void
http_run(http_req_t *r, http_handler_fn fn)
{
    http_server_t *h = r->srv;

    pthread_mutex_lock(&h->lock);
    if (h->quiescing) {
        pthread_mutex_unlock(&h->lock);
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                         NULL, "ternd is shutting down");
        return;
    }
    h->inflight++;
    pthread_mutex_unlock(&h->lock);

    fn(r);

    pthread_mutex_lock(&h->lock);
    if (--h->inflight == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
}

static void
http_healthz(http_req_t *r)
{
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

/* The status page's files need no token: they hold no data, and the
 * page asks for the token itself. */
static int
http_static(http_req_t *r, const char *method)
{
    const struct asset *a;

    a = assets_find(strcmp(r->path, "/") == 0 ? "/status.html" : r->path);
    if (a == NULL)
        return 0;
    if (strcmp(method, "GET") != 0) {
        snprintf(r->allow, sizeof(r->allow), "GET, HEAD");
        http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         NULL, "use GET");
        return 1;
    }
    http_reply_raw(r, MHD_HTTP_OK, a->type, mem_strndup(a->data, a->len),
                   a->len);
    return 1;
}

static void
http_dispatch(http_req_t *r)
{
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    const struct http_route *rt;
    int quiescing;

    if (r->too_big) {
        http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL,
                         "the body is larger than %d bytes", HTTP_BODY_MAX);
        return;
    }
    if (http_split(r) < 0) {
        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", NULL,
                         "the path may not hold \".\" or \"..\" segments");
        return;
    }
    if (strcmp(r->path, "/healthz") == 0) {
        if (strcmp(method, "GET") != 0) {
            snprintf(r->allow, sizeof(r->allow), "GET, HEAD");
            http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "method_not_allowed", NULL, "use GET");
            return;
        }
        http_healthz(r);
        return;
    }
    pthread_mutex_lock(&r->srv->lock);
    quiescing = r->srv->quiescing;
    pthread_mutex_unlock(&r->srv->lock);
    if (quiescing) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                         NULL, "ternd is shutting down");
        return;
    }
    if (http_static(r, method))
        return;
    if (http_authenticate(r) < 0)
        return;
    if ((rt = http_route_find(r, method)) == NULL) {
        http_route_allow(r);
        if (r->allow[0] != '\0')
            http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "method_not_allowed", NULL,
                             "%s is not allowed here; use %s", r->method,
                             r->allow);
        else
            http_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", NULL,
                             "no such resource");
        return;
    }
    if (rt->scope == HTTP_SCOPE_FULL && r->scope != HTTP_SCOPE_FULL) {
        http_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", NULL,
                         "%s may not do this", r->who);
        return;
    }
    if (strcmp(method, "POST") == 0 &&
        http_parse_body(r, MHD_lookup_connection_value(
                               r->conn, MHD_HEADER_KIND,
                               MHD_HTTP_HEADER_CONTENT_TYPE)) < 0)
        return;
    http_run(r, rt->fn);
    if (!r->replied)
        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                         NULL, "the handler gave no answer");
}

/*
 * libmicrohttpd glue.
 */

static void
http_client_name(http_req_t *r)
{
    const union MHD_ConnectionInfo *ci;
    const struct sockaddr *sa;

    snprintf(r->client, sizeof(r->client), "unknown");
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || (sa = ci->client_addr) == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                  r->client, sizeof(r->client));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                  r->client, sizeof(r->client));
    else if (sa->sa_family == AF_UNIX) {
        snprintf(r->client, sizeof(r->client), "unix");
        r->is_unix = 1;
    }
}

static http_req_t *
http_req_new(http_server_t *h, struct MHD_Connection *conn, const char *url,
             const char *method)
{
    http_req_t *r = mem_calloc(1, sizeof(*r));
    const char *clen;

    r->srv = h;
    r->conn = conn;
    r->method = method;
    r->path = mem_strdup(url);
    buf_init(&r->body);
    snprintf(r->who, sizeof(r->who), "none");
    http_client_name(r);
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen != NULL && strtoull(clen, NULL, 10) > HTTP_BODY_MAX)
        r->too_big = 1;
    return r;
}

http_req_t *
http_req_detached(const void *body, size_t len)
{
    http_req_t *r = mem_calloc(1, sizeof(*r));

    r->method = "POST";
    r->path = mem_strdup("/");
    buf_init(&r->body);
    buf_append(&r->body, body, len);
    snprintf(r->who, sizeof(r->who), "none");
    snprintf(r->client, sizeof(r->client), "none");
    return r;
}

unsigned
http_req_answer(const http_req_t *r, const char **data, size_t *len)
{
    *data = r->replied ? r->data : NULL;
    *len = r->replied ? r->len : 0;
    return r->replied ? r->status : 0;
}

void
http_req_free(http_req_t **rp)
{
    http_req_t *r = rp ? *rp : NULL;

    if (r == NULL)
        return;
    buf_free(&r->body);
    json_decref(r->json);
    free(r->data);
    free(r->path);
    free(r);
    *rp = NULL;
}

static enum MHD_Result
http_queue(http_req_t *r)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;

    resp = MHD_create_response_from_buffer(r->len, r->data,
                                           MHD_RESPMEM_MUST_FREE);
    r->data = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (strcmp(r->type, "text/html; charset=utf-8") == 0)
        MHD_add_response_header(
            resp, "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED && r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->auth_challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"tern\"");
    if (r->status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    rc = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
http_handle(void *cls, struct MHD_Connection *conn, const char *url,
            const char *method, const char *version, const char *upload,
            size_t *upload_size, void **state)
{
    http_server_t *h = cls;
    http_req_t *r = *state;

    /* The first call for a request only announces it; a body announced
     * as too large is refused before it is read. */
    if (r == NULL) {
        log_set_role("admin");
        *state = r = http_req_new(h, conn, url, method);
        if (!r->too_big)
            return MHD_YES;
        http_dispatch(r);
        return http_queue(r);
    }
    if (r->replied) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (r->body.len + *upload_size > HTTP_BODY_MAX)
            r->too_big = 1;
        else
            buf_append(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    http_dispatch(r);
    return http_queue(r);
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **state,
               enum MHD_RequestTerminationCode why)
{
    http_req_t *r = *state;

    http_req_free(&r);
    *state = NULL;
}

/*
 * Listeners.
 */

static int
http_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* 1 if a listener item is a loopback address or a unix socket, 0 if it
 * is another address, -1 if it does not parse (http_listen says why). */
static int
http_loopback_item(const char *item)
{
    char host[256];
    int port;

    if (strncmp(item, "unix:", 5) == 0)
        return 1;
    if (config_parse_hostport(item, host, sizeof(host), &port) < 0)
        return -1;
    return http_loopback(host);
}

/* A listening unix socket at path, mode 0666: see http_authenticate. */
static int
http_unix_socket(const char *path, char **err)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        *err = mem_printf("unix:%s: path too long", path);
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = mem_printf("unix:%s: socket: %s", path, strerror(errno));
        return -1;
    }

    /* A socket left by a ternd that died is replaced; one that answers
     * belongs to a running server. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            *err = mem_printf("unix:%s: another server listens there", path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *err = mem_printf("unix:%s: socket: %s", path, strerror(errno));
            return -1;
        }
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0666) < 0 || listen(fd, 64) < 0) {
        *err = mem_printf("unix:%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static struct MHD_Daemon *
http_daemon(http_server_t *h, unsigned flags, const struct sockaddr *sa,
            int fd)
{
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, NULL},
        {sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_LISTEN_SOCKET, fd,
         (void *)sa},
        {MHD_OPTION_END, 0, NULL},
    };

    return MHD_start_daemon(flags, 0, NULL, NULL, http_handle, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

/* Start one listener; 0, -1 with *err. */
static int
http_listen(http_server_t *h, const char *item, char **err)
{
    struct http_listener *l = &h->listen[h->nlisten];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char host[256];
    char port[16];
    int portnum;
    int rc;
    int fd;

    if (h->nlisten == HTTP_MAX_LISTEN) {
        *err = mem_printf("%s: more than %d admin listeners", item,
                          HTTP_MAX_LISTEN);
        return -1;
    }
    if (strncmp(item, "unix:", 5) == 0) {
        if ((fd = http_unix_socket(item + 5, err)) < 0)
            return -1;
        l->mhd = http_daemon(h, flags, NULL, fd);
        if (l->mhd == NULL) {
            *err = mem_printf("%s: cannot start the admin HTTP server", item);
            close(fd);
            unlink(item + 5);
            return -1;
        }
        l->unix_path = mem_strdup(item + 5);
        h->nlisten++;
        return 0;
    }
    if (config_parse_hostport(item, host, sizeof(host), &portnum) < 0) {
        *err = mem_printf("%s: not host:port or unix:/path", item);
        return -1;
    }
    snprintf(port, sizeof(port), "%d", portnum);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        *err = mem_printf("%s: %s", item, gai_strerror(rc));
        return -1;
    }
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    l->mhd = http_daemon(h, flags, res->ai_addr, 0);
    freeaddrinfo(res);
    if (l->mhd == NULL) {
        *err = mem_printf("%s: cannot start the admin HTTP server: %s", item,
                          strerror(errno));
        return -1;
    }
    h->nlisten++;
    return 0;
}

/* Read admin_token_file, creating it when it does not exist. */
static int
http_token_setup(http_server_t *h, char **err)
{
    struct stat st;

    if (h->token_path[0] == '\0')
        return 0;
    if (stat(h->token_path, &st) < 0) {
        if (errno != ENOENT) {
            *err = mem_printf("admin_token_file %s: %s", h->token_path,
                              strerror(errno));
            return -1;
        }
        if (token_create(h->token_path, err) < 0)
            return -1;
        msg_info("created admin_token_file %s with a new token named admin",
                 h->token_path);
    }
    http_tokens_refresh(h);
    if (h->tokens == NULL) {
        *err = mem_printf("admin_token_file %s cannot be read",
                          h->token_path);
        return -1;
    }
    if (token_count(h->tokens) == 0)
        msg_warn("admin_token_file %s holds no token: every request that "
                 "needs one is refused", h->token_path);
    return 0;
}

http_server_t *
http_start(const config_t *cfg, const struct http_hooks *hooks, char **err)
{
    http_server_t *h = mem_calloc(1, sizeof(*h));
    char *const *items = config_list(cfg, P_ADMIN_LISTEN, NULL);
    int open_tcp = 0;

    stats_start();
    h->hooks = *hooks;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    h->token_path = mem_strdup(config_str(cfg, P_ADMIN_TOKEN_FILE));
    if (http_token_setup(h, err) < 0)
        goto fail;
    h->census = census_new(hooks->store);
    for (; items && *items; items++)
        if (http_loopback_item(*items) == 0)
            open_tcp = 1;
    if (open_tcp && h->token_path[0] == '\0') {
        *err = mem_printf("admin_listen has an address other than loopback, "
                          "and admin_token_file is empty: the API would be "
                          "open to the network");
        goto fail;
    }
    for (items = config_list(cfg, P_ADMIN_LISTEN, NULL); items && *items;
         items++)
        if (http_listen(h, *items, err) < 0)
            goto fail;
    return h;

fail:
    http_stop(&h);
    return NULL;
}

void
http_quiesce(http_server_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->quiescing = 1;
    while (h->inflight > 0)
        pthread_cond_wait(&h->idle, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

void
http_stop(http_server_t **hp)
{
    http_server_t *h = hp ? *hp : NULL;
    int i;

    if (h == NULL)
        return;
    http_quiesce(h);
    for (i = 0; i < h->nlisten; i++) {
        MHD_stop_daemon(h->listen[i].mhd);
        if (h->listen[i].unix_path != NULL) {
            unlink(h->listen[i].unix_path);
            free(h->listen[i].unix_path);
        }
    }
    census_free(&h->census);
    token_free(&h->tokens);
    free(h->token_path);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    free(h);
    *hp = NULL;
}
