/* SPDX-License-Identifier: ISC */
/*
 * smtpd_check: Postfix-style restriction lists for the SMTP server.
 *
 * A list is a sequence of restriction names, some followed by one
 * argument (a table for check_*_access, a DNSBL zone for
 * reject_rbl_client).  Each restriction answers DUNNO, OK or REJECT;
 * the first answer other than DUNNO ends the list.  The replies are
 * Postfix's, codes and enhanced status codes included, so that clients,
 * log readers and admins see what they know:
 *
 *     554 5.7.1 <rcpt>: Relay access denied
 *     554 5.7.1 <x@y>: Sender address rejected: Access denied
 *     450 4.1.2 <rcpt>: Recipient address rejected: Domain not found
 *     554 5.7.1 Service unavailable; Client host [addr] blocked using Z
 *
 * The "<what>: <class> rejected" part names the thing a restriction
 * looked at: the client ("name[addr]"), the HELO name, the sender or the
 * recipient; plain reject and defer name what the list is about.
 *
 * An access table's result is an action (OK, REJECT text, 4xx text,
 * ...) or, as in Postfix, a list of restrictions to evaluate in its
 * place; such a list may not use tables, the DNS or a policy server
 * (the tables are opened with the config, and network waits must stay
 * off the session's event loop, which smtpd_check_needs_dns() cannot
 * foresee for results).  check_policy_service asks a policy server
 * (server/smtpd_policy) and applies its answer as a table result, or
 * smtpd_policy_service_default_action when there is no answer.
 *
 * Some actions outlast the restriction that gave them: DEFER_IF_PERMIT
 * and DEFER_IF_REJECT wait for the end of the command's last list
 * (smtpd_check_finish), and HOLD, DISCARD, REDIRECT and PREPEND concern
 * the message that the recipient joins.  They go to the context's acts.
 *
 * Nothing here keeps state between calls: evaluation reads the config
 * and the context and writes the caller's reply buffer and acts, so
 * calls from many threads may run at once.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/resolve.h"
#include "lib/addr.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/table.h"
#include "server/smtpd_check.h"
#include "server/smtpd_policy.h"

/* Postfix's default reply codes (main.cf names in the comments). */
#define SMTPD_CHECK_REJECT_CODE 554   /* reject_code */
#define SMTPD_CHECK_DEFER_CODE 450    /* defer_code */
#define SMTPD_CHECK_RELAY_CODE 554    /* relay_domains_reject_code */
#define SMTPD_CHECK_MAP_REJECT 554    /* access_map_reject_code */
#define SMTPD_CHECK_MAP_DEFER 450     /* access_map_defer_code */
#define SMTPD_CHECK_UNK_ADDR_CODE 450 /* unknown_address_reject_code */
#define SMTPD_CHECK_UNK_CLIENT 450    /* unknown_client_reject_code */
#define SMTPD_CHECK_NON_FQDN_CODE 504 /* non_fqdn_reject_code */
#define SMTPD_CHECK_INVALID_HOST 501  /* invalid_hostname_reject_code */
#define SMTPD_CHECK_RBL_CODE 554      /* rbl_code */

/* An SMTP reply line is at most 512 octets with its CRLF (RFC 5321
 * section 4.5.3.1.5). */
#define SMTPD_CHECK_REPLY_MAX 510

/* The most that PREPEND actions may add to one message. */
#define SMTPD_CHECK_PREPEND_MAX 65536

#define SMTPD_CHECK_CLIENT "Client host"
#define SMTPD_CHECK_HELO "Helo command"
#define SMTPD_CHECK_SENDER "Sender address"
#define SMTPD_CHECK_RCPT "Recipient address"

struct smtpd_check_state {
    const struct smtpd_check_ctx *ctx;
    struct smtpd_check_acts *acts;
    buf_t *reply;
    const char *what;   /* what plain reject and defer name */
    const char *class;  /* and its class, "Client host", ... */
    const char *addr;   /* the client address as text, or "" */
    char namaddr[320];  /* "name[addr]" */
    int depth;          /* > 0 inside an access table's result */
    int suspicious;     /* a routed recipient: OK counts as DUNNO */
};

enum smtpd_check_arg {
    SMTPD_CHECK_ARG_NONE,
    SMTPD_CHECK_ARG_TABLE,
    SMTPD_CHECK_ARG_ZONE,
    SMTPD_CHECK_ARG_SERVICE,
};

/* What a restriction may wait for, which the I/O threads must not. */
enum smtpd_check_wait {
    SMTPD_CHECK_NO_WAIT,
    SMTPD_CHECK_WAIT_DNS,
    SMTPD_CHECK_WAIT_POLICY,
};

typedef int (*smtpd_check_fn)(struct smtpd_check_state *st, const char *arg,
                              const table_t *table);

struct smtpd_check_def {
    const char *name;
    enum smtpd_check_arg arg;
    enum smtpd_check_wait wait;
    smtpd_check_fn fn;
};

static const struct smtpd_check_def *smtpd_check_find(const char *name);
static int smtpd_check_list(struct smtpd_check_state *st,
                            char *const *items, table_t *const *tables,
                            size_t n);

/* Write the reply "code dsn text" and return SMTPD_CHECK_REJECT.  The
 * class digit of dsn follows the code (RFC 3463 section 3.1); control
 * characters, which text from tables or the DNS could hold, become
 * "?", and the line is cut to the length SMTP allows. */
static int __attribute__((format(printf, 4, 5)))
smtpd_check_reply(struct smtpd_check_state *st, int code, const char *dsn,
                  const char *fmt, ...)
{
    buf_t text;
    va_list ap;
    size_t i;

    buf_init(&text);
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    /* soft_bounce: a refusal becomes a "try again later". */
    if (code >= 500 && config_num(st->ctx->cfg, P_SOFT_BOUNCE))
        code -= 100;
    buf_reset(st->reply);
    buf_printf(st->reply, "%d %c%s ", code, '0' + code / 100, dsn + 1);
    for (i = 0; i < text.len && st->reply->len < SMTPD_CHECK_REPLY_MAX;
         i++) {
        unsigned char c = (unsigned char)text.data[i];

        buf_putc(st->reply, c < 0x20 || c == 0x7f ? '?' : c);
    }
    buf_free(&text);
    return SMTPD_CHECK_REJECT;
}

/* A restriction that cannot be carried out as configured: log why and
 * answer as Postfix does, with a temporary error. */
static int __attribute__((format(printf, 2, 3)))
smtpd_check_config_error(struct smtpd_check_state *st, const char *fmt,
                         ...)
{
    buf_t why;
    va_list ap;

    buf_init(&why);
    va_start(ap, fmt);
    buf_vprintf(&why, fmt, ap);
    va_end(ap);
    msg_warn("restriction error: %s", why.data);
    buf_free(&why);
    return smtpd_check_reply(st, 451, "4.3.5", "<%s>: %s rejected: Server "
                             "configuration error", st->what, st->class);
}

/* Nonzero if s is a host name: dot-separated labels of 1 to 63 letters,
 * digits, '-' (not first or last) or '_', and not all digits and dots,
 * as Postfix's valid_hostname.  One trailing dot is allowed.  Octets
 * above 127 pass, for the U-labels of SMTPUTF8 (RFC 6531). */
static int
smtpd_check_valid_hostname(const char *s)
{
    size_t len = strlen(s);
    size_t label = 0;
    int alpha = 0;
    size_t i;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 255)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (c == '-' && label == 0)
            return 0;
        if (!isalnum(c) && c != '-' && c != '_' && c < 0x80)
            return 0;
        if (!isdigit(c))
            alpha = 1;
        if (++label > 63)
            return 0;
    }
    return alpha && s[len - 1] != '-';
}

/* Nonzero if s is an address literal: "[a.b.c.d]" or "[IPv6:...]"
 * (RFC 5321 section 4.1.3). */
static int
smtpd_check_valid_literal(const char *s)
{
    unsigned char sa[sizeof(struct in6_addr)];
    char inner[64];
    size_t len = strlen(s);

    if (len < 3 || s[0] != '[' || s[len - 1] != ']' ||
        len - 2 >= sizeof(inner))
        return 0;
    memcpy(inner, s + 1, len - 2);
    inner[len - 2] = '\0';
    if (strncasecmp(inner, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, inner + 5, sa) == 1;
    return inet_pton(AF_INET, inner, sa) == 1;
}

/* Nonzero if the local part of addr routes elsewhere: "@" (a source
 * route left in the local part), "%" (the percent hack) or "!" (a UUCP
 * bang path).  Such a recipient of a local domain may be relayed by
 * whatever reads the local part, so it never counts as local. */
static int
smtpd_check_routed(const char *addr)
{
    char *local = addr_localpart(addr);
    int routed = strpbrk(local, "@%!") != NULL;

    free(local);
    return routed;
}

/* Nonzero if rcpt is a destination we may accept from anyone: a domain
 * of one of our address classes (mydestination, virtual_alias_domains,
 * virtual_mailbox_domains, relay_domains), or no domain at all
 * (postmaster, RFC 5321 section 4.5.1), and no route in the local
 * part. */
static int
smtpd_check_auth_destination(const config_t *cfg, const char *rcpt)
{
    const char *domain = addr_domain(rcpt);

    if (rcpt[0] == '@' || smtpd_check_routed(rcpt))
        return 0;
    if (domain[0] == '\0')
        return strchr(rcpt, '@') == NULL;
    return resolve_class(cfg, domain) != RESOLVE_DEFAULT;
}

static int
smtpd_check_permit(struct smtpd_check_state *st, const char *arg,
                   const table_t *table)
{
    (void)arg;
    (void)table;
    return st->suspicious ? SMTPD_CHECK_DUNNO : SMTPD_CHECK_OK;
}

static int
smtpd_check_reject_all(struct smtpd_check_state *st, const char *arg,
                       const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_reply(st, SMTPD_CHECK_REJECT_CODE, "5.7.1",
                             "<%s>: %s rejected: Access denied", st->what,
                             st->class);
}

static int
smtpd_check_defer_all(struct smtpd_check_state *st, const char *arg,
                      const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_reply(st, SMTPD_CHECK_DEFER_CODE, "4.7.1",
                             "<%s>: %s rejected: Access denied", st->what,
                             st->class);
}

static int
smtpd_check_permit_mynetworks(struct smtpd_check_state *st,
                              const char *arg, const table_t *table)
{
    if (!st->ctx->in_mynetworks)
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_permit(st, arg, table);
}

static int
smtpd_check_permit_sasl(struct smtpd_check_state *st, const char *arg,
                        const table_t *table)
{
    if (st->ctx->sasl_user == NULL)
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_permit(st, arg, table);
}

static int
smtpd_check_permit_auth_dest(struct smtpd_check_state *st,
                             const char *arg, const table_t *table)
{
    const char *rcpt = st->ctx->rcpt;

    if (rcpt == NULL || !smtpd_check_auth_destination(st->ctx->cfg, rcpt))
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_permit(st, arg, table);
}

/* reject_unauth_destination and defer_unauth_destination. */
static int
smtpd_check_unauth_dest(struct smtpd_check_state *st, int code,
                        const char *dsn)
{
    const char *rcpt = st->ctx->rcpt;

    if (rcpt == NULL || smtpd_check_auth_destination(st->ctx->cfg, rcpt))
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_reply(st, code, dsn, "<%s>: Relay access denied",
                             rcpt);
}

static int
smtpd_check_reject_unauth_dest(struct smtpd_check_state *st,
                               const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unauth_dest(st, SMTPD_CHECK_RELAY_CODE, "5.7.1");
}

static int
smtpd_check_defer_unauth_dest(struct smtpd_check_state *st,
                              const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unauth_dest(st, SMTPD_CHECK_DEFER_CODE, "4.7.1");
}

/* reject_non_fqdn_sender and reject_non_fqdn_recipient: the domain must
 * be a host name with a dot in it, or an address literal. */
static int
smtpd_check_non_fqdn(struct smtpd_check_state *st, const char *addr,
                     const char *class)
{
    const char *at;
    const char *domain;

    if (addr == NULL || addr[0] == '\0')
        return SMTPD_CHECK_DUNNO;
    at = strrchr(addr, '@');
    domain = at ? at + 1 : "";
    if (domain[0] == '[' && smtpd_check_valid_literal(domain))
        return SMTPD_CHECK_DUNNO;
    if (smtpd_check_valid_hostname(domain) && strchr(domain, '.') &&
        strchr(domain, '.')[1] != '\0')
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_reply(st, SMTPD_CHECK_NON_FQDN_CODE, "5.5.2",
                             "<%s>: %s rejected: need fully-qualified "
                             "address", addr, class);
}

static int
smtpd_check_non_fqdn_sender(struct smtpd_check_state *st, const char *arg,
                            const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_non_fqdn(st, st->ctx->sender, SMTPD_CHECK_SENDER);
}

static int
smtpd_check_non_fqdn_rcpt(struct smtpd_check_state *st, const char *arg,
                          const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_non_fqdn(st, st->ctx->rcpt, SMTPD_CHECK_RCPT);
}

static int
smtpd_check_invalid_helo(struct smtpd_check_state *st, const char *arg,
                         const table_t *table)
{
    const char *helo = st->ctx->helo;

    (void)arg;
    (void)table;
    if (helo == NULL || (helo[0] == '[' ? smtpd_check_valid_literal(helo)
                                        : smtpd_check_valid_hostname(helo)))
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_reply(st, SMTPD_CHECK_INVALID_HOST, "5.5.2",
                             "<%s>: %s rejected: Invalid name", helo,
                             SMTPD_CHECK_HELO);
}

static int
smtpd_check_non_fqdn_helo(struct smtpd_check_state *st, const char *arg,
                          const table_t *table)
{
    const char *helo = st->ctx->helo;
    const char *dot;

    (void)arg;
    (void)table;
    if (helo == NULL || (helo[0] == '[' && smtpd_check_valid_literal(helo)))
        return SMTPD_CHECK_DUNNO;
    dot = strchr(helo, '.');
    if (smtpd_check_valid_hostname(helo) && dot && dot[1] != '\0')
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_reply(st, SMTPD_CHECK_NON_FQDN_CODE, "5.5.2",
                             "<%s>: %s rejected: need fully-qualified "
                             "hostname", helo, SMTPD_CHECK_HELO);
}

/* Combine two DNS results: success wins, then a temporary failure. */
static int
smtpd_check_dns_merge(int a, int b)
{
    if (a == DNS_OK || b == DNS_OK)
        return DNS_OK;
    if (a == DNS_RETRY || b == DNS_RETRY)
        return DNS_RETRY;
    return DNS_NOTFOUND;
}

/* reject_unknown_sender_domain and reject_unknown_recipient_domain:
 * a domain we are not the destination for must have an MX record, or
 * failing that an A or AAAA record, and must not have a null MX. */
static int
smtpd_check_unknown_domain(struct smtpd_check_state *st, const char *addr,
                           const char *class)
{
    int sender = strcmp(class, SMTPD_CHECK_SENDER) == 0;
    const char *domain;
    struct dns_rr *rr = NULL;
    char why[256];
    int rc;

    if (addr == NULL || addr[0] == '\0' || strchr(addr, '@') == NULL)
        return SMTPD_CHECK_DUNNO;
    domain = addr_domain(addr);
    if (domain[0] == '\0' || domain[0] == '[')
        return SMTPD_CHECK_DUNNO;
    /* Nothing to ask DNS where this host is the final destination. */
    switch (resolve_class(st->ctx->cfg, domain)) {
    case RESOLVE_LOCAL:
    case RESOLVE_VIRTUAL_ALIAS:
    case RESOLVE_VIRTUAL_MAILBOX:
        return SMTPD_CHECK_DUNNO;
    default:
        break;
    }
    rc = dns_mx_hosts(domain, &rr, why, sizeof(why));
    dns_rr_free(&rr);
    if (rc == DNS_NULLMX)
        return smtpd_check_reply(st, sender ? 550 : 556,
                                 sender ? "5.7.27" : "5.1.10",
                                 "<%s>: %s rejected: Domain %s does not "
                                 "accept mail (nullMX)", addr, class,
                                 domain);
    if (rc != DNS_OK) {
        rc = smtpd_check_dns_merge(rc, dns_lookup(domain, ns_t_a, &rr, why,
                                                  sizeof(why)));
        dns_rr_free(&rr);
    }
    if (rc != DNS_OK) {
        rc = smtpd_check_dns_merge(rc, dns_lookup(domain, ns_t_aaaa, &rr,
                                                  why, sizeof(why)));
        dns_rr_free(&rr);
    }
    if (rc == DNS_OK)
        return SMTPD_CHECK_DUNNO;
    if (rc == DNS_RETRY) {
        /* As Postfix: a temporary failure is a defer_if_permit, so that
         * a later refusal in the lists still wins over it. */
        buf_t *reply = st->reply;

        if (st->acts->defer_if_permit.len > 0)
            return SMTPD_CHECK_DUNNO;
        st->reply = &st->acts->defer_if_permit;
        smtpd_check_reply(st, 450, sender ? "4.1.8" : "4.1.2",
                          "<%s>: %s rejected: Domain not found", addr, class);
        st->reply = reply;
        return SMTPD_CHECK_DUNNO;
    }
    return smtpd_check_reply(st, SMTPD_CHECK_UNK_ADDR_CODE,
                             sender ? "4.1.8" : "4.1.2",
                             "<%s>: %s rejected: Domain not found", addr,
                             class);
}

static int
smtpd_check_unknown_sender(struct smtpd_check_state *st, const char *arg,
                           const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unknown_domain(st, st->ctx->sender,
                                      SMTPD_CHECK_SENDER);
}

static int
smtpd_check_unknown_rcpt(struct smtpd_check_state *st, const char *arg,
                         const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unknown_domain(st, st->ctx->rcpt, SMTPD_CHECK_RCPT);
}

/* Parse one octet pattern of a DNSBL filter at *sp: "N", "[N..M]" or
 * "[N;M;...]" (ranges allowed in lists).  Sets *match to whether value
 * fits (value < 0: syntax check only).  Returns 0, or -1 on bad syntax. */
static int
smtpd_check_octet(const char **sp, int value, int *match)
{
    const char *s = *sp;
    int bracket = *s == '[';
    char *end;

    *match = 0;
    if (bracket)
        s++;
    for (;;) {
        long lo;
        long hi;

        if (!isdigit((unsigned char)*s))
            return -1;
        lo = hi = strtol(s, &end, 10);
        s = end;
        if (bracket && s[0] == '.' && s[1] == '.') {
            s += 2;
            if (!isdigit((unsigned char)*s))
                return -1;
            hi = strtol(s, &end, 10);
            s = end;
        }
        if (lo > 255 || hi > 255 || lo > hi)
            return -1;
        if (value >= lo && value <= hi)
            *match = 1;
        if (!bracket)
            break;
        if (*s == ']') {
            s++;
            break;
        }
        if (*s++ != ';')
            return -1;
    }
    *sp = s;
    return 0;
}

/* Match an A record's address text against a filter "d.d.d.d" whose
 * octets are smtpd_check_octet() patterns; addr NULL checks the syntax.
 * Returns 1 for a match, 0 for none, -1 for a bad filter. */
static int
smtpd_check_rbl_filter(const char *filter, const char *addr)
{
    unsigned char a[4] = {0, 0, 0, 0};
    int all = 1;
    int i;

    if (addr && inet_pton(AF_INET, addr, a) != 1)
        return 0;
    for (i = 0; i < 4; i++) {
        int m;

        if (smtpd_check_octet(&filter, addr ? a[i] : -1, &m) < 0)
            return -1;
        all = all && m;
        if (i < 3 && *filter++ != '.')
            return -1;
    }
    if (*filter != '\0')
        return -1;
    return all;
}

/* Split "zone=filter" into the zone (into zone, at most zlen bytes) and
 * the filter (NULL if none); returns 0, or -1 if the zone is too long. */
static int
smtpd_check_rbl_split(const char *arg, char *zone, size_t zlen,
                      const char **filter)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

    if (len >= zlen)
        return -1;
    memcpy(zone, arg, len);
    zone[len] = '\0';
    *filter = eq ? eq + 1 : NULL;
    return 0;
}

/* The DNSBL query name for the client: the address's octets (IPv4) or
 * nibbles (IPv6) in reverse, then the zone.  Returns 0, or -1 if the
 * client address is unknown. */
static int
smtpd_check_rbl_name(const struct smtpd_check_state *st, const char *zone,
                     buf_t *out)
{
    return dns_reverse_name(st->addr, zone, out);
}

/* reject_rbl_client ZONE[=FILTER]: the client's address is listed in
 * the DNSBL zone (RFC 5782) with an A record that fits the filter (any
 * address without one).  A lookup that fails counts as not listed, as
 * in Postfix: a DNSBL outage must not stop mail. */
static int
smtpd_check_rbl_client(struct smtpd_check_state *st, const char *arg,
                       const table_t *table)
{
    struct dns_rr *list = NULL;
    struct dns_rr *rr;
    const char *filter;
    char zone[256];
    char why[256];
    buf_t name;
    int listed = 0;
    int rc;

    (void)table;
    if (smtpd_check_rbl_split(arg, zone, sizeof(zone), &filter) < 0)
        return smtpd_check_config_error(st, "bad DNSBL zone %s", arg);
    buf_init(&name);
    if (smtpd_check_rbl_name(st, zone, &name) < 0) {
        buf_free(&name);
        return SMTPD_CHECK_DUNNO;
    }
    rc = dns_lookup(name.data, ns_t_a, &list, why, sizeof(why));
    if (rc == DNS_RETRY || rc == DNS_FAIL)
        msg_warn("reject_rbl_client: %s lookup failed, taken as not "
                 "listed: %s", zone, why);
    for (rr = list; rr && !listed; rr = rr->next)
        listed = filter == NULL || smtpd_check_rbl_filter(filter,
                                                          rr->data) == 1;
    dns_rr_free(&list);
    if (listed) {
        /* The zone's TXT record, when it has one, says why. */
        rc = dns_lookup(name.data, ns_t_txt, &list, why, sizeof(why));
        smtpd_check_reply(st, SMTPD_CHECK_RBL_CODE, "5.7.1",
                          "Service unavailable; %s [%s] blocked using "
                          "%s%s%s", SMTPD_CHECK_CLIENT, st->addr, zone,
                          rc == DNS_OK ? "; " : "",
                          rc == DNS_OK ? list->data : "");
        dns_rr_free(&list);
    }
    buf_free(&name);
    return listed ? SMTPD_CHECK_REJECT : SMTPD_CHECK_DUNNO;
}

/* Read an enhanced status code "c.s.d" at the start of *textp, followed
 * by white space or the end (RFC 3463 section 2); copies it into dsn
 * and moves *textp past it, or leaves both alone. */
static void
smtpd_check_text_dsn(const char **textp, char *dsn, size_t dsnlen)
{
    const char *s = *textp;
    size_t n;
    int part;

    if (*s != '2' && *s != '4' && *s != '5')
        return;
    for (n = 1, part = 0; part < 2; part++) {
        size_t digits = 0;

        if (s[n++] != '.')
            return;
        while (isdigit((unsigned char)s[n]) && digits < 3) {
            n++;
            digits++;
        }
        if (digits == 0)
            return;
    }
    if ((s[n] != '\0' && !isspace((unsigned char)s[n])) || n >= dsnlen)
        return;
    memcpy(dsn, s, n);
    dsn[n] = '\0';
    for (s += n; isspace((unsigned char)*s); s++)
        ;
    *textp = s;
}

/* A reject or defer from an access table: "code dsn <what>: class
 * rejected: text", with Postfix's generic text (dflt) when the table
 * gave none, and a status code from the text when it starts with one. */
static int
smtpd_check_table_reject(struct smtpd_check_state *st, int code,
                         const char *dflt_dsn, const char *text,
                         const char *dflt, const char *what,
                         const char *class)
{
    char dsn[16];

    snprintf(dsn, sizeof(dsn), "%s", dflt_dsn);
    smtpd_check_text_dsn(&text, dsn, sizeof(dsn));
    return smtpd_check_reply(st, code, dsn, "<%s>: %s rejected: %s", what,
                             class, *text ? text : dflt);
}

/* DEFER_IF_PERMIT and DEFER_IF_REJECT: keep the reply, as Postfix does
 * the first one of each kind, for smtpd_check_finish to use or not. */
static int
smtpd_check_defer_if(struct smtpd_check_state *st, buf_t *keep,
                     const char *text, const char *what, const char *class)
{
    buf_t *reply = st->reply;

    if (keep->len > 0)
        return SMTPD_CHECK_DUNNO;
    st->reply = keep;
    smtpd_check_table_reject(st, SMTPD_CHECK_MAP_DEFER, "4.7.1", text,
                             "Service unavailable", what, class);
    st->reply = reply;
    return SMTPD_CHECK_DUNNO;
}

/* Log an action's "whatsup" line with "<what>: class text", or "<what>:
 * class triggers ACTION action" when the table gave no text. */
static void
smtpd_check_log_action(const struct smtpd_check_state *st,
                       const char *whatsup, const char *action,
                       const char *text, const char *what, const char *class)
{
    char *line;

    if (*text)
        line = mem_printf("<%s>: %s %s", what, class, text);
    else
        line = mem_printf("<%s>: %s triggers %s action", what, class, action);
    smtpd_check_log(st->ctx, whatsup, "RCPT", line);
    free(line);
}

/* Nonzero if text holds a control character other than TAB: a CR that
 * reached a stored message could end a line for the next hop. */
static int
smtpd_check_has_ctl(const char *text)
{
    const unsigned char *p;

    for (p = (const unsigned char *)text; *p; p++)
        if ((*p < 32 && *p != '\t') || *p == 127)
            return 1;
    return 0;
}

/* Nonzero if text is a header, "Name: value" (RFC 5322 section 2.2),
 * the only thing PREPEND may add. */
static int
smtpd_check_is_header(const char *text)
{
    size_t n = 0;

    while (text[n] > 32 && text[n] < 127 && text[n] != ':')
        n++;
    return n > 0 && text[n] == ':' && !smtpd_check_has_ctl(text);
}

/* PREPEND header: the header goes on top of the message. */
static int
smtpd_check_prepend(struct smtpd_check_state *st, const char *source,
                    const char *text)
{
    buf_t *prepend = &st->acts->prepend;

    if (!smtpd_check_is_header(text))
        return smtpd_check_config_error(st, "%s: PREPEND needs a header "
                                        "(\"Name: value\"), not \"%s\"",
                                        source, text);
    if (prepend->len + strlen(text) + 1 > SMTPD_CHECK_PREPEND_MAX) {
        msg_warn("%s: PREPEND ignored: the message has %zu bytes of "
                 "prepended headers already", source, prepend->len);
        return SMTPD_CHECK_DUNNO;
    }
    buf_puts(prepend, text);
    buf_putc(prepend, '\n');
    return SMTPD_CHECK_DUNNO;
}

/* Evaluate a table's result as a list of restrictions, inside the
 * access restriction's what and class.  source names the table (or
 * the policy service) for the log. */
static int
smtpd_check_table_restrictions(struct smtpd_check_state *st,
                               const char *source, const char *value,
                               const char *what, const char *class)
{
    struct smtpd_check_state sub = *st;
    char *copy = mem_strdup(value);
    char **items = NULL;
    size_t n = 0;
    char *save = NULL;
    char *w;
    size_t i;
    int rc = SMTPD_CHECK_DUNNO;

    for (w = strtok_r(copy, ", \t\r\n", &save); w;
         w = strtok_r(NULL, ", \t\r\n", &save)) {
        items = mem_reallocarray(items, n + 1, sizeof(*items));
        items[n++] = w;
    }
    sub.what = what;
    sub.class = class;
    sub.depth = st->depth + 1;
    /* Refuse a result that is no restriction list before acting on any
     * part of it: a typo must not half-apply. */
    for (i = 0; i < n && rc == SMTPD_CHECK_DUNNO; i++) {
        const struct smtpd_check_def *def = smtpd_check_find(items[i]);

        if (def == NULL)
            rc = smtpd_check_config_error(st, "%s: unknown action \"%s\"",
                                          source, value);
        else if (def->arg != SMTPD_CHECK_ARG_NONE)
            i++;
    }
    if (rc == SMTPD_CHECK_DUNNO)
        rc = smtpd_check_list(&sub, items, NULL, n);
    free(items);
    free(copy);
    return rc;
}

/* REDIRECT, FILTER and BCC: keep text, the last one of the action's
 * kind, in *slot for the whole message and log it as whatsup.  text
 * must be one word without "<>" or controls, holding mark ('@' for an
 * address, ':' for transport:destination) unless mark is 0. */
static int
smtpd_check_target(struct smtpd_check_state *st, char **slot,
                   const char *action, const char *whatsup, char mark,
                   const char *source, const char *value, const char *text,
                   const char *what, const char *class)
{
    char *why;

    if (*text == '\0' || strpbrk(text, " \t<>") != NULL ||
        smtpd_check_has_ctl(text) || (mark && strchr(text, mark) == NULL))
        return smtpd_check_config_error(
            st, "%s: %s needs %s, not \"%s\"", source, action,
            mark == ':' ? "transport:destination" : "an address", value);
    mem_freep(slot);
    *slot = mem_strdup(text);
    why = mem_printf("triggers %s %s", action, text);
    smtpd_check_log_action(st, whatsup, action, why, what, class);
    free(why);
    return SMTPD_CHECK_DUNNO;
}

/* Act on an access table's (or a policy server's) result, as access(5)
 * describes. */
static int
smtpd_check_table_result(struct smtpd_check_state *st, const char *source,
                         const char *value, const char *what,
                         const char *class)
{
    size_t cmdlen = strcspn(value, " \t");
    const char *text = value + cmdlen;
    int permit = st->suspicious ? SMTPD_CHECK_DUNNO : SMTPD_CHECK_OK;

    while (isspace((unsigned char)*text))
        text++;
#define SMTPD_CHECK_IS(w) \
    (cmdlen == strlen(w) && strncasecmp(value, (w), cmdlen) == 0)
    if (SMTPD_CHECK_IS("OK") || SMTPD_CHECK_IS("RELAY") ||
        (cmdlen > 0 && value[strspn(value, "0123456789")] == '\0'))
        return permit;
    if (SMTPD_CHECK_IS("DUNNO"))
        return SMTPD_CHECK_DUNNO;
    if (SMTPD_CHECK_IS("REJECT"))
        return smtpd_check_table_reject(st, SMTPD_CHECK_MAP_REJECT, "5.7.1",
                                        text, "Access denied", what, class);
    if (SMTPD_CHECK_IS("DEFER"))
        return smtpd_check_table_reject(st, SMTPD_CHECK_MAP_DEFER, "4.7.1",
                                        text, "Access denied", what, class);
    if (cmdlen == 3 && (value[0] == '4' || value[0] == '5') &&
        isdigit((unsigned char)value[1]) && isdigit((unsigned char)value[2]))
        return smtpd_check_table_reject(st, atoi(value),
                                        value[0] == '4' ? "4.7.1" : "5.7.1",
                                        text, "Access denied", what, class);
    if (SMTPD_CHECK_IS("DEFER_IF_PERMIT"))
        return smtpd_check_defer_if(st, &st->acts->defer_if_permit, text,
                                    what, class);
    if (SMTPD_CHECK_IS("DEFER_IF_REJECT"))
        return smtpd_check_defer_if(st, &st->acts->defer_if_reject, text,
                                    what, class);
    if (SMTPD_CHECK_IS("WARN") || SMTPD_CHECK_IS("INFO")) {
        smtpd_check_log(st->ctx, SMTPD_CHECK_IS("WARN") ? "warn" : "info",
                        "RCPT", text);
        return SMTPD_CHECK_DUNNO;
    }
    if (SMTPD_CHECK_IS("HOLD")) {
        st->acts->hold = 1;
        smtpd_check_log_action(st, "hold", "HOLD", text, what, class);
        return SMTPD_CHECK_DUNNO;
    }
    if (SMTPD_CHECK_IS("DISCARD")) {
        /* As Postfix: said to be delivered, the whole message goes. */
        st->acts->discard = 1;
        smtpd_check_log_action(st, "discard", "DISCARD", text, what, class);
        return permit;
    }
    if (SMTPD_CHECK_IS("REDIRECT"))
        return smtpd_check_target(st, &st->acts->redirect, "REDIRECT",
                                  "redirect", 0, source, value, text, what,
                                  class);
    if (SMTPD_CHECK_IS("PREPEND"))
        return smtpd_check_prepend(st, source, text);
    if (SMTPD_CHECK_IS("FILTER"))
        return smtpd_check_target(st, &st->acts->filter, "FILTER", "filter",
                                  ':', source, value, text, what, class);
    if (SMTPD_CHECK_IS("BCC"))
        return smtpd_check_target(st, &st->acts->bcc, "BCC", "bcc", '@',
                                  source, value, text, what, class);
#undef SMTPD_CHECK_IS
    return smtpd_check_table_restrictions(st, source, value, what, class);
}

/* Look keys up in table in order; the first key found decides (even
 * with DUNNO, as Postfix stops at the first match).  Returns -1 if no
 * key was found, else the result. */
static int
smtpd_check_table_keys(struct smtpd_check_state *st, const table_t *table,
                       char *const *keys, size_t n, const char *what,
                       const char *class)
{
    buf_t value;
    size_t i;
    int rc = -1;

    buf_init(&value);
    for (i = 0; i < n && rc < 0; i++) {
        if (keys[i] == NULL)
            continue;
        buf_reset(&value);
        if (table_lookup_r(table, keys[i], &value) == 1) {
            char *source = mem_printf("table %s", table_name(table));

            rc = smtpd_check_table_result(st, source,
                                          value.data ? value.data : "",
                                          what, class);
            free(source);
        }
    }
    buf_free(&value);
    return rc;
}

/* A list of lookup keys, owned by the list. */
struct smtpd_check_keys {
    char *k[64];
    size_t n;
};

static void
smtpd_check_key_add(struct smtpd_check_keys *keys, char *k)
{
    if (keys->n < sizeof(keys->k) / sizeof(keys->k[0]))
        keys->k[keys->n++] = k;
    else
        free(k);
}

static void
smtpd_check_keys_free(struct smtpd_check_keys *keys)
{
    size_t i;

    for (i = 0; i < keys->n; i++)
        free(keys->k[i]);
    keys->n = 0;
}

/* Add domain, then (for tables that take parts of keys) its parent
 * domains: a.b.c, b.c, c. */
static void
smtpd_check_domain_keys(const table_t *table, const char *domain,
                        struct smtpd_check_keys *keys)
{
    const char *d = domain;
    size_t len = strlen(domain);

    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0)
        return;
    smtpd_check_key_add(keys, mem_strndup(d, len));
    if (table_is_pattern(table) || domain[0] == '[')
        return;
    while ((d = memchr(d, '.', len - (size_t)(d - domain))) != NULL) {
        d++;
        if ((size_t)(d - domain) < len)
            smtpd_check_key_add(keys, mem_strndup(d, len -
                                                  (size_t)(d - domain)));
    }
}

/* check_client_access: the client's name and its parent domains, then
 * its address and the networks made by dropping the last octets (IPv4)
 * or groups (IPv6), in Postfix's order. */
static int
smtpd_check_client_access(struct smtpd_check_state *st, const char *arg,
                          const table_t *table)
{
    const char *name = st->ctx->client_name;
    struct smtpd_check_keys keys;
    int rc;

    (void)arg;
    keys.n = 0;
    if (name && *name && strcasecmp(name, "unknown") != 0)
        smtpd_check_domain_keys(table, name, &keys);
    if (st->addr[0] != '\0') {
        char *a = mem_strdup(st->addr);
        char sep = strchr(a, ':') ? ':' : '.';
        char *cut;

        smtpd_check_key_add(&keys, mem_strdup(a));
        while (!table_is_pattern(table) && (cut = strrchr(a, sep)) &&
               cut != a) {
            *cut = '\0';
            if (cut[-1] != sep)
                smtpd_check_key_add(&keys, mem_strdup(a));
        }
        free(a);
    }
    rc = smtpd_check_table_keys(st, table, keys.k, keys.n, st->namaddr,
                                SMTPD_CHECK_CLIENT);
    smtpd_check_keys_free(&keys);
    return rc < 0 ? SMTPD_CHECK_DUNNO : rc;
}

static int
smtpd_check_helo_access(struct smtpd_check_state *st, const char *arg,
                        const table_t *table)
{
    struct smtpd_check_keys keys;
    int rc;

    (void)arg;
    if (st->ctx->helo == NULL || st->ctx->helo[0] == '\0')
        return SMTPD_CHECK_DUNNO;
    keys.n = 0;
    smtpd_check_domain_keys(table, st->ctx->helo, &keys);
    rc = smtpd_check_table_keys(st, table, keys.k, keys.n, st->ctx->helo,
                                SMTPD_CHECK_HELO);
    smtpd_check_keys_free(&keys);
    return rc < 0 ? SMTPD_CHECK_DUNNO : rc;
}

/* check_sender_access and check_recipient_access: as Postfix, the
 * whole address (user+ext@domain), user@domain, the domain and its
 * parents, user+ext@ and user@; pattern tables get the whole address
 * only.  The null sender is looked up as "<>". */
static int
smtpd_check_mail_access(struct smtpd_check_state *st, const table_t *table,
                        const char *addr, const char *class)
{
    const char *delim = config_str(st->ctx->cfg, P_RECIPIENT_DELIMITER);
    struct smtpd_check_keys keys;
    const char *at;
    char *local;
    char *base = NULL;
    int rc;

    if (addr == NULL)
        return SMTPD_CHECK_DUNNO;
    keys.n = 0;
    if (addr[0] == '\0') {
        smtpd_check_key_add(&keys, mem_strdup("<>"));
        rc = smtpd_check_table_keys(st, table, keys.k, keys.n, addr, class);
        smtpd_check_keys_free(&keys);
        return rc < 0 ? SMTPD_CHECK_DUNNO : rc;
    }
    at = strrchr(addr, '@');
    local = mem_strndup(addr, at ? (size_t)(at - addr) : strlen(addr));
    if (delim && *delim && local[0] != '\0' &&
        local[1 + strcspn(local + 1, delim)] != '\0')
        base = mem_strndup(local, 1 + strcspn(local + 1, delim));
    smtpd_check_key_add(&keys, mem_strdup(addr));
    if (!table_is_pattern(table)) {
        if (base && at)
            smtpd_check_key_add(&keys, mem_printf("%s%s", base, at));
        if (at)
            smtpd_check_domain_keys(table, at + 1, &keys);
        smtpd_check_key_add(&keys, mem_printf("%s@", local));
        if (base)
            smtpd_check_key_add(&keys, mem_printf("%s@", base));
    }
    rc = smtpd_check_table_keys(st, table, keys.k, keys.n, addr, class);
    smtpd_check_keys_free(&keys);
    free(local);
    free(base);
    return rc < 0 ? SMTPD_CHECK_DUNNO : rc;
}

static int
smtpd_check_sender_access(struct smtpd_check_state *st, const char *arg,
                          const table_t *table)
{
    (void)arg;
    return smtpd_check_mail_access(st, table, st->ctx->sender,
                                   SMTPD_CHECK_SENDER);
}

/* check_recipient_access: a routed recipient (user%other@ourdomain)
 * gets no OK from a table, as its real destination is elsewhere. */
static int
smtpd_check_rcpt_access(struct smtpd_check_state *st, const char *arg,
                        const table_t *table)
{
    int save = st->suspicious;
    int rc;

    (void)arg;
    if (st->ctx->rcpt == NULL)
        return SMTPD_CHECK_DUNNO;
    if (smtpd_check_routed(st->ctx->rcpt))
        st->suspicious = 1;
    rc = smtpd_check_mail_access(st, table, st->ctx->rcpt,
                                 SMTPD_CHECK_RCPT);
    st->suspicious = save;
    return rc;
}

/* The owners of sender in smtpd_sender_login_maps (the address, then
 * @domain): 1 with *owners set, 0 if it has none. */
static int
smtpd_check_sender_owners(const config_t *cfg, const char *sender,
                          const char **owners)
{
    return config_maps_lookup_addr(cfg, P_SMTPD_SENDER_LOGIN_MAPS, sender,
                                   owners);
}

/* Nonzero if login is one of the names in owners (commas or spaces). */
static int
smtpd_check_owned(const char *owners, const char *login)
{
    size_t want = strlen(login);

    while (*owners) {
        size_t n;

        owners += strspn(owners, ", \t");
        n = strcspn(owners, ", \t");
        if (n == want && strncasecmp(owners, login, n) == 0)
            return 1;
        owners += n;
    }
    return 0;
}

/* The four reject_*_sender_login_mismatch restrictions: authed says
 * what to demand of an authenticated client (0 nothing, 1 that it owns
 * a sender that has owners, 2 that it owns the sender at all), unauthed
 * whether an unauthenticated client may not use a sender with owners. */
static int
smtpd_check_login_mismatch(struct smtpd_check_state *st, int authed,
                           int unauthed)
{
    const char *sender = st->ctx->sender;
    const char *login = st->ctx->sasl_user;
    const char *owners = NULL;
    int has;

    if (sender == NULL || sender[0] == '\0')
        return SMTPD_CHECK_DUNNO;
    has = smtpd_check_sender_owners(st->ctx->cfg, sender, &owners);
    if (login != NULL && authed &&
        (has ? !smtpd_check_owned(owners, login) : authed == 2))
        return smtpd_check_reply(st, 553, "5.7.1",
                                 "<%s>: Sender address rejected: not owned "
                                 "by user %s",
                                 sender, login);
    if (login == NULL && unauthed && has)
        return smtpd_check_reply(st, 553, "5.7.1",
                                 "<%s>: Sender address rejected: not logged "
                                 "in",
                                 sender);
    return SMTPD_CHECK_DUNNO;
}

static int
smtpd_check_sender_login(struct smtpd_check_state *st, const char *arg,
                         const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_login_mismatch(st, 2, 1);
}

static int
smtpd_check_auth_sender_login(struct smtpd_check_state *st,
                              const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_login_mismatch(st, 2, 0);
}

static int
smtpd_check_known_sender_login(struct smtpd_check_state *st,
                               const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_login_mismatch(st, 1, 1);
}

static int
smtpd_check_unauth_sender_login(struct smtpd_check_state *st,
                                const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_login_mismatch(st, 0, 1);
}

/* The numeric address and the port of sa into addr and port, or "". */
static void
smtpd_check_sa_text(const struct sockaddr *sa, char *addr, size_t alen,
                    char *port, size_t plen)
{
    unsigned p = 0;

    addr[0] = port[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        p = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        p = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else
        return;
    addr_numeric(sa, addr, alen);
    snprintf(port, plen, "%u", p);
}

/* The attributes of SMTPD_POLICY_README, as Postfix 3.2 sends them;
 * what tern does not know goes out empty. */
static void
smtpd_check_policy_request(const struct smtpd_check_state *st, buf_t *req)
{
    const struct smtpd_check_ctx *c = st->ctx;
    const char *name = c->client_name && *c->client_name ? c->client_name
                                                         : "unknown";
    char caddr[64], cport[8], saddr[64], sport[8], num[32];

    smtpd_check_sa_text(c->client_sa, caddr, sizeof(caddr), cport,
                        sizeof(cport));
    smtpd_check_sa_text(c->server_sa, saddr, sizeof(saddr), sport,
                        sizeof(sport));
    smtpd_policy_attr(req, "request", "smtpd_access_policy");
    /* Every list is evaluated at RCPT, as with smtpd_delay_reject. */
    smtpd_policy_attr(req, "protocol_state", "RCPT");
    smtpd_policy_attr(req, "protocol_name", c->protocol ? c->protocol
                                                        : "SMTP");
    smtpd_policy_attr(req, "helo_name", c->helo);
    smtpd_policy_attr(req, "queue_id", c->queue_id);
    smtpd_policy_attr(req, "sender", c->sender);
    smtpd_policy_attr(req, "recipient", c->rcpt);
    /* Postfix counts the recipients only at DATA and after it. */
    smtpd_policy_attr(req, "recipient_count", "0");
    smtpd_policy_attr(req, "client_address", st->addr);
    smtpd_policy_attr(req, "client_name", name);
    smtpd_policy_attr(req, "reverse_client_name",
                      c->reverse_client_name && *c->reverse_client_name
                          ? c->reverse_client_name
                          : name);
    smtpd_policy_attr(req, "instance", c->instance);
    smtpd_policy_attr(req, "sasl_method", c->sasl_user ? c->sasl_method
                                                       : NULL);
    smtpd_policy_attr(req, "sasl_username", c->sasl_user);
    smtpd_policy_attr(req, "sasl_sender", NULL);
    snprintf(num, sizeof(num), "%lld", c->size);
    smtpd_policy_attr(req, "size", num);
    smtpd_policy_attr(req, "ccert_subject", NULL);
    smtpd_policy_attr(req, "ccert_issuer", NULL);
    smtpd_policy_attr(req, "ccert_fingerprint", NULL);
    smtpd_policy_attr(req, "ccert_pubkey_fingerprint", NULL);
    smtpd_policy_attr(req, "encryption_protocol", c->tls_protocol);
    smtpd_policy_attr(req, "encryption_cipher", c->tls_cipher);
    snprintf(num, sizeof(num), "%d", c->tls_protocol ? c->tls_bits : 0);
    smtpd_policy_attr(req, "encryption_keysize", num);
    smtpd_policy_attr(req, "etrn_domain", NULL);
    smtpd_policy_attr(req, "stress", NULL);
    smtpd_policy_attr(req, "client_port", cport);
    smtpd_policy_attr(req, "policy_context",
                      config_str(c->cfg,
                                 P_SMTPD_POLICY_SERVICE_POLICY_CONTEXT));
    smtpd_policy_attr(req, "server_address", saddr);
    smtpd_policy_attr(req, "server_port", sport);
}

/* check_policy_service SERVICE: ask the policy server and apply its
 * action as a table result, or smtpd_policy_service_default_action
 * when it gives none (server down, slow, or answering garbage). */
static int
smtpd_check_policy(struct smtpd_check_state *st, const char *arg,
                   const table_t *table)
{
    const config_t *cfg = st->ctx->cfg;
    const char *value = config_str(cfg, P_SMTPD_POLICY_SERVICE_DEFAULT_ACTION);
    char *source = mem_printf("policy service %s", arg);
    buf_t req;
    buf_t action;
    buf_t why;
    int rc;

    (void)table;
    buf_init(&req);
    buf_init(&action);
    buf_init(&why);
    if (st->ctx->policy == NULL) {
        msg_warn("check_policy_service %s: not queried, taking "
                 "smtpd_policy_service_default_action", arg);
    } else {
        smtpd_check_policy_request(st, &req);
        if (smtpd_policy_query(st->ctx->policy, cfg, arg, &req, &action,
                               &why) == 0)
            value = action.data;
    }
    rc = smtpd_check_table_result(st, source, value, st->what, st->class);
    buf_free(&req);
    buf_free(&action);
    buf_free(&why);
    free(source);
    return rc;
}

#define NONE SMTPD_CHECK_ARG_NONE
#define NOWAIT SMTPD_CHECK_NO_WAIT
/* reject_unknown_client_hostname: no name whose address records hold
 * the client's address; reject_unknown_reverse_client_hostname: no PTR
 * name at all.  A DNS failure for now always gets 450. */
static int
smtpd_check_unknown_client(struct smtpd_check_state *st, int reverse)
{
    const struct smtpd_check_ctx *c = st->ctx;
    const char *rev = c->reverse_client_name;
    int known = reverse ? rev != NULL && strcmp(rev, "unknown") != 0
                        : c->client_name_status == DNS_OK;

    if (known)
        return SMTPD_CHECK_DUNNO;
    return smtpd_check_reply(
        st, c->client_name_status == DNS_RETRY ? 450 : SMTPD_CHECK_UNK_CLIENT,
        "4.7.25", "Client host rejected: cannot find your %shostname, [%s]",
        reverse ? "reverse " : "", st->addr);
}

static int
smtpd_check_unknown_client_name(struct smtpd_check_state *st,
                                const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unknown_client(st, 0);
}

static int
smtpd_check_unknown_reverse_name(struct smtpd_check_state *st,
                                 const char *arg, const table_t *table)
{
    (void)arg;
    (void)table;
    return smtpd_check_unknown_client(st, 1);
}

static const struct smtpd_check_def smtpd_check_defs[] = {
    {"permit", NONE, NOWAIT, smtpd_check_permit},
    {"reject", NONE, NOWAIT, smtpd_check_reject_all},
    {"defer", NONE, NOWAIT, smtpd_check_defer_all},
    {"permit_mynetworks", NONE, NOWAIT, smtpd_check_permit_mynetworks},
    {"permit_sasl_authenticated", NONE, NOWAIT, smtpd_check_permit_sasl},
    {"permit_auth_destination", NONE, NOWAIT, smtpd_check_permit_auth_dest},
    {"reject_unauth_destination", NONE, NOWAIT,
     smtpd_check_reject_unauth_dest},
    {"defer_unauth_destination", NONE, NOWAIT,
     smtpd_check_defer_unauth_dest},
    {"reject_unknown_sender_domain", NONE, SMTPD_CHECK_WAIT_DNS,
     smtpd_check_unknown_sender},
    {"reject_unknown_recipient_domain", NONE, SMTPD_CHECK_WAIT_DNS,
     smtpd_check_unknown_rcpt},
    {"reject_non_fqdn_sender", NONE, NOWAIT, smtpd_check_non_fqdn_sender},
    {"reject_non_fqdn_recipient", NONE, NOWAIT, smtpd_check_non_fqdn_rcpt},
    {"reject_invalid_helo_hostname", NONE, NOWAIT, smtpd_check_invalid_helo},
    {"reject_non_fqdn_helo_hostname", NONE, NOWAIT,
     smtpd_check_non_fqdn_helo},
    {"check_client_access", SMTPD_CHECK_ARG_TABLE, NOWAIT,
     smtpd_check_client_access},
    {"check_helo_access", SMTPD_CHECK_ARG_TABLE, NOWAIT,
     smtpd_check_helo_access},
    {"check_sender_access", SMTPD_CHECK_ARG_TABLE, NOWAIT,
     smtpd_check_sender_access},
    {"check_recipient_access", SMTPD_CHECK_ARG_TABLE, NOWAIT,
     smtpd_check_rcpt_access},
    {"reject_rbl_client", SMTPD_CHECK_ARG_ZONE, SMTPD_CHECK_WAIT_DNS,
     smtpd_check_rbl_client},
    {"check_policy_service", SMTPD_CHECK_ARG_SERVICE,
     SMTPD_CHECK_WAIT_POLICY, smtpd_check_policy},
    {"reject_sender_login_mismatch", SMTPD_CHECK_ARG_NONE, NOWAIT,
     smtpd_check_sender_login},
    {"reject_unknown_client_hostname", SMTPD_CHECK_ARG_NONE, NOWAIT,
     smtpd_check_unknown_client_name},
    {"reject_unknown_reverse_client_hostname", SMTPD_CHECK_ARG_NONE, NOWAIT,
     smtpd_check_unknown_reverse_name},
    {"reject_authenticated_sender_login_mismatch", SMTPD_CHECK_ARG_NONE,
     NOWAIT, smtpd_check_auth_sender_login},
    {"reject_known_sender_login_mismatch", SMTPD_CHECK_ARG_NONE, NOWAIT,
     smtpd_check_known_sender_login},
    {"reject_unauthenticated_sender_login_mismatch", SMTPD_CHECK_ARG_NONE,
     NOWAIT, smtpd_check_unauth_sender_login},
};
#undef NONE
#undef NOWAIT

/* The restriction called name (case-insensitive, as in Postfix). */
static const struct smtpd_check_def *
smtpd_check_find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(smtpd_check_defs) / sizeof(smtpd_check_defs[0]);
         i++)
        if (strcasecmp(smtpd_check_defs[i].name, name) == 0)
            return &smtpd_check_defs[i];
    return NULL;
}

/* Evaluate items (with their tables, parallel to items, or NULL) until
 * one restriction decides. */
static int
smtpd_check_list(struct smtpd_check_state *st, char *const *items,
                 table_t *const *tables, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const struct smtpd_check_def *def = smtpd_check_find(items[i]);
        const table_t *table = NULL;
        const char *arg = NULL;
        int rc;

        if (def == NULL)
            return smtpd_check_config_error(st, "unknown restriction "
                                            "\"%s\"", items[i]);
        if (def->arg != SMTPD_CHECK_ARG_NONE) {
            if (i + 1 >= n)
                return smtpd_check_config_error(st, "%s without its "
                                                "argument", def->name);
            arg = items[++i];
            table = tables ? tables[i] : NULL;
        }
        if (st->depth > 0 && (def->wait != SMTPD_CHECK_NO_WAIT ||
                              def->arg == SMTPD_CHECK_ARG_TABLE))
            return smtpd_check_config_error(st, "%s may not be used in an "
                                            "access table's result",
                                            def->name);
        if (def->arg == SMTPD_CHECK_ARG_TABLE && table == NULL)
            return smtpd_check_config_error(st, "%s %s: table not open",
                                            def->name, arg);
        if ((rc = def->fn(st, arg, table)) != SMTPD_CHECK_DUNNO)
            return rc;
    }
    return SMTPD_CHECK_DUNNO;
}

int
smtpd_check(const struct smtpd_check_ctx *ctx, enum param_id list,
            buf_t *reply)
{
    struct smtpd_check_state st;
    struct smtpd_check_acts acts;
    char addr[64];
    size_t n;
    char *const *items = config_list(ctx->cfg, list, &n);
    const char *name = ctx->client_name && *ctx->client_name
                       ? ctx->client_name : "unknown";
    int rc;

    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    st.acts = ctx->acts;
    st.reply = reply;
    buf_reset(reply);
    if (ctx->client_addr) {
        st.addr = ctx->client_addr;
    } else if (ctx->client_sa) {
        addr_numeric(ctx->client_sa, addr, sizeof(addr));
        st.addr = addr;
    } else {
        st.addr = "";
    }
    snprintf(st.namaddr, sizeof(st.namaddr), "%s[%s]", name, st.addr);
    switch (list) {
    case P_SMTPD_CLIENT_RESTRICTIONS:
        st.what = st.namaddr;
        st.class = SMTPD_CHECK_CLIENT;
        break;
    case P_SMTPD_HELO_RESTRICTIONS:
        st.what = ctx->helo ? ctx->helo : "";
        st.class = SMTPD_CHECK_HELO;
        break;
    case P_SMTPD_SENDER_RESTRICTIONS:
        st.what = ctx->sender ? ctx->sender : "";
        st.class = SMTPD_CHECK_SENDER;
        break;
    case P_SMTPD_RELAY_RESTRICTIONS:
    case P_SMTPD_RECIPIENT_RESTRICTIONS:
        /* RFC 5321 section 4.5.1: <postmaster> must be accepted. */
        if (ctx->rcpt && strcasecmp(ctx->rcpt, "postmaster") == 0)
            return SMTPD_CHECK_DUNNO;
        st.what = ctx->rcpt ? ctx->rcpt : "";
        st.class = SMTPD_CHECK_RCPT;
        break;
    default:
        msg_panic("smtpd_check: %s is not a restriction list",
                  config_name(list));
    }
    if (items == NULL)
        return SMTPD_CHECK_DUNNO;
    if (ctx->acts)
        return smtpd_check_list(&st, items, config_tables(ctx->cfg, list),
                                n);
    /* Without the caller's acts, the deferrals end with this list. */
    smtpd_check_acts_init(&acts);
    st.acts = &acts;
    rc = smtpd_check_list(&st, items, config_tables(ctx->cfg, list), n);
    rc = smtpd_check_finish(&acts, rc, reply);
    smtpd_check_acts_free(&acts);
    return rc;
}

/* Nonzero if list holds a restriction that waits for what. */
static int
smtpd_check_waits(const config_t *cfg, enum param_id list,
                  enum smtpd_check_wait what)
{
    size_t n;
    char *const *items = config_list(cfg, list, &n);
    size_t i;

    for (i = 0; items && i < n; i++) {
        const struct smtpd_check_def *def = smtpd_check_find(items[i]);

        if (def == NULL)
            continue;
        if (def->wait == what)
            return 1;
        if (def->arg != SMTPD_CHECK_ARG_NONE)
            i++;
    }
    return 0;
}

int
smtpd_check_needs_dns(const config_t *cfg, enum param_id list)
{
    return smtpd_check_waits(cfg, list, SMTPD_CHECK_WAIT_DNS);
}

int
smtpd_check_needs_policy(const config_t *cfg, enum param_id list)
{
    return smtpd_check_waits(cfg, list, SMTPD_CHECK_WAIT_POLICY);
}

void
smtpd_check_acts_init(struct smtpd_check_acts *acts)
{
    memset(acts, 0, sizeof(*acts));
    buf_init(&acts->defer_if_permit);
    buf_init(&acts->defer_if_reject);
    buf_init(&acts->prepend);
}

void
smtpd_check_acts_free(struct smtpd_check_acts *acts)
{
    buf_free(&acts->defer_if_permit);
    buf_free(&acts->defer_if_reject);
    buf_free(&acts->prepend);
    mem_freep(&acts->redirect);
    mem_freep(&acts->filter);
    mem_freep(&acts->bcc);
    smtpd_check_acts_init(acts);
}

int
smtpd_check_finish(const struct smtpd_check_acts *acts, int rc,
                   buf_t *reply)
{
    const buf_t *use = NULL;

    if (rc == SMTPD_CHECK_REJECT && reply->len > 0 && reply->data[0] == '5')
        use = &acts->defer_if_reject;
    else if (rc != SMTPD_CHECK_REJECT)
        use = &acts->defer_if_permit;
    if (use == NULL || use->len == 0)
        return rc;
    buf_reset(reply);
    buf_append(reply, use->data, use->len);
    return SMTPD_CHECK_REJECT;
}

void
smtpd_check_acts_merge(struct smtpd_check_acts *dst,
                       struct smtpd_check_acts *src)
{
    if (dst->prepend.len + src->prepend.len > SMTPD_CHECK_PREPEND_MAX)
        msg_warn("PREPEND ignored: the message has %zu bytes of prepended "
                 "headers already", dst->prepend.len);
    else
        buf_append(&dst->prepend, src->prepend.data, src->prepend.len);
    buf_reset(&src->prepend);
    if (src->redirect) {
        mem_freep(&dst->redirect);
        dst->redirect = src->redirect;
        src->redirect = NULL;
    }
    if (src->filter) {
        mem_freep(&dst->filter);
        dst->filter = src->filter;
        src->filter = NULL;
    }
    if (src->bcc) {
        mem_freep(&dst->bcc);
        dst->bcc = src->bcc;
        src->bcc = NULL;
    }
    dst->hold |= src->hold;
    dst->discard |= src->discard;
}

void
smtpd_check_log(const struct smtpd_check_ctx *ctx, const char *whatsup,
                const char *verb, const char *text)
{
    const char *name = ctx->client_name && *ctx->client_name
                       ? ctx->client_name : "unknown";
    char addr[64];
    buf_t line;

    if (ctx->client_addr)
        snprintf(addr, sizeof(addr), "%s", ctx->client_addr);
    else if (ctx->client_sa)
        addr_numeric(ctx->client_sa, addr, sizeof(addr));
    else
        addr[0] = '\0';
    buf_init(&line);
    buf_printf(&line, "%s: %s: %s from ",
               ctx->queue_id && *ctx->queue_id ? ctx->queue_id : "NOQUEUE",
               whatsup, verb);
    buf_escape(&line, name, strlen(name));
    buf_printf(&line, "[%s]: ", addr);
    buf_escape(&line, text, strlen(text));
    buf_putc(&line, ';');
    if (ctx->sender) {
        buf_puts(&line, " from=<");
        buf_escape(&line, ctx->sender, strlen(ctx->sender));
        buf_puts(&line, ">");
    }
    if (ctx->rcpt) {
        buf_puts(&line, " to=<");
        buf_escape(&line, ctx->rcpt, strlen(ctx->rcpt));
        buf_puts(&line, ">");
    }
    buf_printf(&line, " proto=%s helo=<", ctx->protocol ? ctx->protocol
                                                       : "SMTP");
    if (ctx->helo)
        buf_escape(&line, ctx->helo, strlen(ctx->helo));
    buf_puts(&line, ">");
    msg_info("%s", line.data);
    buf_free(&line);
}

/* Check a DNSBL argument "zone[=filter]"; appends an error to err. */
static void
smtpd_check_validate_zone(const char *arg, buf_t *err)
{
    const char *filter;
    char zone[256];

    if (smtpd_check_rbl_split(arg, zone, sizeof(zone), &filter) < 0 ||
        !smtpd_check_valid_hostname(zone))
        buf_printf(err, "reject_rbl_client: \"%s\" is not a DNS zone\n",
                   arg);
    else if (filter && smtpd_check_rbl_filter(filter, NULL) < 0)
        buf_printf(err, "reject_rbl_client: bad reply filter \"%s\" (write "
                        "d.d.d.d, where each d is a number, [n..m] or "
                        "[n;m;...])\n", filter);
}

/* Nonzero if the list holds a restriction that refuses relaying. */
static int
smtpd_check_has_relay_control(const config_t *cfg, enum param_id id)
{
    static const char *const names[] = {"reject", "defer",
                                        "reject_unauth_destination",
                                        "defer_unauth_destination"};
    size_t n;
    char *const *items = config_list(cfg, id, &n);
    size_t i;
    size_t j;

    for (i = 0; items && i < n; i++)
        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++)
            if (strcasecmp(items[i], names[j]) == 0)
                return 1;
    return 0;
}

void
smtpd_check_validate(const config_t *cfg, enum param_id id, buf_t *err)
{
    size_t n;
    char *const *items = config_list(cfg, id, &n);
    const char *why;
    size_t i;
    size_t nrelay;

    for (i = 0; items && i < n; i++) {
        const struct smtpd_check_def *def = smtpd_check_find(items[i]);

        if (def == NULL) {
            buf_printf(err, "unknown restriction \"%s\"\n", items[i]);
            continue;
        }
        if (def->fn == smtpd_check_sender_login ||
            def->fn == smtpd_check_auth_sender_login ||
            def->fn == smtpd_check_known_sender_login ||
            def->fn == smtpd_check_unauth_sender_login) {
            if (config_tables(cfg, P_SMTPD_SENDER_LOGIN_MAPS)[0] == NULL)
                buf_printf(err, "%s needs smtpd_sender_login_maps\n",
                           def->name);
            continue;
        }
        if (def->arg == SMTPD_CHECK_ARG_NONE)
            continue;
        if (i + 1 >= n || smtpd_check_find(items[i + 1]) != NULL) {
            buf_printf(err, "%s needs %s after it\n", def->name,
                       def->arg == SMTPD_CHECK_ARG_TABLE  ? "a table"
                       : def->arg == SMTPD_CHECK_ARG_ZONE ? "a DNS zone"
                                                          : "a policy "
                                                            "service");
            continue;
        }
        i++;
        if (def->arg == SMTPD_CHECK_ARG_ZONE)
            smtpd_check_validate_zone(items[i], err);
        if (def->arg == SMTPD_CHECK_ARG_SERVICE &&
            smtpd_policy_service_valid(items[i], &why) < 0)
            buf_printf(err, "check_policy_service: \"%s\": %s\n", items[i],
                       why);
    }
    /* As Postfix: with no relay restrictions, the recipient list itself
     * must keep the server from relaying for anyone. */
    (void)config_list(cfg, P_SMTPD_RELAY_RESTRICTIONS, &nrelay);
    if (id == P_SMTPD_RECIPIENT_RESTRICTIONS && nrelay == 0 &&
        !smtpd_check_has_relay_control(cfg, id))
        buf_printf(err, "smtpd_relay_restrictions is empty, so this list "
                        "needs reject_unauth_destination (or reject, defer "
                        "or defer_unauth_destination) to keep the server "
                        "from relaying for anyone\n");
}

/* milter_default_action names one of the four actions. */
static void
smtpd_check_milter_action(const config_t *cfg, enum param_id id, buf_t *err)
{
    static const char *const actions[] = {"accept", "reject", "tempfail",
                                          "quarantine"};
    const char *v = config_str(cfg, id);
    size_t i;

    for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcasecmp(v, actions[i]) == 0)
            return;
    buf_printf(err, "\"%s\" is not accept, reject, tempfail or "
                    "quarantine\n",
               v);
}

void
smtpd_check_register(void)
{
    config_register_check(P_MILTER_DEFAULT_ACTION, smtpd_check_milter_action);
    config_register_check(P_SMTPD_CLIENT_RESTRICTIONS, smtpd_check_validate);
    config_register_check(P_SMTPD_HELO_RESTRICTIONS, smtpd_check_validate);
    config_register_check(P_SMTPD_SENDER_RESTRICTIONS, smtpd_check_validate);
    config_register_check(P_SMTPD_RELAY_RESTRICTIONS, smtpd_check_validate);
    config_register_check(P_SMTPD_RECIPIENT_RESTRICTIONS,
                          smtpd_check_validate);
}
