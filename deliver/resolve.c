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

const char *
resolve_relocated(const config_t *cfg, const char *addr)
{
    table_t *const *t = config_tables(cfg, P_RELOCATED_MAPS);
    const char *domain = addr_domain(addr);
    const char *v = NULL;
    char *key;

    if (t == NULL || t[0] == NULL)
        return NULL;
    if (config_maps_lookup(cfg, P_RELOCATED_MAPS, addr, &v))
        return v;
    if (resolve_class(cfg, domain) == RESOLVE_LOCAL) {
        key = addr_localpart(addr);
        if (!config_maps_lookup(cfg, P_RELOCATED_MAPS, key, &v))
            v = NULL;
        free(key);
        if (v != NULL)
            return v;
    }
    /* A domain follows an "@", so domain - 1 is "@domain". */
    if (domain[0] == '\0' ||
        !config_maps_lookup(cfg, P_RELOCATED_MAPS, domain - 1, &v))
        return NULL;
    return v;
}

enum resolve_class
resolve_class(const config_t *cfg, const char *domain)
{
    if (domain[0] == '\0' || config_domain_listed(cfg, P_MYDESTINATION, domain))
        return RESOLVE_LOCAL;
    if (config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS, domain))
        return RESOLVE_VIRTUAL_ALIAS;
    if (config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS, domain))
        return RESOLVE_VIRTUAL_MAILBOX;
    if (config_domain_listed(cfg, P_RELAY_DOMAINS, domain))
        return RESOLVE_RELAY;
    return RESOLVE_DEFAULT;
}

const char *
resolve_class_name(enum resolve_class c)
{
    static const char *const names[] = {"local", "virtual alias",
                                        "virtual mailbox", "relay",
                                        "default"};

    return names[c];
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

/* The relay host for mail from sender: its entry in
 * sender_dependent_relayhost_maps, else relayhost. */
static const char *
resolve_relayhost(const config_t *cfg, const char *sender)
{
    const char *v = NULL;
    int found;

    if (sender == NULL ||
        config_tables(cfg, P_SENDER_DEPENDENT_RELAYHOST_MAPS)[0] == NULL)
        return config_str(cfg, P_RELAYHOST);
    if (sender[0] == '\0')
        found = config_maps_lookup(
            cfg, P_SENDER_DEPENDENT_RELAYHOST_MAPS,
            config_str(cfg, P_EMPTY_ADDRESS_RELAYHOST_MAPS_LOOKUP_KEY), &v);
    else
        found = config_maps_lookup_addr(
            cfg, P_SENDER_DEPENDENT_RELAYHOST_MAPS, sender, &v);
    if (!found || strcasecmp(v, "DUNNO") == 0)
        return config_str(cfg, P_RELAYHOST);
    return v;
}

void
resolve_rcpt(const config_t *cfg, const char *sender, const char *addr,
             char *transport, size_t tlen, char *nexthop, size_t nlen)
{
    const char *domain = addr_domain(addr);
    const char *mapped = resolve_transport_maps(cfg, addr, domain);
    const char *relay = resolve_relayhost(cfg, sender);
    const char *moved = resolve_relocated(cfg, addr);

    if (moved != NULL) {
        snprintf(transport, tlen, "error");
        snprintf(nexthop, nlen, "5.1.6 User has moved to %s", moved);
        return;
    }

    switch (resolve_class(cfg, domain)) {
    case RESOLVE_LOCAL:
        snprintf(transport, tlen, "local");
        snprintf(nexthop, nlen, "%s", config_str(cfg, P_MYHOSTNAME));
        resolve_split(config_str(cfg, P_LOCAL_TRANSPORT), transport, tlen,
                      nexthop, nlen);
        break;
    case RESOLVE_VIRTUAL_ALIAS:
        /* Postfix's virtual_alias_address_class default. */
        snprintf(transport, tlen, "error");
        snprintf(nexthop, nlen, "5.1.1 User unknown in virtual alias table");
        break;
    case RESOLVE_VIRTUAL_MAILBOX:
        snprintf(transport, tlen, "virtual");
        snprintf(nexthop, nlen, "%s", domain);
        resolve_split(config_str(cfg, P_VIRTUAL_TRANSPORT), transport, tlen,
                      nexthop, nlen);
        break;
    case RESOLVE_RELAY:
        snprintf(transport, tlen, "relay");
        snprintf(nexthop, nlen, "%s", relay[0] ? relay : domain);
        resolve_split(config_str(cfg, P_RELAY_TRANSPORT), transport, tlen,
                      nexthop, nlen);
        break;
    default:
        snprintf(transport, tlen, "smtp");
        snprintf(nexthop, nlen, "%s", relay[0] ? relay : domain);
        resolve_split(config_str(cfg, P_DEFAULT_TRANSPORT), transport, tlen,
                      nexthop, nlen);
        break;
    }
    if (mapped)
        resolve_split(mapped, transport, tlen, nexthop, nlen);
}
