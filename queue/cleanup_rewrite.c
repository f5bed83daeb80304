/* SPDX-License-Identifier: ISC */
/*
 * cleanup_rewrite: address rewriting as Postfix's cleanup does it.
 *
 * Flow, for one address: a bare local part is qualified with
 * "@$myorigin" (append_at_myorigin); then the canonical tables map it
 * one to one, sender_canonical_maps or recipient_canonical_maps first
 * and canonical_maps after, each only for the classes its *_classes
 * parameter names; then masquerade_domains strips subdomains for the
 * classes in masquerade_classes.  Envelope recipients then go through
 * virtual_alias_maps, which maps one to many (cleanup_rewrite_virtual).
 *
 * Every table is asked in canonical(5)'s order, stopping at the first
 * key that any table of the parameter has:
 *     user+ext@domain, user@domain,
 *     user+ext, user          (only when domain is $myorigin or listed
 *                              in $mydestination),
 *     @domain
 * where "+" is any character of recipient_delimiter.  Pattern tables
 * (pcre:, regexp:) are asked the full address only.  A result "@other"
 * keeps the local part ("user+ext@other"); when the key matched without
 * its extension, the extension goes into each result
 * (propagate_unmatched_extensions).  Results are separated by commas or
 * white space; the canonical maps use the first.
 *
 * Virtual alias expansion follows Postfix's bounds: an address whose
 * result contains the address itself is final, every other result is
 * looked up again, at most virtual_alias_recursion_limit times along
 * one chain, and at most virtual_alias_expansion_limit addresses may
 * result.  Past either limit the message is not accepted (a loop a -> b
 * -> a ends there too), so that nothing is delivered half expanded.
 *
 * Threads: everything reads an immutable config and the caller's
 * buffers; any number of cleanup workers call in at once.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/hdr_addr.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/table.h"
#include "queue/cleanup_mime.h"
#include "queue/cleanup_rewrite.h"

static const struct {
    const char *name;
    int bit;
} cleanup_rewrite_class_names[] = {
    {"envelope_sender", CLEANUP_REWRITE_ENV_SENDER},
    {"envelope_recipient", CLEANUP_REWRITE_ENV_RCPT},
    {"header_sender", CLEANUP_REWRITE_HDR_SENDER},
    {"header_recipient", CLEANUP_REWRITE_HDR_RCPT},
};

/* The headers whose addresses are rewritten, and as what. */
static const struct {
    const char *name;
    int cls;
} cleanup_rewrite_headers[] = {
    {"from", CLEANUP_REWRITE_HDR_SENDER},
    {"sender", CLEANUP_REWRITE_HDR_SENDER},
    {"reply-to", CLEANUP_REWRITE_HDR_SENDER},
    {"errors-to", CLEANUP_REWRITE_HDR_SENDER},
    {"return-receipt-to", CLEANUP_REWRITE_HDR_SENDER},
    {"resent-from", CLEANUP_REWRITE_HDR_SENDER},
    {"resent-sender", CLEANUP_REWRITE_HDR_SENDER},
    {"resent-reply-to", CLEANUP_REWRITE_HDR_SENDER},
    {"to", CLEANUP_REWRITE_HDR_RCPT},
    {"cc", CLEANUP_REWRITE_HDR_RCPT},
    {"bcc", CLEANUP_REWRITE_HDR_RCPT},
    {"apparently-to", CLEANUP_REWRITE_HDR_RCPT},
    {"resent-to", CLEANUP_REWRITE_HDR_RCPT},
    {"resent-cc", CLEANUP_REWRITE_HDR_RCPT},
    {"resent-bcc", CLEANUP_REWRITE_HDR_RCPT},
};

static const char *const cleanup_rewrite_propagate_names[] = {
    "canonical", "virtual", "alias", "forward", "include", "generic",
};

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The class bits a *_classes parameter names. */
static int
cleanup_rewrite_classes(const config_t *cfg, enum param_id id)
{
    char *const *items = config_list(cfg, id, NULL);
    size_t i;
    size_t k;
    int bits = 0;

    for (i = 0; items && items[i]; i++)
        for (k = 0; k < N_ELEM(cleanup_rewrite_class_names); k++)
            if (strcasecmp(items[i], cleanup_rewrite_class_names[k].name) == 0)
                bits |= cleanup_rewrite_class_names[k].bit;
    return bits;
}

static void
cleanup_rewrite_check_classes(const config_t *cfg, enum param_id id, buf_t *err)
{
    char *const *items = config_list(cfg, id, NULL);
    size_t i;
    size_t k;

    for (i = 0; items && items[i]; i++) {
        for (k = 0; k < N_ELEM(cleanup_rewrite_class_names); k++)
            if (strcasecmp(items[i], cleanup_rewrite_class_names[k].name) == 0)
                break;
        if (k == N_ELEM(cleanup_rewrite_class_names))
            buf_printf(err,
                       "unknown class \"%s\" (envelope_sender, "
                       "envelope_recipient, header_sender or "
                       "header_recipient)\n",
                       items[i]);
    }
}

static void
cleanup_rewrite_check_propagate(const config_t *cfg, enum param_id id,
                                buf_t *err)
{
    char *const *items = config_list(cfg, id, NULL);
    size_t i;
    size_t k;

    for (i = 0; items && items[i]; i++) {
        for (k = 0; k < N_ELEM(cleanup_rewrite_propagate_names); k++)
            if (strcasecmp(items[i], cleanup_rewrite_propagate_names[k]) == 0)
                break;
        if (k == N_ELEM(cleanup_rewrite_propagate_names))
            buf_printf(err,
                       "unknown name \"%s\" (canonical, virtual, alias, "
                       "forward, include or generic)\n",
                       items[i]);
    }
}

void
cleanup_rewrite_register(void)
{
    config_register_check(P_CANONICAL_CLASSES, cleanup_rewrite_check_classes);
    config_register_check(P_SENDER_CANONICAL_CLASSES,
                          cleanup_rewrite_check_classes);
    config_register_check(P_RECIPIENT_CANONICAL_CLASSES,
                          cleanup_rewrite_check_classes);
    config_register_check(P_MASQUERADE_CLASSES, cleanup_rewrite_check_classes);
    config_register_check(P_PROPAGATE_UNMATCHED_EXTENSIONS,
                          cleanup_rewrite_check_propagate);
}

void
cleanup_rewrite_list_add(cleanup_rewrite_list_t *list, const char *addr)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 4;
        list->addr =
            mem_reallocarray(list->addr, list->cap, sizeof(*list->addr));
    }
    list->addr[list->n++] = mem_strdup(addr);
}

int
cleanup_rewrite_list_has(const cleanup_rewrite_list_t *list, const char *addr)
{
    size_t i;

    for (i = 0; i < list->n; i++)
        if (strcasecmp(list->addr[i], addr) == 0)
            return 1;
    return 0;
}

void
cleanup_rewrite_list_free(cleanup_rewrite_list_t *list)
{
    size_t i;

    for (i = 0; i < list->n; i++)
        free(list->addr[i]);
    free(list->addr);
    list->addr = NULL;
    list->n = list->cap = 0;
}

/* Nonzero if the propagate_unmatched_extensions list names what. */
static int
cleanup_rewrite_propagates(const config_t *cfg, const char *what)
{
    char *const *items =
        config_list(cfg, P_PROPAGATE_UNMATCHED_EXTENSIONS, NULL);
    size_t i;

    for (i = 0; items && items[i]; i++)
        if (strcasecmp(items[i], what) == 0)
            return 1;
    return 0;
}

/* Nonzero if a domain is ours for the "user" forms of the lookup. */
static int
cleanup_rewrite_local_domain(const config_t *cfg, const char *domain)
{
    if (domain[0] == '\0')
        return 1;
    if (strcasecmp(domain, config_str(cfg, P_MYORIGIN)) == 0)
        return 1;
    return config_domain_listed(cfg, P_MYDESTINATION, domain);
}

/* Look key up in the tables of a maps parameter, pattern tables only
 * when full is set.  Returns 1 with the result appended to out. */
static int
cleanup_rewrite_maps_get(table_t *const *tables, const char *key, int full,
                         buf_t *out)
{
    size_t i;

    for (i = 0; tables[i]; i++) {
        if (!full && table_is_pattern(tables[i]))
            continue;
        if (table_lookup_r(tables[i], key, out))
            return 1;
    }
    return 0;
}

/* Add one result item to list, with the local part kept for "@other"
 * and the unmatched extension put back when ext is not NULL. */
static void
cleanup_rewrite_item(cleanup_rewrite_list_t *list, const char *item,
                     size_t ilen, const char *local, size_t local_len,
                     const char *ext, size_t ext_len)
{
    buf_t b;
    const char *at;

    if (ilen >= 2 && item[0] == '<' && item[ilen - 1] == '>') {
        item++;
        ilen -= 2;
    }
    if (ilen == 0)
        return;
    buf_init(&b);
    if (item[0] == '@') {
        buf_append(&b, local, local_len);
        buf_append(&b, item, ilen);
    } else if (ext && ext_len > 0) {
        at = memrchr(item, '@', ilen);
        if (at == NULL) {
            buf_append(&b, item, ilen);
            buf_append(&b, ext, ext_len);
        } else {
            buf_append(&b, item, (size_t)(at - item));
            buf_append(&b, ext, ext_len);
            buf_append(&b, at, ilen - (size_t)(at - item));
        }
    } else {
        buf_append(&b, item, ilen);
    }
    cleanup_rewrite_list_add(list, b.data);
    buf_free(&b);
}

/* Split a table result into addresses: commas and white space outside
 * quoted strings separate them. */
static void
cleanup_rewrite_split(cleanup_rewrite_list_t *list, const char *result,
                      const char *local, size_t local_len, const char *ext,
                      size_t ext_len)
{
    const char *p = result;

    while (*p) {
        const char *start;
        int quoted = 0;

        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p == '\0')
            break;
        start = p;
        for (; *p; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                continue;
            }
            if (*p == '"')
                quoted = !quoted;
            else if (!quoted && (*p == ',' || *p == ' ' || *p == '\t' ||
                                 *p == '\n' || *p == '\r'))
                break;
        }
        cleanup_rewrite_item(list, start, (size_t)(p - start), local, local_len,
                             ext, ext_len);
    }
}

/* Find addr in the maps parameter id in canonical(5)'s order; on a hit
 * append the result's addresses to list and return 1. */
static int
cleanup_rewrite_find(const config_t *cfg, enum param_id id, const char *addr,
                     int propagate, cleanup_rewrite_list_t *list)
{
    table_t *const *tables = config_tables(cfg, id);
    const char *delims = config_str(cfg, P_RECIPIENT_DELIMITER);
    const char *at;
    const char *domain;
    size_t local_len;
    size_t base_len;
    const char *ext = NULL;
    size_t ext_len = 0;
    int local_domain;
    int found = 0;
    int strip = 0;
    buf_t key;
    buf_t res;

    if (tables == NULL || tables[0] == NULL)
        return 0;
    at = strrchr(addr, '@');
    local_len = at ? (size_t)(at - addr) : strlen(addr);
    domain = at ? at + 1 : "";
    base_len = local_len;
    /* The extension starts at the first delimiter, not the first
     * character: "+foo" has no base to look up. */
    if (delims[0] != '\0') {
        size_t k = strcspn(addr, delims);

        if (k > 0 && k < local_len) {
            base_len = k;
            ext = addr + k;
            ext_len = local_len - k;
        }
    }
    local_domain = cleanup_rewrite_local_domain(cfg, domain);
    buf_init(&key);
    buf_init(&res);
    found = cleanup_rewrite_maps_get(tables, addr, 1, &res);
    if (!found && ext) {
        buf_append(&key, addr, base_len);
        if (at)
            buf_puts(&key, at);
        found = strip = cleanup_rewrite_maps_get(tables, key.data, 0, &res);
    }
    if (!found && local_domain && at) {
        buf_reset(&key);
        buf_append(&key, addr, local_len);
        found = cleanup_rewrite_maps_get(tables, key.data, 0, &res);
        if (!found && ext) {
            buf_reset(&key);
            buf_append(&key, addr, base_len);
            found = strip = cleanup_rewrite_maps_get(tables, key.data, 0, &res);
        }
    }
    if (!found && domain[0] != '\0') {
        buf_reset(&key);
        buf_printf(&key, "@%s", domain);
        found = cleanup_rewrite_maps_get(tables, key.data, 0, &res);
    }
    if (found)
        cleanup_rewrite_split(list, res.data ? res.data : "", addr, local_len,
                              strip && propagate ? ext : NULL, ext_len);
    buf_free(&key);
    buf_free(&res);
    return found;
}

/* Apply one canonical maps parameter to *cur (replaced on a hit). */
static int
cleanup_rewrite_canonical(const config_t *cfg, enum param_id id, char **cur)
{
    cleanup_rewrite_list_t list = {NULL, 0, 0};
    int changed = 0;

    if (cleanup_rewrite_find(cfg, id, *cur,
                             cleanup_rewrite_propagates(cfg, "canonical"),
                             &list) &&
        list.n > 0) {
        changed = strcmp(list.addr[0], *cur) != 0;
        free(*cur);
        *cur = list.addr[0];
        list.addr[0] = NULL;
    }
    cleanup_rewrite_list_free(&list);
    return changed;
}

/* masquerade_domains: strip the subdomain part of *cur's domain. */
static void
cleanup_rewrite_masquerade(const config_t *cfg, char **cur)
{
    char *const *items = config_list(cfg, P_MASQUERADE_DOMAINS, NULL);
    char *const *except = config_list(cfg, P_MASQUERADE_EXCEPTIONS, NULL);
    const char *domain = addr_domain(*cur);
    size_t dlen = strlen(domain);
    size_t local_len;
    size_t i;
    char *local;

    if (items == NULL || items[0] == NULL || dlen == 0)
        return;
    local = addr_localpart(*cur);
    for (i = 0; except && except[i]; i++)
        if (strcasecmp(except[i], local) == 0)
            break;
    free(local);
    if (except && except[i])
        return;
    local_len = (size_t)(domain - *cur) - 1;
    for (i = 0; items[i]; i++) {
        const char *name = items[i];
        int excluded = name[0] == '!';
        size_t nlen;

        name += excluded;
        nlen = strlen(name);
        if (nlen == 0)
            continue;
        if (nlen == dlen && strcasecmp(name, domain) == 0)
            return;
        if (nlen < dlen && domain[dlen - nlen - 1] == '.' &&
            strcasecmp(name, domain + dlen - nlen) == 0) {
            char *masq;

            if (excluded)
                return;
            masq = mem_printf("%.*s@%s", (int)local_len, *cur, name);
            free(*cur);
            *cur = masq;
            return;
        }
    }
}

int
cleanup_rewrite_addr(const config_t *cfg, int cls, const char *addr, buf_t *out)
{
    int sender =
        cls & (CLEANUP_REWRITE_ENV_SENDER | CLEANUP_REWRITE_HDR_SENDER);
    char *cur;
    int changed;

    if (addr[0] == '\0')
        return 0;
    if (strchr(addr, '@') == NULL && config_num(cfg, P_APPEND_AT_MYORIGIN))
        cur = mem_printf("%s@%s", addr, config_str(cfg, P_MYORIGIN));
    else
        cur = mem_strdup(addr);
    if (sender &&
        (cleanup_rewrite_classes(cfg, P_SENDER_CANONICAL_CLASSES) & cls))
        cleanup_rewrite_canonical(cfg, P_SENDER_CANONICAL_MAPS, &cur);
    if (!sender &&
        (cleanup_rewrite_classes(cfg, P_RECIPIENT_CANONICAL_CLASSES) & cls))
        cleanup_rewrite_canonical(cfg, P_RECIPIENT_CANONICAL_MAPS, &cur);
    if (cleanup_rewrite_classes(cfg, P_CANONICAL_CLASSES) & cls)
        cleanup_rewrite_canonical(cfg, P_CANONICAL_MAPS, &cur);
    if (cleanup_rewrite_classes(cfg, P_MASQUERADE_CLASSES) & cls)
        cleanup_rewrite_masquerade(cfg, &cur);
    changed = strcmp(cur, addr) != 0;
    buf_puts(out, cur);
    free(cur);
    return changed;
}

int
cleanup_rewrite_lookup(const config_t *cfg, enum param_id id,
                       const char *addr, cleanup_rewrite_list_t *out)
{
    return cleanup_rewrite_find(cfg, id, addr, 0, out);
}

int
cleanup_rewrite_virtual(const config_t *cfg, const char *addr,
                        cleanup_rewrite_list_t *out, buf_t *why)
{
    long long recur_limit = config_num(cfg, P_VIRTUAL_ALIAS_RECURSION_LIMIT);
    long long expan_limit = config_num(cfg, P_VIRTUAL_ALIAS_EXPANSION_LIMIT);
    int propagate = cleanup_rewrite_propagates(cfg, "virtual");
    cleanup_rewrite_list_t work = {NULL, 0, 0};
    cleanup_rewrite_list_t self = {NULL, 0, 0};
    table_t *const *tables = config_tables(cfg, P_VIRTUAL_ALIAS_MAPS);
    size_t i;
    int rc = 0;

    if (tables == NULL || tables[0] == NULL) {
        if (!cleanup_rewrite_list_has(out, addr))
            cleanup_rewrite_list_add(out, addr);
        return 0;
    }
    /* Each slot of work is looked up again until it no longer changes;
     * the other results of a lookup go to new slots at the end. */
    cleanup_rewrite_list_add(&work, addr);
    for (i = 0; i < work.n && rc == 0; i++) {
        long long count;

        for (count = 0;; count++) {
            cleanup_rewrite_list_t res = {NULL, 0, 0};
            size_t k;

            if ((long long)work.n > expan_limit) {
                buf_printf(why,
                           "unreasonable virtual_alias_maps map "
                           "expansion size for %s",
                           addr);
                rc = -1;
                break;
            }
            if (cleanup_rewrite_list_has(&self, work.addr[i]))
                break;
            if (!cleanup_rewrite_find(cfg, P_VIRTUAL_ALIAS_MAPS, work.addr[i],
                                      propagate, &res) ||
                res.n == 0) {
                cleanup_rewrite_list_free(&res);
                break;
            }
            if (count >= recur_limit) {
                cleanup_rewrite_list_free(&res);
                buf_printf(why,
                           "unreasonable virtual_alias_maps map "
                           "nesting for %s",
                           addr);
                rc = -1;
                break;
            }
            /* An address that maps to itself (among others) is final. */
            if (cleanup_rewrite_list_has(&res, work.addr[i]))
                cleanup_rewrite_list_add(&self, work.addr[i]);
            free(work.addr[i]);
            work.addr[i] = res.addr[0];
            res.addr[0] = NULL;
            for (k = 1; k < res.n; k++)
                cleanup_rewrite_list_add(&work, res.addr[k]);
            cleanup_rewrite_list_free(&res);
        }
    }
    for (i = 0; rc == 0 && i < work.n; i++)
        if (!cleanup_rewrite_list_has(out, work.addr[i]))
            cleanup_rewrite_list_add(out, work.addr[i]);
    cleanup_rewrite_list_free(&work);
    cleanup_rewrite_list_free(&self);
    return rc;
}

int
cleanup_rewrite_header_class(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < N_ELEM(cleanup_rewrite_headers); i++)
        if (strlen(cleanup_rewrite_headers[i].name) == len &&
            strncasecmp(cleanup_rewrite_headers[i].name, name, len) == 0)
            return cleanup_rewrite_headers[i].cls;
    return 0;
}

struct cleanup_rewrite_spans {
    size_t (*span)[2];
    size_t n;
    size_t cap;
};

static void
cleanup_rewrite_span(void *arg, size_t off, size_t len)
{
    struct cleanup_rewrite_spans *s = arg;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->span = mem_reallocarray(s->span, s->cap, sizeof(*s->span));
    }
    s->span[s->n][0] = off;
    s->span[s->n][1] = len;
    s->n++;
}

/* Rewrite one address of class cls into out with the generic maps;
 * 1 if it changed.  The shape of cleanup_rewrite_addr, for headers. */
static int
cleanup_rewrite_generic_cls(const config_t *cfg, int cls, const char *addr,
                            buf_t *out)
{
    (void)cls;
    return cleanup_rewrite_generic(cfg, addr, out);
}

int
cleanup_rewrite_generic(const config_t *cfg, const char *addr, buf_t *out)
{
    char *cur;
    int changed;

    if (addr[0] == '\0') {
        buf_puts(out, addr);
        return 0;
    }
    cur = mem_strdup(addr);
    changed = cleanup_rewrite_canonical(cfg, P_SMTP_GENERIC_MAPS, &cur);
    buf_puts(out, cur);
    free(cur);
    return changed;
}

/* cleanup_rewrite_header with fn for each address. */
static int
cleanup_rewrite_header_by(const config_t *cfg, const char *hdr, size_t len,
                          buf_t *out,
                          int (*fn)(const config_t *, int, const char *,
                                    buf_t *))
{
    struct cleanup_rewrite_spans s = {NULL, 0, 0};
    const char *colon = memchr(hdr, ':', len);
    const char *value;
    size_t vlen;
    size_t done = 0;
    size_t i;
    int cls;
    int changed = 0;
    buf_t b;
    buf_t addr;
    buf_t res;

    if (colon == NULL ||
        (cls = cleanup_rewrite_header_class(hdr, (size_t)(colon - hdr))) == 0)
        return 0;
    value = colon + 1;
    vlen = len - (size_t)(value - hdr);
    if (hdr_addr_scan(value, vlen, cleanup_rewrite_span, &s) == 0)
        return 0;
    buf_init(&b);
    buf_init(&addr);
    buf_init(&res);
    buf_append(&b, hdr, (size_t)(value - hdr));
    for (i = 0; i < s.n; i++) {
        size_t off = s.span[i][0];
        size_t alen = s.span[i][1];

        buf_reset(&addr);
        buf_reset(&res);
        buf_append(&addr, value + off, alen);
        buf_append(&b, value + done, off - done);
        if (fn(cfg, cls, addr.data, &res)) {
            buf_append(&b, res.data, res.len);
            changed = 1;
        } else {
            buf_append(&b, addr.data, addr.len);
        }
        done = off + alen;
    }
    buf_append(&b, value + done, vlen - done);
    if (changed)
        buf_append(out, b.data, b.len);
    buf_free(&b);
    buf_free(&addr);
    buf_free(&res);
    free(s.span);
    return changed;
}

int
cleanup_rewrite_header(const config_t *cfg, const char *hdr, size_t len,
                       buf_t *out)
{
    return cleanup_rewrite_header_by(cfg, hdr, len, out, cleanup_rewrite_addr);
}

int
cleanup_rewrite_generic_message(const config_t *cfg, const char *msg,
                                size_t len, buf_t *out)
{
    size_t pos = 0;
    size_t n;
    int changed = 0;

    /* Each logical header of the block. */
    while ((n = cleanup_mime_header_len(msg, len, pos)) > 0) {
        size_t hlen = n - (msg[pos + n - 1] == '\n');

        if (cleanup_rewrite_header_by(cfg, msg + pos, hlen, out,
                                      cleanup_rewrite_generic_cls)) {
            changed = 1;
            buf_append(out, msg + pos + hlen, n - hlen);
        } else {
            buf_append(out, msg + pos, n);
        }
        pos += n;
    }
    buf_append(out, msg + pos, len - pos);
    return changed;
}
