/* SPDX-License-Identifier: ISC */
/*
 * resolve: recipient address to transport and next hop.
 *
 * A transport_maps result is "transport:nexthop"; either half may be
 * empty and then comes from the address class, so "example.com :[mx]"
 * keeps the default transport and ".example.com smtp:" keeps the
 * domain as next hop, as in Postfix's transport(5).  The lookups are
 * table reads from the immutable configuration, safe on any thread.
 * Nothing is written, so a crash leaves nothing behind.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/resolve.h"
#include "lib/addr.h"
#include "lib/mem.h"

/* Look key up in transport_maps; returns the value or NULL. */
static const char *
resolve_lookup(const config_t *cfg, const char *key)
{
    const char *v = NULL;

    if (config_maps_lookup(cfg, P_TRANSPORT_MAPS, key, &v) == 1)
        return v;
    return NULL;
}

/* The transport_maps entry for addr, or NULL. */
static const char *
resolve_transport_maps(const config_t *cfg, const char *addr,
                       const char *domain)
{
    table_t *const *t = config_tables(cfg, P_TRANSPORT_MAPS);
    const char *v;
    const char *p;
    char *key;

    if (t == NULL || t[0] == NULL)
        return NULL;
    if ((v = resolve_lookup(cfg, addr)) != NULL)
        return v;
    if (domain[0] == '\0')
        return resolve_lookup(cfg, "*");
    if ((v = resolve_lookup(cfg, domain)) != NULL)
        return v;
    for (p = strchr(domain, '.'); p; p = strchr(p + 1, '.')) {
        key = mem_printf("%s", p);
        v = resolve_lookup(cfg, key);
        free(key);
        if (v)
            return v;
    }
    return resolve_lookup(cfg, "*");
}

int
resolve_virtual_domain(const config_t *cfg, const char *domain)
{
    char *const *items = config_list(cfg, P_VIRTUAL_MAILBOX_DOMAINS, NULL);
    char *const *specs = config_list(cfg, P_VIRTUAL_MAILBOX_MAPS, NULL);
    table_t *const *tables = config_tables(cfg, P_VIRTUAL_MAILBOX_MAPS);
    size_t i;
    size_t j;

    if (domain[0] == '\0')
        return 0;
    for (i = 0; items && items[i]; i++) {
        const char *v;
        int is_table = strchr(items[i], ':') != NULL || items[i][0] == '/';

        if (!is_table) {
            if (strcasecmp(items[i], domain) == 0)
                return 1;
            continue;
        }
        /* A table in the list: virtual_mailbox_maps' own, opened at
         * load (the default list is just those tables). */
        for (j = 0; specs && specs[j] && tables && tables[j]; j++)
            if (strcmp(specs[j], items[i]) == 0 &&
                table_lookup(tables[j], domain, &v) == 1)
                return 1;
    }
    return 0;
}

/* Split "transport:nexthop" into the outputs; an empty half is left as
 * the caller set it. */
static void
resolve_split(const char *value, char *transport, size_t tlen,
              char *nexthop, size_t nlen)
{
    const char *colon = strchr(value, ':');
    size_t t = colon ? (size_t)(colon - value) : strlen(value);

    if (t > 0)
        snprintf(transport, tlen, "%.*s", (int)t, value);
    if (colon && colon[1] != '\0')
        snprintf(nexthop, nlen, "%s", colon + 1);
}

void
resolve_rcpt(const config_t *cfg, const char *addr, char *transport,
             size_t tlen, char *nexthop, size_t nlen)
{
    const char *domain = addr_domain(addr);
    const char *mapped = resolve_transport_maps(cfg, addr, domain);
    const char *relay = config_str(cfg, P_RELAYHOST);

    if (domain[0] == '\0' ||
        addr_domain_listed(domain, config_list(cfg, P_MYDESTINATION, NULL))) {
        snprintf(transport, tlen, "local");
        snprintf(nexthop, nlen, "%s", config_str(cfg, P_MYHOSTNAME));
        resolve_split(config_str(cfg, P_LOCAL_TRANSPORT), transport, tlen,
                      nexthop, nlen);
    } else if (resolve_virtual_domain(cfg, domain)) {
        snprintf(transport, tlen, "virtual");
        snprintf(nexthop, nlen, "%s", domain);
        resolve_split(config_str(cfg, P_VIRTUAL_TRANSPORT), transport, tlen,
                      nexthop, nlen);
    } else {
        snprintf(transport, tlen, "smtp");
        snprintf(nexthop, nlen, "%s", relay[0] ? relay : domain);
        resolve_split(config_str(cfg, P_DEFAULT_TRANSPORT), transport, tlen,
                      nexthop, nlen);
    }
    if (mapped)
        resolve_split(mapped, transport, tlen, nexthop, nlen);
}
