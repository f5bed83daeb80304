/* SPDX-License-Identifier: ISC */
/*
 * fuzz_dns: bytes as a nameserver might answer them, through
 * dns_parse_answer once for each record type tern asks for, and an MX
 * answer's records through dns_mx_order.  An answer either fails or
 * finds nothing with a reason, or gives records of the type asked for
 * with an owner name and data of the promised shape (an address that
 * parses back, a name); the exchangers that dns_mx_order keeps are in
 * preference order, none is the root and none repeats, and it reports
 * a null MX exactly when nothing but the root is left.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dns.h"
#include "t/fuzz/fuzz.h"

#define FUZZ_NAME "fuzz.example"

static const int fuzz_types[] = {
    ns_t_mx, ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_ptr, ns_t_cname,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

/* What must hold of one record that dns_parse_answer gave. */
static void
fuzz_check_rr(const struct dns_rr *rr, int type)
{
    unsigned char addr[16];
    size_t nlen;

    FUZZ_CHECK(rr->type == type);
    FUZZ_CHECK(rr->name != NULL && rr->data != NULL);
    nlen = strlen(rr->name);
    FUZZ_CHECK(nlen > 0 && nlen < NS_MAXDNAME);
    FUZZ_CHECK(strcmp(rr->name, ".") == 0 || rr->name[nlen - 1] != '.');
    if (type != ns_t_mx)
        FUZZ_CHECK(rr->pref == 0);
    switch (type) {
    case ns_t_a:
        FUZZ_CHECK(inet_pton(AF_INET, rr->data, addr) == 1);
        break;
    case ns_t_aaaa:
        FUZZ_CHECK(inet_pton(AF_INET6, rr->data, addr) == 1);
        break;
    case ns_t_txt:
        break;
    default:
        FUZZ_CHECK(rr->data[0] != '\0' && strlen(rr->data) < NS_MAXDNAME);
        break;
    }
}

/* dns_mx_order on the MX records of an answer (it takes the list). */
static void
fuzz_mx_order(struct dns_rr *list)
{
    struct dns_rr *out = NULL;
    const struct dns_rr *rr;
    const struct dns_rr *q;
    char why[256];
    int only_root = 1;
    int null_mx;
    size_t n = 0;
    int rc;

    for (rr = list; rr; rr = rr->next, n++)
        if (strcmp(rr->data, ".") != 0)
            only_root = 0;
    null_mx = n == 1 && list->pref == 0 && strcmp(list->data, ".") == 0;
    why[0] = '\0';
    rc = dns_mx_order(FUZZ_NAME, list, &out, why, sizeof(why));
    if (null_mx || only_root) {
        FUZZ_CHECK(rc == DNS_NULLMX && out == NULL && why[0] != '\0');
        return;
    }
    FUZZ_CHECK(rc == DNS_OK && out != NULL);
    for (rr = out; rr; rr = rr->next, n--) {
        FUZZ_CHECK(n > 0);
        FUZZ_CHECK(strcmp(rr->data, ".") != 0);
        FUZZ_CHECK(rr->next == NULL || rr->pref <= rr->next->pref);
        for (q = out; q != rr; q = q->next)
            FUZZ_CHECK(strcasecmp(q->data, rr->data) != 0);
    }
    dns_rr_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;

    for (i = 0; i < sizeof(fuzz_types) / sizeof(fuzz_types[0]); i++) {
        int type = fuzz_types[i];
        struct dns_rr *list = NULL;
        const struct dns_rr *rr;
        char why[256];
        int rc;

        why[0] = '\0';
        rc = dns_parse_answer(data, size, FUZZ_NAME, type, &list, why,
                              sizeof(why));
        FUZZ_CHECK(rc == DNS_OK || rc == DNS_NOTFOUND || rc == DNS_FAIL);
        FUZZ_CHECK((rc == DNS_OK) == (list != NULL));
        (void)dns_type_name(type);
        if (rc != DNS_OK) {
            FUZZ_CHECK(why[0] != '\0');
            continue;
        }
        for (rr = list; rr; rr = rr->next)
            fuzz_check_rr(rr, type);
        if (type == ns_t_mx)
            fuzz_mx_order(list);
        else
            dns_rr_free(&list);
    }
    return 0;
}
