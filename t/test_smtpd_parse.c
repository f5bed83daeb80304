/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the SMTP command parser: verbs, paths, parameters.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "server/smtpd_parse.h"

static void
test_verbs(void **state)
{
    static const struct {
        const char *line;
        enum smtp_verb verb;
        const char *arg;
    } cases[] = {
        {"EHLO client.example", SMTP_EHLO, "client.example"},
        {"ehlo client.example", SMTP_EHLO, "client.example"},
        {"HeLo x", SMTP_HELO, "x"},
        {"MAIL FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>"},
        {"RCPT TO:<a@b>  ", SMTP_RCPT, "TO:<a@b>"},
        {"DATA", SMTP_DATA, ""},
        {"QUIT", SMTP_QUIT, ""},
        {"RSET", SMTP_RSET, ""},
        {"NOOP anything", SMTP_NOOP, "anything"},
        {"STARTTLS", SMTP_STARTTLS, ""},
        {"BDAT 100 LAST", SMTP_BDAT, "100 LAST"},
        {"FOO bar", SMTP_UNKNOWN, "bar"},
        {"", SMTP_UNKNOWN, ""},
        {"DATAX", SMTP_UNKNOWN, ""},
        {"MAI", SMTP_UNKNOWN, ""},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *line = mem_strdup(cases[i].line);
        struct smtp_cmd cmd;

        smtpd_parse_command(line, &cmd);
        assert_int_equal(cmd.verb, cases[i].verb);
        assert_string_equal(cmd.arg, cases[i].arg);
        free(line);
    }
}

static void
test_paths(void **state)
{
    static const struct {
        const char *arg;
        const char *prefix;
        int null_ok;
        int ok;
        const char *addr;
        size_t nparams;
    } cases[] = {
        {"FROM:<a@example.org>", "FROM:", 1, 1, "a@example.org", 0},
        {"from:<a@example.org>", "FROM:", 1, 1, "a@example.org", 0},
        {"FROM: <a@example.org>", "FROM:", 1, 1, "a@example.org", 0},
        {"FROM:<>", "FROM:", 1, 1, "", 0},
        {"TO:<>", "TO:", 0, 0, NULL, 0},
        {"FROM:<a@example.org> SIZE=100 BODY=8BITMIME", "FROM:", 1, 1,
         "a@example.org", 2},
        {"TO:<@relay.example:user@example.org>", "TO:", 0, 1,
         "user@example.org", 0},
        {"TO:<@a,@b:user@example.org>", "TO:", 0, 1, "user@example.org", 0},
        {"TO:<\"john doe\"@example.org>", "TO:", 0, 1,
         "\"john doe\"@example.org", 0},
        {"TO:<\"a>b\"@example.org>", "TO:", 0, 1, "\"a>b\"@example.org", 0},
        {"TO:<postmaster>", "TO:", 0, 1, "postmaster", 0},
        {"TO:<Postmaster>", "TO:", 0, 1, "Postmaster", 0},
        {"TO:<user@[192.0.2.1]>", "TO:", 0, 1, "user@[192.0.2.1]", 0},
        {"TO:<user>", "TO:", 0, 0, NULL, 0},
        {"TO:user@example.org", "TO:", 0, 0, NULL, 0},
        {"TO:<user@example.org", "TO:", 0, 0, NULL, 0},
        {"TO:<user@example.org>x", "TO:", 0, 0, NULL, 0},
        {"TO:<a..b@example.org>", "TO:", 0, 0, NULL, 0},
        {"TO:<.a@example.org>", "TO:", 0, 0, NULL, 0},
        {"TO:<a@example..org>", "TO:", 0, 0, NULL, 0},
        {"TO:<a@-example.org>", "TO:", 0, 0, NULL, 0},
        {"TO:<a@>", "TO:", 0, 0, NULL, 0},
        {"TO:<a b@example.org>", "TO:", 0, 0, NULL, 0},
        {"FROM:bogus<", "FROM:", 1, 0, NULL, 0},
        {"<a@example.org>", "FROM:", 1, 0, NULL, 0},
        {"FROM:<a@example.org> =x", "FROM:", 1, 0, NULL, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *arg = mem_strdup(cases[i].arg);
        struct smtp_path path;
        const char *why = NULL;
        int rc = smtpd_parse_path(arg, cases[i].prefix, cases[i].null_ok,
                                  &path, &why);

        if (cases[i].ok) {
            if (rc != 0)
                fail_msg("%s: %s", cases[i].arg, why);
            assert_string_equal(path.addr, cases[i].addr);
            assert_int_equal(path.nparams, cases[i].nparams);
        } else {
            if (rc == 0)
                fail_msg("%s: accepted", cases[i].arg);
            assert_non_null(why);
        }
        free(arg);
    }
}

static void
test_params(void **state)
{
    char *arg = mem_strdup("FROM:<a@b.example> size=1000 Body=8BITMIME SMTPUTF8");
    struct smtp_path path;
    const char *why;

    assert_int_equal(smtpd_parse_path(arg, "FROM:", 1, &path, &why), 0);
    assert_int_equal(path.nparams, 3);
    assert_string_equal(path.params[0].key, "SIZE");
    assert_string_equal(path.params[0].value, "1000");
    assert_string_equal(path.params[1].key, "BODY");
    assert_string_equal(path.params[1].value, "8BITMIME");
    assert_string_equal(path.params[2].key, "SMTPUTF8");
    assert_null(path.params[2].value);
    free(arg);
}

static void
test_too_many_params(void **state)
{
    buf_t arg;
    struct smtp_path path;
    const char *why;
    int i;

    buf_init(&arg);
    buf_puts(&arg, "FROM:<a@b.example>");
    for (i = 0; i < SMTP_PARAMS_MAX + 1; i++)
        buf_puts(&arg, " X=1");
    assert_int_equal(smtpd_parse_path(arg.data, "FROM:", 1, &path, &why), -1);
    buf_free(&arg);
}

/* Every prefix of every case must parse or fail without crashing. */
static void
test_prefixes(void **state)
{
    const char *samples[] = {
        "FROM:<\"q\\\"x\"@example.org> SIZE=1",
        "TO:<@a,@b:user@[IPv6:2001:db8::1]>",
    };
    size_t i;
    size_t n;

    for (i = 0; i < 2; i++) {
        for (n = 0; n <= strlen(samples[i]); n++) {
            char *arg = mem_strndup(samples[i], n);
            struct smtp_path path;
            const char *why;

            smtpd_parse_path(arg, i == 0 ? "FROM:" : "TO:", 1, &path, &why);
            free(arg);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_too_many_params),
        cmocka_unit_test(test_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
