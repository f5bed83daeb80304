/* SPDX-License-Identifier: ISC */
/*
 * Tests of lib/dns against a private dnsmasq (t/dnsmasq.c) on a free
 * loopback port: MX ordering (random among equal preferences), the null
 * MX of RFC 7505, A, AAAA, TXT, PTR and CNAME answers, NXDOMAIN, names
 * with no data, servers that refuse or never answer, a DNSBL zone, and
 * lookups from several threads at once.  The program exits 77 (skipped)
 * only when dnsmasq can be neither installed nor started.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/dns.h"
#include "lib/log.h"
#include "t/dnsmasq.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static struct dnsmasq dm;

static const char *const records[] = {
    /* MX ordering: 5, then the two 10s in either order, then 20 */
    "--mx-host=order.test,mx20.order.test,20",
    "--mx-host=order.test,mx10a.order.test,10",
    "--mx-host=order.test,mx5.order.test,5",
    "--mx-host=order.test,mx10b.order.test,10",
    /* one host twice: it stays once, with the better preference */
    "--mx-host=dup.test,mx.dup.test,30",
    "--mx-host=dup.test,mx.dup.test,15",
    /* RFC 7505 null MX: preference 0, the root as exchange */
    "--dns-rr=nullmx.test,15,000000",
    /* a root target of another preference beside a real host */
    "--dns-rr=halfnull.test,15,000A00",
    "--mx-host=halfnull.test,mx.halfnull.test,20",
    "--host-record=host.test,192.0.2.1,2001:db8::1",
    "--host-record=v6only.test,2001:db8::2",
    "--cname=alias.test,host.test",
    "--txt-record=txt.test,v=spf1 -all,second string",
    /* a DNSBL zone listing 127.0.0.2, as the real ones test themselves */
    "--host-record=2.0.0.127.zen.test,127.0.0.2",
    "--txt-record=2.0.0.127.zen.test,Listed for testing",
    NULL,
};

/* The data fields of a list, joined with spaces. */
static void
join_data(const struct dns_rr *rr, char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    for (; rr; rr = rr->next)
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s",
                              n ? " " : "", rr->data);
}

struct lookup_case {
    const char *name;
    int type;
    int want_rc;
    const char *want_data; /* joined, for DNS_OK */
    const char *want_why;  /* a substring of why, for the others */
};

static void
test_lookups(void **state)
{
    static const struct lookup_case cases[] = {
        {"host.test", ns_t_a, DNS_OK, "192.0.2.1", NULL},
        {"host.test.", ns_t_a, DNS_OK, "192.0.2.1", NULL},
        {"HOST.test", ns_t_a, DNS_OK, "192.0.2.1", NULL},
        {"host.test", ns_t_aaaa, DNS_OK, "2001:db8::1", NULL},
        {"v6only.test", ns_t_aaaa, DNS_OK, "2001:db8::2", NULL},
        {"v6only.test", ns_t_a, DNS_NOTFOUND, NULL, "type=A: No data"},
        {"host.test", ns_t_mx, DNS_NOTFOUND, NULL, "No data"},
        {"alias.test", ns_t_a, DNS_OK, "192.0.2.1", NULL},
        {"txt.test", ns_t_txt, DNS_OK, "v=spf1 -allsecond string", NULL},
        {"1.2.0.192.in-addr.arpa", ns_t_ptr, DNS_OK, "host.test", NULL},
        {"2.0.0.127.zen.test", ns_t_a, DNS_OK, "127.0.0.2", NULL},
        {"2.0.0.127.zen.test", ns_t_txt, DNS_OK, "Listed for testing",
         NULL},
        {"3.0.0.127.zen.test", ns_t_a, DNS_NOTFOUND, NULL,
         "name=3.0.0.127.zen.test type=A: Host not found"},
        {"nonexistent.test", ns_t_mx, DNS_NOTFOUND, NULL, "Host not found"},
        /* outside .test dnsmasq has no server to ask and refuses; the
         * resolver tries the next server on REFUSED, and then reports a
         * temporary failure */
        {"example.invalid", ns_t_a, DNS_RETRY, NULL, "try again"},
        {"host.test", ns_t_ns, DNS_FAIL, NULL, "unsupported record type"},
        {"", ns_t_a, DNS_FAIL, NULL, "not a domain name"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct dns_rr *rr = (struct dns_rr *)1;
        char why[256];
        char data[512];
        int rc = dns_lookup(cases[i].name, cases[i].type, &rr, why,
                            sizeof(why));

        if (rc != cases[i].want_rc)
            fail_msg("%s %s: rc %d, wanted %d (%s)", cases[i].name,
                     dns_type_name(cases[i].type), rc, cases[i].want_rc,
                     why);
        if (rc != DNS_OK) {
            assert_null(rr);
            if (strstr(why, cases[i].want_why) == NULL)
                fail_msg("%s: why \"%s\", wanted \"%s\"", cases[i].name,
                         why, cases[i].want_why);
            continue;
        }
        join_data(rr, data, sizeof(data));
        assert_string_equal(data, cases[i].want_data);
        assert_int_equal(rr->type, cases[i].type);
        dns_rr_free(&rr);
        assert_null(rr);
    }
}

/* The owner of a CNAME'd answer is the canonical name. */
static void
test_cname_owner(void **state)
{
    struct dns_rr *rr;

    (void)state;
    assert_int_equal(dns_lookup("alias.test", ns_t_a, &rr, NULL, 0),
                     DNS_OK);
    assert_string_equal(rr->name, "host.test");
    assert_null(rr->next);
    dns_rr_free(&rr);
    assert_int_equal(dns_lookup("alias.test", ns_t_cname, &rr, NULL, 0),
                     DNS_OK);
    assert_string_equal(rr->name, "alias.test");
    assert_string_equal(rr->data, "host.test");
    dns_rr_free(&rr);
}

static void
test_mx_order(void **state)
{
    int seen_a_first = 0;
    int seen_b_first = 0;
    int i;

    (void)state;
    for (i = 0; i < 64; i++) {
        struct dns_rr *rr;
        char data[512];
        char why[256];

        assert_int_equal(dns_mx_hosts("order.test", &rr, why, sizeof(why)),
                         DNS_OK);
        join_data(rr, data, sizeof(data));
        if (strcmp(data, "mx5.order.test mx10a.order.test mx10b.order.test "
                         "mx20.order.test") == 0)
            seen_a_first++;
        else if (strcmp(data, "mx5.order.test mx10b.order.test "
                              "mx10a.order.test mx20.order.test") == 0)
            seen_b_first++;
        else
            fail_msg("bad order: %s", data);
        assert_int_equal(rr->pref, 5);
        assert_int_equal(rr->next->pref, 10);
        assert_int_equal(rr->next->next->next->pref, 20);
        assert_int_equal(rr->type, ns_t_mx);
        assert_string_equal(rr->name, "order.test");
        dns_rr_free(&rr);
    }
    /* 64 draws of a fair coin: each side at least once, but for 2^-63 */
    assert_true(seen_a_first > 0);
    assert_true(seen_b_first > 0);
}

static void
test_mx_special(void **state)
{
    struct dns_rr *rr = NULL;
    char why[256];

    (void)state;
    assert_int_equal(dns_mx_hosts("dup.test", &rr, why, sizeof(why)),
                     DNS_OK);
    assert_string_equal(rr->data, "mx.dup.test");
    assert_int_equal(rr->pref, 15);
    assert_null(rr->next);
    dns_rr_free(&rr);

    assert_int_equal(dns_mx_hosts("nullmx.test", &rr, why, sizeof(why)),
                     DNS_NULLMX);
    assert_null(rr);
    assert_string_equal(why, "Domain nullmx.test does not accept mail "
                             "(nullMX)");
    /* dns_lookup itself shows the record as it is */
    assert_int_equal(dns_lookup("nullmx.test", ns_t_mx, &rr, NULL, 0),
                     DNS_OK);
    assert_string_equal(rr->data, ".");
    assert_int_equal(rr->pref, 0);
    dns_rr_free(&rr);

    assert_int_equal(dns_mx_hosts("halfnull.test", &rr, why, sizeof(why)),
                     DNS_OK);
    assert_string_equal(rr->data, "mx.halfnull.test");
    assert_null(rr->next);
    dns_rr_free(&rr);

    assert_int_equal(dns_mx_hosts("host.test", &rr, why, sizeof(why)),
                     DNS_NOTFOUND);
    assert_int_equal(dns_mx_hosts("nonexistent.test", &rr, why,
                                  sizeof(why)), DNS_NOTFOUND);
    assert_null(rr);
}

/* Bind a loopback UDP socket on a free port; returns it, port in *port. */
static int
bind_udp(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Look host.test up at 127.0.0.1:port; returns the result code. */
static int
lookup_at(int port, char *why, size_t whylen)
{
    struct dns_rr *rr = (struct dns_rr *)1;
    char server[64];
    int rc;

    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    dns_set_server(server);
    rc = dns_lookup("host.test", ns_t_a, &rr, why, whylen);
    dns_set_server(dm.server);
    assert_null(rr);
    return rc;
}

/* No server on the port: refused at once, a temporary failure. */
static void
test_refused(void **state)
{
    struct dns_rr *rr;
    char why[256];
    int port;

    (void)state;
    close(bind_udp(&port));
    assert_int_equal(lookup_at(port, why, sizeof(why)), DNS_RETRY);
    assert_non_null(strstr(why, "try again"));
    assert_int_equal(dns_lookup("host.test", ns_t_a, &rr, NULL, 0), DNS_OK);
    dns_rr_free(&rr);
}

/* A server that never answers: a temporary failure within the short
 * timeouts (2 s a try, 2 tries), not the resolver's default 5 s x 2. */
static void
test_timeout(void **state)
{
    char why[256];
    time_t t0 = time(NULL);
    int port;
    int fd;

    (void)state;
    fd = bind_udp(&port);
    assert_int_equal(lookup_at(port, why, sizeof(why)), DNS_RETRY);
    close(fd);
    assert_true(time(NULL) - t0 <= 7);
    assert_non_null(strstr(why, "try again"));
}

/* Server strings that do not parse leave the system's servers in use;
 * forms that parse are accepted. */
static void
test_set_server(void **state)
{
    static const char *const bad[] = {"localhost:53", "[::1]:53", "::1",
                                      "127.0.0.1:", "127.0.0.1:0",
                                      "127.0.0.1:70000", "[127.0.0.1",
                                      "127.0.0.1:53x"};
    struct dns_rr *rr;
    char buf[64];
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++)
        dns_set_server(bad[i]);
    snprintf(buf, sizeof(buf), "[127.0.0.1]:%d", dm.port);
    dns_set_server(buf);
    assert_int_equal(dns_lookup("host.test", ns_t_a, &rr, NULL, 0), DNS_OK);
    dns_rr_free(&rr);
    dns_set_server(dm.server);
    dns_rr_free(NULL);
}

#define THREADS 8
#define ROUNDS 40

static void *
lookup_thread(void *p)
{
    int *failures = p;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        struct dns_rr *rr;
        char why[128];

        if (dns_mx_hosts("order.test", &rr, why, sizeof(why)) != DNS_OK ||
            strcmp(rr->data, "mx5.order.test") != 0)
            (*failures)++;
        dns_rr_free(&rr);
        if (dns_lookup("host.test", ns_t_aaaa, &rr, why, sizeof(why)) !=
                DNS_OK ||
            strcmp(rr->data, "2001:db8::1") != 0)
            (*failures)++;
        dns_rr_free(&rr);
        if (dns_lookup("nonexistent.test", ns_t_a, &rr, why, sizeof(why))
            != DNS_NOTFOUND)
            (*failures)++;
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t tid[THREADS];
    int failures[THREADS];
    int i;

    (void)state;
    for (i = 0; i < THREADS; i++) {
        failures[i] = 0;
        assert_int_equal(pthread_create(&tid[i], NULL, lookup_thread,
                                        &failures[i]), 0);
    }
    /* Setting the same server meanwhile must not disturb anyone. */
    for (i = 0; i < 100; i++)
        dns_set_server(dm.server);
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_cname_owner),
        cmocka_unit_test(test_mx_order),
        cmocka_unit_test(test_mx_special),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_set_server),
        cmocka_unit_test(test_threads),
    };
    const char *base = getenv("TMPDIR");
    int rc;

    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-dns-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (dnsmasq_start(&dm, tmpdir, records) < 0) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        printf("SKIP: dnsmasq cannot be installed or started\n");
        return 77;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    dnsmasq_stop(&dm);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
