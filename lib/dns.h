/* SPDX-License-Identifier: ISC */
/*
 * dns: DNS lookups for the SMTP server's checks and for finding mail
 * exchangers, on the thread-safe resolver interface (res_ninit,
 * res_nquery), one resolver state per call.  Every function may be
 * called from many threads at once; each blocks for as long as its
 * queries take (a few seconds at most: 2 s per try, 2 tries per server),
 * so callers on an event loop run them on a worker thread.
 *
 * dns_set_server() can point every query at one nameserver instead of
 * those of /etc/resolv.conf (ternd's dns_server parameter, and the
 * tests' private dnsmasq).
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include "lib/buf.h"

#include <arpa/nameser.h>
#include <stddef.h>

/* Results of dns_lookup() and dns_mx_hosts(). */
enum {
    DNS_OK = 0,       /* records in *out */
    DNS_NOTFOUND = 1, /* the name does not exist, or has no such records */
    DNS_RETRY = 2,    /* a temporary failure: timeout, SERVFAIL */
    DNS_FAIL = 3,     /* a permanent failure: refused, malformed, ... */
    DNS_NULLMX = 4,   /* dns_mx_hosts: the domain accepts no mail
                       * (RFC 7505) */
};

/* One resource record of an answer. */
struct dns_rr {
    struct dns_rr *next;
    int type;            /* ns_t_mx, ns_t_a, ns_t_aaaa, ns_t_txt, ... */
    unsigned int ttl;
    unsigned int pref;   /* ns_t_mx: the preference; 0 for other types */
    char *name;          /* the owner name, without a trailing dot */
    char *data;          /* ns_t_mx: the exchange ("." for the root);
                          * ns_t_a, ns_t_aaaa: the address as text;
                          * ns_t_txt: the character-strings joined;
                          * ns_t_ptr, ns_t_cname: the target name */
};

/* Look up the records of one type (ns_t_mx, ns_t_a, ns_t_aaaa,
 * ns_t_txt; also ns_t_ptr and ns_t_cname) for name.  Returns DNS_OK and
 * sets *out to a list the caller frees with dns_rr_free, in answer
 * order; otherwise sets *out to NULL and, if why is not NULL, writes a
 * reason into why (at most whylen bytes, always terminated).  CNAMEs in
 * the answer are followed by the server and left out of the list. */
int dns_lookup(const char *name, int type, struct dns_rr **out, char *why,
               size_t whylen);

/* The mail exchangers of domain: its MX records sorted by preference,
 * those of equal preference in random order (RFC 5321 section 5.1),
 * duplicates and root targets left out.  Returns DNS_OK with the list in
 * *out (the caller frees it with dns_rr_free); DNS_NULLMX when the
 * domain publishes the null MX of RFC 7505 (a single MX of preference 0
 * for "."), or only root targets; DNS_NOTFOUND when it has no MX records,
 * in which case RFC 5321 section 5.1 makes the domain its own exchanger;
 * DNS_RETRY or DNS_FAIL as dns_lookup does. */
int dns_mx_hosts(const char *domain, struct dns_rr **out, char *why,
                 size_t whylen);

/*
 * The steps of the two lookups above that need no network, for tests
 * and fuzz targets.
 */

/* Take the records of one type out of a raw answer of len bytes (as
 * res_nquery returns it; bytes past 64 KiB are ignored), in answer
 * order; name is only for the reason.  Returns DNS_OK with the list in
 * *out (the caller frees it with dns_rr_free), DNS_NOTFOUND when the
 * answer holds no record of the type, or DNS_FAIL when the answer or one
 * of those records is malformed; otherwise *out is NULL and why says why,
 * as in dns_lookup. */
int dns_parse_answer(const unsigned char *answer, size_t len,
                     const char *name, int type, struct dns_rr **out,
                     char *why, size_t whylen);

/* Order the MX records of list (a non-empty list that dns_parse_answer
 * gave for ns_t_mx; this takes it over) as dns_mx_hosts does, with the
 * same results. */
int dns_mx_order(const char *domain, struct dns_rr *list,
                 struct dns_rr **out, char *why, size_t whylen);

/* The reverse name of the numeric address addr: its octets (IPv4,
 * also IPv4-mapped IPv6) or nibbles (IPv6) in reverse, then zone, or
 * the PTR zone (in-addr.arpa, ip6.arpa) when zone is NULL.  Appends it
 * to out and returns 0, or -1 if addr is not an address. */
int dns_reverse_name(const char *addr, const char *zone, buf_t *out);

/* The name of the client at the numeric address addr, as Postfix finds
 * it: a PTR record whose name has an address record (A or AAAA) equal
 * to addr.  Writes the PTR name (or "unknown") into rev, the verified
 * name (or "unknown") into name, both at most len bytes.  Returns
 * DNS_OK when the name is verified, DNS_RETRY when a lookup failed for
 * now, DNS_NOTFOUND otherwise. */
int dns_client_name(const char *addr, char *name, char *rev, size_t len);

/* Free a list of records and clear *rrp; accepts NULL and *rrp == NULL. */
void dns_rr_free(struct dns_rr **rrp);

/* Send every later query to hostport ("127.0.0.1:5353", "[127.0.0.1]:53",
 * "127.0.0.1"; port 53 if none), or back to the system's nameservers for
 * NULL or "".  Process-wide; queries already running keep their server.
 * An address that does not parse (IPv6 included, which the resolver
 * state cannot hold without glibc's private fields) is logged with
 * msg_warn and the system's nameservers are used.  Returns nothing. */
void dns_set_server(const char *hostport);

/* The name of a record type ("MX", "A", ...) for messages. */
const char *dns_type_name(int type);

#endif
