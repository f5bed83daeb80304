/* SPDX-License-Identifier: ISC */
/*
 * smtpd_auth: what SMTP AUTH needs apart from the dialogue itself.
 *
 * The password file is read once into an array sorted by user name and
 * never changed again, so checks take no lock; a reload opens a new one
 * and the sessions that still hold the old one keep it until they drop
 * their reference.  A check always runs one crypt_r, for an unknown user
 * against the hash of a user who exists, and compares the result in
 * constant time: neither the time taken nor the comparison shows which
 * user names exist or how much of a hash matched.
 *
 * Base64 is checked here to RFC 4648's letter before OpenSSL decodes it,
 * because EVP_DecodeBlock accepts stray padding, white space and
 * non-zero unused bits, and does not say how many of its output bytes
 * are padding.
 *
 * The limiter keeps, per client address, the times of its last failures
 * (at most max_failures of them) in a hash table under one mutex.  The
 * clients are also on a list in the order of their last failure, so
 * expiry takes them from the old end and the table never holds more
 * than SMTPD_AUTH_LIMITER_CLIENTS of them.  The hash is keyed with
 * random bytes so that a client cannot choose addresses that all fall
 * into one bucket.
 *
 * XXX Addresses are counted one by one, so an IPv6 client that owns a
 * /64 can try again from each of its addresses.  Counting IPv6 clients
 * by their /64 prefix would stop that, at the price of blocking
 * neighbours that share one.
 */
#include "autoconf.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "server/smtpd_auth.h"

/* Hashed for an unknown user when the file has no users at all. */
#define SMTPD_AUTH_DUMMY_SETTING "$6$tern.nosuchusr$"

/* Bytes of base64 text handed to OpenSSL at once: a multiple of four
 * that fits its int lengths. */
#define SMTPD_AUTH_B64_CHUNK (4 * 4096)

struct smtpd_auth_user {
    char *name;       /* one allocation holding the name, NUL, hash */
    const char *hash; /* points into name's allocation */
    size_t line;
};

struct smtpd_auth_db {
    struct smtpd_auth_user *users; /* sorted by name */
    size_t n;
    uint64_t key[2]; /* picks the stand-in hash for an unknown user */
    int refs;
};

struct smtpd_auth_client {
    struct smtpd_auth_client *chain; /* next in the same bucket */
    struct smtpd_auth_client *older; /* list by time of last failure */
    struct smtpd_auth_client *newer;
    uint64_t hash;
    char *addr;
    time_t last;     /* time of the last failure */
    unsigned nfail;  /* failure times held in times[] */
    unsigned first;  /* index of the earliest of them */
    time_t times[];  /* a ring of max entries */
};

struct smtpd_auth_limiter {
    pthread_mutex_t lock;
    int max;
    int window;
    uint64_t key[2];
    struct smtpd_auth_client **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;
    struct smtpd_auth_client *oldest;
    struct smtpd_auth_client *newest;
};

/*
 * Keyed hashing, for the limiter's table and the choice of a stand-in
 * hash for unknown users.
 */

#define SMTPD_AUTH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void
smtpd_auth_sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = SMTPD_AUTH_ROTL(v[1], 13) ^ v[0];
    v[0] = SMTPD_AUTH_ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = SMTPD_AUTH_ROTL(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = SMTPD_AUTH_ROTL(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = SMTPD_AUTH_ROTL(v[1], 17) ^ v[2];
    v[2] = SMTPD_AUTH_ROTL(v[2], 32);
}

/* SipHash-2-4 of s under key, as its authors specify it. */
static uint64_t
smtpd_auth_siphash(const uint64_t key[2], const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t v[4], m;
    size_t i, j;

    v[0] = key[0] ^ 0x736f6d6570736575ULL;
    v[1] = key[1] ^ 0x646f72616e646f6dULL;
    v[2] = key[0] ^ 0x6c7967656e657261ULL;
    v[3] = key[1] ^ 0x7465646279746573ULL;
    for (i = 0; i + 8 <= len; i += 8) {
        for (m = 0, j = 0; j < 8; j++)
            m |= (uint64_t)p[i + j] << (8 * j);
        v[3] ^= m;
        smtpd_auth_sipround(v);
        smtpd_auth_sipround(v);
        v[0] ^= m;
    }
    for (m = (uint64_t)len << 56, j = 0; i + j < len; j++)
        m |= (uint64_t)p[i + j] << (8 * j);
    v[3] ^= m;
    smtpd_auth_sipround(v);
    smtpd_auth_sipround(v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for (j = 0; j < 4; j++)
        smtpd_auth_sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/*
 * Password file.
 */

/* Append "path:line: " and a formatted reason to err. */
static void __attribute__((format(printf, 4, 5)))
smtpd_auth_db_error(buf_t *err, const char *path, size_t line,
                    const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    buf_printf(err, "%s:%zu: ", path, line);
    va_start(ap, fmt);
    buf_vprintf(err, fmt, ap);
    va_end(ap);
    buf_putc(err, '\n');
}

/* An escaped copy of len bytes for an error message; the caller frees. */
static char *
smtpd_auth_escaped(const char *s, size_t len)
{
    buf_t b;

    buf_init(&b);
    buf_escape(&b, s, len);
    return buf_steal(&b);
}

static int
smtpd_auth_is_crypt64(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* Strip a Dovecot scheme prefix of the crypt family from the hash at
 * *hp (*lenp bytes).  Returns 0, or -1 if the prefix names a scheme
 * that is not crypt(3), with an escaped copy of its name, which the
 * caller frees, in *scheme. */
static int
smtpd_auth_db_scheme(const char **hp, size_t *lenp, char **scheme)
{
    const char *h = *hp;
    const char *close;
    size_t slen;

    *scheme = NULL;
    if (*lenp == 0 || h[0] != '{')
        return 0;
    close = memchr(h, '}', *lenp);
    if (close == NULL)
        return 0;
    slen = (size_t)(close - h - 1);
    if (!(slen == 5 && strncasecmp(h + 1, "CRYPT", 5) == 0)
        && !(slen > 6 && strncasecmp(close - 6, "-CRYPT", 6) == 0)) {
        *scheme = smtpd_auth_escaped(h + 1, slen);
        return -1;
    }
    *lenp -= slen + 2;
    *hp = close + 1;
    return 0;
}

/* Nonzero if the NUL-terminated hash of len bytes is one crypt_r can
 * check: a "$id$" hash whose method libcrypt knows, a traditional DES
 * hash of 13 characters, or a BSDi one of "_" and 19. */
static int
smtpd_auth_db_hash_ok(const char *hash, size_t len)
{
    size_t i;

    if (hash[0] == '$') {
        for (i = 0; i < len; i++) {
            int c = (unsigned char)hash[i];

            if (!smtpd_auth_is_crypt64(c) && c != '$' && c != '='
                && c != ',')
                return 0;
        }
#ifdef CRYPT_CHECKSALT_AVAILABLE
        return crypt_checksalt(hash) != CRYPT_SALT_INVALID;
#else
        return len > 3 && strchr(hash + 1, '$') != NULL;
#endif
    }

    for (i = hash[0] == '_'; i < len; i++)
        if (!smtpd_auth_is_crypt64((unsigned char)hash[i]))
            return 0;
    return hash[0] == '_' ? len == 20 : len == 13;
}

/* Parse one line into *u.  Returns 1 for a user, 0 for a comment or a
 * blank line, -1 after appending an error to err. */
static int
smtpd_auth_db_line(const char *path, size_t lineno, char *line, size_t len,
                   buf_t *err, struct smtpd_auth_user *u)
{
    const char *p, *colon, *hash, *end;
    size_t ulen, hlen;
    char *name, *scheme;

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (memchr(line, '\0', len) != NULL) {
        smtpd_auth_db_error(err, path, lineno, "NUL byte in line");
        return -1;
    }
    for (p = line; *p == ' ' || *p == '\t'; p++)
        ;
    if (*p == '\0' || *p == '#')
        return 0;

    colon = strchr(line, ':');
    if (colon == NULL) {
        smtpd_auth_db_error(err, path, lineno,
                            "missing \":\" after the user name");
        return -1;
    }
    ulen = (size_t)(colon - line);
    if (ulen == 0) {
        smtpd_auth_db_error(err, path, lineno, "empty user name");
        return -1;
    }
    name = smtpd_auth_escaped(line, ulen);
    for (p = line; p < colon; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            smtpd_auth_db_error(err, path, lineno,
                                "white space or control character in "
                                "user name \"%s\"", name);
            free(name);
            return -1;
        }
    }

    hash = colon + 1;
    end = strchr(hash, ':');
    hlen = end ? (size_t)(end - hash) : strlen(hash);
    if (smtpd_auth_db_scheme(&hash, &hlen, &scheme) < 0) {
        smtpd_auth_db_error(err, path, lineno,
                            "unsupported password scheme {%s} for user "
                            "\"%s\"", scheme, name);
        free(scheme);
        free(name);
        return -1;
    }
    if (hlen == 0) {
        smtpd_auth_db_error(err, path, lineno,
                            "empty password hash for user \"%s\"", name);
        free(name);
        return -1;
    }

    u->name = mem_alloc(ulen + 1 + hlen + 1);
    memcpy(u->name, line, ulen);
    u->name[ulen] = '\0';
    memcpy(u->name + ulen + 1, hash, hlen);
    u->name[ulen + 1 + hlen] = '\0';
    u->hash = u->name + ulen + 1;
    u->line = lineno;
    if (!smtpd_auth_db_hash_ok(u->hash, hlen)) {
        smtpd_auth_db_error(err, path, lineno,
                            "unrecognized password hash for user \"%s\"",
                            name);
        mem_freep(&u->name);
        free(name);
        return -1;
    }
    free(name);
    return 1;
}

static int
smtpd_auth_user_cmp(const void *a, const void *b)
{
    const struct smtpd_auth_user *x = a;
    const struct smtpd_auth_user *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static void
smtpd_auth_db_destroy(smtpd_auth_db_t *db)
{
    size_t i;

    for (i = 0; i < db->n; i++) {
        explicit_bzero(db->users[i].name, strlen(db->users[i].name) + 1
                       + strlen(db->users[i].hash));
        free(db->users[i].name);
    }
    free(db->users);
    free(db);
}

/* Sort the users and report each repeated name; returns the number of
 * repeats. */
static size_t
smtpd_auth_db_sort(smtpd_auth_db_t *db, const char *path, buf_t *err)
{
    size_t i, bad = 0;

    if (db->n > 1)
        qsort(db->users, db->n, sizeof(db->users[0]), smtpd_auth_user_cmp);
    for (i = 1; i < db->n; i++) {
        char *name;

        if (strcmp(db->users[i - 1].name, db->users[i].name) != 0)
            continue;
        name = smtpd_auth_escaped(db->users[i].name,
                                  strlen(db->users[i].name));
        smtpd_auth_db_error(err, path, db->users[i].line,
                            "user \"%s\" already defined at line %zu", name,
                            db->users[i - 1].line);
        free(name);
        bad++;
    }
    return bad;
}

smtpd_auth_db_t *
smtpd_auth_db_open(const char *path, buf_t *err)
{
    smtpd_auth_db_t *db;
    FILE *fp;
    char *line = NULL;
    size_t linecap = 0, lineno = 0, cap = 0, bad = 0;
    ssize_t len;
    int saved;

    fp = fopen(path, "re");
    if (fp == NULL) {
        if (err)
            buf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    db = mem_calloc(1, sizeof(*db));
    db->refs = 1;

    for (;;) {
        struct smtpd_auth_user u;
        int rc;

        errno = 0;
        if ((len = getline(&line, &linecap, fp)) < 0)
            break;
        rc = smtpd_auth_db_line(path, ++lineno, line, (size_t)len, err, &u);
        if (rc < 0)
            bad++;
        if (rc <= 0)
            continue;
        if (db->n == cap) {
            cap = cap ? cap * 2 : 16;
            db->users = mem_reallocarray(db->users, cap, sizeof(u));
        }
        db->users[db->n++] = u;
    }
    saved = errno;
    if (ferror(fp)) {
        if (err)
            buf_printf(err, "%s: cannot read: %s\n", path, strerror(saved));
        bad++;
    }
    fclose(fp);
    if (line)
        explicit_bzero(line, linecap);
    free(line);

    bad += smtpd_auth_db_sort(db, path, err);
    if (bad) {
        smtpd_auth_db_destroy(db);
        return NULL;
    }

    if (RAND_bytes((unsigned char *)db->key, sizeof(db->key)) != 1)
        msg_fatal("cannot get random bytes for the password file");
    return db;
}

smtpd_auth_db_t *
smtpd_auth_db_ref(smtpd_auth_db_t *db)
{
    __atomic_add_fetch(&db->refs, 1, __ATOMIC_RELAXED);
    return db;
}

void
smtpd_auth_db_free(smtpd_auth_db_t **dbp)
{
    smtpd_auth_db_t *db;

    if (dbp == NULL || *dbp == NULL)
        return;
    db = *dbp;
    *dbp = NULL;
    if (__atomic_sub_fetch(&db->refs, 1, __ATOMIC_ACQ_REL) == 0)
        smtpd_auth_db_destroy(db);
}

size_t
smtpd_auth_db_count(const smtpd_auth_db_t *db)
{
    return db->n;
}

static int
smtpd_auth_user_key_cmp(const void *key, const void *elem)
{
    const struct smtpd_auth_user *u = elem;

    return strcmp(key, u->name);
}

/* The hash an unknown user is checked against: that of a real user,
 * always the same one for the same name, so that in a file that mixes
 * methods of different cost an unknown name takes as long as some known
 * one, and as long each time it is tried. */
static const char *
smtpd_auth_db_standin(const smtpd_auth_db_t *db, const char *user)
{
    if (db->n == 0)
        return SMTPD_AUTH_DUMMY_SETTING;
    return db->users[smtpd_auth_siphash(db->key, user, strlen(user))
                     % db->n].hash;
}

int
smtpd_auth_db_check(const smtpd_auth_db_t *db, const char *user,
                    const char *password)
{
    const struct smtpd_auth_user *u;
    struct crypt_data *cd;
    const char *hash, *out;
    size_t hlen;
    int same = 0;

    if (db == NULL || user == NULL || password == NULL)
        return 0;
    u = db->n == 0 ? NULL
                   : bsearch(user, db->users, db->n, sizeof(db->users[0]),
                             smtpd_auth_user_key_cmp);
    hash = u ? u->hash : smtpd_auth_db_standin(db, user);

    /* crypt_data is tens of kilobytes: too much for a worker's stack.
     * It must start zeroed, and holds a copy of the password after. */
    cd = mem_calloc(1, sizeof(*cd));
    out = crypt_r(password, hash, cd);
    hlen = strlen(hash);
    if (out != NULL && out[0] != '*' && strlen(out) == hlen)
        same = CRYPTO_memcmp(out, hash, hlen) == 0;
    explicit_bzero(cd, sizeof(*cd));
    free(cd);

    return u != NULL && password[0] != '\0' && same;
}

/*
 * Encodings.
 */

static int
smtpd_auth_b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int
smtpd_auth_b64_decode(const char *in, buf_t *out)
{
    size_t len = strlen(in), pad = 0, i, done, outlen;
    unsigned char *dst;

    if (len % 4 != 0)
        return -1;
    if (len > 0 && in[len - 1] == '=')
        pad++;
    if (len > 1 && in[len - 2] == '=')
        pad++;
    for (i = 0; i < len - pad; i++)
        if (smtpd_auth_b64_value((unsigned char)in[i]) < 0)
            return -1;

    /* RFC 4648 section 3.5: the bits the padding leaves unused must be
     * zero, or two texts would decode to the same bytes. */
    if (pad == 1 && (smtpd_auth_b64_value((unsigned char)in[len - 2]) & 3))
        return -1;
    if (pad == 2 && (smtpd_auth_b64_value((unsigned char)in[len - 3]) & 15))
        return -1;

    outlen = len / 4 * 3 - pad;
    buf_reserve(out, len / 4 * 3);
    dst = (unsigned char *)out->data + out->len;
    for (done = 0; done < len; done += SMTPD_AUTH_B64_CHUNK) {
        size_t n = len - done;

        if (n > SMTPD_AUTH_B64_CHUNK)
            n = SMTPD_AUTH_B64_CHUNK;
        if (EVP_DecodeBlock(dst + done / 4 * 3,
                            (const unsigned char *)in + done, (int)n)
            != (int)(n / 4 * 3))
            msg_panic("EVP_DecodeBlock rejected checked base64");
    }
    out->len += outlen;
    out->data[out->len] = '\0';
    return 0;
}

void
smtpd_auth_b64_encode(const void *in, size_t len, buf_t *out)
{
    const unsigned char *src = in;
    size_t chunk = SMTPD_AUTH_B64_CHUNK / 4 * 3;
    size_t done;

    if (len > ((size_t)-1 - 2) / 4)
        msg_panic("base64 input of %zu bytes is too long", len);
    buf_reserve(out, (len + 2) / 3 * 4);
    for (done = 0; done < len; done += chunk) {
        size_t n = len - done < chunk ? len - done : chunk;
        int w = EVP_EncodeBlock((unsigned char *)out->data + out->len,
                                src + done, (int)n);

        out->len += (size_t)w;
    }
    if (out->data)
        out->data[out->len] = '\0';
}

/* Zero and free a decoded response that may hold a password. */
static void
smtpd_auth_wipe(buf_t *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

int
smtpd_auth_plain_parse(const char *b64, char **authzid, char **user,
                       char **pass)
{
    buf_t msg;
    const char *z, *c, *p, *end;
    size_t zlen, clen;
    int rc = -1;

    if (authzid)
        *authzid = NULL;
    *user = NULL;
    *pass = NULL;
    buf_init(&msg);
    if (smtpd_auth_b64_decode(b64, &msg) < 0 || msg.len == 0)
        goto out;

    /* RFC 4616 section 2: exactly two NULs, so that no field holds
     * one, and a non-empty authcid and passwd. */
    z = msg.data;
    end = msg.data + msg.len;
    if ((c = memchr(z, '\0', msg.len)) == NULL)
        goto out;
    c++;
    if ((p = memchr(c, '\0', (size_t)(end - c))) == NULL)
        goto out;
    p++;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL)
        goto out;
    zlen = (size_t)(c - 1 - z);
    clen = (size_t)(p - 1 - c);
    if (clen == 0 || p == end)
        goto out;

    /* Section 2 again: an authzid equal to the authcid asks for no
     * more than the authcid alone. */
    if (zlen > 0 && (zlen != clen || memcmp(z, c, clen) != 0)) {
        rc = -2;
        goto out;
    }
    if (authzid)
        *authzid = mem_strdup(z);
    *user = mem_strdup(c);
    *pass = mem_strdup(p);
    rc = 0;
out:
    smtpd_auth_wipe(&msg);
    return rc;
}

int
smtpd_auth_login_decode(const char *b64, char **out)
{
    buf_t msg;
    int rc = -1;

    *out = NULL;
    buf_init(&msg);
    if (smtpd_auth_b64_decode(b64, &msg) == 0 && msg.len > 0
        && memchr(msg.data, '\0', msg.len) == NULL) {
        *out = mem_strdup(msg.data);
        rc = 0;
    }
    smtpd_auth_wipe(&msg);
    return rc;
}

void
smtpd_auth_secret_free(char **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    explicit_bzero(*sp, strlen(*sp));
    mem_freep(sp);
}

/*
 * Failure limit.
 */

smtpd_auth_limiter_t *
smtpd_auth_limiter_new(int max_failures, int window_seconds)
{
    smtpd_auth_limiter_t *lim = mem_calloc(1, sizeof(*lim));
    int rc;

    if (max_failures > SMTPD_AUTH_LIMITER_MAX)
        max_failures = SMTPD_AUTH_LIMITER_MAX;
    lim->max = max_failures;
    lim->window = window_seconds;
    if ((rc = pthread_mutex_init(&lim->lock, NULL)) != 0)
        msg_fatal("pthread_mutex_init: %s", strerror(rc));
    if (RAND_bytes((unsigned char *)lim->key, sizeof(lim->key)) != 1)
        msg_fatal("cannot get random bytes for the failure limiter");
    lim->nbuckets = 64;
    lim->buckets = mem_calloc(lim->nbuckets, sizeof(lim->buckets[0]));
    return lim;
}

static int
smtpd_auth_limiter_off(const smtpd_auth_limiter_t *lim)
{
    return lim == NULL || lim->max <= 0 || lim->window <= 0;
}

static struct smtpd_auth_client **
smtpd_auth_limiter_slot(smtpd_auth_limiter_t *lim, uint64_t hash)
{
    return &lim->buckets[hash & (lim->nbuckets - 1)];
}

static struct smtpd_auth_client *
smtpd_auth_limiter_find(smtpd_auth_limiter_t *lim, const char *addr,
                        uint64_t hash)
{
    struct smtpd_auth_client *c;

    for (c = *smtpd_auth_limiter_slot(lim, hash); c; c = c->chain)
        if (c->hash == hash && strcmp(c->addr, addr) == 0)
            return c;
    return NULL;
}

/* Take c off the time-ordered list. */
static void
smtpd_auth_limiter_unlist(smtpd_auth_limiter_t *lim,
                          struct smtpd_auth_client *c)
{
    if (c->older)
        c->older->newer = c->newer;
    else
        lim->oldest = c->newer;
    if (c->newer)
        c->newer->older = c->older;
    else
        lim->newest = c->older;
    c->older = c->newer = NULL;
}

/* Put c at the new end of the time-ordered list. */
static void
smtpd_auth_limiter_list(smtpd_auth_limiter_t *lim,
                        struct smtpd_auth_client *c)
{
    c->older = lim->newest;
    c->newer = NULL;
    if (lim->newest)
        lim->newest->newer = c;
    else
        lim->oldest = c;
    lim->newest = c;
}

/* Forget c altogether. */
static void
smtpd_auth_limiter_drop(smtpd_auth_limiter_t *lim,
                        struct smtpd_auth_client *c)
{
    struct smtpd_auth_client **pp = smtpd_auth_limiter_slot(lim, c->hash);

    while (*pp != c)
        pp = &(*pp)->chain;
    *pp = c->chain;
    smtpd_auth_limiter_unlist(lim, c);
    lim->n--;
    free(c->addr);
    free(c);
}

/* Forget the clients whose last failure has left the window.  A clock
 * that stepped back can leave a newer time before older ones on the
 * list; that delays expiry but the cap on clients still holds. */
static void
smtpd_auth_limiter_expire(smtpd_auth_limiter_t *lim, time_t now)
{
    while (lim->oldest && now - lim->oldest->last >= lim->window)
        smtpd_auth_limiter_drop(lim, lim->oldest);
}

/* Double the buckets when the chains grow longer than one on average. */
static void
smtpd_auth_limiter_grow(smtpd_auth_limiter_t *lim)
{
    struct smtpd_auth_client **old = lim->buckets;
    size_t oldn = lim->nbuckets, i;

    if (lim->n <= lim->nbuckets
        || lim->nbuckets >= SMTPD_AUTH_LIMITER_CLIENTS)
        return;
    lim->nbuckets *= 2;
    lim->buckets = mem_calloc(lim->nbuckets, sizeof(lim->buckets[0]));
    for (i = 0; i < oldn; i++) {
        struct smtpd_auth_client *c, *next;

        for (c = old[i]; c; c = next) {
            struct smtpd_auth_client **slot;

            next = c->chain;
            slot = smtpd_auth_limiter_slot(lim, c->hash);
            c->chain = *slot;
            *slot = c;
        }
    }
    free(old);
}

static struct smtpd_auth_client *
smtpd_auth_limiter_add(smtpd_auth_limiter_t *lim, const char *addr,
                       uint64_t hash)
{
    struct smtpd_auth_client *c, **slot;

    if (lim->n >= SMTPD_AUTH_LIMITER_CLIENTS)
        smtpd_auth_limiter_drop(lim, lim->oldest);
    c = mem_calloc(1, sizeof(*c) + (size_t)lim->max * sizeof(c->times[0]));
    c->hash = hash;
    c->addr = mem_strdup(addr);
    slot = smtpd_auth_limiter_slot(lim, hash);
    c->chain = *slot;
    *slot = c;
    smtpd_auth_limiter_list(lim, c);
    lim->n++;
    smtpd_auth_limiter_grow(lim);
    return c;
}

int
smtpd_auth_limiter_blocked(smtpd_auth_limiter_t *lim,
                           const char *client_addr, time_t now)
{
    struct smtpd_auth_client *c;
    unsigned i, recent = 0;
    uint64_t hash;

    if (smtpd_auth_limiter_off(lim))
        return 0;
    hash = smtpd_auth_siphash(lim->key, client_addr, strlen(client_addr));
    pthread_mutex_lock(&lim->lock);
    smtpd_auth_limiter_expire(lim, now);
    c = smtpd_auth_limiter_find(lim, client_addr, hash);

    /* Count every time held rather than trust the ring's order, which
     * a clock stepped back would break. */
    for (i = 0; c && i < c->nfail; i++)
        if (now - c->times[i] < lim->window)
            recent++;
    pthread_mutex_unlock(&lim->lock);
    return recent >= (unsigned)lim->max;
}

void
smtpd_auth_limiter_fail(smtpd_auth_limiter_t *lim, const char *client_addr,
                        time_t now)
{
    struct smtpd_auth_client *c;
    uint64_t hash;

    if (smtpd_auth_limiter_off(lim))
        return;
    hash = smtpd_auth_siphash(lim->key, client_addr, strlen(client_addr));
    pthread_mutex_lock(&lim->lock);
    smtpd_auth_limiter_expire(lim, now);
    c = smtpd_auth_limiter_find(lim, client_addr, hash);
    if (c == NULL)
        c = smtpd_auth_limiter_add(lim, client_addr, hash);
    if (c->nfail < (unsigned)lim->max) {
        c->times[(c->first + c->nfail) % (unsigned)lim->max] = now;
        c->nfail++;
    } else {
        c->times[c->first] = now;
        c->first = (c->first + 1) % (unsigned)lim->max;
    }
    c->last = now;
    smtpd_auth_limiter_unlist(lim, c);
    smtpd_auth_limiter_list(lim, c);
    pthread_mutex_unlock(&lim->lock);
}

void
smtpd_auth_limiter_success(smtpd_auth_limiter_t *lim,
                           const char *client_addr, time_t now)
{
    struct smtpd_auth_client *c;
    uint64_t hash;

    if (smtpd_auth_limiter_off(lim))
        return;
    hash = smtpd_auth_siphash(lim->key, client_addr, strlen(client_addr));
    pthread_mutex_lock(&lim->lock);
    smtpd_auth_limiter_expire(lim, now);
    if ((c = smtpd_auth_limiter_find(lim, client_addr, hash)) != NULL)
        smtpd_auth_limiter_drop(lim, c);
    pthread_mutex_unlock(&lim->lock);
}

size_t
smtpd_auth_limiter_count(smtpd_auth_limiter_t *lim, time_t now)
{
    size_t n;

    if (smtpd_auth_limiter_off(lim))
        return 0;
    pthread_mutex_lock(&lim->lock);
    smtpd_auth_limiter_expire(lim, now);
    n = lim->n;
    pthread_mutex_unlock(&lim->lock);
    return n;
}

void
smtpd_auth_limiter_free(smtpd_auth_limiter_t **limp)
{
    smtpd_auth_limiter_t *lim;

    if (limp == NULL || *limp == NULL)
        return;
    lim = *limp;
    *limp = NULL;
    while (lim->oldest)
        smtpd_auth_limiter_drop(lim, lim->oldest);
    free(lim->buckets);
    pthread_mutex_destroy(&lim->lock);
    free(lim);
}

/*
 * Logging.
 */

/* Append s escaped for the log; with brackets set, "[" and "]" too, so
 * that a client name cannot pass for the "[address]" that fail2ban
 * takes the address from. */
static void
smtpd_auth_log_escape(buf_t *b, const char *s, int brackets)
{
    for (; *s; s++) {
        if (brackets && (*s == '[' || *s == ']'))
            buf_printf(b, "\\%03o", (unsigned char)*s);
        else
            buf_escape(b, s, 1);
    }
}

void
smtpd_auth_log_failure(const char *client_name, const char *client_addr,
                       const char *mechanism, const char *reason)
{
    buf_t name, addr, mech, why;
    size_t i;

    buf_init(&name);
    buf_init(&addr);
    buf_init(&mech);
    buf_init(&why);
    smtpd_auth_log_escape(&name, client_name ? client_name : "unknown", 1);
    smtpd_auth_log_escape(&addr, client_addr ? client_addr : "unknown", 1);
    smtpd_auth_log_escape(&mech, mechanism ? mechanism : "unknown", 0);
    smtpd_auth_log_escape(&why, reason ? reason : "authentication failure",
                          0);

    /* Mechanism names are case-insensitive (RFC 4422 section 3.1); the
     * filters expect them in capitals. */
    for (i = 0; i < mech.len; i++)
        if (mech.data[i] >= 'a' && mech.data[i] <= 'z')
            mech.data[i] = (char)(mech.data[i] - 'a' + 'A');

    msg_warn("%s[%s]: SASL %s authentication failed: %s", name.data,
             addr.data, mech.data, why.data);
    buf_free(&name);
    buf_free(&addr);
    buf_free(&mech);
    buf_free(&why);
}
