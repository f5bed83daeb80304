/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/aliases: alias files written to a scratch directory.
 * A table of good files says what aliases_lookup must find for a name
 * (each target as KIND:value); a table of bad files says which
 * FILE:LINE and reason aliases_open must report; expansion cases follow
 * nested aliases, self-references, loops and :include: files; a last
 * test swaps the tables in force while a reference is held.
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

#include "lib/aliases.h"
#include "lib/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static int nfiles;

/* Write text to a new file; returns its path (static storage, one of
 * four, so that a test may hold a few). */
static const char *
write_file(const char *text)
{
    static char paths[4][PATH_MAX];
    char *path = paths[nfiles % 4];
    FILE *fp;

    snprintf(path, PATH_MAX, "%s/aliases-%d", tmpdir, ++nfiles);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Write text to tmpdir/name; returns the path (static storage). */
static const char *
write_named(const char *name, const char *text)
{
    static char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static const char *
kind_name(enum aliases_kind k)
{
    switch (k) {
    case ALIASES_ADDRESS:
        return "addr";
    case ALIASES_COMMAND:
        return "cmd";
    case ALIASES_FILE:
        return "file";
    case ALIASES_INCLUDE:
        return "include";
    }
    return "?";
}

/* The targets as "kind:value" joined by " | "; "\\" marks no_expand. */
static void
describe(const aliases_result_t *r, buf_t *out)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        buf_printf(out, "%s%s:%s%s", i ? " | " : "", kind_name(r->v[i].kind),
                   r->v[i].no_expand ? "\\" : "", r->v[i].value);
}

static aliases_t *
open_one(const char *path, buf_t *err)
{
    char *specs[2];

    specs[0] = (char *)path;
    specs[1] = NULL;
    return aliases_open(specs, err);
}

struct lookup_case {
    const char *name;
    const char *want; /* NULL: not an alias */
};

static const char good_file[] =
    "# the postmaster\n"
    "postmaster: root\n"
    "\n"
    "root: alice, \\root\n"
    "   # a comment inside a continued entry\n"
    "Staff: alice,\n"
    "    bob@example.org,\n"
    "\tCarol <carol@example.org>,\n"
    "\"web master\": \"|/usr/bin/handler -x, -y\", /var/log/web.log\n"
    "lists: :include:/etc/tern/lists, |/usr/bin/prog  (a comment, really)\n"
    "maildir: /home/m/Maildir/\n"
    "quoted: \"\\\"q q\\\"@example.org\"\n"
    "owner-staff:alice\n"
    "with-crlf: bob\r\n";

static const struct lookup_case lookups[] = {
    {"postmaster", "addr:root"},
    {"PostMaster", "addr:root"},
    {"root", "addr:alice | addr:\\root"},
    {"staff", "addr:alice | addr:bob@example.org | addr:carol@example.org"},
    {"web master", "cmd:/usr/bin/handler -x, -y | file:/var/log/web.log"},
    {"lists", "include:/etc/tern/lists | cmd:/usr/bin/prog"},
    {"maildir", "file:/home/m/Maildir/"},
    {"quoted", "addr:\"q q\"@example.org"},
    {"owner-staff", "addr:alice"},
    {"with-crlf", "addr:bob"},
    {"alice", NULL},
    {"web", NULL},
};

static void
test_lookup(void **state)
{
    const char *path = write_file(good_file);
    aliases_t *a;
    buf_t err;
    size_t i;

    buf_init(&err);
    a = open_one(path, &err);
    if (a == NULL)
        fail_msg("good file refused: %s", err.data);
    assert_int_equal(aliases_count(a), 9);
    for (i = 0; i < N(lookups); i++) {
        aliases_result_t r;
        buf_t got;
        int rc;

        memset(&r, 0, sizeof(r));
        buf_init(&got);
        rc = aliases_lookup(a, lookups[i].name, &r);
        if (lookups[i].want == NULL) {
            if (rc != 0)
                fail_msg("\"%s\" is an alias", lookups[i].name);
        } else {
            if (rc != 1)
                fail_msg("\"%s\" is not an alias", lookups[i].name);
            describe(&r, &got);
            if (strcmp(got.data, lookups[i].want) != 0)
                fail_msg("\"%s\": got \"%s\", want \"%s\"", lookups[i].name,
                         got.data, lookups[i].want);
        }
        aliases_result_free(&r);
        buf_free(&got);
    }
    aliases_unref(&a);
    assert_null(a);
    buf_free(&err);
}

/* The file and line of a target are kept for the log. */
static void
test_source(void **state)
{
    const char *path = write_file("a: b\n\n# c\nd: e,\n  f\n");
    aliases_result_t r;
    aliases_t *a;
    char want[PATH_MAX + 16];
    buf_t err;

    buf_init(&err);
    a = open_one(path, &err);
    assert_non_null(a);
    memset(&r, 0, sizeof(r));
    assert_int_equal(aliases_lookup(a, "d", &r), 1);
    assert_int_equal(r.n, 2);
    snprintf(want, sizeof(want), "%s:4", path);
    assert_string_equal(r.v[1].source, want);
    assert_int_equal(r.v[1].owner, getuid());
    assert_int_equal(r.v[1].from_include, 0);
    aliases_result_free(&r);
    aliases_unref(&a);
    buf_free(&err);
}

struct bad_case {
    const char *text;
    int line;
    const char *why;
};

static const struct bad_case bad[] = {
    {"root alice\n", 1, "missing \":\""},
    {"ok: a\n\nroot\n", 3, "missing \":\""},
    {": alice\n", 1, "empty name"},
    {"root:\n", 1, "has no targets"},
    {"root: , ,\n", 1, "has no targets"},
    {"root: \"alice\n", 1, "unterminated quoted string"},
    {"root: alice (x\n", 1, "unterminated comment"},
    {"root: Alice <alice\n", 1, "missing \">\""},
    {"root: a\n# c\nRoot: b\n", 3, "given twice (first at line 1)"},
    {"root: :include:lists\n", 1, "absolute path"},
    {"root: |\n", 1, "without a command"},
    {"web master: a\n", 1, "white space in the name"},
    {"  root: a\n", 1, "continuation line with nothing before it"},
    {"\"root: a\n", 1, "unterminated quoted name"},
    {"\"root\" a\n", 1, "missing \":\" after the name"},
    {"root: alice bob\n", 1, "white space in \"alice bob\""},
    {"root: a\001b\n", 1, "control character"},
    {"a: b\nroot: <>\n", 2, "bad address"},
};

static void
test_bad(void **state)
{
    size_t i;

    for (i = 0; i < N(bad); i++) {
        const char *path = write_file(bad[i].text);
        char where[PATH_MAX + 16];
        aliases_t *a;
        buf_t err;

        buf_init(&err);
        a = open_one(path, &err);
        if (a != NULL)
            fail_msg("bad case %zu accepted", i);
        snprintf(where, sizeof(where), "%s:%d: ", path, bad[i].line);
        if (err.data == NULL || strncmp(err.data, where, strlen(where)) != 0 ||
            strstr(err.data, bad[i].why) == NULL)
            fail_msg("bad case %zu: \"%s\", want \"%s...%s\"", i,
                     err.data ? err.data : "", where, bad[i].why);
        buf_free(&err);
    }
}

/* Every bad line is reported, not just the first. */
static void
test_all_errors(void **state)
{
    const char *path = write_file("a b\nok: c\nd:\n");
    aliases_t *a;
    buf_t err;

    buf_init(&err);
    a = open_one(path, &err);
    assert_null(a);
    assert_non_null(strstr(err.data, ":1: "));
    assert_non_null(strstr(err.data, ":3: "));
    assert_null(strstr(err.data, ":2: "));
    buf_free(&err);
}

static void
test_specs(void **state)
{
    const char *first = write_file("a: from-first\nb: b1\n");
    char *specs[4];
    char hash[PATH_MAX + 8];
    char text[PATH_MAX + 16];
    aliases_result_t r;
    aliases_t *a;
    buf_t err;
    buf_t got;

    /* The first file that has a name wins; hash: and texthash: name
     * the source file itself. */
    snprintf(hash, sizeof(hash), "hash:%s", first);
    snprintf(text, sizeof(text), "texthash:%s",
             write_file("a: from-second\nc: c1\n"));
    specs[0] = hash;
    specs[1] = text;
    specs[2] = NULL;
    buf_init(&err);
    a = aliases_open(specs, &err);
    if (a == NULL)
        fail_msg("%s", err.data);
    memset(&r, 0, sizeof(r));
    buf_init(&got);
    assert_int_equal(aliases_lookup(a, "a", &r), 1);
    describe(&r, &got);
    assert_string_equal(got.data, "addr:from-first");
    assert_int_equal(aliases_lookup(a, "c", &r), 1);
    assert_int_equal(aliases_count(a), 4);
    aliases_result_free(&r);
    buf_free(&got);
    aliases_unref(&a);

    /* An unknown type, a missing file. */
    specs[0] = "pcre:/etc/aliases";
    specs[1] = "/nonexistent/aliases";
    specs[2] = NULL;
    buf_reset(&err);
    assert_null(aliases_open(specs, &err));
    assert_non_null(strstr(err.data, "pcre:/etc/aliases: unsupported"));
    assert_non_null(strstr(err.data, "/nonexistent/aliases: cannot open"));

    /* No files at all: empty tables. */
    specs[0] = NULL;
    a = aliases_open(specs, &err);
    assert_non_null(a);
    assert_int_equal(aliases_count(a), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(aliases_lookup(a, "root", &r), 0);
    aliases_unref(&a);
    buf_free(&err);
}

struct expand_case {
    const char *name;
    int rc;
    const char *want; /* targets, or a part of the error */
};

static void
test_expand(void **state)
{
    char text[4 * PATH_MAX];
    char inc1[PATH_MAX];
    char inc2[PATH_MAX];
    char loop[PATH_MAX];
    const char *path;
    aliases_t *a;
    buf_t err;
    size_t i;
    struct expand_case cases[] = {
        {"postmaster", 1, "addr:alice | addr:\\root | file:/var/log/root"},
        {"root", 1, "addr:alice | addr:\\root | file:/var/log/root"},
        {"all", 1,
         "addr:alice | addr:\\root | file:/var/log/root | "
         "addr:bob@example.org | addr:carol | cmd:/usr/bin/list"},
        {"ping", 1, "addr:\\ping"},
        {"pong", 1, "addr:\\pong"},
        {"list", 1,
         "addr:dave@example.org | addr:erin | addr:alice | "
         "addr:\\root | file:/var/log/root | addr:frank@x"},
        {"broken", -1, "/nonexistent/list: cannot open"},
        {"deep", -1, "nested more than"},
        {"nobody", 0, ""},
    };

    snprintf(inc2, sizeof(inc2), "%s",
             write_named("inc2", "# nested\nfrank@x\n"));
    snprintf(inc1, sizeof(inc1), "%s", inc2);
    snprintf(text, sizeof(text),
             "dave@example.org, erin\nroot\n"
             ":include:%s\n",
             inc2);
    snprintf(inc1, sizeof(inc1), "%s", write_named("inc1", text));
    snprintf(text, sizeof(text), ":include:%s/loop\n", tmpdir);
    snprintf(loop, sizeof(loop), "%s", write_named("loop", text));
    snprintf(text, sizeof(text),
             "postmaster: root\n"
             "root: alice, root, /var/log/root\n"
             "all: root, bob@example.org, team\n"
             "team: carol, \"|/usr/bin/list\", alice\n"
             "ping: pong\n"
             "pong: ping\n"
             "list: :include:%s\n"
             "broken: :include:/nonexistent/list\n"
             "deep: :include:%s\n",
             inc1, loop);
    path = write_file(text);
    buf_init(&err);
    a = open_one(path, &err);
    if (a == NULL)
        fail_msg("%s", err.data);
    for (i = 0; i < N(cases); i++) {
        aliases_result_t r;
        buf_t got;
        int rc;

        memset(&r, 0, sizeof(r));
        buf_init(&got);
        buf_reset(&err);
        rc = aliases_expand(a, cases[i].name, &r, &err);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": returned %d, want %d (%s)", cases[i].name, rc,
                     cases[i].rc, err.data ? err.data : "");
        if (rc == 1) {
            describe(&r, &got);
            if (strcmp(got.data, cases[i].want) != 0)
                fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].name,
                         got.data, cases[i].want);
        } else if (rc < 0 && strstr(err.data, cases[i].want) == NULL) {
            fail_msg("\"%s\": error \"%s\", want \"%s\"", cases[i].name,
                     err.data, cases[i].want);
        }
        aliases_result_free(&r);
        buf_free(&got);
    }

    /* Targets from an :include: file say so. */
    {
        aliases_result_t r;

        memset(&r, 0, sizeof(r));
        assert_int_equal(aliases_expand(a, "list", &r, &err), 1);
        assert_int_equal(r.v[0].from_include, 1);
        assert_non_null(strstr(r.v[0].source, "/inc1:1"));
        assert_int_equal(r.v[3].from_include, 0);
        aliases_result_free(&r);
    }
    aliases_unref(&a);
    buf_free(&err);
}

/* A reference taken before a swap keeps the old tables usable. */
static void
test_current(void **state)
{
    const char *p1 = write_file("a: one\n");
    aliases_result_t r;
    aliases_t *held;
    aliases_t *now;
    buf_t err;
    buf_t got;

    buf_init(&err);
    assert_null(aliases_current());
    aliases_set_current(open_one(p1, &err));
    held = aliases_current();
    assert_non_null(held);
    aliases_set_current(open_one(write_file("a: two\n"), &err));
    memset(&r, 0, sizeof(r));
    buf_init(&got);
    assert_int_equal(aliases_lookup(held, "a", &r), 1);
    describe(&r, &got);
    assert_string_equal(got.data, "addr:one");
    aliases_result_free(&r);
    buf_reset(&got);
    now = aliases_current();
    assert_int_equal(aliases_lookup(now, "a", &r), 1);
    describe(&r, &got);
    assert_string_equal(got.data, "addr:two");
    aliases_result_free(&r);
    aliases_unref(&held);
    aliases_unref(&now);
    aliases_set_current(NULL);
    assert_null(aliases_current());
    aliases_unref(&now); /* NULL is fine */
    buf_free(&got);
    buf_free(&err);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tern-aliases-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),  cmocka_unit_test(test_source),
        cmocka_unit_test(test_bad),     cmocka_unit_test(test_all_errors),
        cmocka_unit_test(test_specs),   cmocka_unit_test(test_expand),
        cmocka_unit_test(test_current),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
