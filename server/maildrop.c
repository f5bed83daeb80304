/* SPDX-License-Identifier: ISC */
/*
 * maildrop: writing and reading the files of the maildrop directory.
 *
 * Flow: sendmail builds a maildrop_t and calls maildrop_write(); pickup
 * reads a whole file and calls maildrop_parse(), then hands the result
 * to cleanup.  The format (server/README) is
 *
 *     tern-maildrop 1
 *     uid 1000
 *     ...
 *     size 1234
 *     <empty line>
 *     <size bytes of message>
 *
 * Guarantees: the parser accepts a file only if every line is a known
 * field with a well-formed value, the required fields are there once
 * each, and the message after the empty line is exactly "size" bytes;
 * so a file cut short at any byte is refused, never half-read.  The
 * writer creates the file under a temporary name that pickup ignores,
 * fsyncs it, and renames it to its final name without replacing any
 * other file; a crash before the rename leaves only a temporary file
 * (which pickup removes when it is a day old), a crash after it leaves
 * the whole file.  The rename is made durable with an fsync of the
 * directory when the writer may open it, which a setgid sendmail may
 * not (the directory is mode 1730): it then fsyncs the file once more,
 * which on journaling file systems (ext4, XFS) commits the rename with
 * the file's changed inode.
 *
 * Threads: no shared state; any thread may parse.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/mem.h"
#include "lib/utf8.h"
#include "server/maildrop.h"

#define MAILDROP_MAGIC "tern-maildrop"
#define MAILDROP_NAME_LEN 31

void
maildrop_init(maildrop_t *m)
{
    memset(m, 0, sizeof(*m));
    m->uid = -1;
}

void
maildrop_clear(maildrop_t *m)
{
    size_t i;

    free(m->user);
    free(m->sender);
    free(m->fullname);
    free(m->envid);
    for (i = 0; i < m->nrcpt; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].orcpt);
    }
    free(m->rcpts);
    maildrop_init(m);
}

void
maildrop_set(char **field, const char *value)
{
    free(*field);
    *field = value ? mem_strdup(value) : NULL;
}

maildrop_rcpt_t *
maildrop_add_rcpt(maildrop_t *m, const char *addr)
{
    maildrop_rcpt_t *r;

    if (m->nrcpt == m->rcpt_cap) {
        m->rcpt_cap = m->rcpt_cap ? m->rcpt_cap * 2 : 4;
        m->rcpts = mem_reallocarray(m->rcpts, m->rcpt_cap, sizeof(*r));
    }
    r = &m->rcpts[m->nrcpt++];
    memset(r, 0, sizeof(*r));
    r->addr = mem_strdup(addr);
    return r;
}

/* Nonzero if the n bytes at s are printable text (see maildrop.h). */
static int
maildrop_text_ok_n(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t len;

        if (p[i] < 32 || p[i] == 127)
            return 0;
        len = utf8_len(p + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

int
maildrop_text_ok(const char *s)
{
    return maildrop_text_ok_n(s, strlen(s));
}

/* The NOTIFY bits as the file spells them. */
static void
maildrop_put_notify(buf_t *out, int notify)
{
    static const struct {
        int bit;
        const char *name;
    } names[] = {
        {DSN_NOTIFY_SUCCESS, "success"},
        {DSN_NOTIFY_FAILURE, "failure"},
        {DSN_NOTIFY_DELAY, "delay"},
    };
    const char *sep = "";
    size_t i;

    if (notify & DSN_NOTIFY_NEVER) {
        buf_puts(out, "notify never\n");
        return;
    }
    buf_puts(out, "notify ");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (notify & names[i].bit) {
            buf_printf(out, "%s%s", sep, names[i].name);
            sep = ",";
        }
    }
    buf_putc(out, '\n');
}

/* Append "name value\n", refusing values that the reader would. */
static int
maildrop_put(buf_t *out, const char *name, const char *value, const char **why)
{
    if (!maildrop_text_ok(value)) {
        *why = "a control character or invalid UTF-8 in a field";
        return -1;
    }
    buf_printf(out, "%s %s\n", name, value);
    return 0;
}

int
maildrop_format(const maildrop_t *m, size_t msglen, buf_t *out,
                const char **why)
{
    size_t start = out->len;
    size_t i;

    if (m->nrcpt == 0) {
        *why = "no recipients";
        return -1;
    }
    if (m->uid < 0 || m->user == NULL || m->user[0] == '\0') {
        *why = "no submitting user";
        return -1;
    }
    buf_printf(out, "%s %d\n", MAILDROP_MAGIC, MAILDROP_VERSION);
    buf_printf(out, "uid %ld\n", m->uid);
    if (maildrop_put(out, "user", m->user, why) < 0)
        return -1;
    buf_printf(out, "time %lld\n", (long long)m->time_us);
    if (maildrop_put(out, "sender", m->sender ? m->sender : "", why) < 0)
        return -1;
    if (m->fullname && maildrop_put(out, "fullname", m->fullname, why) < 0)
        return -1;
    if (m->envid && maildrop_put(out, "envid", m->envid, why) < 0)
        return -1;
    if (m->ret != DSN_RET_DEFAULT)
        buf_printf(out, "ret %s\n", m->ret == DSN_RET_FULL ? "full" : "hdrs");
    if (m->body_8bit)
        buf_puts(out, "body 8bitmime\n");
    for (i = 0; i < m->nrcpt; i++) {
        const maildrop_rcpt_t *r = &m->rcpts[i];

        if (r->addr[0] == '\0') {
            *why = "an empty recipient address";
            return -1;
        }
        if (maildrop_put(out, "rcpt", r->addr, why) < 0)
            return -1;
        if (r->notify)
            maildrop_put_notify(out, r->notify);
        if (r->orcpt && maildrop_put(out, "orcpt", r->orcpt, why) < 0)
            return -1;
    }
    buf_printf(out, "size %zu\n\n", msglen);
    if (out->len - start > MAILDROP_HEADER_MAX) {
        *why = "too many recipients";
        return -1;
    }
    return 0;
}

/* Parsing */

struct maildrop_parser {
    maildrop_t *m;
    char *err;
    size_t errlen;
    int lineno;
    unsigned seen; /* MAILDROP_F_* of the fields read so far */
    int rcpt_opts; /* options given for the last recipient */
    unsigned long long size;
};

enum {
    MAILDROP_F_UID = 1 << 0,
    MAILDROP_F_USER = 1 << 1,
    MAILDROP_F_TIME = 1 << 2,
    MAILDROP_F_SENDER = 1 << 3,
    MAILDROP_F_FULLNAME = 1 << 4,
    MAILDROP_F_ENVID = 1 << 5,
    MAILDROP_F_RET = 1 << 6,
    MAILDROP_F_BODY = 1 << 7,
    MAILDROP_F_SIZE = 1 << 8,
};

#define MAILDROP_REQUIRED                                                      \
    (MAILDROP_F_UID | MAILDROP_F_USER | MAILDROP_F_TIME | MAILDROP_F_SENDER |  \
     MAILDROP_F_SIZE)

static int maildrop_fail(struct maildrop_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why the file is refused, with the line number if there is
 * one; returns -1. */
static int
maildrop_fail(struct maildrop_parser *p, const char *fmt, ...)
{
    char what[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (p->lineno > 0)
        snprintf(p->err, p->errlen, "line %d: %s", p->lineno, what);
    else
        snprintf(p->err, p->errlen, "%s", what);
    return -1;
}

/* A decimal number without sign or leading zeros, at most max. */
static int
maildrop_number(const char *v, unsigned long long max, unsigned long long *out)
{
    unsigned long long n = 0;

    if (*v == '\0' || (v[0] == '0' && v[1] != '\0'))
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        if (n > (max - (unsigned long long)(*v - '0')) / 10)
            return -1;
        n = n * 10 + (unsigned long long)(*v - '0');
    }
    *out = n;
    return 0;
}

static int
maildrop_parse_notify(const char *v)
{
    int bits = 0;

    if (strcmp(v, "never") == 0)
        return DSN_NOTIFY_NEVER;
    while (*v) {
        const char *comma = strchr(v, ',');
        size_t n = comma ? (size_t)(comma - v) : strlen(v);
        int bit;

        if (n == 7 && strncmp(v, "success", 7) == 0)
            bit = DSN_NOTIFY_SUCCESS;
        else if (n == 7 && strncmp(v, "failure", 7) == 0)
            bit = DSN_NOTIFY_FAILURE;
        else if (n == 5 && strncmp(v, "delay", 5) == 0)
            bit = DSN_NOTIFY_DELAY;
        else
            return -1;
        if (bits & bit)
            return -1;
        bits |= bit;
        if (comma == NULL)
            break;
        v = comma + 1;
        if (*v == '\0')
            return -1;
    }
    return bits ? bits : -1;
}

/* Mark a once-only field as seen; -1 if it was already there. */
static int
maildrop_once(struct maildrop_parser *p, unsigned flag, const char *name)
{
    if (p->seen & flag)
        return maildrop_fail(p, "field \"%s\" given twice", name);
    p->seen |= flag;
    return 0;
}

/* One "name value" line; name and value are NUL-terminated copies. */
static int
maildrop_field(struct maildrop_parser *p, const char *name, const char *v)
{
    maildrop_t *m = p->m;
    unsigned long long n;

    if (strcmp(name, "rcpt") == 0) {
        if (*v == '\0')
            return maildrop_fail(p, "empty recipient");
        maildrop_add_rcpt(m, v);
        p->rcpt_opts = 0;
        return 0;
    }
    if (strcmp(name, "notify") == 0 || strcmp(name, "orcpt") == 0) {
        maildrop_rcpt_t *r = m->nrcpt ? &m->rcpts[m->nrcpt - 1] : NULL;
        int bit = name[0] == 'n' ? 1 : 2;

        if (r == NULL)
            return maildrop_fail(p, "\"%s\" before any rcpt", name);
        if (p->rcpt_opts & bit)
            return maildrop_fail(p, "\"%s\" given twice for one rcpt", name);
        p->rcpt_opts |= bit;
        if (bit == 2) {
            if (strchr(v, ';') == NULL || v[0] == ';')
                return maildrop_fail(p, "bad orcpt \"%s\"", v);
            r->orcpt = mem_strdup(v);
            return 0;
        }
        r->notify = maildrop_parse_notify(v);
        if (r->notify < 0)
            return maildrop_fail(p, "bad notify \"%s\"", v);
        return 0;
    }
    if (strcmp(name, "uid") == 0) {
        if (maildrop_once(p, MAILDROP_F_UID, name) < 0)
            return -1;
        if (maildrop_number(v, 0xfffffffeULL, &n) < 0)
            return maildrop_fail(p, "bad uid \"%s\"", v);
        m->uid = (long)n;
    } else if (strcmp(name, "user") == 0) {
        if (maildrop_once(p, MAILDROP_F_USER, name) < 0)
            return -1;
        if (*v == '\0')
            return maildrop_fail(p, "empty user");
        maildrop_set(&m->user, v);
    } else if (strcmp(name, "time") == 0) {
        if (maildrop_once(p, MAILDROP_F_TIME, name) < 0)
            return -1;
        if (maildrop_number(v, INT64_MAX, &n) < 0)
            return maildrop_fail(p, "bad time \"%s\"", v);
        m->time_us = (int64_t)n;
    } else if (strcmp(name, "sender") == 0) {
        if (maildrop_once(p, MAILDROP_F_SENDER, name) < 0)
            return -1;
        maildrop_set(&m->sender, v);
    } else if (strcmp(name, "fullname") == 0) {
        if (maildrop_once(p, MAILDROP_F_FULLNAME, name) < 0)
            return -1;
        maildrop_set(&m->fullname, v);
    } else if (strcmp(name, "envid") == 0) {
        if (maildrop_once(p, MAILDROP_F_ENVID, name) < 0)
            return -1;
        if (*v == '\0' || strlen(v) > 100)
            return maildrop_fail(p, "bad envid \"%s\"", v);
        maildrop_set(&m->envid, v);
    } else if (strcmp(name, "ret") == 0) {
        if (maildrop_once(p, MAILDROP_F_RET, name) < 0)
            return -1;
        if (strcmp(v, "full") == 0)
            m->ret = DSN_RET_FULL;
        else if (strcmp(v, "hdrs") == 0)
            m->ret = DSN_RET_HDRS;
        else
            return maildrop_fail(p, "bad ret \"%s\"", v);
    } else if (strcmp(name, "body") == 0) {
        if (maildrop_once(p, MAILDROP_F_BODY, name) < 0)
            return -1;
        if (strcmp(v, "8bitmime") == 0)
            m->body_8bit = 1;
        else if (strcmp(v, "7bit") != 0)
            return maildrop_fail(p, "bad body \"%s\"", v);
    } else if (strcmp(name, "size") == 0) {
        if (maildrop_once(p, MAILDROP_F_SIZE, name) < 0)
            return -1;
        if (maildrop_number(v, (unsigned long long)SIZE_MAX, &p->size) < 0)
            return maildrop_fail(p, "bad size \"%s\"", v);
    } else {
        return maildrop_fail(p, "unknown field \"%s\"", name);
    }
    return 0;
}

/* Split one header line (without its newline) and check it. */
static int
maildrop_line(struct maildrop_parser *p, const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    char name[16];
    size_t nlen;
    char *value;
    size_t i;
    int rc;

    if (sp == NULL)
        return maildrop_fail(p, "not a \"name value\" line");
    nlen = (size_t)(sp - line);
    if (nlen == 0 || nlen >= sizeof(name))
        return maildrop_fail(p, "bad field name");
    for (i = 0; i < nlen; i++)
        if ((line[i] < 'a' || line[i] > 'z') && line[i] != '_')
            return maildrop_fail(p, "bad field name");
    memcpy(name, line, nlen);
    name[nlen] = '\0';
    if (!maildrop_text_ok_n(sp + 1, len - nlen - 1))
        return maildrop_fail(p,
                             "a control character or invalid UTF-8 in "
                             "field \"%s\"",
                             name);
    value = mem_strndup(sp + 1, len - nlen - 1);
    rc = maildrop_field(p, name, value);
    free(value);
    return rc;
}

int
maildrop_parse(const char *data, size_t len, maildrop_t *m, size_t *body,
               char *err, size_t errlen)
{
    struct maildrop_parser p;
    char magic[32];
    size_t pos = 0;
    int n;

    memset(&p, 0, sizeof(p));
    p.m = m;
    p.err = err;
    p.errlen = errlen;
    n = snprintf(magic, sizeof(magic), "%s %d\n", MAILDROP_MAGIC,
                 MAILDROP_VERSION);
    if (len < (size_t)n || memcmp(data, magic, (size_t)n) != 0) {
        if (len >= sizeof(MAILDROP_MAGIC) &&
            memcmp(data, MAILDROP_MAGIC " ", sizeof(MAILDROP_MAGIC)) == 0)
            return maildrop_fail(&p, "not a version %d maildrop file",
                                 MAILDROP_VERSION);
        return maildrop_fail(&p, "not a maildrop file");
    }
    pos = (size_t)n;
    p.lineno = 1;
    for (;;) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);

        p.lineno++;
        if (nl == NULL || (size_t)(nl - data) > MAILDROP_HEADER_MAX)
            return maildrop_fail(&p, "the header has no end");
        if (nl == line) {
            pos++;
            break;
        }
        if (maildrop_line(&p, line, (size_t)(nl - line)) < 0)
            return -1;
        pos = (size_t)(nl - data) + 1;
    }
    p.lineno = 0;
    if ((p.seen & MAILDROP_REQUIRED) != MAILDROP_REQUIRED)
        return maildrop_fail(&p, "a required field is missing (uid, user, "
                                 "time, sender, size)");
    if (m->nrcpt == 0)
        return maildrop_fail(&p, "no recipients");
    if (p.size != (unsigned long long)(len - pos))
        return maildrop_fail(&p, "%zu bytes after the header, size says %llu",
                             len - pos, p.size);
    *body = pos;
    return 0;
}

/* Writing */

/* A name no other writer picks: time, process and random bits. */
static void
maildrop_name(char out[MAILDROP_NAME_SIZE], char kind)
{
    struct timeval tv;
    unsigned char rnd[3] = {0, 0, 0};
    unsigned long long us;

    gettimeofday(&tv, NULL);
    us = (unsigned long long)tv.tv_sec * 1000000ULL +
         (unsigned long long)tv.tv_usec;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd[0] ^= (unsigned char)tv.tv_usec;
    snprintf(out, MAILDROP_NAME_SIZE, "%c%016llx%08lx%02x%02x%02x", kind, us,
             (unsigned long)getpid() & 0xffffffffUL, rnd[0], rnd[1], rnd[2]);
}

static int
maildrop_hexname(const char *name, char kind)
{
    size_t i;

    if (name[0] != kind || strlen(name) != MAILDROP_NAME_LEN)
        return 0;
    for (i = 1; i < MAILDROP_NAME_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') ||
              (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

int
maildrop_name_final(const char *name)
{
    return maildrop_hexname(name, 'M');
}

int
maildrop_name_temp(const char *name)
{
    return maildrop_hexname(name, 'T');
}

static int
maildrop_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Rename from to to, failing rather than replacing an existing file. */
static int
maildrop_rename(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* A file system without RENAME_NOREPLACE: link refuses to replace. */
    if (link(from, to) < 0)
        return -1;
    unlink(from);
    return 0;
}

int
maildrop_write(const char *dir, const maildrop_t *m, const char *msg,
               size_t len, char name[MAILDROP_NAME_SIZE], buf_t *err)
{
    char tmpname[MAILDROP_NAME_SIZE];
    char *tmp = NULL;
    char *final = NULL;
    const char *why;
    buf_t head;
    int fd = -1;
    int dfd;
    int tries;
    int saved;

    buf_init(&head);
    if (maildrop_format(m, len, &head, &why) < 0) {
        buf_printf(err, "cannot write the maildrop file: %s", why);
        buf_free(&head);
        return -1;
    }
    /* Readable by all, as Postfix's maildrop files are: the directory
     * does not let anyone but its owner list or open names in it. */
    for (tries = 0; fd < 0 && tries < 10; tries++) {
        maildrop_name(tmpname, 'T');
        free(tmp);
        tmp = mem_printf("%s/%s", dir, tmpname);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0444);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        buf_printf(err, "cannot create a file in %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (maildrop_write_all(fd, head.data, head.len) < 0 ||
        maildrop_write_all(fd, msg, len) < 0 || fsync(fd) < 0) {
        buf_printf(err, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    for (tries = 0;; tries++) {
        memcpy(name, tmpname, MAILDROP_NAME_SIZE);
        maildrop_name(name, 'M');
        free(final);
        final = mem_printf("%s/%s", dir, name);
        if (maildrop_rename(tmp, final) == 0)
            break;
        if (errno != EEXIST || tries == 10) {
            buf_printf(err, "cannot rename %s to %s: %s", tmp, final,
                       strerror(errno));
            goto fail_unlink;
        }
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0) {
            buf_printf(err, "cannot fsync %s: %s", dir, strerror(errno));
            close(dfd);
            goto fail_final;
        }
        close(dfd);
    } else if (fsync(fd) < 0) {
        buf_printf(err, "cannot fsync %s: %s", final, strerror(errno));
        goto fail_final;
    }
    close(fd);
    buf_free(&head);
    free(tmp);
    free(final);
    return 0;

fail_final:
    /* Not known to be durable: take it back, so that the caller's
     * failure is the whole story. */
    saved = errno;
    unlink(final);
    errno = saved;
    goto fail;
fail_unlink:
    saved = errno;
    unlink(tmp);
    errno = saved;
fail:
    /* The caller may look at errno (ENOSPC: try again later). */
    saved = errno;
    if (fd >= 0)
        close(fd);
    buf_free(&head);
    free(tmp);
    free(final);
    errno = saved;
    return -1;
}
