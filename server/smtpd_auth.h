/* SPDX-License-Identifier: ISC */
/*
 * smtpd_auth: the pieces of SMTP AUTH (RFC 4954) that do not depend on
 * the session's state: a password file, base64 and the PLAIN (RFC 4616)
 * and LOGIN encodings, a limit on failures per client address, and the
 * log line for a failure in the shape fail2ban's postfix-sasl filter
 * reads.  The session drives the dialogue and calls these.
 *
 * Threads: a password file is immutable once opened and reference
 * counted, so any number of threads may check passwords against it at
 * once.  A limiter takes its own lock.  The decoders keep no state.
 */
#ifndef TERN_SMTPD_AUTH_H
#define TERN_SMTPD_AUTH_H

#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

/* The LOGIN mechanism's two prompts, "Username:" and "Password:", as
 * they go on the wire after "334 ". */
#define SMTPD_AUTH_LOGIN_PROMPT_USER "VXNlcm5hbWU6"
#define SMTPD_AUTH_LOGIN_PROMPT_PASS "UGFzc3dvcmQ6"

/* The most client addresses a limiter tracks; past it the client whose
 * last failure is oldest is forgotten. */
#define SMTPD_AUTH_LIMITER_CLIENTS 65536

/* The largest failure limit a limiter keeps exact count of; a larger
 * max_failures is treated as this. */
#define SMTPD_AUTH_LIMITER_MAX 64

typedef struct smtpd_auth_db smtpd_auth_db_t;
typedef struct smtpd_auth_limiter smtpd_auth_limiter_t;

/*
 * Password file.
 */

/* Read a password file of "user:hash" lines; further ":field"s after
 * the hash are ignored, as in Dovecot passwd-file and htpasswd files,
 * and "#" comment lines and blank lines are skipped.  The hash is a
 * crypt(3) hash that libcrypt knows ($y$, $6$, $5$, $2b$, ...), or a
 * traditional 13-character DES hash, optionally behind a Dovecot scheme
 * prefix {CRYPT} or {...-CRYPT}.  User names are compared exactly, case
 * included.  Returns a db with one reference, or NULL with every error
 * appended to err (which may be NULL), one per line, each ending in a
 * newline: "PATH:LINE: reason" for a bad line or a repeated user, or
 * "PATH: cannot open: reason" / "PATH: cannot read: reason". */
smtpd_auth_db_t *smtpd_auth_db_open(const char *path, buf_t *err);

/* Take one more reference; returns db. */
smtpd_auth_db_t *smtpd_auth_db_ref(smtpd_auth_db_t *db);

/* Drop a reference and clear *dbp; the last one frees.  Accepts NULL
 * and *dbp == NULL. */
void smtpd_auth_db_free(smtpd_auth_db_t **dbp);

/* The number of users in db. */
size_t smtpd_auth_db_count(const smtpd_auth_db_t *db);

/* Returns 1 if user is in db and password matches its hash, else 0.
 * An unknown user costs one hash computation like a known one, so the
 * time taken does not tell which users exist.  An empty password never
 * matches.  Safe to call from many threads at once. */
int smtpd_auth_db_check(const smtpd_auth_db_t *db, const char *user,
                        const char *password);

/*
 * Encodings.  An AUTH response of "*" (cancel) and an initial response
 * of "=" (empty, RFC 4954 section 4) are the session's to recognise
 * before it calls these.
 */

/* Decode strict RFC 4648 base64 (no white space, padding to a multiple
 * of four, unused bits zero) and append the bytes to out, followed by a
 * NUL that is not counted.  Returns 0, or -1 with out unchanged.  An
 * empty string decodes to nothing. */
int smtpd_auth_b64_decode(const char *in, buf_t *out);

/* Append the base64 encoding of len bytes at in to out. */
void smtpd_auth_b64_encode(const void *in, size_t len, buf_t *out);

/* Parse a PLAIN response (RFC 4616: authzid NUL authcid NUL passwd, in
 * base64).  Returns 0 and sets *authzid (which may be "", and may be
 * passed as NULL if unwanted), *user and *pass to strings the caller
 * frees (the password with smtpd_auth_secret_free).  Returns -1 if the
 * response is not base64 or not of that form, or the user or password
 * is empty; returns -2 if it is well formed but names an authzid other
 * than the user, since acting for another identity is not supported.
 * On failure all outputs are NULL. */
int smtpd_auth_plain_parse(const char *b64, char **authzid, char **user,
                           char **pass);

/* Decode one LOGIN response, the user name or the password.  Returns 0
 * and sets *out to a string the caller frees, or -1 (and *out = NULL)
 * if it is not base64, is empty or holds a NUL byte. */
int smtpd_auth_login_decode(const char *b64, char **out);

/* Overwrite a secret string with zeros, free it and clear *sp; accepts
 * NULL and *sp == NULL. */
void smtpd_auth_secret_free(char **sp);

/*
 * Failure limit per client address.
 */

/* A limiter that blocks a client address once it has failed
 * max_failures times within window_seconds.  A limit or window <= 0
 * never blocks.  Never NULL; free with smtpd_auth_limiter_free. */
smtpd_auth_limiter_t *smtpd_auth_limiter_new(int max_failures,
                                             int window_seconds);

/* Returns 1 if client_addr has failed max_failures times in the window
 * before now (a failure at t counts while now - t < window), else 0. */
int smtpd_auth_limiter_blocked(smtpd_auth_limiter_t *lim,
                               const char *client_addr, time_t now);

/* Record one failed authentication by client_addr at now. */
void smtpd_auth_limiter_fail(smtpd_auth_limiter_t *lim,
                             const char *client_addr, time_t now);

/* Forget the failures of client_addr, after it authenticated. */
void smtpd_auth_limiter_success(smtpd_auth_limiter_t *lim,
                                const char *client_addr, time_t now);

/* The number of client addresses tracked after expiring those whose
 * last failure is out of the window at now. */
size_t smtpd_auth_limiter_count(smtpd_auth_limiter_t *lim, time_t now);

/* Free the limiter and clear *limp; accepts NULL and *limp == NULL. */
void smtpd_auth_limiter_free(smtpd_auth_limiter_t **limp);

/*
 * Logging.
 */

/* Log a failed AUTH as Postfix does, which fail2ban's postfix-sasl
 * filter matches:
 *     warning: NAME[ADDR]: SASL MECH authentication failed: REASON
 * NAME NULL means "unknown".  Bytes outside printable ASCII, and
 * brackets in NAME and ADDR, are escaped as \ooo; MECH is upper-cased. */
void smtpd_auth_log_failure(const char *client_name, const char *client_addr,
                            const char *mechanism, const char *reason);

#endif
