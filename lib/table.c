/* SPDX-License-Identifier: ISC */
/*
 * table: lookup tables.  The fixed-key types (static, inline, texthash)
 * are read into one sorted array of key/value pairs when they are
 * opened, so a lookup is a binary search and needs no lock.  Their keys
 * are folded to lower case on the way in and on lookup.  A texthash file
 * has "key value" or "key: value" lines, "#" comments and continuation
 * lines that begin with white space, as the source files of Postfix's
 * postmap; a key that looks like an IPv6 address keeps its colons.  A
 * bad line is an error with file:line, never skipped in silence.
 *
 * The pattern types (pcre, regexp) keep their rules in file order and
 * try them one by one; the first rule that matches gives the result,
 * with $1..$9 replaced by what the pattern's groups captured.  Rules are
 * written as in Postfix's pcre_table(5) and regexp_table(5):
 *
 *     /pattern/flags result     !/pattern/flags result
 *     if /pattern/flags         endif
 *
 * "if" blocks nest; their rules are tried only when the key matches the
 * "if" pattern.  Both types are compiled with PCRE2 (with its JIT when
 * the library has one).  A pcre pattern's flags toggle PCRE2 options: i
 * (case-insensitive, on by default, as in Postfix), m (multi-line), s
 * (dot matches newline), x (extended syntax), A (anchored), E (dollar
 * matches only at the end), U (ungreedy).
 *
 * regexp: differs from Postfix, which hands those patterns to the
 * system's POSIX regcomp(): here they too are PCRE2 patterns, compiled
 * to behave like POSIX extended expressions where the two agree on a
 * pattern (dot matches newline and "$" only the very end, unless the m
 * flag asks for line-by-line matching).  What differs: an alternation
 * takes the first alternative that matches rather than the longest,
 * backslash sequences such as \d and \b have their PCRE meaning, and the
 * x flag (POSIX basic syntax in Postfix) is refused.  Flags i and m mean
 * what they mean in Postfix, and "/a/!/b/ result" (match a but not b)
 * is accepted as Postfix's regexp tables accept it.
 *
 * Compiled patterns are only read after the table is opened, and every
 * lookup brings its own match data, so pattern tables are as safe to
 * share between threads as the others.
 */
#include "autoconf.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/lines.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/table.h"

enum table_kind {
    TABLE_FIXED,  /* static, inline, texthash: the sorted entries */
    TABLE_PCRE,   /* pcre: rules */
    TABLE_REGEXP, /* regexp: rules, POSIX-like defaults */
};

struct table_entry {
    char *key;
    char *value;
    size_t seq; /* order of appearance, to settle duplicate keys */
};

/* One line of a pattern table: a rule with a result, or an "if". */
struct table_rule {
    pcre2_code *re;
    pcre2_code *re_not; /* regexp "/a/!/b/": b must not match */
    int negate;         /* "!/pattern/" */
    int lineno;
    char *result;       /* NULL for an "if" */
    size_t skip;        /* an "if": index of the first rule after endif */
};

struct table {
    char *spec;
    enum table_kind kind;
    char *static_value; /* static: tables */
    struct table_entry *entries;
    size_t n;
    size_t cap;
    struct table_rule *rules;
    size_t nrules;
    size_t rcap;
    uint32_t max_pairs; /* ovector pairs the largest pattern needs */
    size_t *ifs;        /* while reading: the open "if" rules */
    size_t nifs;
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

/* The length of the key at the start of a texthash line: up to white
 * space or a ':' ("key: value"), except that an IPv6 address or network
 * ("2001:db8::1", "2001:db8:1", as access tables hold them) and a
 * bracketed next hop ("[mx.example.com]:587") keep their colons. */
static size_t
table_key_len(const char *k)
{
    size_t tok = strcspn(k, " \t");
    size_t colons = 0;
    size_t i;

    /* "[host]:port", as smtp_sasl_password_maps keys are written. */
    if (k[0] == '[' && memchr(k, ']', tok) != NULL)
        return tok;
    for (i = 0; i < tok; i++) {
        if (k[i] == ':')
            colons++;
        else if (!isxdigit((unsigned char)k[i]) && k[i] != '.')
            break;
    }
    if (i == tok && colons > 0 &&
        (k[tok - 1] != ':' || (tok >= 2 && k[tok - 2] == ':')))
        return tok;
    return strcspn(k, " \t:");
}

/* Add one logical "key value" line of a texthash file. */
static int
table_parse_line(table_t *t, const char *path, int lineno, char *line,
                 buf_t *err)
{
    char *k = line;
    char *v;
    size_t klen;

    klen = table_key_len(k);
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

/* Add one logical line of a table file; returns 0 or -1 with err set. */
typedef int (*table_line_fn)(table_t *t, const char *path, int lineno,
                             char *line, buf_t *err);

struct table_reading {
    table_t *t;
    const char *path;
    table_line_fn parse;
    buf_t *err;
};

static int
table_file_line(void *ctx, int lineno, char *line, int orphan)
{
    struct table_reading *rd = ctx;

    if (orphan) {
        buf_printf(rd->err, "%s:%d: continuation line without a key before "
                            "it",
                   rd->path, lineno);
        return -1;
    }
    return rd->parse(rd->t, rd->path, lineno, line, rd->err);
}

/* Read a table file, handing each logical line (continuations joined
 * with one space) to parse; the first error stops it. */
static int
table_read_file(table_t *t, const char *path, table_line_fn parse,
                buf_t *err)
{
    struct table_reading rd = {t, path, parse, err};
    const char *what;
    buf_t text;
    int rc;

    buf_init(&text);
    if (lines_read(path, &text, &what) < 0) {
        buf_printf(err, "%s: %s: %s", path, what, strerror(errno));
        buf_free(&text);
        return -1;
    }
    rc = lines_each(text.data ? text.data : "", text.len,
                    LINES_JOIN | LINES_TRIM, table_file_line, &rd);
    buf_free(&text);
    return rc;
}

/* Add one rule to a pattern table; returns it. */
static struct table_rule *
table_rule_add(table_t *t, int lineno)
{
    struct table_rule *r;

    if (t->nrules == t->rcap) {
        t->rcap = t->rcap ? t->rcap * 2 : 16;
        t->rules = mem_reallocarray(t->rules, t->rcap, sizeof(*r));
    }
    r = &t->rules[t->nrules++];
    memset(r, 0, sizeof(*r));
    r->lineno = lineno;
    return r;
}

/* Turn a pattern's flags into PCRE2 options; returns -1 with err set
 * for a flag the table type does not have. */
static int
table_pattern_options(const table_t *t, const char *path, int lineno,
                      const char *flags, size_t nflags, uint32_t *opts,
                      buf_t *err)
{
    int multiline = 0;
    size_t i;

    *opts = PCRE2_CASELESS;
    for (i = 0; i < nflags; i++) {
        char f = flags[i];

        if (f == 'i')
            *opts ^= PCRE2_CASELESS;
        else if (f == 'm')
            multiline = !multiline;
        else if (t->kind == TABLE_PCRE && f == 's')
            *opts ^= PCRE2_DOTALL;
        else if (t->kind == TABLE_PCRE && f == 'x')
            *opts ^= PCRE2_EXTENDED;
        else if (t->kind == TABLE_PCRE && f == 'A')
            *opts ^= PCRE2_ANCHORED;
        else if (t->kind == TABLE_PCRE && f == 'E')
            *opts ^= PCRE2_DOLLAR_ENDONLY;
        else if (t->kind == TABLE_PCRE && f == 'U')
            *opts ^= PCRE2_UNGREEDY;
        else {
            buf_printf(err, "%s:%d: unknown pattern flag \"%c\"%s", path,
                       lineno, f, t->kind == TABLE_REGEXP && f == 'x'
                       ? " (POSIX basic syntax is not supported)" : "");
            return -1;
        }
    }
    if (multiline)
        *opts |= PCRE2_MULTILINE;
    /* Without REG_NEWLINE, POSIX lets "." match a newline and "$" match
     * only at the very end; with it (the m flag), neither. */
    if (t->kind == TABLE_REGEXP && !multiline)
        *opts |= PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY;
    return 0;
}

/* Parse "[!]/pattern/flags" at *sp and compile it; moves *sp past it.
 * Returns the compiled pattern, or NULL with err set. */
static pcre2_code *
table_pattern_parse(table_t *t, const char *path, int lineno,
                    const char **sp, int *negate, buf_t *err)
{
    const char *s = *sp;
    const char *pat;
    const char *flags;
    char delim;
    uint32_t opts;
    pcre2_code *re;
    int code;
    PCRE2_SIZE off;

    *negate = 0;
    if (*s == '!') {
        *negate = 1;
        s++;
    }
    delim = *s;
    if (delim == '\0' || delim == '\\' || isspace((unsigned char)delim) ||
        isalnum((unsigned char)delim)) {
        buf_printf(err, "%s:%d: expected /pattern/, \"if\" or \"endif\"",
                   path, lineno);
        return NULL;
    }
    pat = ++s;
    /* A backslash hides the delimiter; it stays in the pattern, where
     * PCRE2 reads the pair as the delimiter itself. */
    while (*s != '\0' && *s != delim) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        s++;
    }
    if (*s != delim) {
        buf_printf(err, "%s:%d: pattern has no closing \"%c\"", path,
                   lineno, delim);
        return NULL;
    }
    flags = s + 1;
    s = flags;
    while (*s != '\0' && !isspace((unsigned char)*s) &&
           !(t->kind == TABLE_REGEXP && *s == '!'))
        s++;
    if (table_pattern_options(t, path, lineno, flags, (size_t)(s - flags),
                              &opts, err) < 0)
        return NULL;
    re = pcre2_compile((PCRE2_SPTR)pat, (size_t)(flags - 1 - pat), opts,
                       &code, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];

        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        buf_printf(err, "%s:%d: %s at offset %zu", path, lineno,
                   (const char *)msg, (size_t)off);
        return NULL;
    }
    /* Without a JIT in the library this fails, and matching interprets. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *sp = s;
    return re;
}

/* The number of capturing groups of re. */
static uint32_t
table_pattern_groups(const pcre2_code *re)
{
    uint32_t n = 0;

    (void)pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &n);
    return n;
}

/* Read the group number of a "$n", "${n}" or "$(n)" at s (just past the
 * "$").  Returns the number of bytes it takes and sets *group, or 0 when
 * s does not start a group reference (*group is then -1 for "$$" and
 * -2 for a name, which only Postfix's other tables know). */
static size_t
table_subst_ref(const char *s, long *group)
{
    const char *p = s;
    char close = 0;

    if (*p == '$') {
        *group = -1;
        return 0;
    }
    if (*p == '{')
        close = '}';
    else if (*p == '(')
        close = ')';
    if (close)
        p++;
    if (!isdigit((unsigned char)*p)) {
        *group = isalpha((unsigned char)*p) || *p == '_' ? -2 : -3;
        return 0;
    }
    *group = 0;
    while (isdigit((unsigned char)*p)) {
        if (*group < 100000)
            *group = *group * 10 + (*p - '0');
        p++;
    }
    if (close) {
        if (*p != close) {
            *group = -2;
            return 0;
        }
        p++;
    }
    return (size_t)(p - s);
}

/* Check the $n references of a result against the groups the pattern
 * has; returns 0 or -1 with err set. */
static int
table_subst_check(const char *path, int lineno, const char *result,
                  uint32_t groups, int negate, buf_t *err)
{
    const char *p;

    for (p = strchr(result, '$'); p; p = strchr(p, '$')) {
        long g;
        size_t n = table_subst_ref(p + 1, &g);

        if (n == 0 && g == -1) {
            p += 2;
            continue;
        }
        if (n == 0 && g == -2) {
            buf_printf(err, "%s:%d: \"$\" in the result must be followed "
                            "by a group number (write $$ for a dollar "
                            "sign)", path, lineno);
            return -1;
        }
        if (n > 0 && negate) {
            buf_printf(err, "%s:%d: $%ld in the result of a negated "
                            "pattern, which captures nothing", path, lineno,
                       g);
            return -1;
        }
        if (n > 0 && (g < 1 || (unsigned long)g > groups)) {
            buf_printf(err, "%s:%d: $%ld in the result, but the pattern "
                            "has %u group%s", path, lineno, g,
                       (unsigned)groups, groups == 1 ? "" : "s");
            return -1;
        }
        p += 1 + n;
    }
    return 0;
}

/* Nonzero if the line is the word w (case-insensitive) alone or followed
 * by white space; moves *sp past it. */
static int
table_keyword(const char **sp, const char *w)
{
    size_t len = strlen(w);

    if (strncasecmp(*sp, w, len) != 0 ||
        ((*sp)[len] != '\0' && !isspace((unsigned char)(*sp)[len])))
        return 0;
    *sp += len;
    while (isspace((unsigned char)**sp))
        (*sp)++;
    return 1;
}

/* Add one logical line of a pcre: or regexp: file. */
static int
table_parse_rule(table_t *t, const char *path, int lineno, char *line,
                 buf_t *err)
{
    const char *s = line;
    struct table_rule *r;
    pcre2_code *re;
    pcre2_code *re_not = NULL;
    uint32_t groups;
    int negate;
    int neg2;

    if (table_keyword(&s, "endif")) {
        if (*s != '\0') {
            buf_printf(err, "%s:%d: text after \"endif\"", path, lineno);
            return -1;
        }
        if (t->nifs == 0) {
            buf_printf(err, "%s:%d: \"endif\" without \"if\"", path, lineno);
            return -1;
        }
        t->rules[t->ifs[--t->nifs]].skip = t->nrules;
        return 0;
    }
    if (table_keyword(&s, "if")) {
        if ((re = table_pattern_parse(t, path, lineno, &s, &negate,
                                      err)) == NULL)
            return -1;
        r = table_rule_add(t, lineno);
        r->re = re;
        r->negate = negate;
        while (isspace((unsigned char)*s))
            s++;
        if (*s != '\0') {
            buf_printf(err, "%s:%d: text after the \"if\" pattern", path,
                       lineno);
            return -1;
        }
        t->ifs = mem_reallocarray(t->ifs, t->nifs + 1, sizeof(*t->ifs));
        t->ifs[t->nifs++] = t->nrules - 1;
        groups = table_pattern_groups(re);
        if (groups + 1 > t->max_pairs)
            t->max_pairs = groups + 1;
        return 0;
    }
    if ((re = table_pattern_parse(t, path, lineno, &s, &negate, err))
        == NULL)
        return -1;
    r = table_rule_add(t, lineno);
    r->re = re;
    r->negate = negate;
    if (t->kind == TABLE_REGEXP && *s == '!') {
        if ((re_not = table_pattern_parse(t, path, lineno, &s, &neg2,
                                          err)) == NULL)
            return -1;
        r->re_not = re_not;
    }
    groups = table_pattern_groups(re);
    if (groups + 1 > t->max_pairs)
        t->max_pairs = groups + 1;
    if (re_not && table_pattern_groups(re_not) + 1 > t->max_pairs)
        t->max_pairs = table_pattern_groups(re_not) + 1;
    if (!isspace((unsigned char)*s) && *s != '\0') {
        buf_printf(err, "%s:%d: white space expected after the pattern",
                   path, lineno);
        return -1;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0') {
        buf_printf(err, "%s:%d: pattern without a result", path, lineno);
        return -1;
    }
    if (table_subst_check(path, lineno, s, groups, negate, err) < 0)
        return -1;
    r->result = mem_strdup(s);
    return 0;
}

/* Read a pcre: or regexp: file; every "if" must have its "endif". */
static int
table_read_rules(table_t *t, const char *path, buf_t *err)
{
    int rc = table_read_file(t, path, table_parse_rule, err);

    if (rc == 0 && t->nifs > 0) {
        buf_printf(err, "%s:%d: \"if\" without \"endif\"", path,
                   t->rules[t->ifs[t->nifs - 1]].lineno);
        rc = -1;
    }
    mem_freep(&t->ifs);
    t->nifs = 0;
    return rc;
}

/* Match key against re.  Returns 1 on a match (captures in md), 0 on
 * none; a matching error (a resource limit, say) is logged and counts as
 * no match. */
static int
table_pattern_match(const table_t *t, const struct table_rule *r,
                    const pcre2_code *re, const char *key,
                    pcre2_match_data *md)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)key, strlen(key), 0, 0, md, NULL);

    if (rc >= 0)
        return 1;
    if (rc != PCRE2_ERROR_NOMATCH) {
        PCRE2_UCHAR msg[256];

        if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", rc);
        msg_warn("%s: line %d: matching failed, taken as no match: %s",
                 t->spec, r->lineno, (const char *)msg);
    }
    return 0;
}

/* Nonzero if key satisfies the rule (pattern, negation, "but not"). */
static int
table_rule_match(const table_t *t, const struct table_rule *r,
                 const char *key, pcre2_match_data *md,
                 pcre2_match_data *md_not)
{
    int m = table_pattern_match(t, r, r->re, key, md);

    if (r->negate)
        m = !m;
    if (m && r->re_not && table_pattern_match(t, r, r->re_not, key, md_not))
        m = 0;
    return m;
}

/* Append result to out with every $n replaced by group n of the match
 * in md (an unset group gives nothing). */
static void
table_subst(buf_t *out, const char *result, const char *key,
            pcre2_match_data *md)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t pairs = pcre2_get_ovector_count(md);
    const char *p = result;
    const char *d;

    while ((d = strchr(p, '$')) != NULL) {
        long g;
        size_t n;

        buf_append(out, p, (size_t)(d - p));
        n = table_subst_ref(d + 1, &g);
        if (n == 0) {
            /* "$$" gives one "$"; any other lone "$" is kept as it is. */
            buf_putc(out, '$');
            p = d + (g == -1 ? 2 : 1);
            continue;
        }
        if ((uint32_t)g < pairs && ov[2 * g] != PCRE2_UNSET &&
            ov[2 * g + 1] >= ov[2 * g])
            buf_append(out, key + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        p = d + 1 + n;
    }
    buf_puts(out, p);
}

/* Look key up in a pattern table; the first rule that matches wins. */
static int
table_lookup_rules(const table_t *t, const char *key, buf_t *result)
{
    pcre2_match_data *md;
    pcre2_match_data *md_not;
    size_t i = 0;
    int found = 0;

    if (t->nrules == 0)
        return 0;
    /* Match data of this call's own: the compiled patterns are shared,
     * the captures are not. */
    md = pcre2_match_data_create(t->max_pairs, NULL);
    md_not = t->kind == TABLE_REGEXP
             ? pcre2_match_data_create(t->max_pairs, NULL) : NULL;
    if (md == NULL || (t->kind == TABLE_REGEXP && md_not == NULL))
        msg_fatal("out of memory for pattern match data");
    while (i < t->nrules) {
        const struct table_rule *r = &t->rules[i];
        int m = table_rule_match(t, r, key, md, md_not);

        if (r->result == NULL) {
            i = m ? i + 1 : r->skip;
            continue;
        }
        if (m) {
            if (r->negate)
                buf_puts(result, r->result);
            else
                table_subst(result, r->result, key, md);
            found = 1;
            break;
        }
        i++;
    }
    pcre2_match_data_free(md);
    pcre2_match_data_free(md_not);
    return found;
}

table_t *
table_open(const char *spec, buf_t *err)
{
    table_t *t = mem_calloc(1, sizeof(*t));
    int rc;

    t->spec = mem_strdup(spec);
    t->kind = TABLE_FIXED;
    if (strncmp(spec, "static:", 7) == 0) {
        t->static_value = mem_strdup(spec + 7);
        rc = 0;
    } else if (strncmp(spec, "inline:", 7) == 0) {
        rc = table_parse_inline(t, spec + 7, err);
    } else if (strncmp(spec, "texthash:", 9) == 0) {
        rc = table_read_file(t, spec + 9, table_parse_line, err);
    } else if (strncmp(spec, "hash:", 5) == 0 ||
               strncmp(spec, "btree:", 6) == 0 ||
               strncmp(spec, "lmdb:", 5) == 0) {
        /* Postfix's indexed types name the source file that postmap
         * would compile; tern reads that file itself, into the same
         * sorted table, so no postmap step is needed. */
        rc = table_read_file(t, strchr(spec, ':') + 1, table_parse_line, err);
    } else if (strncmp(spec, "pcre:", 5) == 0) {
        t->kind = TABLE_PCRE;
        rc = table_read_rules(t, spec + 5, err);
    } else if (strncmp(spec, "regexp:", 7) == 0) {
        t->kind = TABLE_REGEXP;
        rc = table_read_rules(t, spec + 7, err);
    } else if (spec[0] == '/' || spec[0] == '.') {
        rc = table_read_file(t, spec, table_parse_line, err);
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

/* Binary search of a fixed-key table; the key is folded first. */
static const char *
table_lookup_fixed(const table_t *t, const char *key)
{
    struct table_entry probe;
    struct table_entry *e;
    char *k;

    if (t->static_value)
        return t->static_value;
    if (t->n == 0)
        return NULL;
    k = mem_strdup(key);
    table_lower(k);
    probe.key = k;
    e = bsearch(&probe, t->entries, t->n, sizeof(*e), table_cmp_key);
    free(k);
    return e ? e->value : NULL;
}

static pthread_key_t table_tls_key;
static pthread_once_t table_tls_once = PTHREAD_ONCE_INIT;

static void
table_tls_free(void *p)
{
    buf_t *b = p;

    buf_free(b);
    free(b);
}

static void
table_tls_init(void)
{
    if (pthread_key_create(&table_tls_key, table_tls_free) != 0)
        msg_fatal("table: cannot create thread-specific key");
}

/* This thread's buffer for table_lookup() results of pattern tables. */
static buf_t *
table_tls_buf(void)
{
    buf_t *b;

    (void)pthread_once(&table_tls_once, table_tls_init);
    if ((b = pthread_getspecific(table_tls_key)) == NULL) {
        b = mem_alloc(sizeof(*b));
        buf_init(b);
        if (pthread_setspecific(table_tls_key, b) != 0)
            msg_fatal("table: cannot set thread-specific data");
    }
    return b;
}

int
table_lookup(const table_t *t, const char *key, const char **value)
{
    const char *v;
    buf_t *b;

    if (t->kind != TABLE_FIXED) {
        /* A substituted result exists only for this lookup: it lives in
         * a buffer of the calling thread until its next lookup. */
        b = table_tls_buf();
        buf_reset(b);
        if (table_lookup_rules(t, key, b) == 0)
            return 0;
        *value = b->data ? b->data : "";
        return 1;
    }
    if ((v = table_lookup_fixed(t, key)) == NULL)
        return 0;
    *value = v;
    return 1;
}

int
table_lookup_r(const table_t *t, const char *key, buf_t *result)
{
    const char *v;

    if (t->kind != TABLE_FIXED)
        return table_lookup_rules(t, key, result);
    if ((v = table_lookup_fixed(t, key)) == NULL)
        return 0;
    buf_puts(result, v);
    return 1;
}

int
table_is_pattern(const table_t *t)
{
    return t->kind != TABLE_FIXED;
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
    for (i = 0; i < t->nrules; i++) {
        pcre2_code_free(t->rules[i].re);
        pcre2_code_free(t->rules[i].re_not);
        free(t->rules[i].result);
    }
    free(t->rules);
    free(t->ifs);
    free(t->entries);
    free(t->static_value);
    free(t->spec);
    free(t);
    *tp = NULL;
}
