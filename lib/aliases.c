/* SPDX-License-Identifier: ISC */
/*
 * aliases: reading aliases(5) files and expanding aliases.
 *
 * Flow: ternd opens the files of alias_maps at start and at every
 * reload and installs them with aliases_set_current(); the local
 * delivery agent takes the tables in force with aliases_current() and
 * calls aliases_expand() for a local recipient; "sendmail -bi"
 * (newaliases) opens the files of alias_database only to report their
 * errors.
 *
 * A file is read as logical lines: a line that begins with white space
 * continues the one before, and empty lines and lines whose first
 * non-blank character is "#" are skipped (they do not end a logical
 * line), as in Postfix.  Each logical line is "name: targets".  The
 * targets are split at commas outside quoted strings, angle brackets
 * and comments; an empty item (a trailing comma) is skipped.  A target
 * that is one quoted string is unquoted first, so "|prog a, b" keeps
 * its comma.  Every fault is an error with FILE:LINE, and a file with
 * any is refused whole: ternd then keeps the tables it had.
 *
 * Guarantees: an opened aliases_t never changes; lookups take no lock.
 * The tables in force are swapped under a mutex and reference counted,
 * so a delivery that took them keeps them until it lets go.  :include:
 * files are read when an alias is expanded, as Postfix reads them, so
 * an edit to them needs no reload.
 *
 * Threads: any.  Nothing here writes to disk, so a crash leaves nothing
 * behind.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/aliases.h"
#include "lib/lines.h"
#include "lib/mem.h"

/* A file larger than this is refused: an alias file is text. */
#define ALIASES_FILE_MAX (64 * 1024 * 1024)
/* :include: files nest at most this deep, aliases at most this deep. */
#define ALIASES_INCLUDE_DEPTH 10
#define ALIASES_EXPAND_DEPTH 30
/* Expansion stops with an error past this many targets. */
#define ALIASES_EXPAND_MAX 100000

struct aliases_entry {
    char *name;  /* folded to lower case */
    size_t file; /* index in alias_maps: the first file wins */
    int line;
    aliases_result_t targets;
};

struct aliases {
    int refs;
    struct aliases_entry *v;
    size_t n;
    size_t cap;
};

static pthread_mutex_t aliases_lock = PTHREAD_MUTEX_INITIALIZER;
static aliases_t *aliases_in_force;

/* Reading files */

/* The whole file at path, NUL-terminated; its owner in *owner.  Returns
 * NULL with the reason appended to err. */
static char *
aliases_slurp(const char *path, size_t *lenp, uid_t *owner, buf_t *err)
{
    struct stat st;
    buf_t b;
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ssize_t n;

    if (fd < 0) {
        buf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        buf_printf(err, "%s: not a regular file\n", path);
        close(fd);
        return NULL;
    }
    *owner = st.st_uid;
    buf_init(&b);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_printf(err, "%s: read error: %s\n", path, strerror(errno));
            break;
        }
        if (b.len + (size_t)n > ALIASES_FILE_MAX) {
            buf_printf(err, "%s: larger than %d bytes\n", path,
                       ALIASES_FILE_MAX);
            n = -1;
            break;
        }
        buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    if (n < 0) {
        buf_free(&b);
        return NULL;
    }
    *lenp = b.len;
    buf_putc(&b, '\0');
    return b.data;
}

/* Calls fn for each logical line of text: with join set, continuation
 * lines joined (their newline turned into a space); comment and empty
 * lines skipped.  lineno is the number of the logical line's first
 * line.  Without join (an :include: file) every line stands alone.
 * Every line is read whatever fn says; the result is -1 if it said -1
 * for any. */
typedef int (*aliases_line_fn)(void *ctx, int lineno, char *line);

struct aliases_lines {
    aliases_line_fn fn;
    void *ctx;
    int rc;
};

static int
aliases_one_line(void *ctx, int lineno, char *line, int orphan)
{
    struct aliases_lines *al = ctx;
    char *text = line;

    /* White space first, nothing to continue: keep it, so that the
     * parser says what is wrong. */
    if (orphan)
        text = mem_printf(" %s", line);
    if (al->fn(al->ctx, lineno, text) < 0)
        al->rc = -1;
    if (orphan)
        free(text);
    return 0;
}

static int
aliases_lines(char *text, size_t len, int join, aliases_line_fn fn, void *ctx)
{
    struct aliases_lines al = {fn, ctx, 0};

    lines_each(text, len, join ? LINES_JOIN : 0, aliases_one_line, &al);
    return al.rc;
}

/* Parsing targets */

struct aliases_parse {
    const char *path;
    uid_t owner;
    int from_include;
    buf_t *err;
    aliases_result_t *out; /* where the targets of a line go */
};

static void aliases_error(struct aliases_parse *ps, int lineno, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

static void
aliases_error(struct aliases_parse *ps, int lineno, const char *fmt, ...)
{
    va_list ap;

    buf_printf(ps->err, "%s:%d: ", ps->path, lineno);
    va_start(ap, fmt);
    buf_vprintf(ps->err, fmt, ap);
    va_end(ap);
    buf_putc(ps->err, '\n');
}

static void
aliases_result_add(aliases_result_t *r, enum aliases_kind kind,
                   const char *value, int no_expand, int from_include,
                   uid_t owner, const char *source)
{
    aliases_target_t *t;

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->v = mem_reallocarray(r->v, r->cap, sizeof(*t));
    }
    t = &r->v[r->n++];
    t->kind = kind;
    t->value = mem_strdup(value);
    t->no_expand = no_expand;
    t->from_include = from_include;
    t->owner = owner;
    t->source = mem_strdup(source);
}

void
aliases_result_free(aliases_result_t *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++) {
        free(r->v[i].value);
        free(r->v[i].source);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Remove the quotes and backslash escapes of a quoted string that is
 * the whole of s (len bytes) into out; -1 if s is not one. */
static int
aliases_unquote(const char *s, size_t len, buf_t *out)
{
    size_t i;

    if (len < 2 || s[0] != '"')
        return -1;
    for (i = 1; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            buf_putc(out, s[++i]);
        } else if (s[i] == '"') {
            return i == len - 1 ? 0 : -1;
        } else {
            buf_putc(out, s[i]);
        }
    }
    return -1;
}

/* Nonzero if the text holds white space outside quoted strings. */
static int
aliases_has_space(const char *s)
{
    int quoted = 0;

    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
        } else if (*s == '"') {
            quoted = !quoted;
        } else if (!quoted && (*s == ' ' || *s == '\t')) {
            return 1;
        }
    }
    return 0;
}

/* Classify one target (trimmed, len bytes) and add it to ps->out. */
static int
aliases_target(struct aliases_parse *ps, int lineno, const char *s, size_t len)
{
    buf_t v;
    const char *lt;
    char *source;
    size_t i;
    int rc = 0;

    buf_init(&v);
    if (aliases_unquote(s, len, &v) < 0) {
        buf_reset(&v);
        buf_append(&v, s, len);
    }
    if (v.len == 0) {
        /* "" is no address at all. */
        aliases_error(ps, lineno, "an empty target");
        buf_free(&v);
        return -1;
    }
    for (i = 0; i < v.len; i++) {
        if ((unsigned char)v.data[i] < 32 || v.data[i] == 127) {
            aliases_error(ps, lineno, "a control character in a target");
            buf_free(&v);
            return -1;
        }
    }
    source = mem_printf("%s:%d", ps->path, lineno);
    if (v.len >= 9 && strncasecmp(v.data, ":include:", 9) == 0) {
        const char *path = v.data + 9;

        while (*path == ' ' || *path == '\t')
            path++;
        if (*path != '/') {
            aliases_error(ps, lineno,
                          ":include: needs an absolute path: "
                          "\"%s\"",
                          v.data);
            rc = -1;
        } else {
            aliases_result_add(ps->out, ALIASES_INCLUDE, path, 0,
                               ps->from_include, ps->owner, source);
        }
    } else if (v.data[0] == '|') {
        const char *cmd = v.data + 1;

        while (*cmd == ' ' || *cmd == '\t')
            cmd++;
        if (*cmd == '\0') {
            aliases_error(ps, lineno, "\"|\" without a command");
            rc = -1;
        } else {
            aliases_result_add(ps->out, ALIASES_COMMAND, cmd, 0,
                               ps->from_include, ps->owner, source);
        }
    } else if (v.data[0] == '/') {
        aliases_result_add(ps->out, ALIASES_FILE, v.data, 0, ps->from_include,
                           ps->owner, source);
    } else {
        const char *addr = v.data;
        int no_expand = 0;
        char *inner = NULL;

        /* "Name <addr>" or "<addr>": the address is inside. */
        lt = strrchr(addr, '<');
        if (lt && v.data[v.len - 1] == '>') {
            inner = mem_strndup(lt + 1, strlen(lt + 1) - 1);
            addr = inner;
        }
        if (addr[0] == '\\') {
            no_expand = 1;
            addr++;
        }
        if (addr[0] == '\0' || strchr(addr, '<') || strchr(addr, '>')) {
            aliases_error(ps, lineno, "bad address \"%s\"", v.data);
            rc = -1;
        } else if (aliases_has_space(addr)) {
            aliases_error(ps, lineno,
                          "white space in \"%s\": put a "
                          "command or name with spaces in "
                          "double quotes",
                          v.data);
            rc = -1;
        } else {
            aliases_result_add(ps->out, ALIASES_ADDRESS, addr, no_expand,
                               ps->from_include, ps->owner, source);
        }
        free(inner);
    }
    free(source);
    buf_free(&v);
    return rc;
}

/* Split a list of targets at commas outside quotes, angle brackets and
 * comments, drop the comments, and classify each target. */
static int
aliases_targets(struct aliases_parse *ps, int lineno, const char *s)
{
    int quoted = 0;
    int angle = 0;
    int comment = 0;
    int rc = 0;
    buf_t item;

    buf_init(&item);
    for (;; s++) {
        char c = *s;

        if (c == '\\' && s[1] && !comment) {
            buf_append(&item, s, 2);
            s++;
            continue;
        }
        if (c == '\0' || (c == ',' && !quoted && !angle && !comment)) {
            size_t b = 0;
            size_t e = item.len;

            while (b < e && (item.data[b] == ' ' || item.data[b] == '\t'))
                b++;
            while (e > b &&
                   (item.data[e - 1] == ' ' || item.data[e - 1] == '\t'))
                e--;
            if (e > b && aliases_target(ps, lineno, item.data + b, e - b) < 0)
                rc = -1;
            buf_reset(&item);
            if (c == '\0')
                break;
            continue;
        }
        if (comment) {
            if (c == '(')
                comment++;
            else if (c == ')')
                comment--;
            continue;
        }
        if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == '(') {
            comment = 1;
            continue;
        } else if (!quoted && c == '<') {
            angle = 1;
        } else if (!quoted && c == '>') {
            angle = 0;
        }
        buf_putc(&item, c);
    }
    buf_free(&item);
    if (quoted) {
        aliases_error(ps, lineno, "unterminated quoted string");
        rc = -1;
    } else if (comment) {
        aliases_error(ps, lineno, "unterminated comment");
        rc = -1;
    } else if (angle) {
        aliases_error(ps, lineno, "missing \">\"");
        rc = -1;
    }
    return rc;
}

/* Alias files */

struct aliases_file {
    struct aliases_parse ps;
    aliases_t *a;
    size_t file;
    size_t first; /* index of this file's first entry */
};

static int
aliases_entry_cmp(const void *x, const void *y)
{
    const struct aliases_entry *a = x;
    const struct aliases_entry *b = y;
    int c = strcmp(a->name, b->name);

    if (c != 0)
        return c;
    return a->file < b->file ? -1 : a->file > b->file;
}

/* Parse the name of "name: targets"; returns the text after the colon,
 * or NULL after reporting the fault. */
static char *
aliases_name(struct aliases_parse *ps, int lineno, char *line, buf_t *name)
{
    char *p = line;
    size_t i;

    if (*p == ' ' || *p == '\t') {
        aliases_error(ps, lineno,
                      "a continuation line with nothing "
                      "before it to continue");
        return NULL;
    }
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            buf_putc(name, *p);
        }
        if (*p != '"') {
            aliases_error(ps, lineno, "unterminated quoted name");
            return NULL;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':') {
            aliases_error(ps, lineno, "missing \":\" after the name");
            return NULL;
        }
    } else {
        char *colon = strchr(p, ':');

        if (colon == NULL) {
            aliases_error(ps, lineno,
                          "missing \":\": a line must be "
                          "\"name: target, ...\"");
            return NULL;
        }
        buf_append(name, p, (size_t)(colon - p));
        while (name->len > 0 && (name->data[name->len - 1] == ' ' ||
                                 name->data[name->len - 1] == '\t'))
            name->data[--name->len] = '\0';
        p = colon;
        if (name->data && strpbrk(name->data, " \t")) {
            aliases_error(ps, lineno,
                          "white space in the name \"%s\": "
                          "quote it",
                          name->data);
            return NULL;
        }
    }
    if (name->len == 0) {
        aliases_error(ps, lineno, "empty name");
        return NULL;
    }
    for (i = 0; i < name->len; i++) {
        if ((unsigned char)name->data[i] < 32 || name->data[i] == 127) {
            aliases_error(ps, lineno, "a control character in the name");
            return NULL;
        }
        name->data[i] = (char)tolower((unsigned char)name->data[i]);
    }
    return p + 1;
}

static int
aliases_file_line(void *ctx, int lineno, char *line)
{
    struct aliases_file *f = ctx;
    aliases_t *a = f->a;
    struct aliases_entry *e;
    aliases_result_t targets;
    buf_t name;
    char *rest;
    size_t i;

    buf_init(&name);
    rest = aliases_name(&f->ps, lineno, line, &name);
    if (rest == NULL) {
        buf_free(&name);
        return -1;
    }
    for (i = f->first; i < a->n; i++) {
        if (strcmp(a->v[i].name, name.data) == 0) {
            aliases_error(&f->ps, lineno,
                          "alias \"%s\" given twice (first "
                          "at line %d)",
                          name.data, a->v[i].line);
            buf_free(&name);
            return -1;
        }
    }
    memset(&targets, 0, sizeof(targets));
    f->ps.out = &targets;
    if (aliases_targets(&f->ps, lineno, rest) < 0) {
        aliases_result_free(&targets);
        buf_free(&name);
        return -1;
    }
    if (targets.n == 0) {
        aliases_error(&f->ps, lineno, "alias \"%s\" has no targets", name.data);
        buf_free(&name);
        return -1;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = mem_reallocarray(a->v, a->cap, sizeof(*e));
    }
    e = &a->v[a->n++];
    e->name = buf_steal(&name);
    e->file = f->file;
    e->line = lineno;
    e->targets = targets;
    return 0;
}

/* The path an alias_maps item names, or NULL if the type is unknown. */
static const char *
aliases_spec_path(const char *spec)
{
    if (strncmp(spec, "texthash:", 9) == 0)
        return spec + 9;
    if (strncmp(spec, "hash:", 5) == 0)
        return spec + 5;
    if (spec[0] == '/' || spec[0] == '.')
        return spec;
    return NULL;
}

/* Read one file into a; the duplicate check covers this file only. */
static int
aliases_read(aliases_t *a, size_t file, const char *spec, buf_t *err)
{
    struct aliases_file f;
    const char *path = aliases_spec_path(spec);
    size_t len;
    char *text;
    int rc;

    if (path == NULL) {
        buf_printf(err,
                   "%s: unsupported alias table type (a path, "
                   "texthash:/path or hash:/path)\n",
                   spec);
        return -1;
    }
    memset(&f, 0, sizeof(f));
    f.ps.path = path;
    f.ps.err = err;
    f.a = a;
    f.file = file;
    f.first = a->n;
    text = aliases_slurp(path, &len, &f.ps.owner, err);
    if (text == NULL)
        return -1;
    rc = aliases_lines(text, len, 1, aliases_file_line, &f);
    free(text);
    return rc;
}

static void
aliases_destroy(aliases_t *a)
{
    size_t i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i].name);
        aliases_result_free(&a->v[i].targets);
    }
    free(a->v);
    free(a);
}

aliases_t *
aliases_open(char *const *specs, buf_t *err)
{
    aliases_t *a = mem_calloc(1, sizeof(*a));
    size_t i;
    int rc = 0;

    a->refs = 1;
    for (i = 0; specs && specs[i]; i++)
        if (aliases_read(a, i, specs[i], err) < 0)
            rc = -1;
    if (rc < 0) {
        aliases_destroy(a);
        return NULL;
    }
    if (a->n > 0)
        qsort(a->v, a->n, sizeof(a->v[0]), aliases_entry_cmp);
    return a;
}

size_t
aliases_count(const aliases_t *a)
{
    return a ? a->n : 0;
}

/* The first entry for name (lower case), or NULL. */
static const struct aliases_entry *
aliases_find(const aliases_t *a, const char *name)
{
    size_t lo = 0;
    size_t hi = a ? a->n : 0;
    char *key;
    const struct aliases_entry *found = NULL;

    key = mem_strdup(name);
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    /* The lowest index whose name is not less than key. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(a->v[mid].name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (a && lo < a->n && strcmp(a->v[lo].name, key) == 0)
        found = &a->v[lo];
    free(key);
    return found;
}

static void
aliases_copy(aliases_result_t *out, const aliases_target_t *t, int no_expand)
{
    aliases_result_add(out, t->kind, t->value, no_expand || t->no_expand,
                       t->from_include, t->owner, t->source);
}

int
aliases_lookup(const aliases_t *a, const char *name, aliases_result_t *out)
{
    const struct aliases_entry *e = aliases_find(a, name);
    size_t i;

    if (e == NULL)
        return 0;
    for (i = 0; i < e->targets.n; i++)
        aliases_copy(out, &e->targets.v[i], 0);
    return 1;
}

/* Expansion */

struct aliases_expansion {
    const aliases_t *a;
    aliases_result_t *out;
    buf_t *err;
    const char *stack[ALIASES_EXPAND_DEPTH];
    size_t depth;
    int includes;
};

static int aliases_expand_list(struct aliases_expansion *x,
                               const aliases_result_t *targets);

/* Nonzero if out holds a target of this kind and value already. */
static int
aliases_seen(const aliases_result_t *out, const aliases_target_t *t)
{
    size_t i;

    for (i = 0; i < out->n; i++)
        if (out->v[i].kind == t->kind &&
            strcasecmp(out->v[i].value, t->value) == 0)
            return 1;
    return 0;
}

static int
aliases_emit(struct aliases_expansion *x, const aliases_target_t *t,
             int no_expand)
{
    if (aliases_seen(x->out, t))
        return 0;
    if (x->out->n >= ALIASES_EXPAND_MAX) {
        buf_printf(x->err, "alias expansion yields more than %d targets\n",
                   ALIASES_EXPAND_MAX);
        return -1;
    }
    aliases_copy(x->out, t, no_expand);
    return 0;
}

static int
aliases_include_line(void *ctx, int lineno, char *line)
{
    struct aliases_parse *ps = ctx;

    return aliases_targets(ps, lineno, line);
}

/* Read the targets of an :include: file and expand them. */
static int
aliases_include(struct aliases_expansion *x, const aliases_target_t *t)
{
    struct aliases_parse ps;
    aliases_result_t targets;
    size_t len;
    char *text;
    int rc;

    if (x->includes >= ALIASES_INCLUDE_DEPTH) {
        buf_printf(x->err, "%s: :include: files nested more than %d deep\n",
                   t->source, ALIASES_INCLUDE_DEPTH);
        return -1;
    }
    memset(&ps, 0, sizeof(ps));
    memset(&targets, 0, sizeof(targets));
    ps.path = t->value;
    ps.err = x->err;
    ps.from_include = 1;
    ps.out = &targets;
    text = aliases_slurp(t->value, &len, &ps.owner, x->err);
    if (text == NULL)
        return -1;
    rc = aliases_lines(text, len, 0, aliases_include_line, &ps);
    free(text);
    if (rc == 0) {
        x->includes++;
        rc = aliases_expand_list(x, &targets);
        x->includes--;
    }
    aliases_result_free(&targets);
    return rc;
}

/* Expand one address: an alias of its own, unless it is on the way. */
static int
aliases_expand_address(struct aliases_expansion *x, const aliases_target_t *t)
{
    const struct aliases_entry *e;
    size_t i;
    int rc;

    if (t->no_expand || strchr(t->value, '@'))
        return aliases_emit(x, t, 0);
    for (i = 0; i < x->depth; i++)
        if (strcasecmp(x->stack[i], t->value) == 0)
            return aliases_emit(x, t, 1);
    e = aliases_find(x->a, t->value);
    if (e == NULL)
        return aliases_emit(x, t, 0);
    if (x->depth == ALIASES_EXPAND_DEPTH) {
        buf_printf(x->err, "%s: aliases nested more than %d deep\n", t->source,
                   ALIASES_EXPAND_DEPTH);
        return -1;
    }
    x->stack[x->depth++] = e->name;
    rc = aliases_expand_list(x, &e->targets);
    x->depth--;
    return rc;
}

static int
aliases_expand_list(struct aliases_expansion *x,
                    const aliases_result_t *targets)
{
    size_t i;

    for (i = 0; i < targets->n; i++) {
        const aliases_target_t *t = &targets->v[i];
        int rc;

        switch (t->kind) {
        case ALIASES_ADDRESS:
            rc = aliases_expand_address(x, t);
            break;
        case ALIASES_INCLUDE:
            rc = aliases_include(x, t);
            break;
        default:
            rc = aliases_emit(x, t, 0);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int
aliases_expand(const aliases_t *a, const char *name, aliases_result_t *out,
               buf_t *err)
{
    struct aliases_expansion x;
    const struct aliases_entry *e = aliases_find(a, name);

    if (e == NULL)
        return 0;
    memset(&x, 0, sizeof(x));
    x.a = a;
    x.out = out;
    x.err = err;
    x.stack[x.depth++] = e->name;
    return aliases_expand_list(&x, &e->targets) < 0 ? -1 : 1;
}

/* The tables in force */

aliases_t *
aliases_ref(aliases_t *a)
{
    if (a)
        __atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
    return a;
}

void
aliases_unref(aliases_t **ap)
{
    aliases_t *a = ap ? *ap : NULL;

    if (a == NULL)
        return;
    *ap = NULL;
    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        aliases_destroy(a);
}

aliases_t *
aliases_current(void)
{
    aliases_t *a;

    pthread_mutex_lock(&aliases_lock);
    a = aliases_ref(aliases_in_force);
    pthread_mutex_unlock(&aliases_lock);
    return a;
}

void
aliases_set_current(aliases_t *a)
{
    aliases_t *old;

    pthread_mutex_lock(&aliases_lock);
    old = aliases_in_force;
    aliases_in_force = a;
    pthread_mutex_unlock(&aliases_lock);
    aliases_unref(&old);
}
