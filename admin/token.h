/* SPDX-License-Identifier: ISC */
/*
 * token: the bearer tokens of the admin API, kept in admin_token_file.
 * One token a line, "NAME TOKEN [read]", or a line holding the token
 * alone (named "admin"); "#" starts a comment.  A "read" token may look
 * but not change anything.  Tokens are held as SHA-256 digests and
 * compared in constant time.
 */
#ifndef TERN_TOKEN_H
#define TERN_TOKEN_H

#include <stddef.h>

/* The shortest token accepted, in characters. */
#define TOKEN_MIN_LEN 16

typedef struct token_set token_set_t;

/* Read the tokens of path.  Returns a set (possibly empty), or NULL with
 * *err set (caller frees) if the file cannot be read.  Malformed lines
 * are logged and skipped. */
token_set_t *token_load(const char *path, char **err);

/* Create path (which must not exist) with one new random token named
 * "admin", mode 0600.  Returns 0, or -1 with *err set. */
int token_create(const char *path, char **err);

/* Number of tokens in the set. */
size_t token_count(const token_set_t *ts);

/* Look presented up (len bytes).  Returns the token's name (owned by
 * the set) and sets *read_only, or NULL if no token matches.  Every
 * token is compared, so the time taken does not depend on which one
 * matched or where a comparison failed. */
const char *token_check(const token_set_t *ts, const char *presented,
                        size_t len, int *read_only);

/* The first token of path that may change things, for clients (ternctl,
 * mailq): 1 with *token set (caller frees), 0 if there is none, -1 with
 * *err if the file cannot be read. */
int token_read_first(const char *path, char **token, char **err);

/* Free a set; accepts NULL. */
void token_free(token_set_t **tsp);

#endif
