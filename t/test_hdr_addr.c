/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/hdr_addr: a table of header values and the
 * addresses the scanner must find in them, in order.  Every value is
 * also scanned in each of its prefixes, copied to a buffer of exactly
 * that size, so that a read past the end shows under valgrind or ASan
 * and a cut-off value never yields a span outside it.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/hdr_addr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct collect {
    const char *value;
    size_t len;
    buf_t found; /* the addresses, each followed by "|" */
    int bad;     /* a span outside the value, empty or with a space */
};

static void
collect_span(void *arg, size_t off, size_t len)
{
    struct collect *c = arg;
    size_t i;

    if (len == 0 || off + len > c->len)
        c->bad = 1;
    for (i = 0; !c->bad && i < len; i++)
        if (c->value[off + i] == '\n')
            c->bad = 1;
    if (!c->bad) {
        buf_append(&c->found, c->value + off, len);
        buf_putc(&c->found, '|');
    }
}

static const struct {
    const char *value;
    const char *want; /* addresses joined by "|", each with a "|" after */
} cases[] = {
    {" a@example.com", "a@example.com|"},
    {" a@example.com, b@example.org", "a@example.com|b@example.org|"},
    {" Joe <joe@example.com>", "joe@example.com|"},
    {" \"Doe, John\" <jd@example.com>, x@y", "jd@example.com|x@y|"},
    {" jd@example.com (John Doe)", "jd@example.com|"},
    {" (comment, with <angle>) a@b", "a@b|"},
    {" (nested (comment)) a@b (after)", "a@b|"},
    {" undisclosed-recipients:;", ""},
    {" team: a@b, Carl <c@d>;, e@f", "a@b|c@d|e@f|"},
    {" <@relay.example:user@host.example>", "user@host.example|"},
    {" \"quoted local\"@example.com", "\"quoted local\"@example.com|"},
    {" user", "user|"},
    {" Joe Bloggs", ""},
    {" <>", ""},
    {" a@b,\n\tc@d", "a@b|c@d|"},
    {" Name\n <n@x>", "n@x|"},
    {" \"unterminated <a@b>", "\"unterminated <a@b>|"},
    {" <a@b", "a@b|"},
    {" <a@b> <c@d>", "a@b|"},
    {" a\\,b@c", "a\\,b@c|"},
    {"", ""},
    {" ,,, ,", ""},
};

static void
test_scan_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct collect c;
        c.value = cases[i].value;
        c.len = strlen(c.value);
        c.bad = 0;
        buf_init(&c.found);
        (void)hdr_addr_scan(c.value, c.len, collect_span, &c);
        if (c.bad ||
            strcmp(c.found.data ? c.found.data : "", cases[i].want) != 0)
            fail_msg("value \"%s\": found \"%s\", want \"%s\"", cases[i].value,
                     c.found.data ? c.found.data : "", cases[i].want);
        buf_free(&c.found);
    }
}

/* The count returned matches the spans reported. */
static void
test_scan_count(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        struct collect c;
        size_t bars = 0;
        const char *p;

        c.value = cases[i].value;
        c.len = strlen(c.value);
        c.bad = 0;
        buf_init(&c.found);
        for (p = cases[i].want; *p; p++)
            bars += *p == '|';
        assert_int_equal(hdr_addr_scan(c.value, c.len, collect_span, &c), bars);
        buf_free(&c.found);
    }
}

static void
test_scan_prefixes(void **state)
{
    size_t i;
    size_t k;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        size_t len = strlen(cases[i].value);

        for (k = 0; k <= len; k++) {
            char *copy = malloc(k ? k : 1);
            struct collect c;

            assert_non_null(copy);
            memcpy(copy, cases[i].value, k);
            c.value = copy;
            c.len = k;
            c.bad = 0;
            buf_init(&c.found);
            (void)hdr_addr_scan(copy, k, collect_span, &c);
            assert_int_equal(c.bad, 0);
            buf_free(&c.found);
            free(copy);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_table),
        cmocka_unit_test(test_scan_count),
        cmocka_unit_test(test_scan_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
