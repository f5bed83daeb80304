/* SPDX-License-Identifier: ISC */
/*
 * fuzz_addr: a string as an envelope address and as a network item,
 * through lib/addr.  The mailbox name is what local delivery turns into
 * a file name, so what it returns is held to its promise: never empty,
 * never starting with a dot, no slash, no control character, folded to
 * lower case and cut at the first delimiter.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "t/fuzz/fuzz.h"

static struct sockaddr_in fuzz_v4;
static struct sockaddr_in6 fuzz_v6;
static struct sockaddr_in6 fuzz_mapped;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    fuzz_v4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &fuzz_v4.sin_addr);
    fuzz_v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &fuzz_v6.sin6_addr);
    fuzz_mapped.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &fuzz_mapped.sin6_addr);
    return 0;
}

static void
fuzz_mailbox(const char *addr, const char *delimiters)
{
    char *name = addr_mailbox_name(addr, delimiters);
    const char *p;

    if (name == NULL)
        return;
    FUZZ_CHECK(name[0] != '\0' && name[0] != '.');
    for (p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;

        FUZZ_CHECK(c != '/' && c >= 0x20 && c != 0x7f);
        FUZZ_CHECK(!isupper(c));
    }
    if (delimiters && *delimiters)
        FUZZ_CHECK(strpbrk(name + 1, delimiters) == NULL);
    free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    char *items[2] = {s, NULL};
    const char *domain;
    char *local;
    char out[64];

    domain = addr_domain(s);
    FUZZ_CHECK(domain[0] == '\0' ||
               (domain > s && domain <= s + strlen(s) && domain[-1] == '@'));
    FUZZ_CHECK(strchr(domain, '@') == NULL);
    local = addr_localpart(s);
    FUZZ_CHECK(strlen(local) <= strlen(s));
    free(local);
    fuzz_mailbox(s, NULL);
    fuzz_mailbox(s, "+");
    fuzz_mailbox(s, "+-");

    if (addr_network_valid(s)) {
        (void)addr_in_networks((const struct sockaddr *)&fuzz_v4, items);
        (void)addr_in_networks((const struct sockaddr *)&fuzz_v6, items);
        (void)addr_in_networks((const struct sockaddr *)&fuzz_mapped, items);
    } else {
        /* An item that does not parse never matches. */
        FUZZ_CHECK(!addr_in_networks((const struct sockaddr *)&fuzz_v4,
                                     items));
        FUZZ_CHECK(!addr_in_networks((const struct sockaddr *)&fuzz_v6,
                                     items));
    }
    addr_numeric((const struct sockaddr *)&fuzz_mapped, out, sizeof(out));
    FUZZ_CHECK(strcmp(out, "127.0.0.1") == 0);
    free(s);
    return 0;
}
