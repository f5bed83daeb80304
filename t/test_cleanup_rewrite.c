/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of queue/cleanup_rewrite.  Each table-driven test loads a
 * configuration (-o overrides naming tables written to a scratch
 * directory) and checks what addresses become: qualification with
 * @$myorigin, the canonical maps in canonical(5)'s lookup order with
 * their classes and extension propagation, masquerading with its
 * exceptions, virtual alias expansion with its limits, and the
 * rewriting of address headers.
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
#include "lib/config.h"
#include "queue/cleanup_rewrite.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define ES CLEANUP_REWRITE_ENV_SENDER
#define ER CLEANUP_REWRITE_ENV_RCPT
#define HS CLEANUP_REWRITE_HDR_SENDER
#define HR CLEANUP_REWRITE_HDR_RCPT

static char tmpdir[PATH_MAX / 2];
static char canon_path[PATH_MAX];
static char sender_path[PATH_MAX];
static char rcpt_path[PATH_MAX];
static char pcre_path[PATH_MAX];
static char virtual_path[PATH_MAX];

static const char canon_text[] = "old@example.com      new@example.com\n"
                                 "@olddomain.test      @newdomain.test\n"
                                 "@catchall.test       catch@example.com\n"
                                 "alias                localuser@example.com\n"
                                 "joe@example.com      joseph@example.com\n";
static const char sender_text[] = "s@example.com sender-new@example.com\n";
static const char rcpt_text[] = "r@example.com rcpt-new@example.com\n";
static const char pcre_text[] = "/^(.*)@pcre\\.test$/ $1@pcre-new.test\n";
static const char virtual_text[] =
    "a@v.test        b@v.test\n"
    "b@v.test        c@example.com\n"
    "multi@v.test    x@example.com, y@example.com z@example.com\n"
    "self@v.test     self@v.test, copy@example.com\n"
    "loop1@v.test    loop2@v.test\n"
    "loop2@v.test    loop1@v.test\n"
    "@wild.test      catch@example.com\n"
    "dup@v.test      x@example.com, x@example.com, X@example.com\n"
    "plus@v.test     plus-target@example.com\n"
    "fan@v.test      a@v.test, multi@v.test, self@v.test\n";

static void
write_to(char *path, const char *name, const char *text)
{
    FILE *fp;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tern-rewrite-XXXXXX",
             base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    write_to(canon_path, "canonical", canon_text);
    write_to(sender_path, "sender", sender_text);
    write_to(rcpt_path, "recipient", rcpt_text);
    write_to(pcre_path, "canonical.pcre", pcre_text);
    write_to(virtual_path, "virtual", virtual_text);
    return 0;
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
group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Load the embedded defaults with the common overrides and extra. */
static config_t *
load(const char *const *extra, size_t nextra)
{
    char *ov[32];
    size_t n = 0;
    size_t i;
    buf_t err;
    config_t *cfg;

    ov[n++] = strdup("myhostname=mx.origin.test");
    ov[n++] = strdup("myorigin=origin.test");
    ov[n++] = strdup("mydestination=origin.test, localhost");
    ov[n++] = strdup("recipient_delimiter=+");
    for (i = 0; i < nextra && n < N(ov); i++)
        ov[n++] = strdup(extra[i]);
    buf_init(&err);
    cfg = config_load(NULL, ov, n, &err);
    if (cfg == NULL)
        fail_msg("config_load: %s", err.data ? err.data : "?");
    buf_free(&err);
    for (i = 0; i < n; i++)
        free(ov[i]);
    return cfg;
}

/* The canonical overrides, naming the files of the scratch directory. */
static config_t *
load_canonical(const char *const *extra, size_t nextra)
{
    char canon[2 * PATH_MAX + 64];
    char sender[PATH_MAX + 64];
    char rcpt[PATH_MAX + 64];
    const char *ov[16];
    size_t n = 0;
    size_t i;

    snprintf(canon, sizeof(canon), "canonical_maps=texthash:%s, pcre:%s",
             canon_path, pcre_path);
    snprintf(sender, sizeof(sender), "sender_canonical_maps=texthash:%s",
             sender_path);
    snprintf(rcpt, sizeof(rcpt), "recipient_canonical_maps=texthash:%s",
             rcpt_path);
    ov[n++] = canon;
    ov[n++] = sender;
    ov[n++] = rcpt;
    for (i = 0; i < nextra && n < N(ov); i++)
        ov[n++] = extra[i];
    return load(ov, n);
}

struct addr_case {
    int cls;
    const char *addr;
    const char *want;
};

static void
run_addr_cases(const config_t *cfg, const struct addr_case *c, size_t n,
               const char *what)
{
    size_t i;

    for (i = 0; i < n; i++) {
        buf_t out;
        int changed;

        buf_init(&out);
        changed = cleanup_rewrite_addr(cfg, c[i].cls, c[i].addr, &out);
        if (strcmp(out.data ? out.data : "", c[i].want) != 0 ||
            changed != (strcmp(c[i].addr, c[i].want) != 0))
            fail_msg("%s: class %d \"%s\": got \"%s\" (changed %d), want "
                     "\"%s\"",
                     what, c[i].cls, c[i].addr, out.data ? out.data : "",
                     changed, c[i].want);
        buf_free(&out);
    }
}

static void
test_canonical(void **state)
{
    static const struct addr_case cases[] = {
        {ER, "old@example.com", "new@example.com"},
        {ER, "OLD@Example.COM", "new@example.com"},
        {ER, "x@olddomain.test", "x@newdomain.test"},
        {ER, "x+ext@olddomain.test", "x+ext@newdomain.test"},
        {ER, "anyone@catchall.test", "catch@example.com"},
        {ER, "alias@origin.test", "localuser@example.com"},
        {ER, "alias@localhost", "localuser@example.com"},
        {ER, "alias@foreign.test", "alias@foreign.test"},
        {ER, "alias", "localuser@example.com"},
        {ER, "joe+foo@example.com", "joseph+foo@example.com"},
        {ER, "nobody@example.com", "nobody@example.com"},
        {ER, "user", "user@origin.test"},
        {ES, "", ""},
        {ES, "s@example.com", "sender-new@example.com"},
        {ER, "s@example.com", "s@example.com"},
        {ER, "r@example.com", "rcpt-new@example.com"},
        {ES, "r@example.com", "r@example.com"},
        {HS, "s@example.com", "sender-new@example.com"},
        {HR, "r@example.com", "rcpt-new@example.com"},
        {ER, "u@pcre.test", "u@pcre-new.test"},
        {ES, "old@example.com", "new@example.com"},
    };
    config_t *cfg = load_canonical(NULL, 0);

    (void)state;
    run_addr_cases(cfg, cases, N(cases), "canonical");
    config_unref(&cfg);
}

static void
test_canonical_options(void **state)
{
    static const char *const no_append[] = {"append_at_myorigin=no"};
    static const struct addr_case no_append_cases[] = {
        {ER, "user", "user"},
        {ER, "alias", "localuser@example.com"},
    };
    static const char *const no_ext[] = {
        "propagate_unmatched_extensions=virtual",
    };
    static const struct addr_case no_ext_cases[] = {
        {ER, "joe+foo@example.com", "joseph@example.com"},
    };
    static const char *const classes[] = {
        "canonical_classes=envelope_sender",
        "sender_canonical_classes=header_sender",
    };
    static const struct addr_case classes_cases[] = {
        {ER, "old@example.com", "old@example.com"},
        {ES, "old@example.com", "new@example.com"},
        {HS, "old@example.com", "old@example.com"},
        {ES, "s@example.com", "s@example.com"},
        {HS, "s@example.com", "sender-new@example.com"},
    };
    config_t *cfg;

    (void)state;
    cfg = load_canonical(no_append, N(no_append));
    run_addr_cases(cfg, no_append_cases, N(no_append_cases), "no append");
    config_unref(&cfg);
    cfg = load_canonical(no_ext, N(no_ext));
    run_addr_cases(cfg, no_ext_cases, N(no_ext_cases), "no propagation");
    config_unref(&cfg);
    cfg = load_canonical(classes, N(classes));
    run_addr_cases(cfg, classes_cases, N(classes_cases), "classes");
    config_unref(&cfg);
}

static void
test_bad_classes(void **state)
{
    static const char *const bad[] = {
        "masquerade_classes=envelope_sender, header_bogus",
        "propagate_unmatched_extensions=canonical, nonsense",
    };
    size_t i;

    (void)state;
    cleanup_rewrite_register();
    for (i = 0; i < N(bad); i++) {
        char *ov = strdup(bad[i]);
        buf_t err;
        config_t *cfg;

        buf_init(&err);
        cfg = config_load(NULL, &ov, 1, &err);
        assert_null(cfg);
        assert_non_null(err.data);
        assert_non_null(strstr(err.data, "-o "));
        assert_non_null(strstr(err.data, strrchr(bad[i], ' ') + 1));
        buf_free(&err);
        free(ov);
    }
}

static void
test_masquerade(void **state)
{
    static const char *const ov[] = {
        "masquerade_domains=!keep.example.net, example.net",
        "masquerade_exceptions=root",
    };
    static const struct addr_case cases[] = {
        {ES, "u@host.example.net", "u@example.net"},
        {ES, "u@a.b.example.net", "u@example.net"},
        {ES, "u@example.net", "u@example.net"},
        {ES, "u@a.keep.example.net", "u@a.keep.example.net"},
        {ES, "u@keep.example.net", "u@keep.example.net"},
        {ES, "root@host.example.net", "root@host.example.net"},
        {ER, "u@host.example.net", "u@host.example.net"},
        {HR, "u@host.example.net", "u@example.net"},
        {HS, "u@HOST.Example.NET", "u@example.net"},
        {ES, "u@notexample.net", "u@notexample.net"},
        {ES, "", ""},
    };
    config_t *cfg = load(ov, N(ov));

    (void)state;
    run_addr_cases(cfg, cases, N(cases), "masquerade");
    config_unref(&cfg);
}

struct virtual_case {
    const char *addr;
    int rc;
    const char *want; /* the list joined by "," */
};

static void
run_virtual_cases(const config_t *cfg, const struct virtual_case *c, size_t n)
{
    size_t i;
    size_t k;

    for (i = 0; i < n; i++) {
        cleanup_rewrite_list_t list = {NULL, 0, 0};
        buf_t why;
        buf_t got;
        int rc;

        buf_init(&why);
        buf_init(&got);
        rc = cleanup_rewrite_virtual(cfg, c[i].addr, &list, &why);
        for (k = 0; k < list.n; k++)
            buf_printf(&got, "%s%s", k ? "," : "", list.addr[k]);
        if (rc != c[i].rc ||
            (rc == 0 && strcmp(got.data ? got.data : "", c[i].want) != 0) ||
            (rc < 0 &&
             (why.data == NULL || strstr(why.data, c[i].want) == NULL)))
            fail_msg("virtual \"%s\": rc %d, got \"%s\" (%s), want %d \"%s\"",
                     c[i].addr, rc, got.data ? got.data : "",
                     why.data ? why.data : "", c[i].rc, c[i].want);
        cleanup_rewrite_list_free(&list);
        buf_free(&why);
        buf_free(&got);
    }
}

static void
test_virtual(void **state)
{
    static const struct virtual_case cases[] = {
        {"a@v.test", 0, "c@example.com"},
        {"multi@v.test", 0, "x@example.com,y@example.com,z@example.com"},
        {"self@v.test", 0, "self@v.test,copy@example.com"},
        {"anyone@wild.test", 0, "catch@example.com"},
        {"dup@v.test", 0, "x@example.com"},
        {"nothing@example.com", 0, "nothing@example.com"},
        {"plus+tag@v.test", 0, "plus-target+tag@example.com"},
        {"fan@v.test", 0,
         "c@example.com,x@example.com,self@v.test,y@example.com,"
         "z@example.com,copy@example.com"},
        {"loop1@v.test", -1, "nesting for loop1@v.test"},
    };
    char maps[PATH_MAX + 64];
    const char *ov[1];
    config_t *cfg;

    (void)state;
    snprintf(maps, sizeof(maps), "virtual_alias_maps=texthash:%s",
             virtual_path);
    ov[0] = maps;
    cfg = load(ov, N(ov));
    run_virtual_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

static void
test_virtual_limits(void **state)
{
    static const struct virtual_case cases[] = {
        {"a@v.test", -1, "nesting for a@v.test"},
        {"b@v.test", 0, "c@example.com"},
        {"multi@v.test", -1, "expansion size for multi@v.test"},
        {"self@v.test", 0, "self@v.test,copy@example.com"},
    };
    char maps[PATH_MAX + 64];
    const char *ov[3];
    config_t *cfg;

    (void)state;
    snprintf(maps, sizeof(maps), "virtual_alias_maps=texthash:%s",
             virtual_path);
    ov[0] = maps;
    ov[1] = "virtual_alias_recursion_limit=1";
    ov[2] = "virtual_alias_expansion_limit=2";
    cfg = load(ov, N(ov));
    run_virtual_cases(cfg, cases, N(cases));
    config_unref(&cfg);
}

/* With no virtual_alias_maps the address stands, once. */
static void
test_virtual_none(void **state)
{
    cleanup_rewrite_list_t list = {NULL, 0, 0};
    config_t *cfg = load(NULL, 0);
    buf_t why;

    (void)state;
    buf_init(&why);
    assert_int_equal(cleanup_rewrite_virtual(cfg, "a@b", &list, &why), 0);
    assert_int_equal(cleanup_rewrite_virtual(cfg, "A@B", &list, &why), 0);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.addr[0], "a@b");
    cleanup_rewrite_list_free(&list);
    buf_free(&why);
    config_unref(&cfg);
}

static void
test_headers(void **state)
{
    static const struct {
        const char *hdr;
        const char *want; /* NULL: unchanged */
    } cases[] = {
        {"From: Joe <alias>", "From: Joe <localuser@example.com>"},
        {"To: old@example.com, \"B, b\" <x@olddomain.test>",
         "To: new@example.com, \"B, b\" <x@newdomain.test>"},
        {"cc: (c) old@example.com (old)", "cc: (c) new@example.com (old)"},
        {"To: a@b,\n\told@example.com", "To: a@b,\n\tnew@example.com"},
        {"Subject: old@example.com", NULL},
        {"To: nobody@example.com", NULL},
        {"Cc: undisclosed-recipients:;", NULL},
        {"Reply-To: s@example.com", "Reply-To: sender-new@example.com"},
        {"To: s@example.com", NULL},
        {"Sender: user", "Sender: user@origin.test"},
        {"From:", NULL},
        {"X-No-Colon", NULL},
    };
    config_t *cfg = load_canonical(NULL, 0);
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        buf_t out;
        int changed;

        buf_init(&out);
        changed = cleanup_rewrite_header(cfg, cases[i].hdr,
                                         strlen(cases[i].hdr), &out);
        if (changed != (cases[i].want != NULL) ||
            (cases[i].want &&
             strcmp(out.data ? out.data : "", cases[i].want) != 0) ||
            (!cases[i].want && out.len != 0))
            fail_msg("header \"%s\": changed %d, got \"%s\"", cases[i].hdr,
                     changed, out.data ? out.data : "");
        buf_free(&out);
    }
    config_unref(&cfg);
}

static void
test_header_class(void **state)
{
    (void)state;
    assert_int_equal(cleanup_rewrite_header_class("FROM", 4), HS);
    assert_int_equal(cleanup_rewrite_header_class("Resent-To", 9), HR);
    assert_int_equal(cleanup_rewrite_header_class("Fro", 3), 0);
    assert_int_equal(cleanup_rewrite_header_class("Subject", 7), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_canonical_options),
        cmocka_unit_test(test_bad_classes),
        cmocka_unit_test(test_masquerade),
        cmocka_unit_test(test_virtual),
        cmocka_unit_test(test_virtual_limits),
        cmocka_unit_test(test_virtual_none),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_header_class),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
