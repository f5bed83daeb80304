/* SPDX-License-Identifier: ISC */
/*
 * client: the admin API as ternctl, mailq and sendmail -bp speak it,
 * through libcurl.  The address and the token come from the same
 * configuration ternd reads: a "unix:/path" item of admin_listen is
 * preferred (file permissions guard it, no token is needed), else the
 * first host:port item with the first token of admin_token_file that
 * may change things.
 */
#ifndef TERN_CLIENT_H
#define TERN_CLIENT_H

#include "lib/buf.h"
#include "lib/config.h"

typedef struct client client_t;

/* The configuration file to read, as ternd finds it: given (-c or -C),
 * else $TERN_CONFIG, else the default path if it exists, else NULL for
 * the embedded defaults. */
const char *client_config_path(const char *given);

/* Load the configuration at path (NULL: embedded defaults).  Returns a
 * config with one reference, or NULL after printing the errors to
 * stderr prefixed with prog. */
config_t *client_load_config(const char *prog, const char *path);

/* A client for the ternd that cfg describes.  url and token, when not
 * NULL, override what cfg says ("http://host:port" or "unix:/path").
 * Returns NULL with *err set (caller frees). */
client_t *client_new(const config_t *cfg, const char *url, const char *token,
                     char **err);

/* Send one request; body is JSON text or NULL.  Returns the HTTP status
 * with the response body in out (appended), or -1 with *err set when
 * ternd cannot be reached; *down is then set if nothing listens. */
int client_request(client_t *c, const char *method, const char *path,
                   const char *body, buf_t *out, int *down, char **err);

/* The message of an API error body, or the body itself; a new string. */
char *client_error_message(int status, const buf_t *body);

/* Where the client connects, for messages. */
const char *client_where(const client_t *c);

/* Free a client; accepts NULL. */
void client_free(client_t **cp);

#endif
