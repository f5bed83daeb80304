/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of queue/cleanup_mime: a script of header and body lines
 * per case, and for each line whether it is a boundary and whether the
 * lines after it are headers, and of which part.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "queue/cleanup_mime.h"

/* Feed a header block; headers are "H:..." lines, "" ends the block. */
static void
feed_headers(cleanup_mime_t *m, const char *const *lines)
{
    for (; *lines && (*lines)[0] != '\0'; lines++)
        cleanup_mime_header(m, *lines, strlen(*lines));
    cleanup_mime_headers_end(m);
}

static int
body(cleanup_mime_t *m, const char *line)
{
    return cleanup_mime_body_line(m, line, strlen(line));
}

static void
test_content_type(void **state)
{
    static const char *const quoted[] = {
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; (a comment)\n\tboundary=\"b (1)\"",
        "",
    };
    static const char *const token[] = {
        "content-type: MULTIPART/Alternative;charset=x;BOUNDARY=tok", "",
    };
    static const char *const none[] = {"Content-Type: multipart/mixed", ""};
    static const char *const text[] = {"Content-Type: text/plain", ""};
    cleanup_mime_t m;

    (void)state;
    cleanup_mime_init(&m, 10);
    feed_headers(&m, quoted);
    assert_int_equal(m.nbounds, 1);
    assert_string_equal(m.bounds[0], "b (1)");
    assert_int_equal(m.in_headers, 0);
    assert_true(body(&m, "--b (1)"));
    assert_int_equal(m.in_headers, 1);
    assert_int_equal(m.part, CLEANUP_MIME_MULTIPART);
    cleanup_mime_free(&m);

    cleanup_mime_init(&m, 10);
    feed_headers(&m, token);
    assert_int_equal(m.nbounds, 1);
    assert_string_equal(m.bounds[0], "tok");
    cleanup_mime_free(&m);

    /* No boundary, or not a multipart: nothing opens. */
    cleanup_mime_init(&m, 10);
    feed_headers(&m, none);
    assert_int_equal(m.nbounds, 0);
    assert_false(body(&m, "--"));
    cleanup_mime_free(&m);
    cleanup_mime_init(&m, 10);
    feed_headers(&m, text);
    assert_int_equal(m.nbounds, 0);
    cleanup_mime_free(&m);

    assert_true(cleanup_mime_is_mime_header("Content-Type: x", 15));
    assert_true(cleanup_mime_is_mime_header("mime-version: 1.0", 17));
    assert_false(cleanup_mime_is_mime_header("Contented: x", 12));
    assert_false(cleanup_mime_is_mime_header("Subject: x", 10));
}

static void
test_boundaries(void **state)
{
    static const char *const outer[] = {
        "Content-Type: multipart/mixed; boundary=abc", ""};
    static const char *const inner[] = {
        "Content-Type: multipart/alternative; boundary=abcd", ""};
    static const char *const plain[] = {"Content-Type: text/plain", ""};
    static const char *const message[] = {"Content-Type: message/rfc822",
                                          ""};
    static const char *const attached[] = {"Subject: inner",
                                           "Content-Type: text/plain", ""};
    cleanup_mime_t m;

    (void)state;
    cleanup_mime_init(&m, 10);
    feed_headers(&m, outer);
    assert_false(body(&m, "preamble --abc"));
    assert_false(body(&m, "--abcx"));
    assert_true(body(&m, "--abc \t"));
    feed_headers(&m, inner);
    assert_int_equal(m.nbounds, 2);
    /* The inner boundary is not taken for the outer one. */
    assert_true(body(&m, "--abcd"));
    assert_int_equal(m.nbounds, 2);
    feed_headers(&m, plain);
    assert_false(body(&m, "text"));
    /* An outer boundary ends the inner level too. */
    assert_true(body(&m, "--abc"));
    assert_int_equal(m.nbounds, 1);
    assert_int_equal(m.in_headers, 1);
    feed_headers(&m, message);
    assert_int_equal(m.in_headers, 1);
    assert_int_equal(m.part, CLEANUP_MIME_NESTED);
    feed_headers(&m, attached);
    assert_int_equal(m.in_headers, 0);
    assert_true(body(&m, "--abc--"));
    assert_int_equal(m.nbounds, 0);
    assert_int_equal(m.in_headers, 0);
    assert_false(body(&m, "--abc"));
    cleanup_mime_free(&m);
}

static void
test_nesting_limit(void **state)
{
    static const char *const level[] = {
        "Content-Type: multipart/mixed; boundary=x", ""};
    cleanup_mime_t m;
    int i;

    (void)state;
    cleanup_mime_init(&m, 3);
    for (i = 0; i < 3; i++) {
        feed_headers(&m, level);
        assert_false(m.too_deep);
        assert_true(body(&m, "--x"));
    }
    feed_headers(&m, level);
    assert_true(m.too_deep);
    cleanup_mime_free(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_nesting_limit),
    };

    return cmocka_run_group_tests_name("cleanup_mime", tests, NULL, NULL);
}
