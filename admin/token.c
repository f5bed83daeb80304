/* SPDX-License-Identifier: ISC */
/*
 * token: reading, creating and checking the admin API's bearer tokens.
 *
 * A presented token is hashed with SHA-256 and the digest compared with
 * CRYPTO_memcmp against the digest of every token in the set, without
 * stopping at the first match: neither the length of a token nor the
 * position of the first differing byte shows in the time an answer
 * takes.  New tokens come from getrandom(), 32 bytes written as hex.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "admin/token.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

#define TOKEN_FILE_MAX (1024 * 1024)
#define TOKEN_RANDOM_BYTES 32

struct token {
    char *name;
    char *text; /* kept only for token_read_first */
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int read_only;
};

struct token_set {
    struct token *tokens;
    size_t n;
    size_t cap;
};

static void
token_add(token_set_t *ts, const char *name, const char *text, int read_only)
{
    struct token *t;

    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 4;
        ts->tokens = mem_reallocarray(ts->tokens, ts->cap, sizeof(*t));
    }
    t = &ts->tokens[ts->n++];
    t->name = mem_strdup(name);
    t->text = mem_strdup(text);
    t->read_only = read_only;
    SHA256((const unsigned char *)text, strlen(text), t->digest);
}

/* Split line into at most three words; returns how many there were. */
static int
token_words(char *line, char **w)
{
    char *save = NULL;
    char *p;
    int n = 0;

    for (p = strtok_r(line, " \t\r", &save); p;
         p = strtok_r(NULL, " \t\r", &save)) {
        if (n == 3)
            return 4;
        w[n++] = p;
    }
    return n;
}

/* One line of the file; lineno for the warnings. */
static void
token_parse_line(token_set_t *ts, const char *path, int lineno, char *line)
{
    char *w[3] = {NULL, NULL, NULL};
    const char *text;
    int n;

    if (line[strspn(line, " \t\r")] == '#')
        return;
    n = token_words(line, w);
    if (n == 0)
        return;
    if (n > 3 || (n == 3 && strcmp(w[2], "read") != 0)) {
        msg_warn("%s:%d: expected \"NAME TOKEN [read]\"; line ignored", path,
                 lineno);
        return;
    }
    text = n == 1 ? w[0] : w[1];
    if (strlen(text) < TOKEN_MIN_LEN) {
        msg_warn("%s:%d: token shorter than %d characters; line ignored",
                 path, lineno, TOKEN_MIN_LEN);
        return;
    }
    token_add(ts, n == 1 ? "admin" : w[0], text, n == 3);
}

/* Read the whole file into b; 0 or -1 with *err. */
static int
token_slurp(const char *path, buf_t *b, char **err)
{
    char chunk[4096];
    ssize_t got;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        *err = mem_printf("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            *err = mem_printf("cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        buf_append(b, chunk, (size_t)got);
        if (b->len > TOKEN_FILE_MAX) {
            *err = mem_printf("%s: larger than %d bytes", path,
                              TOKEN_FILE_MAX);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* Read the tokens of path. */
token_set_t *
token_load(const char *path, char **err)
{
    token_set_t *ts;
    char *line;
    char *next;
    int lineno = 0;
    buf_t b;

    buf_init(&b);
    if (token_slurp(path, &b, err) < 0) {
        buf_free(&b);
        return NULL;
    }
    ts = mem_calloc(1, sizeof(*ts));
    for (line = b.data; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        token_parse_line(ts, path, lineno, line);
    }
    buf_free(&b);
    return ts;
}

/* Make a new token file holding one random token. */
int
token_create(const char *path, char **err)
{
    unsigned char raw[TOKEN_RANDOM_BYTES];
    char hex[2 * TOKEN_RANDOM_BYTES + 1];
    char *text;
    size_t i;
    size_t len;
    int fd;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        *err = mem_printf("cannot get random bytes: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    text = mem_printf("# admin API tokens: NAME TOKEN [read]\nadmin %s\n", hex);
    OPENSSL_cleanse(hex, sizeof(hex));
    len = strlen(text);

    /* O_EXCL: a file that appeared meanwhile is never overwritten. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        *err = mem_printf("cannot create %s: %s", path, strerror(errno));
        OPENSSL_cleanse(text, len);
        free(text);
        return -1;
    }
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
        *err = mem_printf("cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        OPENSSL_cleanse(text, len);
        free(text);
        return -1;
    }
    close(fd);
    OPENSSL_cleanse(text, len);
    free(text);
    return 0;
}

size_t
token_count(const token_set_t *ts)
{
    return ts ? ts->n : 0;
}

/* Find the token presented, comparing against all of them. */
const char *
token_check(const token_set_t *ts, const char *presented, size_t len,
            int *read_only)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    const char *name = NULL;
    size_t i;

    if (ts == NULL)
        return NULL;
    SHA256((const unsigned char *)presented, len, digest);
    for (i = 0; i < ts->n; i++) {
        int same = CRYPTO_memcmp(digest, ts->tokens[i].digest,
                                 sizeof(digest)) == 0;

        if (same && name == NULL) {
            name = ts->tokens[i].name;
            *read_only = ts->tokens[i].read_only;
        }
    }
    return name;
}

/* The first token of the file that may change things. */
int
token_read_first(const char *path, char **token, char **err)
{
    token_set_t *ts = token_load(path, err);
    size_t i;
    int found = 0;

    if (ts == NULL)
        return -1;
    for (i = 0; i < ts->n && !found; i++) {
        if (ts->tokens[i].read_only)
            continue;
        *token = mem_strdup(ts->tokens[i].text);
        found = 1;
    }
    token_free(&ts);
    return found;
}

void
token_free(token_set_t **tsp)
{
    token_set_t *ts = tsp ? *tsp : NULL;
    size_t i;

    if (ts == NULL)
        return;
    for (i = 0; i < ts->n; i++) {
        free(ts->tokens[i].name);
        OPENSSL_cleanse(ts->tokens[i].text, strlen(ts->tokens[i].text));
        free(ts->tokens[i].text);
    }
    free(ts->tokens);
    free(ts);
    *tsp = NULL;
}
