/* SPDX-License-Identifier: ISC */
/*
 * filter: matching envelopes against the criteria of a queue listing or
 * a bulk operation.  Patterns are compiled once per filter with PCRE2
 * (JIT when available) and matched with a match-data block per call, so
 * one filter may be used from one thread at a time only.
 */
#include "autoconf.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcre2.h>

#include "admin/filter.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/mem.h"

/* A text criterion: a substring, or a compiled pattern. */
struct filter_text {
    char *sub;
    pcre2_code *re;
    pcre2_match_data *md;
};

struct filter {
    unsigned states; /* bit per enum queue_state; 0: any */
    struct filter_text sender;
    struct filter_text rcpt;
    char *domain;
    int64_t older_than_us; /* 0: any age */
};

static const char *const filter_names[] = {
    "state", "sender", "recipient", "domain", "older_than", NULL,
};

filter_t *
filter_new(void)
{
    return mem_calloc(1, sizeof(filter_t));
}

int
filter_known(const char *name)
{
    int i;

    for (i = 0; filter_names[i]; i++)
        if (strcmp(filter_names[i], name) == 0)
            return 1;
    return 0;
}

static void
filter_text_clear(struct filter_text *t)
{
    mem_freep(&t->sub);
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    t->md = NULL;
    t->re = NULL;
}

static int
filter_text_set(struct filter_text *t, const char *value, char **why)
{
    PCRE2_UCHAR msg[256];
    PCRE2_SIZE off;
    int code;

    filter_text_clear(t);
    if (strncmp(value, "re:", 3) != 0) {
        t->sub = mem_strdup(value);
        return 0;
    }
    t->re = pcre2_compile((PCRE2_SPTR)value + 3, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off,
                          NULL);
    if (t->re == NULL) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        *why = mem_printf("bad pattern at offset %zu: %s", (size_t)off,
                          (char *)msg);
        return -1;
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    return 0;
}

static int
filter_set_states(filter_t *f, const char *value, char **why)
{
    char *copy = mem_strdup(value);
    char *save = NULL;
    char *p;
    enum queue_state st;
    int r = 0;

    f->states = 0;
    for (p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        if (queue_state_parse(p, &st) < 0) {
            *why = mem_printf("\"%s\" is not a queue state (incoming, "
                              "active, deferred, hold, corrupt)", p);
            r = -1;
            break;
        }
        f->states |= 1u << st;
    }
    if (r == 0 && f->states == 0) {
        *why = mem_strdup("no queue state given");
        r = -1;
    }
    free(copy);
    return r;
}

/* Set one criterion. */
int
filter_set(filter_t *f, const char *name, const char *value, char **why)
{
    long long secs;

    if (strcmp(name, "state") == 0)
        return filter_set_states(f, value, why);
    if (strcmp(name, "sender") == 0)
        return filter_text_set(&f->sender, value, why);
    if (strcmp(name, "recipient") == 0)
        return filter_text_set(&f->rcpt, value, why);
    if (strcmp(name, "domain") == 0) {
        if (value[0] == '\0' || strchr(value, '@') != NULL) {
            *why = mem_strdup("expected a domain name");
            return -1;
        }
        free(f->domain);
        f->domain = mem_strdup(value);
        return 0;
    }
    if (strcmp(name, "older_than") == 0) {
        if (config_parse_time(value, &secs) < 0 || secs > 100LL * 365 * 86400) {
            *why = mem_strdup("expected a time such as 90s, 30m, 2h or 3d");
            return -1;
        }
        f->older_than_us = secs * 1000000LL;
        return 0;
    }
    *why = mem_printf("unknown filter \"%s\"", name);
    return -1;
}

int
filter_empty(const filter_t *f)
{
    return f->states == 0 && f->sender.sub == NULL && f->sender.re == NULL &&
           f->rcpt.sub == NULL && f->rcpt.re == NULL && f->domain == NULL &&
           f->older_than_us == 0;
}

/* Case-insensitive substring search. */
static int
filter_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return n == 0;
}

static int
filter_text_match(const struct filter_text *t, const char *s)
{
    if (t->sub != NULL)
        return filter_contains(s, t->sub);
    if (t->re != NULL)
        return pcre2_match(t->re, (PCRE2_SPTR)s, strlen(s), 0, 0, t->md,
                           NULL) >= 0;
    return 1;
}

static int
filter_text_set_p(const struct filter_text *t)
{
    return t->sub != NULL || t->re != NULL;
}

/* A recipient still to be delivered that meets the recipient and domain
 * criteria. */
static int
filter_match_rcpts(const filter_t *f, const envelope_t *env)
{
    size_t i;

    if (!filter_text_set_p(&f->rcpt) && f->domain == NULL)
        return 1;
    for (i = 0; i < env->nrcpt; i++) {
        const rcpt_t *rc = &env->rcpts[i];

        if (rc->state == RCPT_SENT || rc->state == RCPT_BOUNCED)
            continue;
        if (!filter_text_match(&f->rcpt, rc->addr))
            continue;
        if (f->domain && strcasecmp(addr_domain(rc->addr), f->domain) != 0)
            continue;
        return 1;
    }
    return 0;
}

/* Nonzero if env meets every criterion. */
int
filter_match(const filter_t *f, const envelope_t *env, int64_t now_us)
{
    if (env == NULL)
        return (f->states == 0 || (f->states & (1u << QS_CORRUPT))) &&
               !filter_text_set_p(&f->sender) &&
               !filter_text_set_p(&f->rcpt) && f->domain == NULL &&
               f->older_than_us == 0;
    if (f->states && !(f->states & (1u << env->state)))
        return 0;
    if (f->older_than_us && now_us - env->arrival_us <= f->older_than_us)
        return 0;
    if (!filter_text_match(&f->sender, env->sender))
        return 0;
    return filter_match_rcpts(f, env);
}

void
filter_free(filter_t **fp)
{
    filter_t *f = fp ? *fp : NULL;

    if (f == NULL)
        return;
    filter_text_clear(&f->sender);
    filter_text_clear(&f->rcpt);
    free(f->domain);
    free(f);
    *fp = NULL;
}
