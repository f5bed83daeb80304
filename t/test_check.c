/* SPDX-License-Identifier: ISC */
/*
 * Tests of server/smtpd_check: main.cf files and access tables written
 * to a scratch directory, loaded with config_load as ternd loads them,
 * then tables of session contexts and the result and reply line that
 * each list must give.  Restriction names that config_load must refuse
 * are a table of their own.  The DNS restrictions (reject_rbl_client,
 * reject_unknown_*_domain) run against a private dnsmasq (t/dnsmasq.c);
 * they are skipped, and only they, when dnsmasq cannot be started.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "server/smtpd_check.h"
#include "server/smtpd_rate.h"
#include "t/dnsmasq.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define CL P_SMTPD_CLIENT_RESTRICTIONS
#define HE P_SMTPD_HELO_RESTRICTIONS
#define SE P_SMTPD_SENDER_RESTRICTIONS
#define RL P_SMTPD_RELAY_RESTRICTIONS
#define RC P_SMTPD_RECIPIENT_RESTRICTIONS

#define DUNNO SMTPD_CHECK_DUNNO
#define OK SMTPD_CHECK_OK
#define REJ SMTPD_CHECK_REJECT

static char tmpdir[PATH_MAX / 2];
static char logpath[PATH_MAX];
static struct dnsmasq dm;
static int have_dns;

/* A copy of text with every "%D" replaced by the scratch directory;
 * the caller frees it. */
static char *
with_dir(const char *text)
{
    buf_t b;
    const char *p;

    buf_init(&b);
    while ((p = strstr(text, "%D")) != NULL) {
        buf_append(&b, text, (size_t)(p - text));
        buf_puts(&b, tmpdir);
        text = p + 2;
    }
    buf_puts(&b, text);
    return buf_steal(&b);
}

/* Write text (with %D expanded) to the scratch file name. */
static void
write_named(const char *name, const char *text)
{
    char path[PATH_MAX];
    char *body = with_dir(text);
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(body, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    free(body);
}

/* Load a main.cf holding text; err gets the errors.  Returns the config
 * or NULL. */
static config_t *
load_cf(const char *text, buf_t *err)
{
    char path[PATH_MAX];

    write_named("main.cf", text);
    snprintf(path, sizeof(path), "%s/main.cf", tmpdir);
    return config_load(path, NULL, 0, err);
}

/* Load text, failing the test on errors. */
static config_t *
load_ok(const char *text)
{
    buf_t err;
    config_t *cfg;

    buf_init(&err);
    cfg = load_cf(text, &err);
    if (cfg == NULL)
        fail_msg("config_load: %s", err.data ? err.data : "?");
    buf_free(&err);
    return cfg;
}

struct check_case {
    enum param_id list;
    const char *addr;
    const char *name;
    const char *helo;
    const char *sender;
    const char *rcpt;
    const char *sasl;
    int mynet;
    int want;
    const char *reply; /* for REJ */
};

static void
run_cases(const config_t *cfg, const struct check_case *c, size_t n)
{
    size_t i;
    buf_t reply;

    buf_init(&reply);
    for (i = 0; i < n; i++) {
        struct smtpd_check_ctx ctx;
        int rc;

        memset(&ctx, 0, sizeof(ctx));
        ctx.cfg = cfg;
        ctx.client_addr = c[i].addr ? c[i].addr : "198.51.100.7";
        ctx.client_name = c[i].name;
        ctx.helo = c[i].helo;
        ctx.sender = c[i].sender;
        ctx.rcpt = c[i].rcpt;
        ctx.sasl_user = c[i].sasl;
        ctx.in_mynetworks = c[i].mynet;
        buf_puts(&reply, "stale");
        rc = smtpd_check(&ctx, c[i].list, &reply);
        if (rc != c[i].want)
            fail_msg("case %zu (%s): result %d, wanted %d; reply \"%s\"", i,
                     config_name(c[i].list), rc, c[i].want,
                     reply.data ? reply.data : "");
        if (rc == REJ && strcmp(reply.data, c[i].reply) != 0)
            fail_msg("case %zu: reply\n  \"%s\", wanted\n  \"%s\"", i,
                     reply.data, c[i].reply);
        if (rc != REJ)
            assert_int_equal(reply.len, 0);
    }
    buf_free(&reply);
}

static void
test_relay(void **state)
{
    static const struct check_case cases[] = {
        {RL, NULL, NULL, NULL, "a@x.example", "bob@example.com", NULL, 0,
         DUNNO, NULL},
        {RL, NULL, NULL, NULL, "a@x.example", "bob@EXAMPLE.COM", NULL, 0,
         DUNNO, NULL},
        {RL, NULL, NULL, NULL, "a@x.example", "bob@example.com.", NULL, 0,
         DUNNO, NULL},
        {RL, NULL, NULL, NULL, "a@x.example", "bob@other.org", NULL, 0, REJ,
         "554 5.7.1 <bob@other.org>: Relay access denied"},
        {RL, NULL, NULL, NULL, "a@x.example", "bob@other.org", NULL, 1, OK,
         NULL},
        {RL, NULL, NULL, NULL, "a@x.example", "bob@other.org", "alice", 0,
         OK, NULL},
        /* routes in the local part of a local domain are relay attempts */
        {RL, NULL, NULL, NULL, "a@x.example", "bob%other.org@example.com",
         NULL, 0, REJ,
         "554 5.7.1 <bob%other.org@example.com>: Relay access denied"},
        {RL, NULL, NULL, NULL, "a@x.example", "other.org!bob@example.com",
         NULL, 0, REJ,
         "554 5.7.1 <other.org!bob@example.com>: Relay access denied"},
        {RL, NULL, NULL, NULL, "a@x.example", "\"bob@other.org\"@example.com",
         NULL, 0, REJ, "554 5.7.1 <\"bob@other.org\"@example.com>: Relay "
                       "access denied"},
        {RL, NULL, NULL, NULL, "a@x.example", "bob%other.org", NULL, 0, REJ,
         "554 5.7.1 <bob%other.org>: Relay access denied"},
        /* but our own clients may still send them on */
        {RL, NULL, NULL, NULL, "a@x.example", "bob%other.org@example.com",
         NULL, 1, OK, NULL},
        /* RFC 5321 section 4.5.1 */
        {RL, NULL, NULL, NULL, "a@x.example", "postmaster", NULL, 0, DUNNO,
         NULL},
        {RL, NULL, NULL, NULL, "a@x.example", "Postmaster", NULL, 0, DUNNO,
         NULL},
        /* no recipient yet: the restriction has nothing to look at */
        {RL, NULL, NULL, NULL, "a@x.example", NULL, NULL, 0, DUNNO, NULL},
        {RC, NULL, NULL, NULL, "a@x.example", "bob@other.org", NULL, 0, REJ,
         "450 4.7.1 <bob@other.org>: Relay access denied"},
        {RC, NULL, NULL, NULL, "a@x.example", "bob@example.com", NULL, 0,
         DUNNO, NULL},
        {CL, NULL, NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
    };
    config_t *cfg = load_ok("mydestination = example.com, localhost\n"
                            "smtpd_recipient_restrictions = "
                            "defer_unauth_destination\n");

    (void)state;
    run_cases(cfg, cases, N(cases));
    assert_false(smtpd_check_needs_dns(cfg, RL));
    config_unref(&cfg);
}

static void
test_plain(void **state)
{
    static const struct check_case cases[] = {
        {CL, "192.0.2.1", "mail.example.net", NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <mail.example.net[192.0.2.1]>: Client host rejected: "
         "Access denied"},
        {CL, "192.0.2.1", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access "
         "denied"},
        {CL, "192.0.2.1", NULL, NULL, NULL, NULL, NULL, 1, OK, NULL},
        {HE, NULL, NULL, "helo.example", NULL, NULL, NULL, 0, REJ,
         "450 4.7.1 <helo.example>: Helo command rejected: Access denied"},
        {HE, NULL, NULL, "helo.example", NULL, NULL, "u", 0, OK, NULL},
        {SE, NULL, NULL, NULL, "s@x.example", NULL, NULL, 0, REJ,
         "554 5.7.1 <s@x.example>: Sender address rejected: Access denied"},
        {SE, NULL, NULL, NULL, "", NULL, NULL, 0, REJ,
         "554 5.7.1 <>: Sender address rejected: Access denied"},
        {RC, NULL, NULL, NULL, "s@x.example", "r@example.com", NULL, 0, OK,
         NULL},
        {RC, NULL, NULL, NULL, "s@x.example", "r@y.example", NULL, 0, DUNNO,
         NULL},
        /* the relay list is left at its default */
        {RL, NULL, NULL, NULL, "s@x.example", "r@y.example", NULL, 0, REJ,
         "554 5.7.1 <r@y.example>: Relay access denied"},
    };
    config_t *cfg = load_ok(
        "mydestination = example.com\n"
        "smtpd_client_restrictions = permit_mynetworks, reject\n"
        "smtpd_helo_restrictions = PERMIT_SASL_AUTHENTICATED defer\n"
        "smtpd_sender_restrictions = reject, permit\n"
        "smtpd_recipient_restrictions = permit_auth_destination\n");

    (void)state;
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

static void
test_client_access(void **state)
{
    static const struct check_case cases[] = {
        {CL, "192.0.2.1", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access "
         "denied"},
        /* the network 192.0.2 */
        {CL, "192.0.2.9", NULL, NULL, NULL, NULL, NULL, 0, OK, NULL},
        /* a parent domain of the name */
        {CL, "198.51.100.1", "mail.bad.example.net", NULL, NULL, NULL, NULL,
         0, REJ, "554 5.7.1 <mail.bad.example.net[198.51.100.1]>: Client "
                 "host rejected: go away"},
        {CL, "198.51.100.1", "bad.example.net", NULL, NULL, NULL, NULL, 0,
         REJ, "554 5.7.1 <bad.example.net[198.51.100.1]>: Client host "
              "rejected: go away"},
        /* the name is looked up before the address */
        {CL, "203.0.113.5", "good.example.org", NULL, NULL, NULL, NULL, 0,
         OK, NULL},
        {CL, "203.0.113.5", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[203.0.113.5]>: Client host rejected: Access "
         "denied"},
        {CL, "203.0.113.5", "unknown", NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[203.0.113.5]>: Client host rejected: Access "
         "denied"},
        /* DUNNO ends the search of a table */
        {CL, "203.0.113.5", "dunno.example.org", NULL, NULL, NULL, NULL, 0,
         DUNNO, NULL},
        {CL, "10.0.0.1", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "450 4.7.0 <unknown[10.0.0.1]>: Client host rejected: try later"},
        {CL, "10.0.0.2", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "550 5.7.1 <unknown[10.0.0.2]>: Client host rejected: custom text"},
        {CL, "10.0.0.3", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "450 4.7.1 <unknown[10.0.0.3]>: Client host rejected: Access "
         "denied"},
        {CL, "10.0.0.4", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "450 4.7.1 <unknown[10.0.0.4]>: Client host rejected: slow down"},
        /* a restriction list as the result */
        {CL, "10.0.0.5", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[10.0.0.5]>: Client host rejected: Access "
         "denied"},
        {CL, "10.0.0.5", NULL, NULL, NULL, NULL, NULL, 1, OK, NULL},
        /* FILTER names the content filter and decides nothing; one
         * without a transport:destination is a configuration error */
        {CL, "10.0.0.6", NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
        {CL, "10.0.0.13", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "451 4.3.5 <unknown[10.0.0.13]>: Client host rejected: Server "
         "configuration error"},
        {CL, "10.0.0.7", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "451 4.3.5 <unknown[10.0.0.7]>: Client host rejected: Server "
         "configuration error"},
        {CL, "10.0.0.8", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "451 4.3.5 <unknown[10.0.0.8]>: Client host rejected: Server "
         "configuration error"},
        {CL, "10.0.0.9", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "451 4.3.5 <unknown[10.0.0.9]>: Client host rejected: Server "
         "configuration error"},
        /* the class digit of the status code follows the reply code */
        {CL, "10.0.0.10", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "450 4.7.1 <unknown[10.0.0.10]>: Client host rejected: text"},
        {CL, "10.0.0.11", NULL, NULL, NULL, NULL, NULL, 0, OK, NULL},
        {CL, "10.0.0.12", NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
        {CL, "2001:db8:1::5", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[2001:db8:1::5]>: Client host rejected: Access "
         "denied"},
        {CL, "2001:db8:2::5", NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
        /* the pcre table after it sees the whole address only */
        {CL, "10.1.7.9", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <unknown[10.1.7.9]>: Client host rejected: net 7"},
        {CL, "10.2.0.1", "host.pcre.example", NULL, NULL, NULL, NULL, 0,
         REJ, "554 5.7.1 <host.pcre.example[10.2.0.1]>: Client host "
              "rejected: Access denied"},
        {CL, "10.2.0.1", "sub.host.pcre.example", NULL, NULL, NULL, NULL,
         0, DUNNO, NULL},
        /* check_client_access works in any list, with its own class */
        {RC, "192.0.2.1", NULL, NULL, "s@x.example", "r@y.example", NULL, 0,
         REJ, "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access "
              "denied"},
    };
    config_t *cfg;
    char *log;
    FILE *fp;
    size_t n;

    (void)state;
    write_named("client", "192.0.2.1 REJECT\n"
                          "192.0.2 OK\n"
                          "bad.example.net REJECT go away\n"
                          "good.example.org OK\n"
                          "dunno.example.org DUNNO\n"
                          "203.0.113.5 REJECT\n"
                          "10.0.0.1 450 4.7.0 try later\n"
                          "10.0.0.2 550 custom text\n"
                          "10.0.0.3 DEFER\n"
                          "10.0.0.4 defer slow down\n"
                          "10.0.0.5 permit_mynetworks, reject\n"
                          "10.0.0.6 FILTER smtp:[192.0.2.9]\n"
                          "10.0.0.7 no_such_action\n"
                          "10.0.0.8 check_client_access texthash:/x\n"
                          "10.0.0.9 reject_rbl_client zen.test\n"
                          "10.0.0.10 450 5.7.1 text\n"
                          "10.0.0.11 20240101\n"
                          "10.0.0.12 dunno whatever\n"
                          "10.0.0.13 FILTER nowhere\n"
                          "2001:db8:1 REJECT\n");
    write_named("client.pcre", "/^10\\.1\\.(\\d+)\\./ REJECT net $1\n"
                               "/^host\\.pcre\\.example$/ REJECT\n");
    cfg = load_ok("smtpd_client_restrictions = "
                  "check_client_access texthash:%D/client,\n"
                  "    check_client_access pcre:%D/client.pcre\n"
                  "smtpd_recipient_restrictions = "
                  "check_client_access texthash:%D/client\n");
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);

    /* the configuration errors were logged */
    fp = fopen(logpath, "r");
    assert_non_null(fp);
    log = calloc(1, 65536);
    assert_non_null(log);
    n = fread(log, 1, 65535, fp);
    log[n] = '\0';
    fclose(fp);
    assert_non_null(strstr(log, "FILTER needs transport:destination, not "
                                "\"FILTER nowhere\""));
    assert_non_null(strstr(log, "unknown action \"no_such_action\""));
    assert_non_null(strstr(log, "reject_rbl_client may not be used in an "
                                "access table's result"));
    free(log);
}

/* A client known by its socket address alone. */
static void
test_client_sa(void **state)
{
    struct sockaddr_in6 sin6;
    struct smtpd_check_ctx ctx;
    config_t *cfg;
    buf_t reply;

    (void)state;
    write_named("client2", "2001:db8::7 REJECT\n");
    cfg = load_ok("smtpd_client_restrictions = "
                  "check_client_access texthash:%D/client2\n");
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr),
                     1);
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = cfg;
    ctx.client_sa = (struct sockaddr *)&sin6;
    buf_init(&reply);
    assert_int_equal(smtpd_check(&ctx, CL, &reply), REJ);
    assert_string_equal(reply.data, "554 5.7.1 <unknown[2001:db8::7]>: "
                                    "Client host rejected: Access denied");
    buf_free(&reply);
    config_unref(&cfg);
}

static void
test_helo(void **state)
{
    static const struct check_case cases[] = {
        {HE, NULL, NULL, "a.helo.example", NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <a.helo.example>: Helo command rejected: Access "
         "denied"},
        {HE, NULL, NULL, "localhost", NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 <localhost>: Helo command rejected: You are not "
         "localhost"},
        {HE, NULL, NULL, "bad_host!", NULL, NULL, NULL, 0, REJ,
         "501 5.5.2 <bad_host!>: Helo command rejected: Invalid name"},
        {HE, NULL, NULL, "-bad.example", NULL, NULL, NULL, 0, REJ,
         "501 5.5.2 <-bad.example>: Helo command rejected: Invalid name"},
        {HE, NULL, NULL, "bad..example", NULL, NULL, NULL, 0, REJ,
         "501 5.5.2 <bad..example>: Helo command rejected: Invalid name"},
        {HE, NULL, NULL, "1.2.3.4", NULL, NULL, NULL, 0, REJ,
         "501 5.5.2 <1.2.3.4>: Helo command rejected: Invalid name"},
        {HE, NULL, NULL, "[300.1.1.1]", NULL, NULL, NULL, 0, REJ,
         "501 5.5.2 <[300.1.1.1]>: Helo command rejected: Invalid name"},
        {HE, NULL, NULL, "mailhost", NULL, NULL, NULL, 0, REJ,
         "504 5.5.2 <mailhost>: Helo command rejected: need "
         "fully-qualified hostname"},
        {HE, NULL, NULL, "mailhost.", NULL, NULL, NULL, 0, REJ,
         "504 5.5.2 <mailhost.>: Helo command rejected: need "
         "fully-qualified hostname"},
        {HE, NULL, NULL, "[192.0.2.1]", NULL, NULL, NULL, 0, DUNNO, NULL},
        {HE, NULL, NULL, "[IPv6:2001:db8::1]", NULL, NULL, NULL, 0, DUNNO,
         NULL},
        {HE, NULL, NULL, "mx.good.example", NULL, NULL, NULL, 0, DUNNO,
         NULL},
        {HE, NULL, NULL, "mx_1.good.example.", NULL, NULL, NULL, 0, DUNNO,
         NULL},
        {HE, NULL, NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
    };
    config_t *cfg;

    (void)state;
    write_named("helo", "helo.example REJECT\n"
                        "localhost REJECT You are not localhost\n");
    cfg = load_ok("smtpd_helo_restrictions = "
                  "check_helo_access texthash:%D/helo, "
                  "reject_invalid_helo_hostname, "
                  "reject_non_fqdn_helo_hostname\n");
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

static void
test_sender(void **state)
{
    static const struct check_case cases[] = {
        {SE, NULL, NULL, NULL, "spammer@bad.example", NULL, NULL, 0, REJ,
         "554 5.7.1 <spammer@bad.example>: Sender address rejected: Access "
         "denied"},
        /* user@domain without the extension */
        {SE, NULL, NULL, NULL, "spammer+tag@bad.example", NULL, NULL, 0,
         REJ, "554 5.7.1 <spammer+tag@bad.example>: Sender address "
              "rejected: Access denied"},
        /* the domain and its parents */
        {SE, NULL, NULL, NULL, "other@sub.bad.example", NULL, NULL, 0, REJ,
         "450 4.7.0 <other@sub.bad.example>: Sender address rejected: "
         "later"},
        {SE, NULL, NULL, NULL, "", NULL, NULL, 0, REJ,
         "554 5.7.1 <>: Sender address rejected: no bounces"},
        /* localpart@ */
        {SE, NULL, NULL, NULL, "postmaster@bad.example", NULL, NULL, 0, REJ,
         "554 5.7.1 <postmaster@bad.example>: Sender address rejected: "
         "Access denied"},
        {SE, NULL, NULL, NULL, "postmaster@any.example", NULL, NULL, 0, OK,
         NULL},
        {SE, NULL, NULL, NULL, "joe+x@good.example", NULL, NULL, 0, REJ,
         "554 5.7.1 <joe+x@good.example>: Sender address rejected: no joe"},
        {SE, NULL, NULL, NULL, "alice@good.example", NULL, NULL, 0, DUNNO,
         NULL},
        /* a pattern table gets the whole address, never the domain */
        {SE, NULL, NULL, NULL, "x@spam.example", NULL, NULL, 0, REJ,
         "550 5.7.0 <x@spam.example>: Sender address rejected: no mail from "
         "x"},
        {SE, NULL, NULL, NULL, "x@sub.spam.example", NULL, NULL, 0, DUNNO,
         NULL},
        {SE, NULL, NULL, NULL, "alice@localhost", NULL, NULL, 0, REJ,
         "504 5.5.2 <alice@localhost>: Sender address rejected: need "
         "fully-qualified address"},
        {SE, NULL, NULL, NULL, "alice", NULL, NULL, 0, REJ,
         "504 5.5.2 <alice>: Sender address rejected: need fully-qualified "
         "address"},
        {SE, NULL, NULL, NULL, "alice@[192.0.2.1]", NULL, NULL, 0, DUNNO,
         NULL},
        {SE, NULL, NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
    };
    config_t *cfg;

    (void)state;
    write_named("sender", "spammer@bad.example REJECT\n"
                          "bad.example DEFER 4.7.0 later\n"
                          "<> REJECT no bounces\n"
                          "postmaster@bad.example REJECT\n"
                          "postmaster@ OK\n"
                          "joe@ REJECT no joe\n");
    write_named("sender.pcre", "/^(.*)@spam\\.example$/ 550 5.7.0 no mail "
                               "from $1\n");
    cfg = load_ok("recipient_delimiter = +\n"
                  "smtpd_sender_restrictions = "
                  "check_sender_access texthash:%D/sender "
                  "check_sender_access pcre:%D/sender.pcre "
                  "reject_non_fqdn_sender\n");
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

static void
test_recipient(void **state)
{
    static const struct check_case cases[] = {
        {RC, NULL, NULL, NULL, "s@x.example", "bob@relay.example", NULL, 0,
         OK, NULL},
        {RC, NULL, NULL, NULL, "s@x.example", "bob+x@relay.example", NULL,
         0, OK, NULL},
        {RC, NULL, NULL, NULL, "s@x.example", "nobody@example.com", NULL, 0,
         REJ, "550 5.1.1 <nobody@example.com>: Recipient address rejected: "
              "no such user"},
        /* a routed address gets no OK from the table */
        {RC, NULL, NULL, NULL, "s@x.example", "bob%evil.example@example.com",
         NULL, 0, REJ, "554 5.7.1 <bob%evil.example@example.com>: Relay "
                       "access denied"},
        {RC, NULL, NULL, NULL, "s@x.example", "bob%evil.example@relay.example",
         NULL, 0, REJ, "554 5.7.1 <bob%evil.example@relay.example>: Relay "
                       "access denied"},
        {RC, NULL, NULL, NULL, "s@x.example", "bob@example", NULL, 0, REJ,
         "504 5.5.2 <bob@example>: Recipient address rejected: need "
         "fully-qualified address"},
        {RC, NULL, NULL, NULL, "s@x.example", "bob@example.com", NULL, 0,
         OK, NULL},
        {RC, NULL, NULL, NULL, "s@x.example", "bob@far.example", NULL, 0,
         REJ, "554 5.7.1 <bob@far.example>: Relay access denied"},
    };
    config_t *cfg;

    (void)state;
    write_named("rcpt", "relay.example OK\n"
                        "example.com OK\n"
                        "nobody@example.com 550 5.1.1 no such user\n");
    cfg = load_ok("mydestination = example.com\n"
                  "recipient_delimiter = +\n"
                  "smtpd_recipient_restrictions = "
                  "check_recipient_access texthash:%D/rcpt "
                  "reject_non_fqdn_recipient reject_unauth_destination\n");
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

struct load_error {
    const char *cf;
    const char *want; /* with %D; after "main.cf:" */
};

static void
test_validate(void **state)
{
    static const struct load_error cases[] = {
        {"smtpd_client_restrictions = permit_foo\n",
         "1: bad value for smtpd_client_restrictions: unknown restriction "
         "\"permit_foo\""},
        {"\nsmtpd_helo_restrictions = permit check_helo_access\n",
         "2: bad value for smtpd_helo_restrictions: check_helo_access needs "
         "a table after it"},
        {"smtpd_client_restrictions = reject_rbl_client, permit\n",
         "1: bad value for smtpd_client_restrictions: reject_rbl_client "
         "needs a DNS zone after it"},
        {"smtpd_client_restrictions = reject_rbl_client bad_zone!\n",
         "1: bad value for smtpd_client_restrictions: reject_rbl_client: "
         "\"bad_zone!\" is not a DNS zone"},
        {"smtpd_client_restrictions = reject_rbl_client "
         "zen.test=127.0.0.[2..x]\n",
         "1: bad value for smtpd_client_restrictions: reject_rbl_client: "
         "bad reply filter \"127.0.0.[2..x]\""},
        {"smtpd_client_restrictions = reject_rbl_client zen.test=127.0.0\n",
         "1: bad value for smtpd_client_restrictions: reject_rbl_client: "
         "bad reply filter \"127.0.0\""},
        {"smtpd_relay_restrictions =\n"
         "smtpd_recipient_restrictions = permit_mynetworks\n",
         "2: bad value for smtpd_recipient_restrictions: "
         "smtpd_relay_restrictions is empty, so this list needs "
         "reject_unauth_destination (or reject, defer or "
         "defer_unauth_destination) to keep the server from relaying for "
         "anyone"},
        {"smtpd_client_restrictions = check_policy_service\n",
         "1: bad value for smtpd_client_restrictions: check_policy_service "
         "needs a policy service after it"},
        {"smtpd_client_restrictions = check_policy_service 127.0.0.1:9\n",
         "1: bad value for smtpd_client_restrictions: check_policy_service: "
         "\"127.0.0.1:9\": expected inet:host:port, unix:path or /path"},
        {"smtpd_client_restrictions = check_policy_service inet:host\n",
         "1: bad value for smtpd_client_restrictions: check_policy_service: "
         "\"inet:host\": expected inet:host:port or inet:[address]:port"},
        {"smtpd_client_restrictions = check_policy_service inet:h:99999\n",
         "1: bad value for smtpd_client_restrictions: check_policy_service: "
         "\"inet:h:99999\": expected inet:host:port or inet:[address]:port"},
        {"smtpd_client_restrictions = check_policy_service unix:\n",
         "1: bad value for smtpd_client_restrictions: check_policy_service: "
         "\"unix:\": empty socket path"},
        {"smtpd_sender_restrictions = check_sender_access pcre:%D/bad.pcre\n",
         "1: bad value for smtpd_sender_restrictions: %D/bad.pcre:2: "
         "missing closing parenthesis at offset 3"},
    };
    size_t i;

    (void)state;
    write_named("bad.pcre", "/ok/ OK\n/(ab/ REJECT\n");
    for (i = 0; i < N(cases); i++) {
        char *want = with_dir(cases[i].want);
        char *full;
        buf_t err;
        config_t *cfg;

        buf_init(&err);
        cfg = load_cf(cases[i].cf, &err);
        if (cfg != NULL)
            fail_msg("case %zu loaded", i);
        full = malloc(strlen(tmpdir) + strlen(want) + 16);
        assert_non_null(full);
        snprintf(full, strlen(tmpdir) + strlen(want) + 16, "%s/main.cf:%s",
                 tmpdir, want);
        if (strstr(err.data, full) == NULL)
            fail_msg("case %zu: errors\n%s\nwanted\n%s", i, err.data, full);
        free(full);
        free(want);
        buf_free(&err);
    }
}

static void
test_validate_ok(void **state)
{
    static const char *const good[] = {
        ("smtpd_relay_restrictions =\n"
         "smtpd_recipient_restrictions = permit_mynetworks, "
         "reject_unauth_destination\n"),
        ("smtpd_client_restrictions = PERMIT_MYNETWORKS, "
         "reject_rbl_client zen.test=127.0.0.[2..11], "
         "reject_rbl_client zen.test=127.0.[0;1].[2;4..6], "
         "reject_rbl_client zen.test\n"),
        ("smtpd_sender_restrictions = reject_unknown_sender_domain "
         "check_sender_access inline:{a@b=REJECT}\n"),
        ("smtpd_recipient_restrictions = reject_unauth_destination, "
         "check_policy_service inet:127.0.0.1:10023, "
         "check_policy_service inet:[::1]:10023, "
         "check_policy_service inet:policy.example:10023, "
         "check_policy_service unix:private/policy, "
         "check_policy_service /run/policy.sock\n"),
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(good); i++) {
        config_t *cfg = load_ok(good[i]);

        config_unref(&cfg);
    }
}

static void
test_needs_dns(void **state)
{
    config_t *cfg = load_ok(
        "smtpd_client_restrictions = check_client_access "
        "inline:{reject_rbl_client=OK}, permit\n"
        "smtpd_helo_restrictions = reject_invalid_helo_hostname\n"
        "smtpd_sender_restrictions = permit_mynetworks "
        "reject_unknown_sender_domain\n"
        "smtpd_recipient_restrictions = reject_unknown_recipient_domain\n");

    (void)state;
    /* a table named like a DNS restriction is still just a table */
    assert_false(smtpd_check_needs_dns(cfg, CL));
    assert_false(smtpd_check_needs_dns(cfg, HE));
    assert_true(smtpd_check_needs_dns(cfg, SE));
    assert_true(smtpd_check_needs_dns(cfg, RC));
    assert_false(smtpd_check_needs_dns(cfg, RL));
    config_unref(&cfg);
    cfg = load_ok("smtpd_client_restrictions = reject_rbl_client zen.test\n");
    assert_true(smtpd_check_needs_dns(cfg, CL));
    assert_false(smtpd_check_needs_policy(cfg, CL));
    config_unref(&cfg);
    cfg = load_ok("smtpd_client_restrictions = check_client_access "
                  "inline:{check_policy_service=OK}\n"
                  "smtpd_recipient_restrictions = reject_unauth_destination, "
                  "check_policy_service inet:127.0.0.1:9\n");
    assert_false(smtpd_check_needs_policy(cfg, CL));
    assert_true(smtpd_check_needs_policy(cfg, RC));
    assert_false(smtpd_check_needs_dns(cfg, RC));
    config_unref(&cfg);
}

/* One context through the five lists with the caller's acts, as the
 * session evaluates a recipient. */
struct acts_case {
    const char *rcpt;
    int want;
    const char *reply; /* for REJ */
    int hold;
    int discard;
    const char *redirect;
    const char *prepend;
};

static void
test_acts(void **state)
{
    static const enum param_id lists[] = {CL, HE, SE, RL, RC};
    static const struct acts_case cases[] = {
        {"hold@example.com", OK, NULL, 1, 0, NULL, ""},
        {"discard@example.com", OK, NULL, 0, 1, NULL, ""},
        {"redirect@example.com", OK, NULL, 0, 0, "other@example.net", ""},
        /* each PREPEND in the order of evaluation */
        {"prepend@example.com", OK, NULL, 0, 0, NULL,
         "X-Two: 2\nX-One: 1\n"},
        /* PREPEND needs a header */
        {"badprepend@example.com", REJ,
         "451 4.3.5 <badprepend@example.com>: Recipient address rejected: "
         "Server configuration error", 0, 0, NULL, ""},
        /* deferred only when the lists would permit */
        {"dip@example.com", REJ,
         "450 4.2.0 <dip@example.com>: Recipient address rejected: "
         "Greylisted", 0, 0, NULL, ""},
        {"dip-default@example.com", REJ,
         "450 4.7.1 <dip-default@example.com>: Recipient address "
         "rejected: Service unavailable", 0, 0, NULL, ""},
        /* a later reject wins over DEFER_IF_PERMIT */
        {"dip-reject@example.com", REJ,
         "554 5.7.1 <dip-reject@example.com>: Recipient address "
         "rejected: Access denied", 0, 0, NULL, ""},
        /* DEFER_IF_REJECT turns a later 5xx into its deferral */
        {"dir-reject@example.com", REJ,
         "450 4.7.1 <dir-reject@example.com>: Recipient address "
         "rejected: wait", 0, 0, NULL, ""},
        {"dir@example.com", OK, NULL, 0, 0, NULL, ""},
        {"warn@example.com", OK, NULL, 0, 0, NULL, ""},
    };
    config_t *cfg;
    buf_t reply;
    size_t i;
    size_t j;

    (void)state;
    write_named("acts", "hold@example.com HOLD\n"
                        "discard@example.com DISCARD\n"
                        "redirect@example.com REDIRECT other@example.net\n"
                        "prepend@example.com PREPEND X-Two: 2\n"
                        "badprepend@example.com PREPEND not a header\n"
                        "dip@example.com DEFER_IF_PERMIT 4.2.0 Greylisted\n"
                        "dip-default@example.com DEFER_IF_PERMIT\n"
                        "dip-reject@example.com DEFER_IF_PERMIT\n"
                        "dir-reject@example.com DEFER_IF_REJECT wait\n"
                        "dir@example.com DEFER_IF_REJECT wait\n"
                        "warn@example.com WARN look at this\n");
    write_named("acts2", "prepend@example.com PREPEND X-One: 1\n"
                         "dip-reject@example.com REJECT\n"
                         "dir-reject@example.com REJECT\n");
    cfg = load_ok("mydestination = example.com\n"
                  "smtpd_recipient_restrictions = reject_unauth_destination, "
                  "check_recipient_access texthash:%D/acts, "
                  "check_recipient_access texthash:%D/acts2, permit\n");
    buf_init(&reply);
    for (i = 0; i < N(cases); i++) {
        struct smtpd_check_acts acts;
        struct smtpd_check_ctx ctx;
        int rc = DUNNO;

        smtpd_check_acts_init(&acts);
        memset(&ctx, 0, sizeof(ctx));
        ctx.cfg = cfg;
        ctx.client_addr = "198.51.100.7";
        ctx.sender = "s@example.org";
        ctx.rcpt = cases[i].rcpt;
        ctx.acts = &acts;
        for (j = 0; j < N(lists) && rc != REJ; j++)
            rc = smtpd_check(&ctx, lists[j], &reply);
        rc = smtpd_check_finish(&acts, rc, &reply);
        if (rc != cases[i].want)
            fail_msg("case %zu (%s): result %d, wanted %d; reply \"%s\"", i,
                     cases[i].rcpt, rc, cases[i].want,
                     reply.data ? reply.data : "");
        if (rc == REJ)
            assert_string_equal(reply.data, cases[i].reply);
        assert_int_equal(acts.hold, cases[i].hold);
        assert_int_equal(acts.discard, cases[i].discard);
        if (cases[i].redirect)
            assert_string_equal(acts.redirect, cases[i].redirect);
        else
            assert_null(acts.redirect);
        assert_string_equal(acts.prepend.data ? acts.prepend.data : "",
                            cases[i].prepend);
        smtpd_check_acts_free(&acts);
    }
    buf_free(&reply);
    config_unref(&cfg);
}

/* The transaction gathers what its accepted recipients asked for. */
static void
test_acts_merge(void **state)
{
    struct smtpd_check_acts tx;
    struct smtpd_check_acts r;

    (void)state;
    smtpd_check_acts_init(&tx);
    smtpd_check_acts_init(&r);
    buf_puts(&r.prepend, "X-A: 1\n");
    r.redirect = strdup("a@example.com");
    r.hold = 1;
    smtpd_check_acts_merge(&tx, &r);
    smtpd_check_acts_free(&r);
    buf_puts(&r.prepend, "X-B: 2\n");
    r.redirect = strdup("b@example.com");
    r.discard = 1;
    smtpd_check_acts_merge(&tx, &r);
    assert_string_equal(tx.prepend.data, "X-A: 1\nX-B: 2\n");
    assert_string_equal(tx.redirect, "b@example.com");
    assert_true(tx.hold);
    assert_true(tx.discard);
    assert_null(r.redirect);
    assert_int_equal(r.prepend.len, 0);
    smtpd_check_acts_free(&r);
    smtpd_check_acts_free(&tx);
}

static const char *const dns_records[] = {
    "--host-record=2.0.0.127.zen.test,127.0.0.2",
    "--txt-record=2.0.0.127.zen.test,Listed for testing",
    "--host-record=2.0.0.127.filt.test,127.0.0.2",
    "--host-record=4.0.0.127.filt.test,127.0.0.4",
    "--host-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0."
    "1.0.0.2.zen.test,127.0.0.2",
    "--txt-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0."
    "1.0.0.2.zen.test,Listed for testing",
    "--mx-host=mx.test,mail.mx.test,10",
    "--host-record=a.test,192.0.2.10",
    "--host-record=aaaa.test,2001:db8::10",
    "--dns-rr=nullmx.test,15,000000",
    NULL,
};

static void
test_rbl(void **state)
{
    static const struct check_case cases[] = {
        {CL, "127.0.0.2", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked "
         "using zen.test; Listed for testing"},
        {CL, "127.0.0.3", NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
        /* listed with an address the filter does not take */
        {CL, "127.0.0.2", NULL, NULL, NULL, NULL, NULL, 1, OK, NULL},
        {CL, "127.0.0.4", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 Service unavailable; Client host [127.0.0.4] blocked "
         "using filt.test"},
        {CL, "2001:db8::1", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 Service unavailable; Client host [2001:db8::1] blocked "
         "using zen.test; Listed for testing"},
        {CL, "::ffff:127.0.0.2", NULL, NULL, NULL, NULL, NULL, 0, REJ,
         "554 5.7.1 Service unavailable; Client host [::ffff:127.0.0.2] "
         "blocked using zen.test; Listed for testing"},
        {CL, "2001:db8::2", NULL, NULL, NULL, NULL, NULL, 0, DUNNO, NULL},
    };
    config_t *cfg;

    (void)state;
    if (!have_dns)
        skip();
    /* filt.test first, so that 127.0.0.2 passes it and reaches
     * permit_mynetworks before zen.test */
    cfg = load_ok("smtpd_client_restrictions = "
                  "reject_rbl_client filt.test=127.0.0.[3..5], "
                  "permit_mynetworks, reject_rbl_client zen.test, "
                  "reject_rbl_client unreachable.invalid\n");
    assert_true(smtpd_check_needs_dns(cfg, CL));
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

static void
test_unknown_domain(void **state)
{
    static const struct check_case cases[] = {
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@mx.test", NULL, 0, DUNNO,
         NULL},
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@a.test", NULL, 0, DUNNO,
         NULL},
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@aaaa.test", NULL, 0, DUNNO,
         NULL},
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@nope.test", NULL, 0, REJ,
         "450 4.1.2 <bob@nope.test>: Recipient address rejected: Domain not "
         "found"},
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@nullmx.test", NULL, 0, REJ,
         "556 5.1.10 <bob@nullmx.test>: Recipient address rejected: Domain "
         "nullmx.test does not accept mail (nullMX)"},
        /* no answer at all: try again later */
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@x.invalid", NULL, 0, REJ,
         "450 4.1.2 <bob@x.invalid>: Recipient address rejected: Domain not "
         "found"},
        /* our own domains are not looked up */
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@local.test", NULL, 0,
         DUNNO, NULL},
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@[192.0.2.1]", NULL, 0,
         DUNNO, NULL},
        {SE, NULL, NULL, NULL, "a@nope.test", NULL, NULL, 0, REJ,
         "450 4.1.8 <a@nope.test>: Sender address rejected: Domain not "
         "found"},
        {SE, NULL, NULL, NULL, "a@nullmx.test", NULL, NULL, 0, REJ,
         "550 5.7.27 <a@nullmx.test>: Sender address rejected: Domain "
         "nullmx.test does not accept mail (nullMX)"},
        {SE, NULL, NULL, NULL, "", NULL, NULL, 0, DUNNO, NULL},
        {SE, NULL, NULL, NULL, "a@mx.test", NULL, NULL, 0, DUNNO, NULL},
    };
    static const struct check_case later[] = {
        {RC, NULL, NULL, NULL, "s@mx.test", "bob@x.invalid", NULL, 0, REJ,
         "554 5.7.1 <bob@x.invalid>: Recipient address rejected: Access "
         "denied"},
        {RC, NULL, NULL, NULL, "s@mx.test", "eve@x.invalid", NULL, 0, REJ,
         "450 4.1.2 <eve@x.invalid>: Recipient address rejected: Domain not "
         "found"},
    };
    config_t *cfg;

    (void)state;
    if (!have_dns)
        skip();
    cfg = load_ok("mydestination = local.test\n"
                  "smtpd_sender_restrictions = "
                  "reject_unknown_sender_domain\n"
                  "smtpd_recipient_restrictions = "
                  "reject_unknown_recipient_domain\n");
    run_cases(cfg, cases, N(cases));
    config_unref(&cfg);

    /* A DNS failure defers only if nothing after it refuses. */
    cfg = load_ok("smtpd_recipient_restrictions = "
                  "reject_unknown_recipient_domain,\n"
                  "    check_recipient_access inline:{bob@x.invalid=REJECT}\n");
    run_cases(cfg, later, N(later));
    config_unref(&cfg);
}

/* smtpd_rate: counts per client and kind, in windows that start anew. */
static void
test_rate(void **state)
{
    smtpd_rate_t *r = smtpd_rate_new();

    (void)state;
    assert_int_equal(smtpd_rate_add(r, "192.0.2.1", SMTPD_RATE_MESSAGE, 60,
                                    1000), 1);
    assert_int_equal(smtpd_rate_add(r, "192.0.2.1", SMTPD_RATE_MESSAGE, 60,
                                    1030), 2);
    assert_int_equal(smtpd_rate_add(r, "192.0.2.1", SMTPD_RATE_RCPT, 60,
                                    1030), 1);
    assert_int_equal(smtpd_rate_add(r, "192.0.2.2", SMTPD_RATE_MESSAGE, 60,
                                    1030), 1);
    /* A new window 60 s after the first event. */
    assert_int_equal(smtpd_rate_add(r, "192.0.2.1", SMTPD_RATE_MESSAGE, 60,
                                    1060), 1);
    assert_int_equal(smtpd_rate_add(r, "192.0.2.1", SMTPD_RATE_RCPT, 60,
                                    1061), 1);
    smtpd_rate_free(&r);
    assert_null(r);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-check-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    smtpd_check_register();
    have_dns = dnsmasq_start(&dm, tmpdir, dns_records) == 0;
    if (!have_dns)
        fprintf(stderr, "dnsmasq cannot be started: the DNS tests will be "
                        "skipped\n");
    return log_open(LOG_DEST_FILE, "tern", logpath);
}

static int
group_teardown(void **state)
{
    (void)state;
    dnsmasq_stop(&dm);
    log_open(LOG_DEST_STDERR, "tern", NULL);
    if (getenv("TERN_KEEP_TESTDIR") == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_client_access),
        cmocka_unit_test(test_client_sa),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_sender),
        cmocka_unit_test(test_recipient),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_needs_dns),
        cmocka_unit_test(test_acts),
        cmocka_unit_test(test_acts_merge),
        cmocka_unit_test(test_rbl),
        cmocka_unit_test(test_unknown_domain),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
