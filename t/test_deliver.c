/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the pure parts of deliver/: next-hop parsing
 * (smtp_parse_nexthop), routing (resolve_rcpt with relayhost,
 * transport_maps and the address classes), the error transports'
 * status codes, and the RFC 3464 report that bounce_build writes, taken
 * apart line by line.  Each is a table of cases.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/bounce.h"
#include "deliver/error.h"
#include "deliver/resolve.h"
#include "deliver/smtp.h"
#include "deliver/smtp_7bit.h"
#include "lib/buf.h"
#include "lib/config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];

/* A config from name=value overrides on the embedded defaults. */
static config_t *
load(char *const *ov, size_t n)
{
    buf_t err;
    config_t *cfg;

    buf_init(&err);
    cfg = config_load(NULL, ov, n, &err);
    if (cfg == NULL)
        fprintf(stderr, "%s", err.data ? err.data : "?");
    assert_non_null(cfg);
    buf_free(&err);
    return cfg;
}

static void
test_nexthop(void **state)
{
    static const struct {
        const char *in;
        int rc;
        const char *host;
        int port;
        int mx;
    } cases[] = {
        {"example.com", 0, "example.com", 25, 1},
        {"example.com:587", 0, "example.com", 587, 1},
        {"[mx.example.com]", 0, "mx.example.com", 25, 0},
        {"[mx.example.com]:2525", 0, "mx.example.com", 2525, 0},
        {"[127.0.0.1]:26", 0, "127.0.0.1", 26, 0},
        {"[ipv6:::1]:25", 0, "ipv6:::1", 25, 0},
        {"host:smtp", 0, "host", 25, 1},
        {"[host", -1, NULL, 0, 0},
        {"[host]x", -1, NULL, 0, 0},
        {"host:0", -1, NULL, 0, 0},
        {"host:65536", -1, NULL, 0, 0},
        {"host:12x", -1, NULL, 0, 0},
        {"", -1, NULL, 0, 0},
        {"[]:25", -1, NULL, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        char host[256];
        int port = -1;
        int mx = -1;
        int rc = smtp_parse_nexthop(cases[i].in, 25, host, sizeof(host),
                                    &port, &mx);

        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc,
                     cases[i].rc);
        if (rc < 0)
            continue;
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
        assert_int_equal(mx, cases[i].mx);
    }
}

static void
test_resolve(void **state)
{
    char path[PATH_MAX];
    char map[PATH_MAX + 32];
    FILE *fp;
    config_t *plain;
    config_t *routed;
    static const struct {
        int routed;
        const char *rcpt;
        const char *transport;
        const char *nexthop;
    } cases[] = {
        {0, "user@localhost", "local", "mx.test"},
        {0, "user", "local", "mx.test"},
        {0, "user@remote.example", "smtp", "remote.example"},
        {0, "v@virt.example", "virtual", "virt.example"},
        {1, "user@remote.example", "smtp", "[relay.test]:2525"},
        {1, "a@lmtp.example", "lmtp", "unix:/run/lmtp"},
        {1, "b@sub.deep.example", "relay", "deep-relay"},
        {1, "c@deep.example", "smtp", "[relay.test]:2525"},
        {1, "special@remote.example", "error", "5.1.1 gone"},
        {1, "d@keep.example", "smtp", "[mx.keep]"},
        {1, "e@null.example", "discard", "[relay.test]:2525"},
        {1, "user@localhost", "local", "mx.test"},
    };
    char *ov1[] = {"myhostname=mx.test", "mydestination=localhost",
                   "virtual_mailbox_domains=virt.example"};
    char *ov2[5];
    size_t i;

    (void)state;
    snprintf(path, sizeof(path), "%s/transport", tmpdir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("lmtp.example lmtp:unix:/run/lmtp\n"
          ".deep.example relay:deep-relay\n"
          "special@remote.example error:5.1.1 gone\n"
          "keep.example :[mx.keep]\n"
          "null.example discard:\n",
          fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(map, sizeof(map), "transport_maps=texthash:%s", path);
    ov2[0] = ov1[0];
    ov2[1] = ov1[1];
    ov2[2] = ov1[2];
    ov2[3] = (char *)"relayhost=[relay.test]:2525";
    ov2[4] = map;
    plain = load(ov1, N(ov1));
    routed = load(ov2, N(ov2));
    for (i = 0; i < N(cases); i++) {
        char transport[64];
        char nexthop[256];

        resolve_rcpt(cases[i].routed ? routed : plain, NULL, cases[i].rcpt,
                     transport, sizeof(transport), nexthop, sizeof(nexthop));
        if (strcmp(transport, cases[i].transport) ||
            strcmp(nexthop, cases[i].nexthop))
            fail_msg("%s: %s:%s, want %s:%s", cases[i].rcpt, transport,
                     nexthop, cases[i].transport, cases[i].nexthop);
    }
    config_unref(&plain);
    config_unref(&routed);
    unlink(path);
}

static void
test_error_transports(void **state)
{
    static const struct {
        void (*fn)(struct delivery_req *);
        const char *nexthop;
        enum delivery_status status;
        const char *dsn;
        const char *text;
    } cases[] = {
        {error_deliver, "5.1.1 no such user", DELIVERY_BOUNCE, "5.1.1",
         "no such user"},
        {error_deliver, "go away", DELIVERY_BOUNCE, "5.0.0", "go away"},
        {error_deliver, "4.1.1 wrong class", DELIVERY_BOUNCE, "5.0.0",
         "4.1.1 wrong class"},
        {error_deliver, "", DELIVERY_BOUNCE, "5.0.0",
         "mail delivery failed"},
        {error_retry, "4.3.2 later", DELIVERY_DEFER, "4.3.2", "later"},
        {error_discard, "", DELIVERY_SENT, "2.0.0", "discarded"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct delivery_rcpt dr;
        struct delivery_req req;
        rcpt_t rc;

        memset(&rc, 0, sizeof(rc));
        rc.addr = (char *)"x@y";
        memset(&req, 0, sizeof(req));
        req.transport = "error";
        req.nexthop = cases[i].nexthop;
        req.rcpts = &dr;
        req.nrcpt = 1;
        dr.rcpt = &rc;
        delivery_reset(&req);
        cases[i].fn(&req);
        assert_int_equal(dr.result.status, cases[i].status);
        assert_string_equal(dr.result.dsn, cases[i].dsn);
        assert_string_equal(dr.result.text, cases[i].text);
        assert_string_equal(dr.result.relay, "none");
    }
}

/* The value of the first line of text that starts with name, after it;
 * "" if there is none.  Static storage. */
static const char *
field(const char *text, const char *name)
{
    static char out[1024];
    const char *p = text;
    size_t n = strlen(name);

    out[0] = '\0';
    while (p && *p) {
        if (strncmp(p, name, n) == 0) {
            snprintf(out, sizeof(out), "%.*s", (int)strcspn(p + n, "\n"),
                     p + n);
            break;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return out;
}

static void
test_bounce_report(void **state)
{
    static const char msg[] = "Subject: hello\nMessage-ID: <m@x>\n\n"
                              "the body\n";
    char *ov[] = {"myhostname=mx.test", "bounce_size_limit=1000"};
    config_t *cfg = load(ov, N(ov));
    envelope_t *env = envelope_new();
    struct bounce_rcpt br[2];
    rcpt_t *r1;
    rcpt_t *r2;
    buf_t out;

    (void)state;
    snprintf(env->id, sizeof(env->id), "0123456789");
    envelope_set(&env->sender, "s@example.org");
    env->arrival_us = 1700000000LL * 1000000;
    envelope_set(&env->envid, "E-1");
    r1 = envelope_add_rcpt(env, "a@remote.test");
    envelope_set(&r1->orcpt, "rfc822;orig@remote.test");
    r2 = envelope_add_rcpt(env, "b@other.test");
    memset(br, 0, sizeof(br));
    br[0].rcpt = r1;
    br[0].action = "failed";
    br[0].dsn = "5.1.1";
    br[0].reason = "host mx.remote.test[192.0.2.1] said: 550 5.1.1 no "
                   "such\r\nuser (in reply to RCPT TO command)";
    br[1].rcpt = r2;
    br[1].action = "failed";
    br[1].dsn = "5.4.4";
    br[1].reason = "Host or domain name not found";
    buf_init(&out);
    bounce_build(cfg, env, BOUNCE_FAILED, br, 2, msg, sizeof(msg) - 1, &out);
    assert_string_equal(field(out.data, "From: "),
                        "MAILER-DAEMON@mx.test (Mail Delivery System)");
    assert_string_equal(field(out.data, "To: "), "s@example.org");
    assert_string_equal(field(out.data, "Subject: "),
                        "Undelivered Mail Returned to Sender");
    assert_non_null(strstr(out.data, "Content-Type: multipart/report; "
                                     "report-type=delivery-status;"));
    assert_string_equal(field(out.data, "Reporting-MTA: "), "dns; mx.test");
    assert_string_equal(field(out.data, "Original-Envelope-Id: "), "E-1");
    assert_true(field(out.data, "Arrival-Date: ")[0] != '\0');
    assert_string_equal(field(out.data, "Final-Recipient: "),
                        "rfc822; a@remote.test");
    assert_string_equal(field(out.data, "Original-Recipient: "),
                        "rfc822;orig@remote.test");
    assert_string_equal(field(out.data, "Remote-MTA: "),
                        "dns; mx.remote.test");
    /* The CR LF inside the reply must not split the field. */
    assert_string_equal(field(out.data, "Diagnostic-Code: smtp; "),
                        "550 5.1.1 no such  user");
    assert_non_null(strstr(out.data, "Final-Recipient: rfc822; "
                                     "b@other.test\nAction: failed\n"
                                     "Status: 5.4.4\nDiagnostic-Code: "
                                     "X-Tern; Host or domain name not "
                                     "found\n"));
    assert_non_null(strstr(out.data, "Content-Type: message/rfc822\n\n"
                                     "Subject: hello\n"));
    assert_non_null(strstr(out.data, "\nthe body\n"));
    buf_reset(&out);

    /* RET=HDRS, and a delay warning: headers only. */
    env->ret = DSN_RET_HDRS;
    bounce_build(cfg, env, BOUNCE_FAILED, br, 1, msg, sizeof(msg) - 1, &out);
    assert_non_null(strstr(out.data, "Content-Type: text/rfc822-headers"));
    assert_null(strstr(out.data, "the body"));
    buf_reset(&out);
    env->ret = DSN_RET_DEFAULT;
    br[0].action = "delayed";
    bounce_build(cfg, env, BOUNCE_DELAYED, br, 1, msg, sizeof(msg) - 1,
                 &out);
    assert_string_equal(field(out.data, "Subject: "),
                        "Delayed Mail (still being retried)");
    assert_string_equal(field(out.data, "Action: "), "delayed");
    assert_null(strstr(out.data, "the body"));
    buf_free(&out);
    envelope_free(&env);
    config_unref(&cfg);
}

/* smtp_7bit_convert: quoted-printable where it is needed, and only
 * there. */
static void
test_7bit(void **state)
{
    static const char leaf[] =
        "Subject: x\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "caf\xc3\xa9 a=b trailing \n"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n";
    static const char nested[] =
        "Content-Type: multipart/mixed; boundary=o\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "--o\nContent-Type: message/rfc822\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "Subject: inner\n\nna\xc3\xafve\n"
        "--o\nContent-Type: application/x\n"
        "Content-Transfer-Encoding: binary\n\n\xff\xfe\n"
        "--o--\n";
    buf_t out;
    char *line;
    size_t n;

    (void)state;
    buf_init(&out);
    assert_false(smtp_7bit_needed("plain", 5));
    n = smtp_7bit_convert(leaf, sizeof(leaf) - 1, &out);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out.data, "Content-Transfer-Encoding: "
                                     "quoted-printable\n\n"));
    assert_null(strstr(out.data, "Content-Transfer-Encoding: 8bit"));
    /* "=" is escaped, and so is a space that ends a line. */
    assert_non_null(strstr(out.data, "caf=C3=A9 a=3Db trailing=20\n"));
    /* 40 encoded bytes make 120 characters: a soft line break. */
    for (line = strstr(out.data, "\n\n") + 2; *line;
         line = strchr(line, '\n') + 1)
        assert_true(strcspn(line, "\n") <= 76);
    assert_non_null(strstr(out.data, "=\n"));
    assert_false(smtp_7bit_needed(out.data + strlen("Subject: x\n"),
                                  out.len - strlen("Subject: x\n")));

    buf_reset(&out);
    n = smtp_7bit_convert(nested, sizeof(nested) - 1, &out);
    assert_int_equal(n, 1);
    /* The composites now say 7bit; the binary part is as it was. */
    assert_null(strstr(out.data, "Content-Transfer-Encoding: 8bit"));
    assert_non_null(strstr(out.data, "Content-Type: message/rfc822\n"
                                     "Content-Transfer-Encoding: 7bit\n"));
    assert_non_null(strstr(out.data, "Subject: inner\nMIME-Version: 1.0\n"
                                     "Content-Type: text/plain; "
                                     "charset=unknown-8bit\n"
                                     "Content-Transfer-Encoding: "
                                     "quoted-printable\n\nna=C3=AFve\n--o\n"));
    assert_non_null(strstr(out.data, "binary\n\n\xff\xfe\n--o--\n"));
    buf_free(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nexthop),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_error_transports),
        cmocka_unit_test(test_bounce_report),
        cmocka_unit_test(test_7bit),
    };
    int rc;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tern-test-deliver-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
