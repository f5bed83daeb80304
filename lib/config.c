/* SPDX-License-Identifier: ISC */
/*
 * config: reading main.cf-style files into an immutable parameter set.
 *
 * Loading happens in steps, each of which can only add errors: the raw
 * values (embedded default, then the file, then -o), the computed
 * defaults of myhostname and mydomain, $name expansion, conversion to
 * numbers and lists, and last the opening of lookup tables.  Every value
 * remembers where it came from so that an error can name file:line.
 * Nothing is installed unless every step succeeded, so a bad file never
 * replaces a good running config.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/lines.h"
#include "lib/log.h"
#include "lib/mem.h"

#define CONFIG_EXPAND_DEPTH 32

struct param_def {
    const char *name;
    enum param_type type;
    const char *dflt;
};

static const struct param_def param_defs[P_COUNT] = {
#define PARAM(id, name, type, dflt) {name, type, dflt},
#include "lib/params.h"
#undef PARAM
};

/* A parameter that tern does not know, kept so that $name can use it. */
struct config_extra {
    char *name;
    char *raw;
};

struct config {
    int refs;
    char *path;
    char *raw[P_COUNT];
    char *where[P_COUNT]; /* "file:line" or "-o name"; NULL for default */
    char *val[P_COUNT];
    long long num[P_COUNT];
    char **list[P_COUNT];
    size_t nlist[P_COUNT];
    table_t **tables[P_COUNT];
    struct config_extra *extras;
    size_t nextras;
};

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static config_check_fn config_checks[P_COUNT];
static config_t *config_now;

const char *
config_name(enum param_id id)
{
    return param_defs[id].name;
}

enum param_id
config_lookup_name(const char *name)
{
    int i;

    for (i = 0; i < P_COUNT; i++)
        if (strcmp(param_defs[i].name, name) == 0)
            return (enum param_id)i;
    return P_COUNT;
}

static struct config_extra *
config_extra_find(config_t *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nextras; i++)
        if (strcmp(cfg->extras[i].name, name) == 0)
            return &cfg->extras[i];
    return NULL;
}

/* Record name = value from where; unknown names are kept and warned of. */
static void
config_set_raw(config_t *cfg, const char *name, const char *value,
               const char *where)
{
    enum param_id id = config_lookup_name(name);
    struct config_extra *x;

    if (id != P_COUNT) {
        free(cfg->raw[id]);
        free(cfg->where[id]);
        cfg->raw[id] = mem_strdup(value);
        cfg->where[id] = mem_strdup(where);
        return;
    }
    msg_warn("%s: unknown parameter %s", where, name);
    if ((x = config_extra_find(cfg, name)) == NULL) {
        cfg->extras = mem_reallocarray(cfg->extras, cfg->nextras + 1,
                                       sizeof(*cfg->extras));
        x = &cfg->extras[cfg->nextras++];
        x->name = mem_strdup(name);
        x->raw = NULL;
    }
    free(x->raw);
    x->raw = mem_strdup(value);
}

static int
config_name_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Split "name = value" into its parts in place; returns -1 on bad
 * syntax with a reason in *why. */
static int
config_split(char *line, char **name, char **value, const char **why)
{
    char *eq = strchr(line, '=');
    char *end;
    char *p;

    if (eq == NULL) {
        *why = "missing '=' after parameter name";
        return -1;
    }
    for (end = eq; end > line && isspace((unsigned char)end[-1]); end--)
        ;
    *end = '\0';
    if (*line == '\0') {
        *why = "missing parameter name before '='";
        return -1;
    }
    for (p = line; *p; p++) {
        if (!config_name_char((unsigned char)*p)) {
            *why = "bad character in parameter name";
            return -1;
        }
    }
    for (p = eq + 1; isspace((unsigned char)*p); p++)
        ;
    for (end = p + strlen(p); end > p && isspace((unsigned char)end[-1]);
         end--)
        ;
    *end = '\0';
    *name = line;
    *value = p;
    return 0;
}

/* Process one logical line that began at lineno. */
static void
config_parse_line(config_t *cfg, const char *path, int lineno, char *line,
                  buf_t *err)
{
    const char *why = NULL;
    char *name;
    char *value;
    char *where;

    if (config_split(line, &name, &value, &why) < 0) {
        buf_printf(err, "%s:%d: %s\n", path, lineno, why);
        return;
    }
    where = mem_printf("%s:%d", path, lineno);
    config_set_raw(cfg, name, value, where);
    free(where);
}

struct config_reading {
    config_t *cfg;
    const char *path;
    buf_t *err;
};

static int
config_file_line(void *ctx, int lineno, char *line, int orphan)
{
    struct config_reading *rd = ctx;

    if (orphan)
        buf_printf(rd->err, "%s:%d: continuation line without a parameter "
                            "before it\n",
                   rd->path, lineno);
    else
        config_parse_line(rd->cfg, rd->path, lineno, line, rd->err);
    return 0;
}

/* Read the file into raw values, joining continuation lines. */
static void
config_read_file(config_t *cfg, const char *path, buf_t *err)
{
    struct config_reading rd = {cfg, path, err};
    const char *what;
    buf_t text;

    buf_init(&text);
    if (lines_read(path, &text, &what) < 0)
        buf_printf(err, "%s: %s: %s\n", path, what, strerror(errno));
    else
        lines_each(text.data ? text.data : "", text.len, LINES_JOIN,
                   config_file_line, &rd);
    buf_free(&text);
}

static const char *
config_where(const config_t *cfg, enum param_id id)
{
    return cfg->where[id] ? cfg->where[id] : "default";
}

static const char *
config_raw_by_name(config_t *cfg, const char *name)
{
    enum param_id id = config_lookup_name(name);
    struct config_extra *x;

    if (id != P_COUNT)
        return cfg->raw[id];
    x = config_extra_find(cfg, name);
    return x ? x->raw : NULL;
}

static int config_expand(config_t *cfg, const char *s, buf_t *out,
                         int depth, const char *where, buf_t *err);

/* Find the bracket that closes the text of ${name?text}, stepping over
 * brackets of the same kind nested inside it, as in ${a?${b}}. */
static const char *
config_find_close(const char *s, char open, char close)
{
    int depth = 0;

    for (; *s; s++) {
        if (*s == open)
            depth++;
        else if (*s == close && depth-- == 0)
            return s;
    }
    return NULL;
}

/* Expand one $name reference whose text starts at *sp (after the '$');
 * advances *sp past it. */
static int
config_expand_ref(config_t *cfg, const char **sp, buf_t *out, int depth,
                  const char *where, buf_t *err)
{
    const char *s = *sp;
    char close = 0;
    char name[128];
    size_t n = 0;
    const char *raw;
    char op = 0;
    const char *alt = NULL;
    size_t altlen = 0;
    buf_t sub;
    int rc;

    if (*s == '{' || *s == '(') {
        close = *s == '{' ? '}' : ')';
        s++;
    }
    while (config_name_char((unsigned char)*s) && n < sizeof(name) - 1)
        name[n++] = *s++;
    name[n] = '\0';
    if (n == 0) {
        buf_printf(err, "%s: '$' not followed by a parameter name\n", where);
        return -1;
    }
    if (close) {
        if (*s == '?' || *s == ':') {
            const char *end;

            op = *s++;
            end = config_find_close(s, close == '}' ? '{' : '(', close);
            if (end == NULL) {
                buf_printf(err, "%s: missing '%c' after $%c%s\n", where,
                           close, close == '}' ? '{' : '(', name);
                return -1;
            }
            alt = s;
            altlen = (size_t)(end - s);
            s = end;
        }
        if (*s != close) {
            buf_printf(err, "%s: missing '%c' after $%c%s\n", where, close,
                       close == '}' ? '{' : '(', name);
            return -1;
        }
        s++;
    }
    *sp = s;
    raw = config_raw_by_name(cfg, name);
    if (raw == NULL && op == 0)
        msg_warn("%s: undefined parameter $%s", where, name);
    buf_init(&sub);
    rc = raw ? config_expand(cfg, raw, &sub, depth + 1, where, err) : 0;
    if (rc == 0 && op != 0) {
        int nonempty = sub.len > 0;
        char *text = mem_strndup(alt, altlen);

        buf_reset(&sub);
        if ((op == '?' && nonempty) || (op == ':' && !nonempty))
            rc = config_expand(cfg, text, &sub, depth + 1, where, err);
        free(text);
    }
    if (rc == 0)
        buf_append(out, sub.data ? sub.data : "", sub.len);
    buf_free(&sub);
    return rc;
}

/* Expand every $name in s into out. */
static int
config_expand(config_t *cfg, const char *s, buf_t *out, int depth,
              const char *where, buf_t *err)
{
    if (depth > CONFIG_EXPAND_DEPTH) {
        buf_printf(err, "%s: parameter expansion loops\n", where);
        return -1;
    }
    while (*s) {
        const char *dollar = strchr(s, '$');

        if (dollar == NULL) {
            buf_puts(out, s);
            break;
        }
        buf_append(out, s, (size_t)(dollar - s));
        s = dollar + 1;
        if (*s == '$') {
            buf_putc(out, '$');
            s++;
            continue;
        }
        if (config_expand_ref(cfg, &s, out, depth, where, err) < 0)
            return -1;
    }
    return 0;
}

/* Fill in myhostname and mydomain from the system when not set. */
static void
config_host_defaults(config_t *cfg, buf_t *err)
{
    char host[256];
    const char *dot;

    if (cfg->where[P_MYHOSTNAME] == NULL) {
        if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        free(cfg->raw[P_MYHOSTNAME]);
        /* Postfix makes a bare host name fully qualified the same way. */
        cfg->raw[P_MYHOSTNAME] = strchr(host, '.') ? mem_strdup(host)
                                 : mem_printf("%s.localdomain", host);
    }
    if (cfg->where[P_MYDOMAIN] == NULL) {
        buf_t name;

        buf_init(&name);
        if (config_expand(cfg, cfg->raw[P_MYHOSTNAME], &name, 0,
                          config_where(cfg, P_MYHOSTNAME), err) == 0) {
            dot = strchr(name.data ? name.data : "", '.');
            free(cfg->raw[P_MYDOMAIN]);
            cfg->raw[P_MYDOMAIN] =
                mem_strdup(dot && dot[1] ? dot + 1 : "localdomain");
        }
        buf_free(&name);
    }
}

int
config_parse_time(const char *s, long long *secs)
{
    char *end;
    long long v;
    long long mult = 1;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0)
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 604800;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v > LLONG_MAX / mult)
        return -1;
    *secs = v * mult;
    return 0;
}

int
config_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    char *end;
    long p;

    if (*s == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    if (!isdigit((unsigned char)colon[1]))
        return -1;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* Split a list value on commas and white space. */
static void
config_split_list(config_t *cfg, enum param_id id)
{
    const char *s = cfg->val[id];
    size_t n = 0;

    cfg->list[id] = mem_calloc(1, sizeof(char *));
    while (*s) {
        size_t len;

        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        if (*s == '\0')
            break;
        /* inline:{...} keeps its commas and spaces. */
        if (strncmp(s, "inline:{", 8) == 0 && strchr(s, '}'))
            len = (size_t)(strchr(s, '}') - s) + 1;
        else
            len = strcspn(s, ", \t\r\n");
        cfg->list[id] = mem_reallocarray(cfg->list[id], n + 2,
                                         sizeof(char *));
        cfg->list[id][n++] = mem_strndup(s, len);
        cfg->list[id][n] = NULL;
        s += len;
    }
    cfg->nlist[id] = n;
}

/* Checks that concern one parameter's meaning rather than its type. */
static void
config_check_param(config_t *cfg, enum param_id id, buf_t *err)
{
    const char *where = config_where(cfg, id);
    char host[256];
    int port;
    size_t i;

    switch (id) {
    case P_SMTP_LISTEN:
    case P_ADMIN_LISTEN:
        for (i = 0; i < cfg->nlist[id]; i++) {
            /* Options after a "/" are checked by the listener's owner;
             * the admin endpoint may also listen on "unix:/path". */
            char *addr = mem_strndup(cfg->list[id][i],
                                     strcspn(cfg->list[id][i], "/"));
            int bad = config_parse_hostport(addr, host, sizeof(host),
                                            &port) < 0;

            if (id == P_ADMIN_LISTEN &&
                strncmp(cfg->list[id][i], "unix:/", 6) == 0)
                bad = 0;
            free(addr);
            if (bad)
                buf_printf(err,
                           "%s: bad value for %s: \"%s\" is not host:port "
                           "with a port from 1 to 65535%s\n",
                           where, config_name(id), cfg->list[id][i],
                           id == P_ADMIN_LISTEN ? ", or unix:/path" : "");
        }
        break;
    case P_HOME_MAILBOX: {
        const char *v = cfg->val[id];
        size_t n = strlen(v);

        if (v[0] == '/' || strcmp(v, "..") == 0 || strncmp(v, "../", 3) == 0 ||
            strstr(v, "/../") != NULL ||
            (n >= 3 && strcmp(v + n - 3, "/..") == 0))
            buf_printf(err, "%s: bad value for %s: \"%s\" is not a path "
                            "below the home directory\n",
                       where, config_name(id), v);
        break;
    }
    case P_CLEANUP_THREADS:
    case P_DELIVERY_THREADS:
        if (cfg->num[id] < 1 || cfg->num[id] > 4096)
            buf_printf(err, "%s: bad value for %s: %lld is not from 1 to "
                            "4096\n",
                       where, config_name(id), cfg->num[id]);
        break;
    case P_SMTPD_IO_THREADS:
        if (cfg->num[id] > 256)
            buf_printf(err, "%s: bad value for %s: %lld is more than 256\n",
                       where, config_name(id), cfg->num[id]);
        break;
    case P_QUEUE_DIRECTORY:
    case P_DATA_DIRECTORY:
    case P_MAIL_SPOOL_DIRECTORY:
    case P_MYHOSTNAME:
        if (cfg->val[id][0] == '\0')
            buf_printf(err, "%s: %s must not be empty\n", where,
                       config_name(id));
        break;
    default:
        break;
    }
    if (config_checks[id] != NULL) {
        buf_t why;
        char *save = NULL;
        char *line;

        buf_init(&why);
        config_checks[id](cfg, id, &why);
        for (line = why.data ? strtok_r(why.data, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save))
            buf_printf(err, "%s: bad value for %s: %s\n", where,
                       config_name(id), line);
        buf_free(&why);
    }
}

void
config_register_check(enum param_id id, config_check_fn fn)
{
    config_checks[id] = fn;
}

/* Open the table that item i of a list parameter names. */
static void
config_open_table(config_t *cfg, enum param_id id, size_t i,
                  const char *where, buf_t *err)
{
    buf_t why;

    buf_init(&why);
    cfg->tables[id][i] = table_open(cfg->list[id][i], &why);
    if (cfg->tables[id][i] == NULL)
        buf_printf(err, "%s: bad value for %s: %s\n", where,
                   config_name(id), why.data ? why.data : "?");
    buf_free(&why);
}

/* Replace each "/file" item of a domain list (also "!/file") by the
 * words of the file: names separated by commas or white space, "#" to
 * the end of a line a comment. */
static void
config_domain_files(config_t *cfg, enum param_id id, const char *where,
                    buf_t *err)
{
    char **out = mem_calloc(1, sizeof(char *));
    size_t n = 0;
    size_t i;

    for (i = 0; i < cfg->nlist[id]; i++) {
        char *item = cfg->list[id][i];
        int neg = item[0] == '!';
        char line[1024];
        FILE *fp;

        if (item[neg] != '/') {
            out = mem_reallocarray(out, n + 2, sizeof(char *));
            out[n++] = item;
            out[n] = NULL;
            continue;
        }
        if ((fp = fopen(item + neg, "r")) == NULL) {
            buf_printf(err, "%s: bad value for %s: cannot read %s: %s\n",
                       where, config_name(id), item + neg, strerror(errno));
            free(item);
            continue;
        }
        while (fgets(line, sizeof(line), fp) != NULL) {
            char *p = line;

            line[strcspn(line, "#")] = '\0';
            while (*p) {
                size_t len;

                p += strspn(p, ", \t\r\n");
                if ((len = strcspn(p, ", \t\r\n")) == 0)
                    break;
                out = mem_reallocarray(out, n + 2, sizeof(char *));
                out[n++] = mem_printf("%s%.*s", neg ? "!" : "", (int)len, p);
                out[n] = NULL;
                p += len;
            }
        }
        fclose(fp);
        free(item);
    }
    free(cfg->list[id]);
    cfg->list[id] = out;
    cfg->nlist[id] = n;
}

/* Split a domain list and open its tables, parallel to the items. */
static void
config_domains(config_t *cfg, enum param_id id, const char *where,
               buf_t *err)
{
    buf_t why;
    size_t i;

    config_split_list(cfg, id);
    config_domain_files(cfg, id, where, err);
    cfg->tables[id] = mem_calloc(cfg->nlist[id] + 1, sizeof(table_t *));
    for (i = 0; i < cfg->nlist[id]; i++) {
        const char *spec = cfg->list[id][i];

        spec += spec[0] == '!';
        if (strchr(spec, ':') == NULL)
            continue;
        buf_init(&why);
        if ((cfg->tables[id][i] = table_open(spec, &why)) == NULL)
            buf_printf(err, "%s: bad value for %s: %s\n", where,
                       config_name(id), why.data ? why.data : "?");
        buf_free(&why);
    }
}

/* Convert one expanded value to its type. */
static void
config_convert(config_t *cfg, enum param_id id, buf_t *err)
{
    const char *v = cfg->val[id];
    const char *where = config_where(cfg, id);
    char *end;
    size_t i;

    switch (param_defs[id].type) {
    case PT_STR:
        break;
    case PT_INT:
    case PT_SIZE:
        errno = 0;
        cfg->num[id] = strtoll(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end != '\0' || errno != 0)
            buf_printf(err, "%s: bad value for %s: \"%s\" is not a whole "
                            "number\n",
                       where, config_name(id), v);
        break;
    case PT_TIME:
        if (config_parse_time(v, &cfg->num[id]) < 0)
            buf_printf(err, "%s: bad value for %s: \"%s\" is not a time "
                            "(a number with an optional unit s, m, h, d "
                            "or w)\n",
                       where, config_name(id), v);
        break;
    case PT_BOOL:
        if (strcasecmp(v, "yes") == 0)
            cfg->num[id] = 1;
        else if (strcasecmp(v, "no") == 0)
            cfg->num[id] = 0;
        else
            buf_printf(err, "%s: bad value for %s: \"%s\" is not yes or "
                            "no\n",
                       where, config_name(id), v);
        break;
    case PT_LIST:
        config_split_list(cfg, id);
        break;
    case PT_RESTRICTIONS:
        config_split_list(cfg, id);
        cfg->tables[id] = mem_calloc(cfg->nlist[id] + 1, sizeof(table_t *));
        for (i = 1; i < cfg->nlist[id]; i++) {
            const char *prev = cfg->list[id][i - 1];
            size_t plen = strlen(prev);

            /* check_client_access TABLE and its kind take a table. */
            if (strncmp(prev, "check_", 6) != 0 || plen < 13 ||
                strcmp(prev + plen - 7, "_access") != 0)
                continue;
            config_open_table(cfg, id, i, where, err);
        }
        break;
    case PT_MAPS:
        config_split_list(cfg, id);
        cfg->tables[id] = mem_calloc(cfg->nlist[id] + 1, sizeof(table_t *));
        for (i = 0; i < cfg->nlist[id]; i++)
            config_open_table(cfg, id, i, where, err);
        break;
    case PT_DOMAINS:
        config_domains(cfg, id, where, err);
        break;
    }
}

static void
config_apply_override(config_t *cfg, const char *ov, buf_t *err)
{
    char *copy = mem_strdup(ov);
    char *name;
    char *value;
    const char *why;
    char *where;

    if (config_split(copy, &name, &value, &why) < 0) {
        buf_printf(err, "-o %s: %s\n", ov, why);
    } else {
        where = mem_printf("-o %s", name);
        config_set_raw(cfg, name, value, where);
        free(where);
    }
    free(copy);
}

config_t *
config_load(const char *path, char *const *overrides, size_t noverrides,
            buf_t *err)
{
    config_t *cfg = mem_calloc(1, sizeof(*cfg));
    size_t before = err->len;
    size_t i;
    int id;

    cfg->refs = 1;
    cfg->path = path ? mem_strdup(path) : NULL;
    for (id = 0; id < P_COUNT; id++)
        cfg->raw[id] = mem_strdup(param_defs[id].dflt);
    if (path)
        config_read_file(cfg, path, err);
    for (i = 0; i < noverrides; i++)
        config_apply_override(cfg, overrides[i], err);
    config_host_defaults(cfg, err);
    for (id = 0; id < P_COUNT && err->len == before; id++) {
        buf_t out;

        /* As in Postfix, mailbox_command keeps its "$" for the shell. */
        if (id == P_MAILBOX_COMMAND) {
            cfg->val[id] = mem_strdup(cfg->raw[id]);
            continue;
        }
        buf_init(&out);
        if (config_expand(cfg, cfg->raw[id], &out, 0,
                          config_where(cfg, (enum param_id)id), err) == 0)
            cfg->val[id] = buf_steal(&out);
        buf_free(&out);
    }
    for (id = 0; id < P_COUNT && err->len == before; id++)
        config_convert(cfg, (enum param_id)id, err);
    for (id = 0; id < P_COUNT && err->len == before; id++)
        config_check_param(cfg, (enum param_id)id, err);
    if (err->len != before) {
        config_unref(&cfg);
        return NULL;
    }
    return cfg;
}

config_t *
config_ref(config_t *cfg)
{
    __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void
config_unref(config_t **cfgp)
{
    config_t *cfg = cfgp ? *cfgp : NULL;
    size_t i;
    int id;

    if (cfg == NULL)
        return;
    *cfgp = NULL;
    if (__atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (id = 0; id < P_COUNT; id++) {
        free(cfg->raw[id]);
        free(cfg->where[id]);
        free(cfg->val[id]);
        for (i = 0; cfg->list[id] && i < cfg->nlist[id]; i++)
            free(cfg->list[id][i]);
        free(cfg->list[id]);
        for (i = 0; cfg->tables[id] && i < cfg->nlist[id]; i++)
            table_free(&cfg->tables[id][i]);
        free(cfg->tables[id]);
    }
    for (i = 0; i < cfg->nextras; i++) {
        free(cfg->extras[i].name);
        free(cfg->extras[i].raw);
    }
    free(cfg->extras);
    free(cfg->path);
    free(cfg);
}

const char *
config_str(const config_t *cfg, enum param_id id)
{
    return cfg->val[id];
}

long long
config_num(const config_t *cfg, enum param_id id)
{
    return cfg->num[id];
}

char *const *
config_list(const config_t *cfg, enum param_id id, size_t *n)
{
    if (n)
        *n = cfg->nlist[id];
    return cfg->list[id];
}

table_t *const *
config_tables(const config_t *cfg, enum param_id id)
{
    return cfg->tables[id];
}

int
config_maps_lookup(const config_t *cfg, enum param_id id, const char *key,
                   const char **value)
{
    size_t i;

    for (i = 0; cfg->tables[id] && i < cfg->nlist[id]; i++)
        if (table_lookup(cfg->tables[id][i], key, value) == 1)
            return 1;
    return 0;
}

/* Nonzero if name (lower case, no trailing dot) matches pattern. */
static int
config_domain_match(const char *pattern, const char *name, int parent)
{
    size_t plen = strlen(pattern);
    size_t nlen = strlen(name);

    if (plen > 0 && pattern[plen - 1] == '.')
        plen--;
    if (plen == nlen && strncasecmp(pattern, name, plen) == 0)
        return 1;
    if (pattern[0] == '.')
        return nlen > plen &&
               strncasecmp(name + nlen - plen, pattern, plen) == 0;
    return parent && nlen > plen + 1 && name[nlen - plen - 1] == '.' &&
           strncasecmp(name + nlen - plen, pattern, plen) == 0;
}

/* Nonzero if table has name, or a parent domain of it: as "parent.com"
 * in parent style, else as ".parent.com". */
static int
config_domain_in_table(const table_t *t, const char *name, int parent)
{
    const char *value;
    const char *p;

    if (table_lookup(t, name, &value) == 1)
        return 1;
    if (table_is_pattern(t))
        return 0;
    for (p = strchr(name, '.'); p != NULL; p = strchr(p + 1, '.'))
        if (p[1] != '\0' && table_lookup(t, parent ? p + 1 : p, &value) == 1)
            return 1;
    return 0;
}

int
config_domain_listed(const config_t *cfg, enum param_id id,
                     const char *domain)
{
    int parent = id == P_RELAY_DOMAINS;
    char name[256];
    size_t len = strlen(domain);
    size_t i;

    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(name))
        return 0;
    for (i = 0; i < len; i++)
        name[i] = (char)tolower((unsigned char)domain[i]);
    name[len] = '\0';
    for (i = 0; i < cfg->nlist[id]; i++) {
        const char *item = cfg->list[id][i];
        int neg = item[0] == '!';
        int hit;

        if (cfg->tables[id] != NULL && cfg->tables[id][i] != NULL)
            hit = config_domain_in_table(cfg->tables[id][i], name, parent);
        else
            hit = config_domain_match(item + neg, name, parent);
        if (hit)
            return !neg;
    }
    return 0;
}

int
config_maps_lookup_addr(const config_t *cfg, enum param_id id,
                        const char *addr, const char **value)
{
    const char *at = strrchr(addr, '@');

    /* "@domain" is the tail of the address itself. */
    return config_maps_lookup(cfg, id, addr, value) ||
           (at != NULL && at[1] != '\0' &&
            config_maps_lookup(cfg, id, at, value));
}

int
config_is_set(const config_t *cfg, enum param_id id)
{
    return cfg->where[id] != NULL;
}

const char *
config_path(const config_t *cfg)
{
    return cfg->path;
}

static int
config_cmp_id(const void *a, const void *b)
{
    return strcmp(param_defs[*(const int *)a].name,
                  param_defs[*(const int *)b].name);
}

void
config_print_changed(const config_t *cfg, FILE *fp)
{
    int order[P_COUNT];
    int i;

    for (i = 0; i < P_COUNT; i++)
        order[i] = i;
    qsort(order, P_COUNT, sizeof(int), config_cmp_id);
    for (i = 0; i < P_COUNT; i++) {
        int id = order[i];

        if (cfg->where[id] && strcmp(cfg->raw[id], param_defs[id].dflt))
            fprintf(fp, "%s = %s\n", param_defs[id].name, cfg->raw[id]);
    }
}

void
config_diff(const config_t *a, const config_t *b, buf_t *out)
{
    int id;

    for (id = 0; id < P_COUNT; id++) {
        if (strcmp(a->val[id], b->val[id]) == 0)
            continue;
        if (out->len)
            buf_putc(out, ' ');
        buf_puts(out, param_defs[id].name);
    }
}

config_t *
config_current(void)
{
    config_t *cfg;

    pthread_mutex_lock(&config_lock);
    cfg = config_now ? config_ref(config_now) : NULL;
    pthread_mutex_unlock(&config_lock);
    return cfg;
}

void
config_set_current(config_t *cfg)
{
    config_t *old;

    pthread_mutex_lock(&config_lock);
    old = config_now;
    config_now = cfg;
    pthread_mutex_unlock(&config_lock);
    config_unref(&old);
}
