/* SPDX-License-Identifier: ISC */
/*
 * smtp: the SMTP client (RFC 5321) and, with the lmtp flag, the LMTP
 * client (RFC 2033) on the same engine.
 *
 * Flow, for one request (a message and up to a recipient limit of its
 * recipients, all for one next hop):
 *   1. a cached idle session for the same transport and next hop is
 *      taken if there is one that is still alive;
 *   2. otherwise the next hop is resolved: MX records in preference
 *      order (RFC 5321 section 5.1), the domain's own A/AAAA records
 *      when it has none, a bounce when it publishes the null MX of
 *      RFC 7505; exchangers at least as far as this server itself (one
 *      of its listeners, or proxy_interfaces) are dropped, and when
 *      that leaves none the mail loops back here and bounces (5.4.6);
 *      each address is tried in turn, up to smtp_mx_address_limit
 *      addresses and smtp_mx_session_limit sessions that got as far as
 *      a greeting;
 *   3. greeting, EHLO (HELO when EHLO is refused), STARTTLS when the
 *      server offers it and smtp_tls_security_level asks for it, EHLO
 *      again, and AUTH PLAIN or LOGIN (RFC 4954) when
 *      smtp_sasl_auth_enable is set and smtp_sasl_password_maps has
 *      "user:password" for the next hop or the host, unless the
 *      security options in force say noplaintext (Postfix's default);
 *   4. MAIL, RCPT for each recipient, DATA, sent as one group when the
 *      server offers PIPELINING (RFC 2920); SIZE, BODY=8BITMIME,
 *      SMTPUTF8 and the DSN parameters (RFC 3461) are passed on when
 *      offered;
 *   5. the message, with its LF line endings turned into CRLF and lines
 *      that begin with "." doubled (RFC 5321 section 4.5.2);
 *   6. the reply to the end of data (one per accepted recipient for
 *      LMTP), and the session goes back to the cache.
 *
 * Outcomes: a 2xx reply delivers, 4xx defers with the reply as reason,
 * 5xx bounces; a connection that fails, times out or is lost defers
 * every recipient still without an outcome.  Losing the connection
 * after the end of data was sent may deliver twice (the server may have
 * taken it): we defer, as RFC 5321 section 6.1 prefers a duplicate to a
 * loss.  Reasons are worded as Postfix words them ("host X[a] said:
 * 550 ... (in reply to RCPT TO command)"), so log readers and the
 * bounce module can take them apart.
 *
 * TLS: none sends in clear; may uses STARTTLS when offered without
 * checking the certificate (RFC 7435) and, if the handshake fails,
 * connects again in clear; encrypt requires TLS without checking;
 * verify and secure require a certificate that chains to
 * smtp_tls_CAfile and names the host.
 *
 * Threads: any number of workers run deliveries at once; the only
 * shared state is the cache, behind its mutex.  A session is owned by
 * one worker, or by the cache while idle.
 *
 * Crashes: nothing here is written to disk.  A crash during a
 * transaction leaves the message active in the queue, and the next
 * start tries it again: a recipient the server had accepted may get it
 * twice, none loses it.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "deliver/smtp.h"
#include "deliver/smtp_7bit.h"
#include "deliver/smtp_conn.h"
#include "lib/clock.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "queue/cleanup_rewrite.h"

#define SMTP_EXT_PIPELINING 0x01
#define SMTP_EXT_SIZE 0x02
#define SMTP_EXT_8BITMIME 0x04
#define SMTP_EXT_DSN 0x08
#define SMTP_EXT_STARTTLS 0x10
#define SMTP_EXT_SMTPUTF8 0x20
#define SMTP_EXT_AUTH 0x40

#define SMTP_ADDR_MAX 32
#define SMTP_CACHE_MAX 256
#define SMTP_FLUSH_AT 65536
#define SMTP_DEFAULT_CAFILE "/etc/ssl/certs/ca-certificates.crt"

enum smtp_tls_level {
    SMTP_TLS_NONE,
    SMTP_TLS_MAY,
    SMTP_TLS_ENCRYPT,
    SMTP_TLS_VERIFY,
};

/* One address to try. */
struct smtp_addr {
    char host[256]; /* the name for the log; the path for unix sockets */
    char addr[128]; /* numeric address, or the socket path */
    int port;
    int is_unix;
};

/* A connected session past EHLO (and STARTTLS). */
struct smtp_sess {
    smtp_conn_t *conn;
    int lmtp;
    unsigned ext;
    long long size_max;
    char relay[420];  /* "host[addr]:port" */
    char named[400];  /* "host[addr]" for reasons */
    char key[600];    /* the cache key */
    char mechs[256];  /* the AUTH mechanisms offered, space-separated */
    int tls;          /* TLS is up */
    int64_t idle_us;  /* when it went idle in the cache */
};

struct smtp_cache {
    pthread_mutex_t lock;
    struct smtp_sess *idle[SMTP_CACHE_MAX];
    size_t n;
    tls_ctx_t *tls_any;    /* no verification */
    tls_ctx_t *tls_verify; /* verifies against verify_file */
    char *verify_file;
};

/* The outcome of a failure that concerns the session, not a recipient:
 * given to every recipient still without one if no other host helps. */
struct smtp_fail {
    enum delivery_status status;
    char dsn[16];
    char relay[512];
    char text[1024];
};

/* How a transaction ended. */
enum smtp_trans {
    SMTP_TRANS_REUSE, /* done, the session may carry another */
    SMTP_TRANS_CLOSE, /* done, close the session */
    SMTP_TRANS_LOST,  /* the conversation failed: close without QUIT */
    SMTP_TRANS_NEXT,  /* nothing decided: try another host */
};

static int
smtp_timeout(const config_t *cfg, enum param_id id)
{
    long long t = config_num(cfg, id);

    return t > 86400 ? 86400 : (int)t;
}

static void __attribute__((format(printf, 5, 6)))
smtp_fail_set(struct smtp_fail *f, enum delivery_status status,
              const char *dsn, const char *relay, const char *fmt, ...)
{
    va_list ap;

    f->status = status;
    snprintf(f->dsn, sizeof(f->dsn), "%s", dsn);
    snprintf(f->relay, sizeof(f->relay), "%s", relay);
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof(f->text), fmt, ap);
    va_end(ap);
}

/* The level of smtp_tls_policy_maps for nexthop (as written, then the
 * parent domains of a domain as ".parent"), or NULL. */
static const char *
smtp_tls_policy(const config_t *cfg, const char *nexthop)
{
    const char *v = NULL;
    const char *p;
    table_t *const *t = config_tables(cfg, P_SMTP_TLS_POLICY_MAPS);

    if (t == NULL || t[0] == NULL || nexthop == NULL || nexthop[0] == '\0')
        return NULL;
    if (config_maps_lookup(cfg, P_SMTP_TLS_POLICY_MAPS, nexthop, &v))
        return v;
    if (nexthop[0] == '[' || strchr(nexthop, ':') != NULL)
        return NULL;
    for (p = strchr(nexthop, '.'); p != NULL; p = strchr(p + 1, '.'))
        if (config_maps_lookup(cfg, P_SMTP_TLS_POLICY_MAPS, p, &v))
            return v;
    return NULL;
}

/* The TLS level for nexthop: its smtp_tls_policy_maps entry (the first
 * word; attributes after it are not used), else smtp_tls_security_level.
 */
static enum smtp_tls_level
smtp_tls_level(const config_t *cfg, const char *nexthop)
{
    const char *policy = smtp_tls_policy(cfg, nexthop);
    const char *l = config_str(cfg, P_SMTP_TLS_SECURITY_LEVEL);
    char word[32];

    if (policy != NULL) {
        snprintf(word, sizeof(word), "%.*s",
                 (int)strcspn(policy, " \t,"), policy);
        if (strcmp(word, "none") == 0 || strcmp(word, "may") == 0 ||
            strcmp(word, "encrypt") == 0 || strcmp(word, "verify") == 0 ||
            strcmp(word, "secure") == 0 || strcmp(word, "dane") == 0 ||
            strcmp(word, "dane-only") == 0)
            l = word;
        else
            msg_warn("smtp_tls_policy_maps: unknown level \"%s\" for %s; "
                     "using smtp_tls_security_level",
                     word, nexthop);
    }
    if (strcmp(l, "may") == 0 || strcmp(l, "dane") == 0)
        return SMTP_TLS_MAY;
    if (strcmp(l, "encrypt") == 0)
        return SMTP_TLS_ENCRYPT;
    if (strcmp(l, "verify") == 0 || strcmp(l, "secure") == 0 ||
        strcmp(l, "dane-only") == 0)
        return SMTP_TLS_VERIFY;
    return SMTP_TLS_NONE;
}

int
smtp_parse_nexthop(const char *nexthop, int dflt, char *host, size_t hostlen,
                   int *port, int *mx)
{
    const char *end;
    const char *colon;
    size_t hl;

    *port = dflt;
    *mx = 1;
    if (nexthop[0] == '[') {
        end = strchr(nexthop, ']');
        if (end == NULL)
            return -1;
        *mx = 0;
        hl = (size_t)(end - nexthop - 1);
        memmove(host, nexthop + 1, hl < hostlen ? hl : 0);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return -1;
    } else {
        colon = strrchr(nexthop, ':');
        hl = colon ? (size_t)(colon - nexthop) : strlen(nexthop);
        memmove(host, nexthop, hl < hostlen ? hl : 0);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    host[hl] = '\0';
    if (colon) {
        char *e;
        long p;

        if (strcmp(colon + 1, "smtp") == 0) {
            *port = 25;
        } else if (strcmp(colon + 1, "lmtp") == 0) {
            *port = 24;
        } else {
            errno = 0;
            p = strtol(colon + 1, &e, 10);
            if (errno || *e || e == colon + 1 || p < 1 || p > 65535)
                return -1;
            *port = (int)p;
        }
    }
    return 0;
}

/* Append the addresses of host (A first, then AAAA).  Returns DNS_OK
 * when at least one was found, else the worse of the two results. */
static int
smtp_host_addrs(const char *host, int port, struct smtp_addr *out,
                size_t max, size_t *n, char *why, size_t whylen)
{
    static const int types[] = {ns_t_a, ns_t_aaaa};
    int result = DNS_NOTFOUND;
    size_t before = *n;
    size_t t;

    for (t = 0; t < 2; t++) {
        struct dns_rr *list = NULL;
        struct dns_rr *rr;
        char w[256];
        int rc = dns_lookup(host, types[t], &list, w, sizeof(w));

        if (rc != DNS_OK) {
            if (rc == DNS_RETRY || (rc == DNS_FAIL && result != DNS_RETRY) ||
                result == DNS_NOTFOUND)
                result = rc;
            if (t == 0 || why[0] == '\0')
                snprintf(why, whylen, "%s", w);
            continue;
        }
        for (rr = list; rr && *n < max; rr = rr->next) {
            snprintf(out[*n].host, sizeof(out[*n].host), "%s", host);
            snprintf(out[*n].addr, sizeof(out[*n].addr), "%s", rr->data);
            out[*n].port = port;
            out[*n].is_unix = 0;
            (*n)++;
        }
        dns_rr_free(&list);
    }
    if (*n == before && result == DNS_NOTFOUND && strchr(host, '.') == NULL) {
        /* A name without a dot that the DNS does not know may still be
         * in /etc/hosts ("localhost", a lab's relay host); qualified
         * names are the DNS's alone, as with Postfix's default
         * smtp_host_lookup. */
        struct addrinfo hints;
        struct addrinfo *res = NULL;
        struct addrinfo *ai;

        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        if (getaddrinfo(host, NULL, &hints, &res) == 0) {
            for (ai = res; ai && *n < max; ai = ai->ai_next) {
                void *a = ai->ai_family == AF_INET
                              ? (void *)&((struct sockaddr_in *)ai->ai_addr)
                                    ->sin_addr
                              : (void *)&((struct sockaddr_in6 *)ai->ai_addr)
                                    ->sin6_addr;

                if (inet_ntop(ai->ai_family, a, out[*n].addr,
                              sizeof(out[*n].addr)) == NULL)
                    continue;
                snprintf(out[*n].host, sizeof(out[*n].host), "%s", host);
                out[*n].port = port;
                out[*n].is_unix = 0;
                (*n)++;
            }
            freeaddrinfo(res);
        }
    }
    return *n > before ? DNS_OK : result;
}

/* Nonzero if s is an IPv4 or IPv6 literal (the inside of "[...]"). */
static int
smtp_is_literal(const char *s, char *addr, size_t addrlen)
{
    unsigned char tmp[16];
    const char *p = s;

    if (strncasecmp(p, "ipv6:", 5) == 0)
        p += 5;
    if (inet_pton(AF_INET, p, tmp) == 1 || inet_pton(AF_INET6, p, tmp) == 1) {
        snprintf(addr, addrlen, "%s", p);
        return 1;
    }
    return 0;
}

/* The binary form of a numeric address: its family, or 0. */
static int
smtp_addr_bin(const char *text, unsigned char bin[16])
{
    if (inet_pton(AF_INET, text, bin) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, text, bin) == 1)
        return AF_INET6;
    return 0;
}

/* Nonzero if the numeric addr belongs to this host: loopback, or the
 * address of one of its interfaces. */
static int
smtp_local_addr(const char *addr)
{
    static const unsigned char v6_loopback[16] = {[15] = 1};
    unsigned char want[16];
    struct ifaddrs *list;
    struct ifaddrs *i;
    int family = smtp_addr_bin(addr, want);
    int found = 0;

    if ((family == AF_INET && want[0] == 127) ||
        (family == AF_INET6 && memcmp(want, v6_loopback, 16) == 0))
        return 1;
    if (family == 0 || getifaddrs(&list) < 0)
        return 0;
    for (i = list; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET)
            found = memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                           want, 4) == 0;
        else
            found = memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
                           want, 16) == 0;
    }
    freeifaddrs(list);
    return found;
}

/* Nonzero if a delivery to addr:port would reach this server itself:
 * one of its smtp_listen sockets (a wildcard one on any local address),
 * or an address of proxy_interfaces. */
static int
smtp_is_self(const config_t *cfg, const char *addr, int port)
{
    char *const *items = config_list(cfg, P_PROXY_INTERFACES, NULL);
    unsigned char want[16];
    unsigned char have[16];
    int family = smtp_addr_bin(addr, want);
    char item[300];
    char host[256];
    int lport;

    if (family == 0)
        return 0;
    for (; items && *items; items++)
        if (smtp_addr_bin(*items, have) == family &&
            memcmp(have, want, family == AF_INET ? 4 : 16) == 0)
            return 1;
    for (items = config_list(cfg, P_SMTP_LISTEN, NULL); items && *items;
         items++) {
        /* Options follow a "/". */
        snprintf(item, sizeof(item), "%.*s", (int)strcspn(*items, "/"),
                 *items);
        if (config_parse_hostport(item, host, sizeof(host), &lport) < 0 ||
            lport != port)
            continue;
        if (host[0] == '\0' || strcmp(host, "*") == 0 ||
            strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
            if (smtp_local_addr(addr))
                return 1;
        } else if (smtp_addr_bin(host, have) == family &&
                   memcmp(have, want, family == AF_INET ? 4 : 16) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Drop the exchangers at least as far as the best one that is this
 * host (RFC 5321 section 5.1: a backup MX passes mail only to better
 * ones).  prefs[i] is the preference of out[i]'s exchanger.  Returns 1
 * if one was this host. */
static int
smtp_drop_self(const config_t *cfg, struct smtp_addr *out,
               const unsigned *prefs, size_t *n)
{
    unsigned best = 0;
    int found = 0;
    size_t i;
    size_t kept = 0;

    for (i = 0; i < *n; i++)
        if ((!found || prefs[i] < best) &&
            smtp_is_self(cfg, out[i].addr, out[i].port)) {
            best = prefs[i];
            found = 1;
        }
    if (!found)
        return 0;
    for (i = 0; i < *n; i++)
        if (prefs[i] < best)
            out[kept++] = out[i];
    *n = kept;
    return 1;
}

/* The addresses to try for target.  Returns 0, or -1 with the outcome
 * for every recipient in *f. */
static int
smtp_resolve(const config_t *cfg, const struct smtp_target *t,
             struct smtp_addr *out, size_t max, size_t *n,
             struct smtp_fail *f)
{
    unsigned prefs[SMTP_ADDR_MAX];
    struct dns_rr *mx = NULL;
    struct dns_rr *rr;
    char why[512] = "";
    char lit[128];
    int rc;

    *n = 0;
    if (t->unix_path) {
        snprintf(out[0].host, sizeof(out[0].host), "localhost");
        snprintf(out[0].addr, sizeof(out[0].addr), "%s", t->unix_path);
        out[0].is_unix = 1;
        out[0].port = 0;
        *n = 1;
        return 0;
    }
    if (smtp_is_literal(t->host, lit, sizeof(lit))) {
        snprintf(out[0].host, sizeof(out[0].host), "%s", lit);
        snprintf(out[0].addr, sizeof(out[0].addr), "%s", lit);
        out[0].port = t->port;
        out[0].is_unix = 0;
        *n = 1;
        return 0;
    }
    rc = t->mx ? dns_mx_hosts(t->host, &mx, why, sizeof(why)) : DNS_NOTFOUND;
    if (rc == DNS_NULLMX) {
        smtp_fail_set(f, DELIVERY_BOUNCE, "5.1.10", "none",
                      "Domain %s does not accept mail (nullMX)", t->host);
        return -1;
    }
    if (rc == DNS_RETRY) {
        smtp_fail_set(f, DELIVERY_DEFER, "4.4.3", "none",
                      "Host or domain name not found. Name service error "
                      "for %s: try again", why);
        return -1;
    }
    if (rc == DNS_OK) {
        for (rr = mx; rr && *n < max; rr = rr->next) {
            char w[256] = "";
            size_t from = *n;

            smtp_host_addrs(rr->data, t->port, out, max, n, w, sizeof(w));
            for (; from < *n; from++)
                prefs[from] = rr->pref;
        }
        dns_rr_free(&mx);
        if (smtp_drop_self(cfg, out, prefs, n) && *n == 0) {
            smtp_fail_set(f, DELIVERY_BOUNCE, "5.4.6", "none",
                          "mail for %s loops back to myself", t->host);
            return -1;
        }
        if (*n == 0) {
            smtp_fail_set(f, DELIVERY_DEFER, "4.4.3", "none",
                          "Host or domain name not found. Name service "
                          "error for the mail exchangers of %s",
                          t->host);
            return -1;
        }
        return 0;
    }
    /* No MX records (or no MX lookup): the host itself, RFC 5321
     * section 5.1. */
    why[0] = '\0';
    rc = smtp_host_addrs(t->host, t->port, out, max, n, why, sizeof(why));
    if (rc == DNS_OK) {
        memset(prefs, 0, sizeof(prefs));
        if (t->mx && smtp_drop_self(cfg, out, prefs, n)) {
            smtp_fail_set(f, DELIVERY_BOUNCE, "5.4.6", "none",
                          "mail for %s loops back to myself", t->host);
            return -1;
        }
        return 0;
    }
    if (rc == DNS_NOTFOUND)
        smtp_fail_set(f, DELIVERY_BOUNCE, "5.4.4", "none",
                      "Host or domain name not found. Name service error "
                      "for %s: Host not found", why[0] ? why : t->host);
    else
        smtp_fail_set(f, DELIVERY_DEFER, "4.4.3", "none",
                      "Host or domain name not found. Name service error "
                      "for %s: Host not found, try again",
                      why[0] ? why : t->host);
    return -1;
}

/* ---- the cache ---------------------------------------------------- */

smtp_cache_t *
smtp_cache_new(void)
{
    smtp_cache_t *c = mem_calloc(1, sizeof(*c));

    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void
smtp_sess_close(struct smtp_sess **sp, int quit)
{
    struct smtp_sess *s = *sp;

    if (s == NULL)
        return;
    if (quit && s->conn) {
        struct smtp_reply r;

        /* A polite end; the reply matters to nobody. */
        smtp_conn_put(s->conn, "QUIT\r\n", 6);
        smtp_conn_reply(s->conn, &r, 2, NULL);
    }
    smtp_conn_close(&s->conn);
    free(s);
    *sp = NULL;
}

/* Take an idle session for key, or NULL. */
static struct smtp_sess *
smtp_cache_take(smtp_cache_t *c, const char *key)
{
    struct smtp_sess *s = NULL;
    size_t i;

    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&c->lock);
    for (i = c->n; i-- > 0;) {
        if (strcmp(c->idle[i]->key, key) != 0)
            continue;
        s = c->idle[i];
        c->idle[i] = c->idle[--c->n];
        break;
    }
    pthread_mutex_unlock(&c->lock);
    if (s && smtp_conn_stale(s->conn)) {
        /* The server closed it, or said something unasked. */
        smtp_sess_close(&s, 0);
    }
    return s;
}

/* Keep s for reuse, or close it when the cache is full. */
static void
smtp_cache_put(smtp_cache_t *c, struct smtp_sess **sp)
{
    struct smtp_sess *s = *sp;

    *sp = NULL;
    if (c == NULL) {
        smtp_sess_close(&s, 1);
        return;
    }
    s->idle_us = clock_mono_us();
    pthread_mutex_lock(&c->lock);
    if (c->n < SMTP_CACHE_MAX) {
        c->idle[c->n++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    smtp_sess_close(&s, 1);
}

size_t
smtp_cache_expire(smtp_cache_t *c, int max_idle)
{
    struct smtp_sess *old[SMTP_CACHE_MAX];
    int64_t now = clock_mono_us();
    size_t nold = 0;
    size_t left;
    size_t i;

    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < c->n;) {
        if (max_idle > 0 &&
            now - c->idle[i]->idle_us < (int64_t)max_idle * 1000000) {
            i++;
            continue;
        }
        old[nold++] = c->idle[i];
        c->idle[i] = c->idle[--c->n];
    }
    left = c->n;
    pthread_mutex_unlock(&c->lock);
    for (i = 0; i < nold; i++)
        smtp_sess_close(&old[i], 1);
    return left;
}

void
smtp_cache_free(smtp_cache_t **cp)
{
    smtp_cache_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    smtp_cache_expire(c, 0);
    tls_ctx_unref(&c->tls_any);
    tls_ctx_unref(&c->tls_verify);
    free(c->verify_file);
    pthread_mutex_destroy(&c->lock);
    free(c);
    *cp = NULL;
}

/* A reference to the client TLS context for level, or NULL (logged). */
static tls_ctx_t *
smtp_tls_ctx(smtp_cache_t *c, const config_t *cfg, enum smtp_tls_level level)
{
    const char *file = config_str(cfg, P_SMTP_TLS_CAFILE);
    tls_ctx_t *ctx = NULL;
    buf_t err;

    if (file[0] == '\0')
        file = SMTP_DEFAULT_CAFILE;
    buf_init(&err);
    pthread_mutex_lock(&c->lock);
    if (level == SMTP_TLS_VERIFY) {
        if (c->tls_verify == NULL || strcmp(c->verify_file, file) != 0) {
            tls_ctx_unref(&c->tls_verify);
            free(c->verify_file);
            c->verify_file = mem_strdup(file);
            c->tls_verify = tls_client_ctx_new(file, &err);
        }
        if (c->tls_verify)
            ctx = tls_ctx_ref(c->tls_verify);
    } else {
        if (c->tls_any == NULL)
            c->tls_any = tls_client_ctx_new(NULL, &err);
        if (c->tls_any)
            ctx = tls_ctx_ref(c->tls_any);
    }
    pthread_mutex_unlock(&c->lock);
    if (ctx == NULL)
        msg_warn("cannot make a TLS client context: %s",
                 err.data ? err.data : "?");
    buf_free(&err);
    return ctx;
}

/* ---- one session -------------------------------------------------- */

/* The reason text for a connection failure while doing what. */
static void
smtp_conn_failed(struct smtp_fail *f, struct smtp_sess *s, const char *what)
{
    switch (smtp_conn_error(s->conn)) {
    case SMTP_CONN_TIMEOUT:
        smtp_fail_set(f, DELIVERY_DEFER, "4.4.2", s->relay,
                      "conversation with %s timed out while %s", s->named,
                      what);
        break;
    case SMTP_CONN_PROTO:
        smtp_fail_set(f, DELIVERY_DEFER, "4.5.0", s->relay,
                      "conversation with %s failed while %s: %s", s->named,
                      what, smtp_conn_error_text(s->conn));
        break;
    default:
        smtp_fail_set(f, DELIVERY_DEFER, "4.4.2", s->relay,
                      "lost connection with %s while %s", s->named, what);
        break;
    }
}

/* The outcome that reply r gives, as a reason in Postfix's words. */
static void
smtp_reply_result(struct delivery_result *res, const struct smtp_sess *s,
                  const struct smtp_reply *r, const char *cmd)
{
    const char *dsn = r->dsn[0] ? r->dsn : delivery_default_dsn(r->code);

    snprintf(res->relay, sizeof(res->relay), "%s", s->relay);
    if (r->code / 100 == 2) {
        delivery_set(res, DELIVERY_SENT, dsn, "%s", r->text);
        res->notice = s->lmtp ? DELIVERY_NOTICE_DELIVERED
                      : (s->ext & SMTP_EXT_DSN) ? DELIVERY_NOTICE_PASSED
                                               : DELIVERY_NOTICE_RELAYED;
        return;
    }
    delivery_set(res, r->code / 100 == 5 ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                 dsn, "host %s said: %s (in reply to %s command)", s->named,
                 r->text, cmd);
}

/* The service extensions of an EHLO/LHLO reply's lines. */
static void
smtp_parse_ext(struct smtp_sess *s, const char *lines)
{
    const char *p = lines;

    s->ext = 0;
    s->size_max = 0;
    s->mechs[0] = '\0';
    /* The first line is the greeting part ("mx.example.org Hello"). */
    p = strchr(p, '\n');
    while (p && *++p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t kw = strcspn(p, " \n");

        if (kw > len)
            kw = len;
        if (kw == 10 && strncasecmp(p, "PIPELINING", 10) == 0)
            s->ext |= SMTP_EXT_PIPELINING;
        else if (kw == 4 && strncasecmp(p, "SIZE", 4) == 0) {
            s->ext |= SMTP_EXT_SIZE;
            s->size_max = kw < len ? strtoll(p + kw + 1, NULL, 10) : 0;
        } else if (kw == 8 && strncasecmp(p, "8BITMIME", 8) == 0)
            s->ext |= SMTP_EXT_8BITMIME;
        else if (kw == 3 && strncasecmp(p, "DSN", 3) == 0)
            s->ext |= SMTP_EXT_DSN;
        else if (kw == 8 && strncasecmp(p, "STARTTLS", 8) == 0)
            s->ext |= SMTP_EXT_STARTTLS;
        else if (kw == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0)
            s->ext |= SMTP_EXT_SMTPUTF8;
        else if (kw == 4 && strncasecmp(p, "AUTH", 4) == 0 && kw < len) {
            s->ext |= SMTP_EXT_AUTH;
            snprintf(s->mechs, sizeof(s->mechs), " %.*s ",
                     (int)(len - kw - 1), p + kw + 1);
        }
        p = nl;
    }
}

/* EHLO (or LHLO), with HELO as the fallback for SMTP.  Returns 0, or -1
 * with *f set. */
static int
smtp_sess_hello(struct smtp_sess *s, const config_t *cfg, struct smtp_fail *f)
{
    const char *name = config_str(cfg, P_SMTP_HELO_NAME);
    int to = smtp_timeout(cfg, P_SMTP_HELO_TIMEOUT);
    struct smtp_reply r;
    buf_t lines;

    buf_init(&lines);
    smtp_conn_printf(s->conn, "%s %s\r\n", s->lmtp ? "LHLO" : "EHLO", name);
    if (smtp_conn_reply(s->conn, &r, to, &lines) < 0) {
        smtp_conn_failed(f, s, s->lmtp ? "performing the LHLO handshake"
                                       : "performing the EHLO handshake");
        buf_free(&lines);
        return -1;
    }
    if (r.code / 100 == 2) {
        smtp_parse_ext(s, lines.data ? lines.data : "");
        buf_free(&lines);
        return 0;
    }
    buf_free(&lines);
    if (!s->lmtp && r.code / 100 == 5) {
        s->ext = 0;
        smtp_conn_printf(s->conn, "HELO %s\r\n", name);
        if (smtp_conn_reply(s->conn, &r, to, NULL) < 0) {
            smtp_conn_failed(f, s, "performing the HELO handshake");
            return -1;
        }
        if (r.code / 100 == 2)
            return 0;
    }
    smtp_fail_set(f, r.code / 100 == 5 ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                  r.dsn[0] ? r.dsn : delivery_default_dsn(r.code), s->relay,
                  "host %s refused to talk to me: %s", s->named, r.text);
    return -1;
}

/* STARTTLS (RFC 3207) and EHLO again.  Returns 0 (TLS up, or skipped
 * as the level allows), -1 with *f set to fail this host, or -2 when
 * the handshake failed and the host may be tried again in clear. */
static int
smtp_sess_tls(struct smtp_sess *s, struct delivery_req *req,
              enum smtp_tls_level level, const char *host,
              struct smtp_fail *f)
{
    const config_t *cfg = req->cfg;
    struct smtp_reply r;
    tls_ctx_t *ctx;
    const char *info;
    int rc;

    if (level == SMTP_TLS_NONE || s->lmtp)
        return 0;
    if (!(s->ext & SMTP_EXT_STARTTLS)) {
        if (level == SMTP_TLS_MAY)
            return 0;
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.4", s->relay,
                      "TLS is required, but was not offered by host %s",
                      s->named);
        return -1;
    }
    ctx = smtp_tls_ctx(req->cache, cfg, level);
    if (ctx == NULL) {
        if (level == SMTP_TLS_MAY)
            return 0;
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.5", s->relay,
                      "cannot start TLS: no client context (see the "
                      "warning about smtp_tls_CAfile)");
        return -1;
    }
    smtp_conn_put(s->conn, "STARTTLS\r\n", 10);
    if (smtp_conn_reply(s->conn, &r, smtp_timeout(cfg, P_SMTP_STARTTLS_TIMEOUT),
                        NULL) < 0) {
        tls_ctx_unref(&ctx);
        smtp_conn_failed(f, s, "sending STARTTLS");
        return -1;
    }
    if (r.code != 220) {
        tls_ctx_unref(&ctx);
        if (level == SMTP_TLS_MAY)
            return 0;
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.5", s->relay,
                      "TLS is required, but host %s refused to start TLS: %s",
                      s->named, r.text);
        return -1;
    }
    rc = smtp_conn_starttls(s->conn, ctx, smtp_is_literal(host, NULL, 0)
                                              ? NULL
                                              : host,
                            smtp_timeout(cfg, P_SMTP_STARTTLS_TIMEOUT));
    tls_ctx_unref(&ctx);
    if (rc < 0) {
        msg_info("%s: TLS handshake failed with %s: %s", req->env->id,
                 s->relay, smtp_conn_error_text(s->conn));
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.5", s->relay,
                      "Cannot start TLS: handshake failure with %s: %s",
                      s->named, smtp_conn_error_text(s->conn));
        return level == SMTP_TLS_MAY ? -2 : -1;
    }
    s->tls = 1;
    info = smtp_conn_tls_info(s->conn);
    msg_info("%s TLS connection established to %s: %s",
             level == SMTP_TLS_VERIFY ? "Verified" : "Untrusted", s->relay,
             info ? info : "");
    return smtp_sess_hello(s, cfg, f);
}

/* Nonzero if the server offers mechanism mech (" PLAIN "). */
static int
smtp_has_mech(const struct smtp_sess *s, const char *mech)
{
    char want[32];
    const char *p;

    snprintf(want, sizeof(want), " %s ", mech);
    for (p = s->mechs; *p; p++)
        if (strncasecmp(p, want, strlen(want)) == 0)
            return 1;
    return 0;
}

/* Nonzero if the security options in force forbid plaintext
 * mechanisms (Postfix's "noplaintext"). */
static int
smtp_sasl_noplaintext(const config_t *cfg, const struct smtp_sess *s)
{
    char *const *o = config_list(cfg, s->tls ? P_SMTP_SASL_TLS_SECURITY_OPTIONS
                                             : P_SMTP_SASL_SECURITY_OPTIONS,
                                 NULL);

    for (; o && *o; o++)
        if (strcasecmp(*o, "noplaintext") == 0)
            return 1;
    return 0;
}

static void
smtp_base64(buf_t *out, const void *data, size_t len)
{
    size_t start = out->len;

    buf_reserve(out, 4 * ((len + 2) / 3) + 1);
    out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->data + start,
                                        data, (int)len);
    out->data[out->len] = '\0';
}

/* Send one AUTH line (or continuation) and read the reply. */
static int
smtp_auth_step(struct smtp_sess *s, const config_t *cfg, const char *head,
               const void *data, size_t len, struct smtp_reply *r)
{
    buf_t line;
    int rc;

    buf_init(&line);
    buf_puts(&line, head);
    smtp_base64(&line, data, len);
    buf_puts(&line, "\r\n");
    smtp_conn_put(s->conn, line.data, line.len);
    /* The credentials must not linger in our memory. */
    memset(line.data, 0, line.len);
    buf_free(&line);
    rc = smtp_conn_reply(s->conn, r, smtp_timeout(cfg, P_SMTP_HELO_TIMEOUT),
                         NULL);
    return rc;
}

/* SMTP AUTH (RFC 4954) with the credentials smtp_sasl_password_maps
 * gives for the next hop or the host: PLAIN, else LOGIN.  Returns 0
 * (authenticated, or nothing to do), or -1 with *f set. */
static int
smtp_sess_auth(struct smtp_sess *s, struct delivery_req *req,
               const char *host, struct smtp_fail *f)
{
    const config_t *cfg = req->cfg;
    const char *cred = NULL;
    const char *colon;
    struct smtp_reply r;
    buf_t msg;
    int rc;

    if (s->lmtp || !config_num(cfg, P_SMTP_SASL_AUTH_ENABLE) ||
        (config_maps_lookup(cfg, P_SMTP_SASL_PASSWORD_MAPS, req->nexthop,
                            &cred) != 1 &&
         config_maps_lookup(cfg, P_SMTP_SASL_PASSWORD_MAPS, host, &cred) != 1))
        return 0;
    if (!(s->ext & SMTP_EXT_AUTH))
        return 0;
    colon = strchr(cred, ':');
    if (colon == NULL) {
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.0", s->relay,
                      "SASL authentication failed: the password map entry "
                      "for %s is not user:password", host);
        return -1;
    }
    if (smtp_sasl_noplaintext(cfg, s) ||
        (!smtp_has_mech(s, "PLAIN") && !smtp_has_mech(s, "LOGIN"))) {
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.0", s->relay,
                      "SASL authentication failed; cannot authenticate to "
                      "server %s: no mechanism available",
                      s->named);
        return -1;
    }
    buf_init(&msg);
    if (smtp_has_mech(s, "PLAIN")) {
        /* RFC 4616: authzid NUL authcid NUL password. */
        buf_putc(&msg, '\0');
        buf_append(&msg, cred, (size_t)(colon - cred));
        buf_putc(&msg, '\0');
        buf_puts(&msg, colon + 1);
        rc = smtp_auth_step(s, cfg, "AUTH PLAIN ", msg.data, msg.len, &r);
    } else {
        rc = smtp_auth_step(s, cfg, "AUTH LOGIN ", cred,
                            (size_t)(colon - cred), &r);
        if (rc == 0 && r.code == 334)
            rc = smtp_auth_step(s, cfg, "", colon + 1, strlen(colon + 1),
                                &r);
    }
    if (msg.data)
        memset(msg.data, 0, msg.len);
    buf_free(&msg);
    if (rc < 0) {
        smtp_conn_failed(f, s, "authenticating");
        return -1;
    }
    if (r.code != 235) {
        smtp_fail_set(f, DELIVERY_DEFER, "4.7.0", s->relay,
                      "SASL authentication failed; server %s said: %s",
                      s->named, r.text);
        return -1;
    }
    return 0;
}

/* Connect to a, read the greeting, say EHLO and start TLS.  Returns a
 * session, or NULL with *f set and *greeted nonzero when the server got
 * as far as answering. */
static struct smtp_sess *
smtp_sess_open(struct delivery_req *req, const struct smtp_target *t,
               const struct smtp_addr *a, const char *key, int notls,
               struct smtp_fail *f, int *greeted, int *retry_clear)
{
    const config_t *cfg = req->cfg;
    int cto = smtp_timeout(cfg, P_SMTP_CONNECT_TIMEOUT);
    struct smtp_sess *s = mem_calloc(1, sizeof(*s));
    struct smtp_reply r;
    char why[256] = "";
    int rc;

    *greeted = 0;
    *retry_clear = 0;
    s->lmtp = t->lmtp;
    snprintf(s->key, sizeof(s->key), "%s", key);
    if (a->is_unix) {
        snprintf(s->named, sizeof(s->named), "%s[%s]", a->host, a->addr);
        snprintf(s->relay, sizeof(s->relay), "%s", s->named);
        s->conn = smtp_conn_open_unix(a->addr, cto, why, sizeof(why));
    } else {
        snprintf(s->named, sizeof(s->named), "%s[%s]", a->host, a->addr);
        snprintf(s->relay, sizeof(s->relay), "%s:%d", s->named, a->port);
        s->conn = smtp_conn_open_inet(a->addr, a->port, cto, why,
                                      sizeof(why));
    }
    if (s->conn == NULL) {
        if (a->is_unix)
            smtp_fail_set(f, DELIVERY_DEFER, "4.4.1", "none",
                          "connect to %s: %s", a->addr, why);
        else
            smtp_fail_set(f, DELIVERY_DEFER, "4.4.1", "none",
                          "connect to %s[%s]:%d: %s", a->host, a->addr,
                          a->port, why);
        free(s);
        return NULL;
    }
    if (smtp_conn_reply(s->conn, &r, smtp_timeout(cfg, P_SMTP_HELO_TIMEOUT),
                        NULL) < 0) {
        smtp_conn_failed(f, s, "receiving the initial server greeting");
        smtp_sess_close(&s, 0);
        return NULL;
    }
    *greeted = 1;
    if (r.code != 220) {
        smtp_fail_set(f,
                      r.code / 100 == 5 ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                      r.dsn[0] ? r.dsn : delivery_default_dsn(r.code),
                      s->relay, "host %s refused to talk to me: %s",
                      s->named, r.text);
        smtp_sess_close(&s, 1);
        return NULL;
    }
    if (smtp_sess_hello(s, cfg, f) < 0) {
        smtp_sess_close(&s, 1);
        return NULL;
    }
    rc = smtp_sess_tls(s, req,
                       notls ? SMTP_TLS_NONE
                             : smtp_tls_level(cfg, req->nexthop),
                       a->host, f);
    if (rc < 0) {
        *retry_clear = rc == -2;
        smtp_sess_close(&s, rc == -1);
        return NULL;
    }
    if (smtp_sess_auth(s, req, a->host, f) < 0) {
        smtp_sess_close(&s, 1);
        return NULL;
    }
    return s;
}

/* Append text as RFC 3461 xtext: "+", "=" and bytes outside "!".."~"
 * as "+XX". */
static void
smtp_xtext(smtp_conn_t *c, const char *text)
{
    const unsigned char *p;

    for (p = (const unsigned char *)text; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            smtp_conn_printf(c, "+%02X", *p);
        else
            smtp_conn_put(c, (const char *)p, 1);
    }
}

/* What goes out in one transaction: the addresses as smtp_generic_maps
 * makes them (gen set: not for LMTP), and the content, rewritten by it
 * and made 7-bit for a server without 8BITMIME as needed. */
struct smtp_generic {
    const config_t *cfg;
    int gen;
    buf_t sender;
    buf_t rcpt; /* the recipient being sent */
    const char *stored; /* the content as queued */
    const char *msg;
    size_t len;
    buf_t gmsg; /* the content after smtp_generic_maps */
    buf_t conv; /* the content made 7-bit */
};

static void
smtp_generic_init(struct smtp_generic *g, const struct delivery_req *req,
                  const struct smtp_sess *s)
{
    table_t *const *t = config_tables(req->cfg, P_SMTP_GENERIC_MAPS);

    memset(g, 0, sizeof(*g));
    g->cfg = req->cfg;
    buf_init(&g->sender);
    buf_init(&g->rcpt);
    buf_init(&g->gmsg);
    buf_init(&g->conv);
    g->stored = g->msg = req->msg;
    g->len = req->len;
    g->gen = !s->lmtp && t != NULL && t[0] != NULL;
    if (g->gen) {
        cleanup_rewrite_generic(req->cfg, req->env->sender, &g->sender);
        cleanup_rewrite_generic_message(req->cfg, req->msg, req->len,
                                        &g->gmsg);
        g->msg = g->gmsg.data ? g->gmsg.data : "";
        g->len = g->gmsg.len;
    }
    /* RFC 6152 section 3: no 8-bit content to a server that did not
     * offer 8BITMIME, when MIME lets it be encoded. */
    if (!(s->ext & SMTP_EXT_8BITMIME) &&
        !config_num(req->cfg, P_DISABLE_MIME_OUTPUT_CONVERSION) &&
        smtp_7bit_needed(g->msg, g->len) &&
        smtp_7bit_convert(g->msg, g->len, &g->conv) > 0) {
        g->msg = g->conv.data;
        g->len = g->conv.len;
    }
}

static void
smtp_generic_free(struct smtp_generic *g)
{
    buf_free(&g->sender);
    buf_free(&g->rcpt);
    buf_free(&g->gmsg);
    buf_free(&g->conv);
}

static void
smtp_put_mail(struct smtp_sess *s, const envelope_t *env,
              const struct smtp_generic *g)
{
    smtp_conn_printf(s->conn, "MAIL FROM:<%s>",
                     g->gen ? g->sender.data : env->sender);
    if (s->ext & SMTP_EXT_SIZE)
        smtp_conn_printf(s->conn, " SIZE=%lld",
                         g->msg != g->stored ? (long long)g->len
                                             : (long long)env->size);
    if (env->body_8bit && (s->ext & SMTP_EXT_8BITMIME))
        smtp_conn_put(s->conn, " BODY=8BITMIME", 14);
    if (env->smtputf8 && (s->ext & SMTP_EXT_SMTPUTF8))
        smtp_conn_put(s->conn, " SMTPUTF8", 9);
    if (s->ext & SMTP_EXT_DSN) {
        if (env->ret == DSN_RET_FULL)
            smtp_conn_put(s->conn, " RET=FULL", 9);
        else if (env->ret == DSN_RET_HDRS)
            smtp_conn_put(s->conn, " RET=HDRS", 9);
        if (env->envid) {
            smtp_conn_put(s->conn, " ENVID=", 7);
            smtp_xtext(s->conn, env->envid);
        }
    }
    smtp_conn_put(s->conn, "\r\n", 2);
}

static void
smtp_put_rcpt(struct smtp_sess *s, const rcpt_t *rc, struct smtp_generic *g)
{
    if (g->gen) {
        buf_reset(&g->rcpt);
        cleanup_rewrite_generic(g->cfg, rc->addr, &g->rcpt);
    }
    smtp_conn_printf(s->conn, "RCPT TO:<%s>", g->gen ? g->rcpt.data : rc->addr);
    if ((s->ext & SMTP_EXT_DSN) && rc->notify) {
        const char *sep = "";

        smtp_conn_put(s->conn, " NOTIFY=", 8);
        if (rc->notify & DSN_NOTIFY_NEVER) {
            smtp_conn_put(s->conn, "NEVER", 5);
        } else {
            if (rc->notify & DSN_NOTIFY_SUCCESS) {
                smtp_conn_printf(s->conn, "%sSUCCESS", sep);
                sep = ",";
            }
            if (rc->notify & DSN_NOTIFY_FAILURE) {
                smtp_conn_printf(s->conn, "%sFAILURE", sep);
                sep = ",";
            }
            if (rc->notify & DSN_NOTIFY_DELAY)
                smtp_conn_printf(s->conn, "%sDELAY", sep);
        }
    }
    if ((s->ext & SMTP_EXT_DSN) && rc->orcpt) {
        const char *semi = strchr(rc->orcpt, ';');

        if (semi) {
            smtp_conn_printf(s->conn, " ORCPT=%.*s;",
                             (int)(semi - rc->orcpt), rc->orcpt);
            smtp_xtext(s->conn, semi + 1);
        }
    }
    smtp_conn_put(s->conn, "\r\n", 2);
}

/* Send the message: CRLF line ends and dot-stuffing, flushed as it
 * goes, then the end of data.  Returns 0, or -1 (connection failed). */
static int
smtp_send_body(struct smtp_sess *s, const char *msg, size_t len, int to)
{
    const char *p = msg;
    const char *end = msg + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (llen > 0 && p[0] == '.')
            smtp_conn_put(s->conn, ".", 1);
        /* A stored line may still end in CR; do not double it. */
        if (llen > 0 && p[llen - 1] == '\r')
            llen--;
        smtp_conn_put(s->conn, p, llen);
        smtp_conn_put(s->conn, "\r\n", 2);
        p = nl ? nl + 1 : end;
        if (smtp_conn_pending(s->conn) >= SMTP_FLUSH_AT &&
            smtp_conn_flush(s->conn, to) < 0)
            return -1;
    }
    smtp_conn_put(s->conn, ".\r\n", 3);
    return smtp_conn_flush(s->conn, to);
}

/* Give recipients without an outcome f's. */
static void
smtp_apply_fail(struct delivery_req *req, const struct smtp_fail *f)
{
    delivery_set_rest(req, f->status, f->dsn, f->relay, "%s", f->text);
}

/* RSET, to leave a session clean for the next transaction. */
static int
smtp_rset(struct smtp_sess *s, const config_t *cfg)
{
    struct smtp_reply r;

    smtp_conn_put(s->conn, "RSET\r\n", 6);
    if (smtp_conn_reply(s->conn, &r, smtp_timeout(cfg, P_SMTP_RSET_TIMEOUT),
                        NULL) < 0)
        return -1;
    return r.code / 100 == 2 ? 0 : -1;
}

/* Checks before MAIL that need no round trip: SIZE and SMTPUTF8.
 * Returns 0 to go on, -1 when every recipient has its outcome. */
static int
smtp_precheck(struct delivery_req *req, struct smtp_sess *s)
{
    const envelope_t *env = req->env;

    if ((s->ext & SMTP_EXT_SIZE) && s->size_max > 0 &&
        env->size > s->size_max) {
        delivery_set_rest(req, DELIVERY_BOUNCE, "5.3.4", s->relay,
                          "message size %lld exceeds size limit %lld of "
                          "server %s",
                          (long long)env->size, s->size_max, s->named);
        return -1;
    }
    if (env->smtputf8 && !(s->ext & SMTP_EXT_SMTPUTF8)) {
        delivery_set_rest(req, DELIVERY_BOUNCE, "5.6.7", s->relay,
                          "SMTPUTF8 is required, but was not offered by "
                          "host %s",
                          s->named);
        return -1;
    }
    return 0;
}

/* One transaction on s for the undecided recipients of req. */
static enum smtp_trans
smtp_transact(struct delivery_req *req, struct smtp_sess *s,
              struct smtp_fail *f)
{
    const config_t *cfg = req->cfg;
    int pipe = (s->ext & SMTP_EXT_PIPELINING) != 0;
    size_t *sent = mem_calloc(req->nrcpt + 1, sizeof(size_t));
    size_t *ok = mem_calloc(req->nrcpt + 1, sizeof(size_t));
    size_t nsent = 0;
    size_t nok = 0;
    struct smtp_reply r;
    enum smtp_trans ret = SMTP_TRANS_CLOSE;
    const char *what = "sending MAIL FROM";
    struct smtp_generic gen;
    size_t i;
    int data_sent = 0;

    smtp_generic_init(&gen, req, s);
    if (smtp_precheck(req, s) < 0) {
        ret = SMTP_TRANS_REUSE;
        goto done;
    }
    for (i = 0; i < req->nrcpt; i++)
        if (delivery_undecided(&req->rcpts[i].result))
            sent[nsent++] = i;
    smtp_put_mail(s, req->env, &gen);
    if (pipe) {
        for (i = 0; i < nsent; i++)
            smtp_put_rcpt(s, req->rcpts[sent[i]].rcpt, &gen);
        smtp_conn_put(s->conn, "DATA\r\n", 6);
        data_sent = 1;
    }
    if (smtp_conn_reply(s->conn, &r, smtp_timeout(cfg, P_SMTP_MAIL_TIMEOUT),
                        NULL) < 0) {
        smtp_conn_failed(f, s, what);
        ret = SMTP_TRANS_NEXT;
        goto done;
    }
    if (r.code / 100 != 2) {
        /* The sender is refused: every recipient shares the outcome. */
        for (i = 0; i < nsent; i++)
            smtp_reply_result(&req->rcpts[sent[i]].result, s, &r,
                              "MAIL FROM");
        if (pipe) {
            /* Read what the pipelined commands got; ignore it. */
            for (i = 0; i <= nsent; i++)
                if (smtp_conn_reply(s->conn, &r,
                                    smtp_timeout(cfg, P_SMTP_RCPT_TIMEOUT),
                                    NULL) < 0)
                    goto done;
        }
        ret = smtp_rset(s, cfg) == 0 ? SMTP_TRANS_REUSE : SMTP_TRANS_CLOSE;
        goto done;
    }
    what = "sending RCPT TO";
    for (i = 0; i < nsent; i++) {
        struct delivery_result *res = &req->rcpts[sent[i]].result;

        if (!pipe)
            smtp_put_rcpt(s, req->rcpts[sent[i]].rcpt, &gen);
        if (smtp_conn_reply(s->conn, &r,
                            smtp_timeout(cfg, P_SMTP_RCPT_TIMEOUT), NULL) < 0)
            goto lost;
        if (r.code / 100 == 2)
            ok[nok++] = sent[i];
        else
            smtp_reply_result(res, s, &r, "RCPT TO");
    }
    what = "sending DATA command";
    if (!pipe && nok > 0) {
        smtp_conn_put(s->conn, "DATA\r\n", 6);
        data_sent = 1;
    }
    if (data_sent) {
        if (smtp_conn_reply(s->conn, &r,
                            smtp_timeout(cfg, P_SMTP_DATA_INIT_TIMEOUT),
                            NULL) < 0)
            goto lost;
        if (r.code == 354 && nok == 0) {
            /* RFC 2920 section 3.1: DATA went out with the group and was
             * accepted although no recipient was: end it empty. */
            smtp_conn_put(s->conn, ".\r\n", 3);
            if (smtp_conn_reply(s->conn, &r,
                                smtp_timeout(cfg, P_SMTP_DATA_DONE_TIMEOUT),
                                NULL) < 0)
                goto lost;
        } else if (r.code != 354) {
            for (i = 0; i < nok; i++)
                smtp_reply_result(&req->rcpts[ok[i]].result, s, &r, "DATA");
            nok = 0;
        }
    }
    if (nok == 0) {
        ret = smtp_rset(s, cfg) == 0 ? SMTP_TRANS_REUSE : SMTP_TRANS_CLOSE;
        goto done;
    }
    what = "sending message body";
    if (smtp_send_body(s, gen.msg, gen.len,
                       smtp_timeout(cfg, P_SMTP_DATA_XFER_TIMEOUT)) < 0)
        goto lost;
    what = "sending end of data -- message may be sent more than once";
    for (i = 0; i < (s->lmtp ? nok : 1); i++) {
        size_t j;

        if (smtp_conn_reply(s->conn, &r,
                            smtp_timeout(cfg, P_SMTP_DATA_DONE_TIMEOUT),
                            NULL) < 0)
            goto lost;
        if (s->lmtp) {
            smtp_reply_result(&req->rcpts[ok[i]].result, s, &r,
                              "end of DATA");
            continue;
        }
        for (j = 0; j < nok; j++)
            smtp_reply_result(&req->rcpts[ok[j]].result, s, &r,
                              "end of DATA");
    }
    ret = SMTP_TRANS_REUSE;
    goto done;
lost:
    smtp_conn_failed(f, s, what);
    smtp_apply_fail(req, f);
    /* After a timeout or a lost connection a QUIT would only wait in
     * vain, or, in the middle of the body, become part of the message. */
    ret = SMTP_TRANS_LOST;
done:
    smtp_generic_free(&gen);
    free(sent);
    free(ok);
    return ret;
}

/* Nonzero if some recipient of req has no outcome yet. */
static int
smtp_any_undecided(const struct delivery_req *req)
{
    size_t i;

    for (i = 0; i < req->nrcpt; i++)
        if (delivery_undecided(&req->rcpts[i].result))
            return 1;
    return 0;
}

/* Try a cached session first.  Returns 1 when it decided everything. */
static int
smtp_try_cached(struct delivery_req *req, const char *key)
{
    struct smtp_sess *s = smtp_cache_take(req->cache, key);
    struct smtp_fail f;
    enum smtp_trans t;

    if (s == NULL)
        return 0;
    req->conn_us = clock_wall_us();
    t = smtp_transact(req, s, &f);
    if (t == SMTP_TRANS_REUSE) {
        smtp_cache_put(req->cache, &s);
        return 1;
    }
    smtp_sess_close(&s, 0);
    /* A cached session that broke before anything was decided: the
     * server timed it out; a fresh connection will do. */
    return !smtp_any_undecided(req);
}

void
smtp_deliver_target(struct delivery_req *req, const struct smtp_target *t)
{
    struct smtp_addr *addrs = mem_calloc(SMTP_ADDR_MAX, sizeof(*addrs));
    size_t max_addr = (size_t)config_num(req->cfg, P_SMTP_MX_ADDRESS_LIMIT);
    long long max_sess = config_num(req->cfg, P_SMTP_MX_SESSION_LIMIT);
    struct smtp_fail f;
    char key[600];
    size_t naddr = 0;
    size_t i;
    int sessions = 0;
    int decided = 0;

    snprintf(key, sizeof(key), "%s:%s", req->transport, req->nexthop);
    memset(&f, 0, sizeof(f));
    if (smtp_try_cached(req, key))
        goto done;
    if (max_addr == 0 || max_addr > SMTP_ADDR_MAX)
        max_addr = SMTP_ADDR_MAX;
    if (smtp_resolve(req->cfg, t, addrs, max_addr, &naddr, &f) < 0) {
        smtp_apply_fail(req, &f);
        req->site_fail = f.status == DELIVERY_DEFER;
        goto done;
    }
    for (i = 0; i < naddr && (max_sess <= 0 || sessions < max_sess); i++) {
        struct smtp_sess *s;
        enum smtp_trans tr;
        int greeted;
        int clear;

        s = smtp_sess_open(req, t, &addrs[i], key, 0, &f, &greeted, &clear);
        if (s == NULL && clear)
            s = smtp_sess_open(req, t, &addrs[i], key, 1, &f, &greeted,
                               &clear);
        sessions += greeted;
        if (s == NULL)
            continue;
        req->conn_us = clock_wall_us();
        tr = smtp_transact(req, s, &f);
        decided = 1;
        if (tr == SMTP_TRANS_REUSE)
            smtp_cache_put(req->cache, &s);
        else
            smtp_sess_close(&s, tr == SMTP_TRANS_CLOSE);
        if (tr != SMTP_TRANS_NEXT || !smtp_any_undecided(req))
            break;
        decided = 0;
    }
    if (smtp_any_undecided(req)) {
        /* A refusal by the last host tried is final only if it was a
         * 5xx; a host that could not be reached leaves a deferral. */
        smtp_apply_fail(req, &f);
        req->site_fail = !decided;
    }
done:
    free(addrs);
}

void
smtp_deliver(struct delivery_req *req)
{
    struct smtp_target t;
    char host[256];

    memset(&t, 0, sizeof(t));
    if (smtp_parse_nexthop(req->nexthop, 25, host, sizeof(host), &t.port,
                           &t.mx) < 0) {
        delivery_set_rest(req, DELIVERY_DEFER, "4.3.5", "none",
                          "bad next hop \"%s\" for transport smtp",
                          req->nexthop);
        return;
    }
    t.host = host;
    smtp_deliver_target(req, &t);
}
