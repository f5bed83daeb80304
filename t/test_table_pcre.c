/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the pattern tables of lib/table (pcre: and regexp:):
 * table files written to a scratch directory, then tables of keys and
 * the results they must find, and of files that must fail to open with
 * the error (file:line first) that the open reports.  A last test looks
 * one table up from several threads at once, through table_lookup_r and
 * through table_lookup's per-thread buffer.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/table.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static int nfiles;

/* Write text to a new file in the scratch directory; returns its path
 * (static storage, overwritten by the next call). */
static const char *
write_file(const char *text)
{
    static char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/table-%d", tmpdir, ++nfiles);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Open "type:" + a file holding text; fails the test if it cannot. */
static table_t *
open_text(const char *type, const char *text)
{
    char spec[PATH_MAX + 16];
    buf_t err;
    table_t *t;

    snprintf(spec, sizeof(spec), "%s:%s", type, write_file(text));
    buf_init(&err);
    t = table_open(spec, &err);
    if (t == NULL)
        fail_msg("%s: %s", spec, err.data ? err.data : "?");
    buf_free(&err);
    return t;
}

struct lookup_case {
    const char *key;
    const char *want; /* NULL: not found */
};

static void
check_lookups(const table_t *t, const struct lookup_case *c, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        buf_t r;
        const char *v = NULL;
        int found;

        buf_init(&r);
        buf_puts(&r, "<");
        found = table_lookup_r(t, c[i].key, &r);
        if (c[i].want == NULL) {
            if (found != 0)
                fail_msg("key \"%s\": found \"%s\", wanted nothing",
                         c[i].key, r.data + 1);
            assert_string_equal(r.data, "<");
            assert_int_equal(table_lookup(t, c[i].key, &v), 0);
        } else {
            if (found != 1)
                fail_msg("key \"%s\": not found, wanted \"%s\"", c[i].key,
                         c[i].want);
            assert_string_equal(r.data + 1, c[i].want);
            assert_int_equal(table_lookup(t, c[i].key, &v), 1);
            assert_string_equal(v, c[i].want);
        }
        buf_free(&r);
    }
}

static void
test_pcre_rules(void **state)
{
    static const char text[] =
        "# first match wins\n"
        "/^(.*)@example\\.com$/        LOCAL $1\n"
        "/^postmaster@/                OK\n"
        "/^ABC$/i                      exact-case\n"
        "!/\\./                        no-dot\n"
        "/^multi/\n"
        "    continued result\n"
        "/^x(\\d+)y\\/z\\.$/            num $1\n"
        "/^dollar(.)/                  keep $ and $. and $\n";
    static const struct lookup_case cases[] = {
        {"joe@example.com", "LOCAL joe"},
        /* i is on by default, and the key is not folded */
        {"Joe@EXAMPLE.COM", "LOCAL Joe"},
        {"postmaster@other.org", "OK"},
        {"ABC", "exact-case"},
        {"abc", "no-dot"},
        {"nodot", "no-dot"},
        {"a.c", NULL},
        {"ac.", NULL},
        {"multi.line", "continued result"},
        {"x42y/z.", "num 42"},
        {"dollar.x", "keep $ and $. and $"},
    };
    table_t *t = open_text("pcre", text);

    (void)state;
    assert_true(table_is_pattern(t));
    check_lookups(t, cases, N(cases));
    table_free(&t);
    assert_null(t);
}

static void
test_pcre_groups(void **state)
{
    static const char text[] =
        "/^(a)(b)?(c)\\./              g1=$1 g2=${2} g3=$(3) $$5\n";
    static const struct lookup_case cases[] = {
        {"abc.", "g1=a g2=b g3=c $5"},
        /* an optional group that took no part gives nothing */
        {"ac.", "g1=a g2= g3=c $5"},
        {"abd.", NULL},
    };
    table_t *t = open_text("pcre", text);

    (void)state;
    check_lookups(t, cases, N(cases));
    table_free(&t);
}

static void
test_pcre_flags(void **state)
{
    static const char text[] =
        "/^a.b$/                       plain\n"
        "/^c.d$/s                      dotall\n"
        "/^e f$/x                      extended\n"
        "/^first$/m                    multiline\n"
        "/g/A                          anchored\n"
        "/^h$/E                        endonly\n"
        "/<(.+)>/U                     ungreedy $1\n";
    static const struct lookup_case cases[] = {
        {"a\nb", NULL},
        {"c\nd", "dotall"},
        {"ef", "extended"},
        {"e f", NULL},
        {"zero\nfirst\nlast", "multiline"},
        {"gx", "anchored"},
        {"xg", NULL},
        {"h", "endonly"},
        {"h\n", NULL},
        {"<a><b>", "ungreedy a"},
    };
    table_t *t = open_text("pcre", text);

    (void)state;
    check_lookups(t, cases, N(cases));
    table_free(&t);
}

static void
test_pcre_if(void **state)
{
    static const char text[] =
        "if /@example\\.com$/\n"
        "  # comments and blank lines inside blocks\n"
        "\n"
        "IF /^sales/\n"
        "/^sales-(\\w+)/                SALES $1\n"
        "endif\n"
        "/^info@/                      INFO\n"
        "ENDIF\n"
        "if !/^test/\n"
        "/^info@/                      OTHER-INFO\n"
        "endif\n"
        "/./                           FALLBACK\n";
    static const struct lookup_case cases[] = {
        {"sales-eu@example.com", "SALES eu"},
        {"info@example.com", "INFO"},
        {"info@example.org", "OTHER-INFO"},
        /* inside the first block, but no rule there matches */
        {"bob@example.com", "FALLBACK"},
        {"test-info@example.org", "FALLBACK"},
        /* the inner block needs the outer one */
        {"sales-eu@example.org", "FALLBACK"},
        {"", NULL},
    };
    table_t *t = open_text("pcre", text);

    (void)state;
    check_lookups(t, cases, N(cases));
    table_free(&t);
}

static void
test_regexp_rules(void **state)
{
    static const char text[] =
        "/^(.+)@example\\.com$/        LOCAL $1\n"
        "/^a.b$/                       dot-newline\n"
        "/^c$/                         end-only\n"
        "/^line$/m                     by-line\n"
        "/^ABC$/i                      exact-case\n"
        "/^user/!/@example\\.org$/     user-not-org\n"
        "if /^block/\n"
        "/x$/                          in-block\n"
        "endif\n";
    static const struct lookup_case cases[] = {
        {"Joe@Example.Com", "LOCAL Joe"},
        /* POSIX without REG_NEWLINE: "." matches a newline */
        {"a\nb", "dot-newline"},
        /* and "$" only the very end */
        {"c\n", NULL},
        {"c", "end-only"},
        {"one\nline\ntwo", "by-line"},
        {"ABC", "exact-case"},
        {"abc", NULL},
        {"user1@example.net", "user-not-org"},
        {"user1@example.org", NULL},
        {"block-x", "in-block"},
        {"other-x", NULL},
    };
    table_t *t = open_text("regexp", text);

    (void)state;
    assert_true(table_is_pattern(t));
    check_lookups(t, cases, N(cases));
    table_free(&t);
}

struct error_case {
    const char *type;
    const char *text;
    const char *want; /* the error after "PATH:" */
};

static void
test_open_errors(void **state)
{
    static const struct error_case cases[] = {
        {"pcre", "/ok/ OK\n\n/(unclosed/ X\n",
         "3: missing closing parenthesis at offset 9"},
        {"pcre", "# c\n/a[/ X\n", "2: missing terminating ] for character "
                                   "class at offset 2"},
        {"regexp", "/a(/ X\n", "1: missing closing parenthesis at offset 2"},
        {"pcre", "/a/ X\n/b\n", "2: pattern has no closing \"/\""},
        {"pcre", "/a/\n", "1: pattern without a result"},
        {"pcre", "/a/q X\n", "1: unknown pattern flag \"q\""},
        {"regexp", "/a/x X\n", "1: unknown pattern flag \"x\" (POSIX basic "
                               "syntax is not supported)"},
        {"regexp", "/a/s X\n", "1: unknown pattern flag \"s\""},
        {"pcre", "/a/X\n", "1: unknown pattern flag \"X\""},
        {"pcre", "/(a)/ $2\n", "1: $2 in the result, but the pattern has 1 "
                               "group"},
        {"pcre", "/a/ ${1}\n", "1: $1 in the result, but the pattern has 0 "
                               "groups"},
        {"pcre", "!/(a)/ $1\n", "1: $1 in the result of a negated pattern, "
                                "which captures nothing"},
        {"pcre", "/a/ $name\n", "1: \"$\" in the result must be followed by "
                                "a group number (write $$ for a dollar "
                                "sign)"},
        {"pcre", "/a/ ${x}\n", "1: \"$\" in the result must be followed by "
                                "a group number (write $$ for a dollar "
                                "sign)"},
        {"pcre", "endif\n", "1: \"endif\" without \"if\""},
        {"pcre", "if /a/\n/b/ X\nif /c/\nendif\n",
         "1: \"if\" without \"endif\""},
        {"pcre", "if /a/ X\nendif\n", "1: text after the \"if\" pattern"},
        {"pcre", "if /a/\nendif now\n", "2: text after \"endif\""},
        {"pcre", "key value\n", "1: expected /pattern/, \"if\" or \"endif\""},
        {"pcre", "  /a/ X\n", "1: continuation line without a key before "
                              "it"},
        {"regexp", "/a/!b X\n", "1: expected /pattern/, \"if\" or "
                                "\"endif\""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        char spec[PATH_MAX + 16];
        char want[PATH_MAX + 256];
        const char *path = write_file(cases[i].text);
        buf_t err;
        table_t *t;

        snprintf(spec, sizeof(spec), "%s:%s", cases[i].type, path);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        buf_init(&err);
        t = table_open(spec, &err);
        if (t != NULL)
            fail_msg("case %zu opened", i);
        assert_non_null(err.data);
        if (strcmp(err.data, want) != 0)
            fail_msg("case %zu: got \"%s\", wanted \"%s\"", i, err.data,
                     want);
        buf_free(&err);
    }
}

static void
test_missing_file(void **state)
{
    buf_t err;

    (void)state;
    buf_init(&err);
    assert_null(table_open("pcre:/nonexistent/tern-table", &err));
    assert_string_equal(err.data, "/nonexistent/tern-table: cannot open: "
                                  "No such file or directory");
    buf_free(&err);
}

/* table_lookup_r serves the fixed types too, and folds their keys. */
static void
test_lookup_r_fixed(void **state)
{
    buf_t err;
    buf_t r;
    table_t *t;

    (void)state;
    buf_init(&err);
    buf_init(&r);
    t = table_open("inline:{Key=Value, other}", &err);
    assert_non_null(t);
    assert_false(table_is_pattern(t));
    assert_int_equal(table_lookup_r(t, "KEY", &r), 1);
    assert_string_equal(r.data, "Value");
    assert_int_equal(table_lookup_r(t, "other", &r), 1);
    assert_string_equal(r.data, "Value");
    assert_int_equal(table_lookup_r(t, "missing", &r), 0);
    assert_string_equal(r.data, "Value");
    table_free(&t);
    t = table_open("static:everything", &err);
    assert_non_null(t);
    buf_reset(&r);
    assert_int_equal(table_lookup_r(t, "x", &r), 1);
    assert_string_equal(r.data, "everything");
    table_free(&t);
    table_free(&t);
    table_free(NULL);
    buf_free(&r);
    buf_free(&err);
}

/* An empty pattern file (comments only) opens and finds nothing. */
static void
test_empty(void **state)
{
    table_t *t = open_text("pcre", "# nothing\n\n");
    buf_t r;

    (void)state;
    buf_init(&r);
    assert_int_equal(table_lookup_r(t, "x", &r), 0);
    assert_null(r.data);
    table_free(&t);
}

#define THREADS 8
#define ROUNDS 2000

struct thread_arg {
    const table_t *t;
    int id;
    int failures;
};

static void *
lookup_thread(void *p)
{
    struct thread_arg *a = p;
    char key[64];
    char want[64];
    int i;

    for (i = 0; i < ROUNDS; i++) {
        buf_t r;
        const char *v;

        snprintf(key, sizeof(key), "user%d-%d@example.com", a->id, i);
        snprintf(want, sizeof(want), "id=%d round=%d", a->id, i);
        buf_init(&r);
        if (table_lookup_r(a->t, key, &r) != 1 ||
            strcmp(r.data, want) != 0)
            a->failures++;
        buf_free(&r);
        if (table_lookup(a->t, key, &v) != 1 || strcmp(v, want) != 0)
            a->failures++;
    }
    return NULL;
}

static void
test_threads(void **state)
{
    table_t *t = open_text("pcre",
                           "/^user(\\d+)-(\\d+)@/  id=$1 round=$2\n");
    pthread_t tid[THREADS];
    struct thread_arg args[THREADS];
    int i;

    (void)state;
    for (i = 0; i < THREADS; i++) {
        args[i].t = t;
        args[i].id = i;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&tid[i], NULL, lookup_thread,
                                        &args[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    table_free(&t);
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
setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-table-XXXXXX",
             base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcre_rules),
        cmocka_unit_test(test_pcre_groups),
        cmocka_unit_test(test_pcre_flags),
        cmocka_unit_test(test_pcre_if),
        cmocka_unit_test(test_regexp_rules),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_lookup_r_fixed),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
