/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/table: static:, inline:{...} and texthash files
 * written to a scratch directory.  Each table-driven case opens a table
 * and looks keys up, or expects table_open to fail with a message that
 * names file:line.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/table.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static int nfiles;

/* Write text to a new file; returns its path (static storage). */
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

/* A copy of fmt with every "%s" replaced by s; the caller frees it. */
static char *
subst(const char *fmt, const char *s)
{
    buf_t b;
    const char *p;

    buf_init(&b);
    while ((p = strstr(fmt, "%s")) != NULL) {
        buf_append(&b, fmt, (size_t)(p - fmt));
        buf_puts(&b, s);
        fmt = p + 2;
    }
    buf_puts(&b, fmt);
    return buf_steal(&b);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_table-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
group_teardown(void **state)
{
    if (getenv("TERN_KEEP_TESTDIR") == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* One lookup: key, and the value it must find (NULL: not found). */
struct probe {
    const char *key;
    const char *want;
};

#define MAXPROBES 8

/* A table spec (for files, "%s" stands for the path of a file holding
 * text) and lookups in it. */
static const struct {
    const char *spec;
    const char *text;
    struct probe probes[MAXPROBES];
} good_cases[] = {
    {"static:yes", NULL, {{"anything", "yes"}, {"", "yes"}, {"X", "yes"}}},
    {"static:", NULL, {{"anything", ""}}},
    {"static:two words", NULL, {{"k", "two words"}}},
    {"inline:{a=1, b=2, c}", NULL,
     {{"a", "1"}, {"b", "2"}, {"B", "2"}, {"c", ""}, {"d", NULL},
      {"a=1", NULL}}},
    {"inline:{ key = value with spaces , k2=v2 }", NULL,
     {{"key", "value with spaces"}, {"k2", "v2"}, {"key ", NULL}}},
    {"inline:{}", NULL, {{"a", NULL}, {"", NULL}}},
    {"inline:{ , ,}", NULL, {{"a", NULL}}},
    {"inline:{a=1, a=2, A=3}", NULL, {{"a", "3"}}},
    {"inline:{User@Example.ORG=MixedValue}", NULL,
     {{"user@example.org", "MixedValue"}, {"USER@EXAMPLE.ORG", "MixedValue"}}},
    {"inline:{a=b=c}", NULL, {{"a", "b=c"}}},
    /* texthash files */
    {"texthash:%s", "alice x\nbob y\n",
     {{"alice", "x"}, {"bob", "y"}, {"carol", NULL}, {"ali", NULL},
      {"alicex", NULL}}},
    {"texthash:%s",
     "# users\n\n   # indented comment\nalice x\n\t\nbob\ty\ncarol:  z\n",
     {{"alice", "x"}, {"bob", "y"}, {"carol", "z"}, {"#", NULL},
      {"# users", NULL}}},
    {"texthash:%s", "alice   a b c   \n", {{"alice", "a b c"}}},
    {"texthash:%s", "alice first\n  second\n\tthird\nbob b\n",
     {{"alice", "first second third"}, {"bob", "b"}}},
    {"texthash:%s", "alice first\n# comment between\n  second\n",
     {{"alice", "first second"}}},
    {"texthash:%s", "alice 1\nbob 2\nalice 3\nALICE 4\n",
     {{"alice", "4"}, {"bob", "2"}}},
    {"texthash:%s", "Alice MixedValue\n",
     {{"alice", "MixedValue"}, {"ALICE", "MixedValue"}, {"aLiCe",
                                                         "MixedValue"}}},
    {"texthash:%s", "alice x\r\nbob y\r\n", {{"alice", "x"}, {"bob", "y"}}},
    {"texthash:%s", "alice x", {{"alice", "x"}}},
    {"texthash:%s", "alice\n", {{"alice", ""}}},
    {"texthash:%s", "", {{"alice", NULL}}},
    {"texthash:%s", "# only a comment\n", {{"alice", NULL}}},
    {"%s", "alice x\n", {{"alice", "x"}, {"bob", NULL}}},
};

static void
test_good(void **state)
{
    size_t i;
    size_t j;

    for (i = 0; i < N(good_cases); i++) {
        buf_t err;
        table_t *t;
        char *spec;

        buf_init(&err);
        spec = good_cases[i].text
                   ? subst(good_cases[i].spec, write_file(good_cases[i].text))
                   : strdup(good_cases[i].spec);
        assert_non_null(spec);
        t = table_open(spec, &err);
        if (t == NULL)
            fail_msg("case %zu: table_open(\"%s\") failed: %s", i, spec,
                     err.data ? err.data : "");
        assert_int_equal(err.len, 0);
        assert_string_equal(table_name(t), spec);
        for (j = 0; j < MAXPROBES && good_cases[i].probes[j].key; j++) {
            const struct probe *p = &good_cases[i].probes[j];
            const char *v = "untouched";
            int rc = table_lookup(t, p->key, &v);

            if (p->want == NULL && rc != 0)
                fail_msg("case %zu (%s): \"%s\" found (\"%s\"), want not "
                         "found",
                         i, spec, p->key, v);
            if (p->want != NULL && (rc != 1 || strcmp(v, p->want) != 0))
                fail_msg("case %zu (%s): \"%s\" gives rc %d \"%s\", want "
                         "\"%s\"",
                         i, spec, p->key, rc, rc ? v : "", p->want);
        }
        table_free(&t);
        assert_null(t);
        free(spec);
        buf_free(&err);
    }
}

/* Specs that do not open: the message must contain want ("%s" is the
 * file's path). */
static const struct {
    const char *spec;
    const char *text; /* NULL: no file */
    const char *want;
} bad_cases[] = {
    {"texthash:/nonexistent/users", NULL,
     "/nonexistent/users: cannot open: No such file or directory"},
    {"/nonexistent/users", NULL, "/nonexistent/users: cannot open: "},
    {"texthash:%s", "  continued\n",
     "%s:1: continuation line without a key before it"},
    {"texthash:%s", "# comment\n\n\tcontinued\nalice x\n",
     "%s:3: continuation line without a key before it"},
    {"texthash:%s", "alice x\n: value\n", "%s:2: missing key"},
    {"texthash:%s", "alice x\nbob y\n# c\n:z\n", "%s:4: missing key"},
    {"hash:/etc/aliases", NULL,
     "hash:/etc/aliases: unsupported table type \"hash\""},
    {"nosuchtype:/etc/x", NULL, "unsupported table type \"nosuchtype\""},
    {"nonsense", NULL, "nonsense: not a table"},
    {"", NULL, "not a table"},
    {"inline:a=1", NULL, "inline table must be written {key=value, ...}"},
    {"inline:{a=1", NULL, "inline table must be written"},
    {"inline:{a=1}x", NULL, "inline table must be written"},
    {"inline:", NULL, "inline table must be written"},
};

static void
test_bad(void **state)
{
    size_t i;

    for (i = 0; i < N(bad_cases); i++) {
        buf_t err;
        table_t *t;
        const char *path = "";
        char *spec;
        char *want;

        buf_init(&err);
        if (bad_cases[i].text)
            path = write_file(bad_cases[i].text);
        spec = subst(bad_cases[i].spec, path);
        want = subst(bad_cases[i].want, path);
        t = table_open(spec, &err);
        if (t != NULL)
            fail_msg("case %zu: table_open(\"%s\") succeeded, want \"%s\"",
                     i, spec, want);
        if (err.data == NULL || strstr(err.data, want) == NULL)
            fail_msg("case %zu: table_open(\"%s\"): \"%s\", want \"%s\"", i,
                     spec, err.data ? err.data : "", want);
        free(spec);
        free(want);
        buf_free(&err);
    }
}

/* The error is appended: earlier text in the buffer stays. */
static void
test_error_appended(void **state)
{
    buf_t err;

    buf_init(&err);
    buf_puts(&err, "before: ");
    assert_null(table_open("hash:/x", &err));
    assert_int_equal(strncmp(err.data, "before: hash:/x: ", 17), 0);
    buf_free(&err);
}

/* Many keys, to exercise the search over a sorted table. */
static void
test_many_keys(void **state)
{
    buf_t text;
    buf_t err;
    table_t *t;
    char *spec;
    char key[32];
    char want[32];
    const char *v;
    int i;

    buf_init(&text);
    buf_init(&err);
    /* Written in descending order with a duplicate of every tenth key
     * later in the file, which must win. */
    for (i = 999; i >= 0; i--)
        buf_printf(&text, "User%04d value%d\n", i, i);
    for (i = 0; i < 1000; i += 10)
        buf_printf(&text, "user%04d later%d\n", i, i);
    spec = subst("texthash:%s", write_file(text.data));
    t = table_open(spec, &err);
    assert_non_null(t);
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "USER%04d", i);
        snprintf(want, sizeof(want), i % 10 ? "value%d" : "later%d", i);
        if (table_lookup(t, key, &v) != 1 || strcmp(v, want) != 0)
            fail_msg("%s: want \"%s\"", key, want);
    }
    assert_int_equal(table_lookup(t, "user1000", &v), 0);
    assert_int_equal(table_lookup(t, "user", &v), 0);
    assert_int_equal(table_lookup(t, "", &v), 0);
    assert_int_equal(table_lookup(t, "zzz", &v), 0);
    assert_int_equal(table_lookup(t, "aaa", &v), 0);
    table_free(&t);
    free(spec);
    buf_free(&text);
    buf_free(&err);
}

/* The value stays valid and unchanged across other lookups. */
static void
test_value_owned_by_table(void **state)
{
    buf_t err;
    table_t *t;
    const char *a;
    const char *b;

    buf_init(&err);
    t = table_open("inline:{a=first, b=second}", &err);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "a", &a), 1);
    assert_int_equal(table_lookup(t, "b", &b), 1);
    assert_string_equal(a, "first");
    assert_string_equal(b, "second");
    table_free(&t);
    buf_free(&err);
}

static void
test_free_null(void **state)
{
    table_t *t = NULL;

    table_free(NULL);
    table_free(&t);
    assert_null(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_error_appended),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_value_owned_by_table),
        cmocka_unit_test(test_free_null),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
