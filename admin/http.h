/* SPDX-License-Identifier: ISC */
/*
 * http: the embedded admin endpoint (libmicrohttpd in its own threads,
 * JSON bodies through jansson).  It serves the API under /api/v1 that
 * admin/openapi.yaml describes, /metrics, /healthz, /readyz and the
 * status page at /.
 *
 * ternd hands over what the handlers may use in a struct http_hooks;
 * admin/ never sees server/ code, only these callbacks.  Handlers (the
 * *_api.c files of admin/) see a request through the http_req_*
 * functions and answer with one of the http_reply_* functions.
 */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

#include <stddef.h>

#include <jansson.h>

#include "admin/census.h"
#include "deliver/qmgr.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "queue/cleanup.h"
#include "queue/store.h"

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

/* What ternd lends the admin endpoint for its whole life. */
struct http_hooks {
    store_t *store;
    qmgr_t *qmgr;
    cleanup_t *cleanup;
    /* Re-read the configuration exactly as SIGHUP does.  Returns 0 with
     * the names of the parameters that changed in changed (separated by
     * spaces), or -1 with the errors in errs, one "file:line: ..." a
     * line; the configuration in force then stays. */
    int (*reload)(void *arg, buf_t *changed, buf_t *errs);
    /* SMTP sessions open now. */
    long (*sessions)(void *arg);
    /* Nonzero while every SMTP listener is up. */
    int (*ready)(void *arg);
    void *arg;
};

/* Listen on every admin_listen item of cfg ("host:port", "[host]:port"
 * or "unix:/path"), reading or creating admin_token_file.  Returns NULL
 * with *err set (caller frees) if a listener cannot start, or if an
 * address other than loopback would be served without a token. */
http_server_t *http_start(const config_t *cfg, const struct http_hooks *hooks,
                          char **err);

/* Refuse new work with 503 and wait for handlers under way to finish, so
 * that the hooks can be taken down; accepts NULL. */
void http_quiesce(http_server_t *h);

/* Stop serving and free *hp; accepts NULL. */
void http_stop(http_server_t **hp);

/*
 * For handlers.
 */

/* Access a handler needs. */
enum http_scope {
    HTTP_SCOPE_READ, /* look: lists, envelopes, stats */
    HTTP_SCOPE_FULL, /* change things, read message content */
};

/* The hooks ternd gave. */
const struct http_hooks *http_req_hooks(http_req_t *r);

/* The server's per-process state shared by handlers. */
http_server_t *http_req_server(http_req_t *r);

/* The queue census that /stats, /metrics and the API's changes share. */
census_t *http_census(http_server_t *h);

/* Path segment i (0-based, after the leading slash), or NULL. */
const char *http_req_segment(http_req_t *r, int i);

/* A query argument, or NULL if absent. */
const char *http_req_query(http_req_t *r, const char *name);

/* Call fn for every query argument; fn returns nonzero to stop. */
void http_req_query_each(http_req_t *r,
                         int (*fn)(void *arg, const char *name,
                                   const char *value),
                         void *arg);

/* The parsed JSON body, or NULL when the request had none. */
json_t *http_req_body(http_req_t *r);

/* Log a change made through the API: "text, token=NAME, client=ADDR". */
void http_audit(http_req_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Answer with a JSON body; takes the reference to body. */
void http_reply_json(http_req_t *r, unsigned status, json_t *body);

/* Answer {"error": {"code", "message"[, "field"]}}; field may be NULL. */
void http_reply_error(http_req_t *r, unsigned status, const char *code,
                      const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Answer with an error that carries extra lines in "details"; takes the
 * reference to details (a JSON array, may be NULL). */
void http_reply_error_details(http_req_t *r, unsigned status,
                              const char *code, const char *message,
                              json_t *details);

/* Answer with raw bytes of the given type; takes data (malloc'd). */
void http_reply_raw(http_req_t *r, unsigned status, const char *type,
                    char *data, size_t len);

/* Check that obj (a JSON object) has no member but those in allowed
 * (NULL-terminated).  Returns 0, or -1 after answering 400. */
int http_check_fields(http_req_t *r, json_t *obj, const char *const *allowed);

/* Decode r's body as every POST's is before its handler runs, given the
 * Content-Type header (NULL if absent): no body is none, anything else
 * must be a JSON object sent as application/json.  Returns 0 (the object
 * is then http_req_body's), or -1 after answering 415 or 400. */
int http_parse_body(http_req_t *r, const char *type);

/*
 * For tests and fuzz targets: a request that no connection carries, so
 * that the steps which decode a request can run without a server.
 */

/* A POST holding len bytes of body, with no path, query, hooks or
 * server: give it only to functions that decode and answer.  The caller
 * frees it with http_req_free. */
http_req_t *http_req_detached(const void *body, size_t len);

/* The status of the answer given to r, 0 if none yet, with its body in
 * *data and *len (owned by r; NULL and 0 if none). */
unsigned http_req_answer(const http_req_t *r, const char **data,
                         size_t *len);

/* Free a request and clear *rp; accepts NULL and *rp == NULL. */
void http_req_free(http_req_t **rp);

#endif
