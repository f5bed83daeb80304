/* SPDX-License-Identifier: ISC */
/*
 * table: lookup tables.  Every table type is read into one sorted array
 * of key/value pairs when it is opened, so a lookup is a binary search
 * and needs no lock.  Keys are folded to lower case on the way in and on
 * lookup.  A texthash file has "key value" or "key: value" lines, "#"
 * comments and continuation lines that begin with white space, as the
 * source files of Postfix's postmap; a bad line is an error with
 * file:line, never skipped in silence.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/table.h"

struct table_entry {
    char *key;
    char *value;
    size_t seq; /* order of appearance, to settle duplicate keys */
};

struct table {
    char *spec;
    char *static_value; /* static: tables */
    struct table_entry *entries;
    size_t n;
    size_t cap;
};

static void
table_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void
table_add(table_t *t, const char *key, size_t klen, const char *value,
          size_t vlen)
{
    struct table_entry *e;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->entries = mem_reallocarray(t->entries, t->cap, sizeof(*e));
    }
    e = &t->entries[t->n++];
    e->key = mem_strndup(key, klen);
    e->value = mem_strndup(value, vlen);
    e->seq = t->n;
    table_lower(e->key);
}

static int
table_cmp(const void *a, const void *b)
{
    const struct table_entry *x = a;
    const struct table_entry *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
table_cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct table_entry *)a)->key,
                  ((const struct table_entry *)b)->key);
}

/* Sort the entries; of two with one key the later one wins, as a
 * later line in a source file replaces an earlier one. */
static void
table_finish(table_t *t)
{
    size_t i;
    size_t out = 0;

    if (t->n == 0)
        return;
    qsort(t->entries, t->n, sizeof(*t->entries), table_cmp);
    for (i = 0; i < t->n; i++) {
        if (out > 0 && strcmp(t->entries[out - 1].key, t->entries[i].key)
            == 0) {
            free(t->entries[out - 1].key);
            free(t->entries[out - 1].value);
            t->entries[out - 1] = t->entries[i];
            continue;
        }
        t->entries[out++] = t->entries[i];
    }
    t->n = out;
}

/* Strip white space from both ends of the len bytes at *sp; returns the
 * new length and moves *sp past the leading space. */
static size_t
table_trim(const char **sp, size_t len)
{
    const char *s = *sp;

    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    *sp = s;
    return len;
}

/* Parse "{k=v, k2=v2, k3}" into t; white space around keys and values
 * does not count, as in Postfix's "inline:{ key = value }". */
static int
table_parse_inline(table_t *t, const char *s, buf_t *err)
{
    const char *end;

    if (*s != '{' || (end = strrchr(s, '}')) == NULL || end[1] != '\0') {
        buf_printf(err, "%s: inline table must be written {key=value, ...}",
                   t->spec);
        return -1;
    }
    s++;
    while (s < end) {
        const char *item;
        const char *eq;
        size_t len;

        while (s < end && (*s == ',' || isspace((unsigned char)*s)))
            s++;
        if (s >= end)
            break;
        item = s;
        while (s < end && *s != ',')
            s++;
        len = table_trim(&item, (size_t)(s - item));
        eq = memchr(item, '=', len);
        if (eq == NULL) {
            table_add(t, item, len, "", 0);
        } else {
            const char *v = eq + 1;
            size_t vlen = table_trim(&v, (size_t)(item + len - v));
            size_t klen = table_trim(&item, (size_t)(eq - item));

            table_add(t, item, klen, v, vlen);
        }
    }
    return 0;
}

/* Add one logical "key value" line of a texthash file. */
static int
table_parse_line(table_t *t, const char *path, int lineno, char *line,
                 buf_t *err)
{
    char *k = line;
    char *v;
    size_t klen;

    klen = strcspn(k, " \t:");
    if (klen == 0) {
        buf_printf(err, "%s:%d: missing key", path, lineno);
        return -1;
    }
    v = k + klen;
    if (*v == ':')
        v++;
    while (isspace((unsigned char)*v))
        v++;
    table_add(t, k, klen, v, strlen(v));
    return 0;
}

static int
table_read_file(table_t *t, const char *path, buf_t *err)
{
    FILE *fp = fopen(path, "r");
    buf_t logical;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    int start = 0;
    int rc = 0;

    if (fp == NULL) {
        buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    buf_init(&logical);
    while (rc == 0 && (n = getline(&line, &cap, fp)) >= 0) {
        char *p = line;

        lineno++;
        while (n > 0 && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (p != line && start != 0) {
            buf_putc(&logical, ' ');
            buf_puts(&logical, p);
            continue;
        }
        if (p != line) {
            buf_printf(err, "%s:%d: continuation line without a key before "
                            "it", path, lineno);
            rc = -1;
            break;
        }
        if (start != 0)
            rc = table_parse_line(t, path, start, logical.data, err);
        buf_reset(&logical);
        buf_puts(&logical, line);
        start = lineno;
    }
    if (rc == 0 && start != 0)
        rc = table_parse_line(t, path, start, logical.data, err);
    if (rc == 0 && ferror(fp)) {
        buf_printf(err, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    buf_free(&logical);
    fclose(fp);
    return rc;
}

table_t *
table_open(const char *spec, buf_t *err)
{
    table_t *t = mem_calloc(1, sizeof(*t));
    int rc;

    t->spec = mem_strdup(spec);
    if (strncmp(spec, "static:", 7) == 0) {
        t->static_value = mem_strdup(spec + 7);
        rc = 0;
    } else if (strncmp(spec, "inline:", 7) == 0) {
        rc = table_parse_inline(t, spec + 7, err);
    } else if (strncmp(spec, "texthash:", 9) == 0) {
        rc = table_read_file(t, spec + 9, err);
    } else if (spec[0] == '/' || spec[0] == '.') {
        rc = table_read_file(t, spec, err);
    } else {
        const char *colon = strchr(spec, ':');

        if (colon)
            buf_printf(err, "%s: unsupported table type \"%.*s\"", spec,
                       (int)(colon - spec), spec);
        else
            buf_printf(err, "%s: not a table (type:name or /path)", spec);
        rc = -1;
    }
    if (rc < 0) {
        table_free(&t);
        return NULL;
    }
    table_finish(t);
    return t;
}

int
table_lookup(const table_t *t, const char *key, const char **value)
{
    struct table_entry probe;
    struct table_entry *e;
    char *k;

    if (t->static_value) {
        *value = t->static_value;
        return 1;
    }
    if (t->n == 0)
        return 0;
    k = mem_strdup(key);
    table_lower(k);
    probe.key = k;
    e = bsearch(&probe, t->entries, t->n, sizeof(*e), table_cmp_key);
    free(k);
    if (e == NULL)
        return 0;
    *value = e->value;
    return 1;
}

const char *
table_name(const table_t *t)
{
    return t->spec;
}

void
table_free(table_t **tp)
{
    table_t *t = tp ? *tp : NULL;
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++) {
        free(t->entries[i].key);
        free(t->entries[i].value);
    }
    free(t->entries);
    free(t->static_value);
    free(t->spec);
    free(t);
    *tp = NULL;
}
