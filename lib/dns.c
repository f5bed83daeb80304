/* SPDX-License-Identifier: ISC */
/*
 * dns: DNS lookups on libresolv's reentrant interface.  Each call has a
 * resolver state of its own on the stack (res_ninit, res_nquery,
 * res_nclose) and parses the answer with ns_initparse/ns_parserr, so no
 * lock is held while a query runs; the only shared datum is the
 * optional nameserver of dns_set_server(), copied under a mutex into
 * each new state.
 *
 * Timeouts are short (2 s per try, 2 tries): a check that waits on DNS
 * holds up an SMTP reply, and a temporary failure is reported as
 * DNS_RETRY so that the caller can answer 4xx and let the client come
 * back.  An answer is taken apart with bounds checks at every step; a
 * record that does not parse fails the whole lookup (DNS_FAIL) rather
 * than being skipped in silence.  That parsing, and the ordering of MX
 * records, are exported on their own (dns_parse_answer, dns_mx_order)
 * so that tests and the fuzz target can feed them answers directly.
 */
#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/dns.h"
#include "lib/log.h"
#include "lib/mem.h"

/* Large enough for any answer, TCP included (RFC 1035 section 4.2.2). */
#define DNS_ANSWER_MAX 65536

static pthread_mutex_t dns_lock = PTHREAD_MUTEX_INITIALIZER;
static int dns_server_on;
static struct sockaddr_in dns_server_sa;

const char *
dns_type_name(int type)
{
    switch (type) {
    case ns_t_a:
        return "A";
    case ns_t_aaaa:
        return "AAAA";
    case ns_t_mx:
        return "MX";
    case ns_t_txt:
        return "TXT";
    case ns_t_ptr:
        return "PTR";
    case ns_t_cname:
        return "CNAME";
    default:
        return "?";
    }
}

/* Write a reason into why, if the caller wants one. */
static void __attribute__((format(printf, 3, 4)))
dns_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Parse "a.b.c.d", "a.b.c.d:port" or "[a.b.c.d]:port" into sin. */
static int
dns_parse_server(const char *s, struct sockaddr_in *sin)
{
    char host[INET_ADDRSTRLEN];
    const char *h = s;
    const char *port = NULL;
    size_t hl;
    char *end;
    long p = 53;

    if (*s == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        if (rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = strchr(s, ':');

        if (colon && strchr(colon + 1, ':'))
            return -1;
        hl = colon ? (size_t)(colon - s) : strlen(s);
        if (colon)
            port = colon + 1;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (port) {
        if (*port < '0' || *port > '9')
            return -1;
        errno = 0;
        p = strtol(port, &end, 10);
        if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
            return -1;
    }
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)p);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

void
dns_set_server(const char *hostport)
{
    struct sockaddr_in sin;
    int on = 0;

    if (hostport && *hostport) {
        if (dns_parse_server(hostport, &sin) == 0)
            on = 1;
        else
            msg_warn("dns_server: \"%s\" is not an IPv4 address with an "
                     "optional port; using the system's nameservers",
                     hostport);
    }
    pthread_mutex_lock(&dns_lock);
    dns_server_on = on;
    if (on)
        dns_server_sa = sin;
    pthread_mutex_unlock(&dns_lock);
}

/* Set up a resolver state with tern's timeouts and server. */
static int
dns_state_init(res_state st)
{
    memset(st, 0, sizeof(*st));
    if (res_ninit(st) != 0)
        return -1;
    st->retrans = 2;
    st->retry = 2;
    /* The names we are given are complete: no search list. */
    st->options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
    pthread_mutex_lock(&dns_lock);
    if (dns_server_on) {
        st->nsaddr_list[0] = dns_server_sa;
        st->nscount = 1;
    }
    pthread_mutex_unlock(&dns_lock);
    return 0;
}

static int
dns_type_supported(int type)
{
    return type == ns_t_a || type == ns_t_aaaa || type == ns_t_mx ||
           type == ns_t_txt || type == ns_t_ptr || type == ns_t_cname;
}

/* Copy a name, without its trailing dot, or "." for the root. */
static char *
dns_name_dup(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || strcmp(name, ".") == 0)
        return mem_strdup(".");
    if (name[len - 1] == '.')
        len--;
    return mem_strndup(name, len);
}

/* Expand the compressed name at p (within the message) into a copy. */
static char *
dns_expand_name(const ns_msg *msg, const unsigned char *p)
{
    char name[NS_MAXDNAME];

    if (dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), p, name,
                  sizeof(name)) < 0)
        return NULL;
    return dns_name_dup(name);
}

/* Join the character-strings of a TXT record (RFC 1035 section 3.3.14),
 * with NUL bytes replaced so the text stays one C string. */
static char *
dns_txt_join(const unsigned char *p, size_t len)
{
    char *out = mem_alloc(len + 1);
    size_t n = 0;
    size_t i = 0;

    while (i < len) {
        size_t slen = p[i++];

        if (slen > len - i) {
            free(out);
            return NULL;
        }
        for (; slen > 0; slen--, i++)
            out[n++] = p[i] ? (char)p[i] : '?';
    }
    out[n] = '\0';
    return out;
}

/* Turn one answer record into a dns_rr; NULL if its data is malformed. */
static struct dns_rr *
dns_rr_make(const ns_msg *msg, const ns_rr *rr)
{
    const unsigned char *rd = ns_rr_rdata(*rr);
    size_t rdlen = ns_rr_rdlen(*rr);
    struct dns_rr *out = mem_calloc(1, sizeof(*out));
    char addr[INET6_ADDRSTRLEN];

    out->type = ns_rr_type(*rr);
    out->ttl = (unsigned int)ns_rr_ttl(*rr);
    out->name = dns_name_dup(ns_rr_name(*rr));
    switch (out->type) {
    case ns_t_a:
        if (rdlen == 4 && inet_ntop(AF_INET, rd, addr, sizeof(addr)))
            out->data = mem_strdup(addr);
        break;
    case ns_t_aaaa:
        if (rdlen == 16 && inet_ntop(AF_INET6, rd, addr, sizeof(addr)))
            out->data = mem_strdup(addr);
        break;
    case ns_t_mx:
        if (rdlen >= 3) {
            out->pref = ns_get16(rd);
            out->data = dns_expand_name(msg, rd + 2);
        }
        break;
    case ns_t_txt:
        out->data = dns_txt_join(rd, rdlen);
        break;
    default:
        out->data = dns_expand_name(msg, rd);
        break;
    }
    if (out->data == NULL)
        dns_rr_free(&out);
    return out;
}

int
dns_parse_answer(const unsigned char *answer, size_t len, const char *name,
                 int type, struct dns_rr **out, char *why, size_t whylen)
{
    struct dns_rr **tail = out;
    ns_msg msg;
    int count;
    int i;

    *out = NULL;
    if (len > DNS_ANSWER_MAX)
        len = DNS_ANSWER_MAX;
    if (ns_initparse(answer, (int)len, &msg) < 0) {
        dns_why(why, whylen, "name=%s type=%s: malformed reply", name,
                dns_type_name(type));
        return DNS_FAIL;
    }
    count = ns_msg_count(msg, ns_s_an);
    for (i = 0; i < count; i++) {
        ns_rr rr;

        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            dns_why(why, whylen, "name=%s type=%s: malformed record",
                    name, dns_type_name(type));
            dns_rr_free(out);
            return DNS_FAIL;
        }
        if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
            continue;
        if ((*tail = dns_rr_make(&msg, &rr)) == NULL) {
            dns_why(why, whylen, "name=%s type=%s: malformed %s record",
                    name, dns_type_name(type), dns_type_name(type));
            dns_rr_free(out);
            return DNS_FAIL;
        }
        tail = &(*tail)->next;
    }
    if (*out == NULL) {
        dns_why(why, whylen, "name=%s type=%s: No data of the requested "
                             "type", name, dns_type_name(type));
        return DNS_NOTFOUND;
    }
    return DNS_OK;
}

/* Map the resolver's h_errno after a failed res_nquery. */
static int
dns_query_error(const res_state st, const char *name, int type, char *why,
                size_t whylen)
{
    const char *tn = dns_type_name(type);

    switch (st->res_h_errno) {
    case HOST_NOT_FOUND:
        dns_why(why, whylen, "name=%s type=%s: Host not found", name, tn);
        return DNS_NOTFOUND;
    case NO_DATA:
        dns_why(why, whylen, "name=%s type=%s: No data of the requested "
                             "type", name, tn);
        return DNS_NOTFOUND;
    case NO_RECOVERY:
        dns_why(why, whylen, "name=%s type=%s: Non-recoverable error", name,
                tn);
        return DNS_FAIL;
    case TRY_AGAIN:
    default:
        dns_why(why, whylen, "name=%s type=%s: Host not found, try again",
                name, tn);
        return DNS_RETRY;
    }
}

int
dns_lookup(const char *name, int type, struct dns_rr **out, char *why,
           size_t whylen)
{
    struct __res_state st;
    unsigned char *answer;
    int len;
    int rc;

    *out = NULL;
    dns_why(why, whylen, "%s", "");
    if (!dns_type_supported(type)) {
        dns_why(why, whylen, "name=%s: unsupported record type %d", name,
                type);
        return DNS_FAIL;
    }
    if (name[0] == '\0' || strlen(name) >= NS_MAXDNAME) {
        dns_why(why, whylen, "name=%s: not a domain name", name);
        return DNS_FAIL;
    }
    if (dns_state_init(&st) < 0) {
        dns_why(why, whylen, "name=%s type=%s: cannot initialise the "
                             "resolver", name, dns_type_name(type));
        return DNS_RETRY;
    }
    answer = mem_alloc(DNS_ANSWER_MAX);
    len = res_nquery(&st, name, ns_c_in, type, answer, DNS_ANSWER_MAX);
    if (len < 0)
        rc = dns_query_error(&st, name, type, why, whylen);
    else
        rc = dns_parse_answer(answer, (size_t)len, name, type, out, why,
                              whylen);
    free(answer);
    res_nclose(&st);
    return rc;
}

/* A random number from a per-thread generator, seeded once. */
static unsigned int
dns_random(void)
{
    static __thread unsigned int seed;
    static __thread int seeded;

    if (!seeded) {
        if (getentropy(&seed, sizeof(seed)) != 0)
            seed = (unsigned int)time(NULL) ^ (unsigned int)getpid() ^
                   (unsigned int)(uintptr_t)&seed;
        seeded = 1;
    }
    return (unsigned int)rand_r(&seed);
}

struct dns_sort {
    struct dns_rr *rr;
    unsigned int key;
};

static int
dns_sort_cmp(const void *a, const void *b)
{
    const struct dns_sort *x = a;
    const struct dns_sort *y = b;

    if (x->rr->pref != y->rr->pref)
        return x->rr->pref < y->rr->pref ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Unlink and free root targets and repeated hosts (the first, best
 * preference, stays). */
static void
dns_mx_prune(struct dns_rr **list)
{
    struct dns_rr **pp = list;

    while (*pp) {
        struct dns_rr *rr = *pp;
        struct dns_rr *q;
        int dup = strcmp(rr->data, ".") == 0;

        for (q = *list; !dup && q != rr; q = q->next)
            if (strcasecmp(q->data, rr->data) == 0)
                dup = 1;
        if (dup) {
            *pp = rr->next;
            rr->next = NULL;
            dns_rr_free(&rr);
            continue;
        }
        pp = &rr->next;
    }
}

int
dns_mx_order(const char *domain, struct dns_rr *list, struct dns_rr **out,
             char *why, size_t whylen)
{
    struct dns_rr *rr;
    struct dns_sort *v;
    size_t n = 0;
    size_t i;

    *out = NULL;
    /* RFC 7505 section 3: a single MX of preference 0 naming the root. */
    if (list->next == NULL && list->pref == 0 &&
        strcmp(list->data, ".") == 0) {
        dns_why(why, whylen, "Domain %s does not accept mail (nullMX)",
                domain);
        dns_rr_free(&list);
        return DNS_NULLMX;
    }
    /* Sort before pruning duplicates, so the best preference stays. */
    for (rr = list; rr; rr = rr->next)
        n++;
    v = mem_calloc(n, sizeof(*v));
    for (i = 0, rr = list; rr; rr = rr->next, i++) {
        v[i].rr = rr;
        v[i].key = dns_random();
    }
    qsort(v, n, sizeof(*v), dns_sort_cmp);
    for (i = 0; i + 1 < n; i++)
        v[i].rr->next = v[i + 1].rr;
    v[n - 1].rr->next = NULL;
    list = v[0].rr;
    free(v);
    dns_mx_prune(&list);
    if (list == NULL) {
        dns_why(why, whylen, "Domain %s does not accept mail (its MX "
                             "records name only the root)", domain);
        return DNS_NULLMX;
    }
    *out = list;
    return DNS_OK;
}

int
dns_mx_hosts(const char *domain, struct dns_rr **out, char *why,
             size_t whylen)
{
    struct dns_rr *list;
    int rc;

    *out = NULL;
    if ((rc = dns_lookup(domain, ns_t_mx, &list, why, whylen)) != DNS_OK)
        return rc;
    return dns_mx_order(domain, list, out, why, whylen);
}

void
dns_rr_free(struct dns_rr **rrp)
{
    struct dns_rr *rr = rrp ? *rrp : NULL;

    while (rr) {
        struct dns_rr *next = rr->next;

        free(rr->name);
        free(rr->data);
        free(rr);
        rr = next;
    }
    if (rrp)
        *rrp = NULL;
}

int
dns_reverse_name(const char *addr, const char *zone, buf_t *out)
{
    unsigned char a[16];
    const unsigned char *p = a;
    int v6 = 0;
    int i;

    if (inet_pton(AF_INET, addr, a) != 1) {
        if (inet_pton(AF_INET6, addr, a) != 1)
            return -1;
        v6 = !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a);
        if (!v6)
            p = a + 12;
    }
    if (v6) {
        for (i = 15; i >= 0; i--)
            buf_printf(out, "%x.%x.", a[i] & 0xf, a[i] >> 4);
    } else {
        buf_printf(out, "%u.%u.%u.%u.", p[3], p[2], p[1], p[0]);
    }
    buf_puts(out, zone ? zone : v6 ? "ip6.arpa" : "in-addr.arpa");
    return 0;
}

/* Nonzero if the address records of name hold the numeric addr. */
static int
dns_name_has(const char *name, const char *addr, int *status)
{
    static const int types[] = {ns_t_a, ns_t_aaaa};
    unsigned char want[16];
    unsigned char have[16];
    int family = inet_pton(AF_INET, addr, want) == 1 ? AF_INET : AF_INET6;
    size_t t;

    if (family == AF_INET6 && inet_pton(AF_INET6, addr, want) != 1)
        return 0;
    for (t = 0; t < 2; t++) {
        struct dns_rr *list = NULL;
        struct dns_rr *rr;
        int rc = dns_lookup(name, types[t], &list, NULL, 0);
        int found = 0;

        if (rc == DNS_RETRY)
            *status = DNS_RETRY;
        for (rr = list; rr && !found; rr = rr->next)
            found = inet_pton(family, rr->data, have) == 1 &&
                    memcmp(have, want, family == AF_INET ? 4 : 16) == 0;
        dns_rr_free(&list);
        if (found)
            return 1;
    }
    return 0;
}

int
dns_client_name(const char *addr, char *name, char *rev, size_t len)
{
    struct dns_rr *list = NULL;
    struct dns_rr *rr;
    buf_t query;
    int status = DNS_NOTFOUND;
    int rc;

    snprintf(name, len, "unknown");
    snprintf(rev, len, "unknown");
    buf_init(&query);
    if (dns_reverse_name(addr, NULL, &query) < 0) {
        buf_free(&query);
        return DNS_NOTFOUND;
    }
    rc = dns_lookup(query.data, ns_t_ptr, &list, NULL, 0);
    buf_free(&query);
    if (rc != DNS_OK)
        return rc == DNS_RETRY ? DNS_RETRY : DNS_NOTFOUND;
    snprintf(rev, len, "%s", list->data);
    /* The first name that points back at the address is the name. */
    for (rr = list; rr; rr = rr->next)
        if (strlen(rr->data) < len && dns_name_has(rr->data, addr, &status)) {
            snprintf(name, len, "%s", rr->data);
            status = DNS_OK;
            break;
        }
    dns_rr_free(&list);
    return status;
}
