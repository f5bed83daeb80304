/* SPDX-License-Identifier: ISC */
/*
 * http: the embedded admin endpoint (libmicrohttpd in its own threads,
 * JSON bodies through jansson).  It answers GET /healthz and, for
 * everything else not yet served, a JSON 404.
 */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

typedef struct http_server http_server_t;

/* Listen on "host:port".  Returns NULL with *err set (caller frees). */
http_server_t *http_start(const char *hostport, char **err);

/* Stop serving and free *hp; accepts NULL. */
void http_stop(http_server_t **hp);

#endif
