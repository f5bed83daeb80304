/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/table: static:, inline:{...} and texthash files
 * written to a scratch directory.  Each table-driven case opens a table
 * and looks keys up, or expects table_open to fail with a message that
 * names file:line.  The pattern tables (pcre:, regexp:) have tables of
 * their own: keys and the substituted results they must find, and files
 * whose open must fail with file:line and PCRE2's message; a last test
 * looks one pattern table up from several threads at once, through
 * table_lookup_r and through table_lookup's per-thread buffer.
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
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_table-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
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
    /* IPv6 keys keep their colons; "key: value" still splits */
    {"texthash:%s",
     "2001:db8:1 REJECT\n::1 loopback\n2001:DB8:: net\n192.0.2.1 v4\n"
     "cafe: v\nkey:value x\n",
     {{"2001:db8:1", "REJECT"}, {"::1", "loopback"}, {"2001:db8::", "net"},
      {"192.0.2.1", "v4"}, {"cafe", "v"}, {"key", "value x"},
      {"2001", NULL}}},
};

static void
test_good(void **state)
{
    size_t i;
    size_t j;

    (void)state;
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
    {"ldap:/etc/aliases", NULL,
     "ldap:/etc/aliases: unsupported table type \"ldap\""},
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

    (void)state;
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

    (void)state;
    buf_init(&err);
    buf_puts(&err, "before: ");
    assert_null(table_open("ldap:/x", &err));
    assert_int_equal(strncmp(err.data, "before: ldap:/x: ", 17), 0);
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

    (void)state;
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

    (void)state;
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

    (void)state;
    table_free(NULL);
    table_free(&t);
    assert_null(t);
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
test_pattern_errors(void **state)
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
test_pattern_missing_file(void **state)
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
test_pattern_empty(void **state)
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
test_pattern_threads(void **state)
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
        cmocka_unit_test(test_pcre_rules),
        cmocka_unit_test(test_pcre_groups),
        cmocka_unit_test(test_pcre_flags),
        cmocka_unit_test(test_pcre_if),
        cmocka_unit_test(test_regexp_rules),
        cmocka_unit_test(test_pattern_errors),
        cmocka_unit_test(test_pattern_missing_file),
        cmocka_unit_test(test_lookup_r_fixed),
        cmocka_unit_test(test_pattern_empty),
        cmocka_unit_test(test_pattern_threads),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
