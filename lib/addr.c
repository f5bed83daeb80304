/* SPDX-License-Identifier: ISC */
/*
 * addr: address helpers.  Nothing here allocates except where a
 * function says the caller frees the result.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/mem.h"

const char *
addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

char *
addr_localpart(const char *addr)
{
    const char *at = strrchr(addr, '@');
    size_t len = at ? (size_t)(at - addr) : strlen(addr);
    char *out = mem_alloc(len + 1);
    size_t i;
    size_t n = 0;

    if (len >= 2 && addr[0] == '"' && addr[len - 1] == '"') {
        for (i = 1; i + 1 < len; i++) {
            if (addr[i] == '\\' && i + 2 < len)
                i++;
            out[n++] = addr[i];
        }
    } else {
        memcpy(out, addr, len);
        n = len;
    }
    out[n] = '\0';
    return out;
}

char *
addr_mailbox_name(const char *addr, const char *delimiters)
{
    char *name = addr_localpart(addr);
    char *p;

    if (delimiters && *delimiters && name[0] != '\0') {
        size_t cut = strcspn(name + 1, delimiters) + 1;

        name[cut] = '\0';
    }
    for (p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '/' || c < 0x20 || c == 0x7f)
            break;
        *p = (char)tolower(c);
    }
    if (*p != '\0' || name[0] == '\0' || name[0] == '.') {
        mem_freep(&name);
        return NULL;
    }
    return name;
}

/* Parse "net/len" into family, 16 bytes of address and a prefix length. */
static int
addr_parse_network(const char *item, int *family, unsigned char *net,
                   int *bits)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *slash = strchr(item, '/');
    size_t hlen = slash ? (size_t)(slash - item) : strlen(item);
    const char *h = item;
    char *end;
    long b;

    if (hlen >= 2 && item[0] == '[' && item[hlen - 1] == ']') {
        h = item + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(net, 0, 16);
    if (inet_pton(AF_INET, host, net) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, host, net) == 1)
        *family = AF_INET6;
    else
        return -1;
    *bits = *family == AF_INET ? 32 : 128;
    if (slash) {
        b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || b < 0 || b > *bits)
            return -1;
        *bits = (int)b;
    }
    return 0;
}

static int
addr_prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8;
    int rest = bits % 8;

    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

int
addr_network_valid(const char *item)
{
    unsigned char net[16];
    int family;
    int bits;

    return addr_parse_network(item, &family, net, &bits) == 0;
}

int
addr_in_networks(const struct sockaddr *sa, char *const *items)
{
    unsigned char client[16];
    int family = sa->sa_family;

    memset(client, 0, sizeof(client));
    if (family == AF_INET) {
        memcpy(client, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        /* An IPv4 client on an IPv6 socket matches IPv4 networks. */
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(client, a6->s6_addr + 12, 4);
        } else {
            memcpy(client, a6->s6_addr, 16);
        }
    } else {
        return 0;
    }
    for (; items && *items; items++) {
        unsigned char net[16];
        int nfamily;
        int bits;

        if (addr_parse_network(*items, &nfamily, net, &bits) < 0)
            continue;
        if (nfamily == family && addr_prefix_match(client, net, bits))
            return 1;
    }
    return 0;
}

void
addr_numeric(const struct sockaddr *sa, char *out, size_t outlen)
{
    const void *src;

    if (sa->sa_family == AF_INET) {
        src = &((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            inet_ntop(AF_INET, a6->s6_addr + 12, out, (socklen_t)outlen);
            return;
        }
        src = a6;
    } else {
        snprintf(out, outlen, "unknown");
        return;
    }
    if (inet_ntop(sa->sa_family, src, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "unknown");
}
