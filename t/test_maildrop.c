/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of server/maildrop (the files sendmail leaves for pickup)
 * and server/sendmail_rcpt (the recipients sendmail takes from its
 * arguments and, with -t, from the headers).
 *
 * The reader gets a table of good files and the fields they must yield,
 * a table of bad ones and the reason each must be refused with, and
 * every prefix of a good file, which must all be refused: a file cut
 * short at any byte is never taken.  A formatted header must read back
 * as what was formatted, and maildrop_write must leave exactly one file
 * under a final name and no temporary one.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "server/maildrop.h"
#include "server/sendmail_rcpt.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define HEAD "tern-maildrop 1\nuid 1000\nuser alice\ntime 1700000000000000\n"

struct good_case {
    const char *file;
    const char *sender;
    size_t nrcpt;
    const char *rcpt0;
    int notify0;
    const char *orcpt0;
    const char *fullname;
    const char *envid;
    enum dsn_ret ret;
    int body_8bit;
    const char *body;
};

static const struct good_case good[] = {
    {HEAD "sender alice\nrcpt bob@example.org\nsize 6\n\nhello\n", "alice", 1,
     "bob@example.org", 0, NULL, NULL, NULL, DSN_RET_DEFAULT, 0, "hello\n"},
    /* The null sender, and an empty message. */
    {HEAD "sender \nrcpt bob\nsize 0\n\n", "", 1, "bob", 0, NULL, NULL, NULL,
     DSN_RET_DEFAULT, 0, ""},
    /* Every optional field; fields may come in any order. */
    {"tern-maildrop 1\nsize 3\nsender a@x\nfullname J. Random "
     "Hacker\nenvid ID-1\nret hdrs\nbody 8bitmime\nrcpt "
     "c@y\nnotify success,delay\norcpt rfc822;c@y\nrcpt d@y\nnotify "
     "never\ntime 1\nuser bob\nuid 0\n\nx\n\n",
     "a@x", 2, "c@y", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY, "rfc822;c@y",
     "J. Random Hacker", "ID-1", DSN_RET_HDRS, 1, "x\n\n"},
    /* UTF-8 in a field; bytes of any kind in the message. */
    {HEAD "sender j\xc3\xb6rg@example.org\nrcpt b@x\nret full\nbody "
          "7bit\nsize 4\n\n\x01\xff\r\n",
     "j\xc3\xb6rg@example.org", 1, "b@x", 0, NULL, NULL, NULL, DSN_RET_FULL, 0,
     "\x01\xff\r\n"},
};

static void
test_parse_good(void **state)
{
    size_t i;

    for (i = 0; i < N(good); i++) {
        const struct good_case *c = &good[i];
        const char *file = c->file;
        size_t len = strlen(file);
        char err[300] = "";
        maildrop_t m;
        size_t body;

        maildrop_init(&m);
        if (maildrop_parse(file, len, &m, &body, err, sizeof(err)) != 0)
            fail_msg("case %zu refused: %s", i, err);
        assert_string_equal(m.sender, c->sender);
        assert_int_equal(m.nrcpt, c->nrcpt);
        assert_string_equal(m.rcpts[0].addr, c->rcpt0);
        assert_int_equal(m.rcpts[0].notify, c->notify0);
        if (c->orcpt0)
            assert_string_equal(m.rcpts[0].orcpt, c->orcpt0);
        else
            assert_null(m.rcpts[0].orcpt);
        if (c->fullname)
            assert_string_equal(m.fullname, c->fullname);
        else
            assert_null(m.fullname);
        if (c->envid)
            assert_string_equal(m.envid, c->envid);
        else
            assert_null(m.envid);
        assert_int_equal(m.ret, c->ret);
        assert_int_equal(m.body_8bit, c->body_8bit);
        assert_int_equal(len - body, strlen(c->body));
        assert_memory_equal(file + body, c->body, len - body);
        maildrop_clear(&m);
    }
}

struct bad_case {
    const char *file;
    const char *why; /* a part of the reason */
};

static const struct bad_case bad[] = {
    {"", "not a maildrop file"},
    {"From root Mon Jan 1\n", "not a maildrop file"},
    {"tern-maildrop 2\nuid 1\n", "not a version 1 maildrop file"},
    {"tern-maildrop 1 \n", "not a version 1 maildrop file"},
    {HEAD "sender a\nrcpt b\nsize 1\n\n", "0 bytes after the header, size "
                                          "says 1"},
    {HEAD "sender a\nrcpt b\nsize 1\n\nxy", "2 bytes after the header"},
    {HEAD "sender a\nrcpt b\nsize 0\n", "line 8: the header has no end"},
    {HEAD "sender a\nrcpt b\n\n", "a required field is missing"},
    {"tern-maildrop 1\nuser a\ntime 1\nsender a\nrcpt b\nsize 0\n\n",
     "a required field is missing"},
    {HEAD "sender a\nsize 0\n\n", "no recipients"},
    {HEAD "sender a\nsender b\nrcpt b\nsize 0\n\n",
     "line 6: field \"sender\" given twice"},
    {HEAD "uid 2\nsender a\nrcpt b\nsize 0\n\n", "field \"uid\" given twice"},
    {HEAD "sender a\nrcpt b\nhops 3\nsize 0\n\n",
     "line 7: unknown field \"hops\""},
    {HEAD "sender a\nrcpt \nsize 0\n\n", "empty recipient"},
    {HEAD "sender a\nnotify never\nrcpt b\nsize 0\n\n",
     "\"notify\" before any rcpt"},
    {HEAD "sender a\nrcpt b\nnotify never\nnotify never\nsize 0\n\n",
     "\"notify\" given twice for one rcpt"},
    {HEAD "sender a\nrcpt b\nnotify sometimes\nsize 0\n\n", "bad notify"},
    {HEAD "sender a\nrcpt b\nnotify success,\nsize 0\n\n", "bad notify"},
    {HEAD "sender a\nrcpt b\nnotify success,success\nsize 0\n\n", "bad notify"},
    {HEAD "sender a\nrcpt b\norcpt c@d\nsize 0\n\n", "bad orcpt"},
    {HEAD "sender a\nrcpt b\nret some\nsize 0\n\n", "bad ret"},
    {HEAD "sender a\nrcpt b\nbody binarymime\nsize 0\n\n", "bad body"},
    {HEAD "sender a\nrcpt b\nenvid \nsize 0\n\n", "bad envid"},
    {HEAD "sender a\nrcpt b\nsize -1\n\n", "bad size"},
    {HEAD "sender a\nrcpt b\nsize 01\n\nx", "bad size"},
    {HEAD "sender a\nrcpt b\nsize 99999999999999999999999\n\n", "bad size"},
    {"tern-maildrop 1\nuid 4294967295\nuser a\ntime 1\nsender a\nrcpt "
     "b\nsize 0\n\n",
     "bad uid"},
    {"tern-maildrop 1\nuid x\n", "bad uid"},
    {"tern-maildrop 1\nuid 1\nuser \n", "empty user"},
    {"tern-maildrop 1\ntime 1.5\n", "bad time"},
    {HEAD "sender a\tb\nrcpt b\nsize 0\n\n", "a control character"},
    {HEAD "sender a\r\nrcpt b\nsize 0\n\n", "a control character"},
    {HEAD "sender \xc3\nrcpt b\nsize 0\n\n", "invalid UTF-8"},
    {HEAD "sender \xed\xa0\x80\nrcpt b\nsize 0\n\n", "invalid UTF-8"},
    {HEAD "sender \xc0\xaf\nrcpt b\nsize 0\n\n", "invalid UTF-8"},
    {HEAD "sender a\nrcpt\nsize 0\n\n", "line 6: not a \"name value\" line"},
    {HEAD "Sender a\nrcpt b\nsize 0\n\n", "bad field name"},
    {HEAD " sender a\nrcpt b\nsize 0\n\n", "bad field name"},
};

static void
test_parse_bad(void **state)
{
    size_t i;

    for (i = 0; i < N(bad); i++) {
        char err[300] = "";
        maildrop_t m;
        size_t body = 12345;

        maildrop_init(&m);
        if (maildrop_parse(bad[i].file, strlen(bad[i].file), &m, &body, err,
                           sizeof(err)) == 0)
            fail_msg("bad case %zu was accepted", i);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("bad case %zu: \"%s\" does not say \"%s\"", i, err,
                     bad[i].why);
        assert_int_equal(body, 12345);
        maildrop_clear(&m);
    }
}

/* A NUL inside the header is a control character, not an end. */
static void
test_parse_nul(void **state)
{
    static const char file[] = HEAD "sender a\0b\nrcpt b\nsize 0\n\n";
    char err[300] = "";
    maildrop_t m;
    size_t body;

    maildrop_init(&m);
    assert_int_equal(
        maildrop_parse(file, sizeof(file) - 1, &m, &body, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "a control character"));
    maildrop_clear(&m);
}

/* Every proper prefix of every good file is refused. */
static void
test_parse_truncated(void **state)
{
    size_t i;
    size_t cut;

    for (i = 0; i < N(good); i++) {
        size_t len = strlen(good[i].file);

        for (cut = 0; cut < len; cut++) {
            char *copy = malloc(cut + 1);
            char err[300];
            maildrop_t m;
            size_t body;

            /* A copy of just cut bytes, so that a read past it is an
             * error under a memory checker. */
            memcpy(copy, good[i].file, cut);
            maildrop_init(&m);
            if (maildrop_parse(copy, cut, &m, &body, err, sizeof(err)) == 0)
                fail_msg("good case %zu cut to %zu bytes was accepted", i, cut);
            maildrop_clear(&m);
            free(copy);
        }
    }
}

/* What maildrop_format writes reads back the same. */
static void
test_format_roundtrip(void **state)
{
    static const char msg[] = "Subject: x\n\nbody\n";
    maildrop_rcpt_t *r;
    maildrop_t m;
    maildrop_t back;
    const char *why;
    buf_t b;
    size_t body;
    char err[300];

    maildrop_init(&m);
    m.uid = 42;
    maildrop_set(&m.user, "carol");
    m.time_us = 1700000000123456;
    maildrop_set(&m.sender, "");
    maildrop_set(&m.fullname, "Carol \"C\" Example");
    maildrop_set(&m.envid, "QQ314159");
    m.ret = DSN_RET_FULL;
    m.body_8bit = 1;
    r = maildrop_add_rcpt(&m, "dave@example.org");
    r->notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    r->orcpt = strdup("rfc822;Dave@Example.org");
    r = maildrop_add_rcpt(&m, "\"e e\"@example.org");
    r->notify = DSN_NOTIFY_NEVER;
    buf_init(&b);
    assert_int_equal(maildrop_format(&m, sizeof(msg) - 1, &b, &why), 0);
    buf_append(&b, msg, sizeof(msg) - 1);
    maildrop_init(&back);
    if (maildrop_parse(b.data, b.len, &back, &body, err, sizeof(err)) != 0)
        fail_msg("formatted file refused: %s\n%s", err, b.data);
    assert_int_equal(back.uid, 42);
    assert_string_equal(back.user, "carol");
    assert_true(back.time_us == m.time_us);
    assert_string_equal(back.sender, "");
    assert_string_equal(back.fullname, m.fullname);
    assert_string_equal(back.envid, "QQ314159");
    assert_int_equal(back.ret, DSN_RET_FULL);
    assert_int_equal(back.body_8bit, 1);
    assert_int_equal(back.nrcpt, 2);
    assert_string_equal(back.rcpts[0].addr, "dave@example.org");
    assert_int_equal(back.rcpts[0].notify,
                     DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    assert_string_equal(back.rcpts[0].orcpt, "rfc822;Dave@Example.org");
    assert_string_equal(back.rcpts[1].addr, "\"e e\"@example.org");
    assert_int_equal(back.rcpts[1].notify, DSN_NOTIFY_NEVER);
    assert_null(back.rcpts[1].orcpt);
    assert_string_equal(b.data + body, msg);
    maildrop_clear(&back);

    /* A field that the reader would refuse is not written. */
    buf_reset(&b);
    maildrop_set(&m.fullname, "bad\nname");
    assert_int_equal(maildrop_format(&m, 0, &b, &why), -1);
    assert_non_null(strstr(why, "control character"));
    maildrop_clear(&m);
    buf_reset(&b);
    maildrop_init(&m);
    m.uid = 1;
    maildrop_set(&m.user, "u");
    assert_int_equal(maildrop_format(&m, 0, &b, &why), -1);
    assert_string_equal(why, "no recipients");
    maildrop_clear(&m);
    buf_free(&b);
}

static void
test_names(void **state)
{
    assert_true(maildrop_name_final("M000661c0ca92d70100004241f4063a"));
    assert_false(maildrop_name_temp("M000661c0ca92d70100004241f4063a"));
    assert_true(maildrop_name_temp("T000661c0ca92d70100004241f4063a"));
    assert_false(maildrop_name_final("M000661c0ca92d70100004241f4063"));
    assert_false(maildrop_name_final("M000661c0ca92d70100004241f4063aa"));
    assert_false(maildrop_name_final("M000661C0CA92D70100004241F4063A"));
    assert_false(maildrop_name_final(".M000661c0ca92d70100004241f4063"));
    assert_false(maildrop_name_final(""));
}

/* maildrop_write leaves one final file that parses, nothing else. */
static void
test_write(void **state)
{
    char dir[] = "/tmp/tern-maildrop-XXXXXX";
    char name[MAILDROP_NAME_SIZE];
    char path[PATH_MAX];
    char err[300];
    struct dirent *de;
    struct stat st;
    maildrop_t m;
    maildrop_t back;
    buf_t e;
    buf_t data;
    size_t body;
    DIR *d;
    FILE *fp;
    int n = 0;
    int c;

    assert_non_null(mkdtemp(dir));
    maildrop_init(&m);
    m.uid = (long)getuid();
    maildrop_set(&m.user, "tester");
    maildrop_set(&m.sender, "tester");
    maildrop_add_rcpt(&m, "root");
    buf_init(&e);
    assert_int_equal(maildrop_write(dir, &m, "hi\n", 3, name, &e), 0);
    assert_true(maildrop_name_final(name));
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        assert_string_equal(de->d_name, name);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    fp = fopen(path, "r");
    assert_non_null(fp);
    buf_init(&data);
    while ((c = fgetc(fp)) != EOF)
        buf_putc(&data, c);
    fclose(fp);
    maildrop_init(&back);
    assert_int_equal(
        maildrop_parse(data.data, data.len, &back, &body, err, sizeof(err)), 0);
    assert_string_equal(data.data + body, "hi\n");
    assert_int_equal(back.uid, (long)getuid());
    maildrop_clear(&back);
    buf_free(&data);
    unlink(path);

    /* A directory that does not exist: an error, nothing left. */
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(maildrop_write(path, &m, "hi\n", 3, name, &e), -1);
    assert_non_null(strstr(e.data, "cannot create"));
    buf_free(&e);
    maildrop_clear(&m);
    assert_int_equal(rmdir(dir), 0);
}

/* Recipients */

struct rcpt_case {
    const char *text;
    const char *want; /* the addresses, joined by " | " */
};

static const struct rcpt_case rcpt_cases[] = {
    {"alice", "alice"},
    {"alice@example.org", "alice@example.org"},
    {"Alice <alice@example.org>, bob@example.org",
     "alice@example.org | bob@example.org"},
    {"\"Doe, John\" <john@example.org>", "john@example.org"},
    {"john@example.org (John, the one)", "john@example.org"},
    {"undisclosed-recipients:;", ""},
    {"team: a@x, b@y;, c@z", "a@x | b@y | c@z"},
    {"<@relay.example:user@example.org>", "user@example.org"},
    {"\"a b\"@example.org", "\"a b\"@example.org"},
    {"a@x,\n\tb@y", "a@x | b@y"},
    {"A@x, a@X", "A@x"},
    {"", ""},
};

static void
join(const sendmail_rcpt_list_t *l, buf_t *out)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        buf_printf(out, "%s%s", i ? " | " : "", l->v[i]);
}

static void
test_rcpt_parse(void **state)
{
    size_t i;

    for (i = 0; i < N(rcpt_cases); i++) {
        sendmail_rcpt_list_t l;
        buf_t got;

        memset(&l, 0, sizeof(l));
        buf_init(&got);
        sendmail_rcpt_parse(rcpt_cases[i].text, strlen(rcpt_cases[i].text), &l);
        join(&l, &got);
        if (strcmp(got.data ? got.data : "", rcpt_cases[i].want) != 0)
            fail_msg("\"%s\": got \"%s\", want \"%s\"", rcpt_cases[i].text,
                     got.data ? got.data : "", rcpt_cases[i].want);
        buf_free(&got);
        sendmail_rcpt_free(&l);
    }
}

struct extract_case {
    const char *msg;
    const char *want;   /* the addresses */
    const char *result; /* the message after */
};

static const struct extract_case extract_cases[] = {
    /* cron's shape */
    {"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> ls\n\nout\n",
     "root",
     "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> ls\n\nout\n"},
    /* Bcc: is taken and removed, continuation lines too. */
    {"To: a@x\nCc: b@y,\n c@z\nBcc: secret@w,\n\tother@w\nSubject: s\n\nTo: "
     "body@q\n",
     "a@x | b@y | c@z | secret@w | other@w",
     "To: a@x\nCc: b@y,\n c@z\nSubject: s\n\nTo: body@q\n"},
    /* Header names are not case-sensitive; an empty Bcc: goes too. */
    {"tO: a@x\nBCC:\nsubject: s\n\n", "a@x", "tO: a@x\nsubject: s\n\n"},
    /* With Resent- headers, only those count. */
    {"To: old@x\nResent-To: new@y\nResent-Bcc: hidden@z\n\nb\n",
     "new@y | hidden@z", "To: old@x\nResent-To: new@y\n\nb\n"},
    /* A message without a header: nothing. */
    {"just a body\nTo: x@y\n", "", "just a body\nTo: x@y\n"},
    /* The last header line without a newline. */
    {"To: a@x", "a@x", "To: a@x"},
    {"Bcc: a@x", "a@x", ""},
};

static void
test_rcpt_extract(void **state)
{
    size_t i;

    for (i = 0; i < N(extract_cases); i++) {
        const struct extract_case *c = &extract_cases[i];
        sendmail_rcpt_list_t l;
        buf_t msg;
        buf_t got;

        memset(&l, 0, sizeof(l));
        buf_init(&msg);
        buf_init(&got);
        buf_puts(&msg, c->msg);
        sendmail_rcpt_extract(&msg, &l);
        join(&l, &got);
        if (strcmp(got.data ? got.data : "", c->want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i,
                     got.data ? got.data : "", c->want);
        if (strcmp(msg.data, c->result) != 0)
            fail_msg("case %zu: message became \"%s\"", i, msg.data);
        buf_free(&msg);
        buf_free(&got);
        sendmail_rcpt_free(&l);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_nul),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_rcpt_parse),
        cmocka_unit_test(test_rcpt_extract),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
