/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of server/smtpd_auth: password files written to a scratch
 * directory, with hashes made at run time by libcrypt and one fixed
 * hash made by "openssl passwd -6 -salt saltsalt secret"; base64, PLAIN
 * and LOGIN decoding against tables of good and bad input; the failure
 * limiter driven by a simulated clock; checks and failures from eight
 * threads at once; and the failure log line read back from a log file
 * and matched as fail2ban's postfix-sasl filter matches it.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "server/smtpd_auth.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* openssl passwd -6 -salt saltsalt secret */
#define FIXED6 "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0" \
               "aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"

#define THREADS 8

static char tmpdir[PATH_MAX / 2];
static char logpath[PATH_MAX];
static int nfiles;

/* Hashes made in group_setup. */
static char hash6[CRYPT_OUTPUT_SIZE];
static char hash5[CRYPT_OUTPUT_SIZE];
static char hashy[CRYPT_OUTPUT_SIZE];
static char hashy_cheap[CRYPT_OUTPUT_SIZE];
static char hashdes[CRYPT_OUTPUT_SIZE];

/* Hash password with setting into out; returns 0, or -1 if libcrypt
 * does not do that method. */
static int
make_hash(const char *password, const char *setting, char *out, size_t len)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    const char *h;
    int rc = -1;

    if (cd == NULL)
        return -1;
    h = crypt_r(password, setting, cd);
    if (h != NULL && h[0] != '*' && strlen(h) < len) {
        memcpy(out, h, strlen(h) + 1);
        rc = 0;
    }
    free(cd);
    return rc;
}

/* Write len bytes (strlen(text) if len is 0) to a new file in the
 * scratch directory; returns its path (static storage, overwritten by
 * the next call). */
static const char *
write_file(const char *text, size_t len)
{
    static char path[PATH_MAX];
    FILE *fp;

    if (len == 0)
        len = strlen(text);
    snprintf(path, sizeof(path), "%s/passwd-%d", tmpdir, ++nfiles);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* A copy of fmt with every "%s" replaced by path; the caller frees it. */
static char *
with_path(const char *fmt, const char *path)
{
    buf_t b;
    const char *p;

    buf_init(&b);
    while ((p = strstr(fmt, "%s")) != NULL) {
        buf_append(&b, fmt, (size_t)(p - fmt));
        buf_puts(&b, path);
        fmt = p + 2;
    }
    buf_puts(&b, fmt);
    return buf_steal(&b);
}

static long
log_mark(void)
{
    struct stat st;

    if (stat(logpath, &st) < 0)
        return 0;
    return (long)st.st_size;
}

/* What was logged since mark; the caller frees it. */
static char *
log_since(long mark)
{
    FILE *fp = fopen(logpath, "r");
    char *s;
    long end;
    size_t n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    end = ftell(fp);
    s = calloc(1, (size_t)(end - mark) + 1);
    assert_non_null(s);
    fseek(fp, mark, SEEK_SET);
    n = fread(s, 1, (size_t)(end - mark), fp);
    s[n] = '\0';
    fclose(fp);
    return s;
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
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_auth-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    if (log_open(LOG_DEST_FILE, "tern", logpath) < 0)
        return -1;
    log_set_role("smtpd");

    if (make_hash("six-secret", "$6$testsalt", hash6, sizeof(hash6)) < 0
        || make_hash("five-secret", "$5$salt5", hash5, sizeof(hash5)) < 0)
        return -1;
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL
        || make_hash("yes-secret", setting, hashy, sizeof(hashy)) < 0)
        return -1;
    if (crypt_gensalt_rn("$y$", 1, NULL, 0, setting, sizeof(setting)) == NULL
        || make_hash("cheap-secret", setting, hashy_cheap,
                     sizeof(hashy_cheap)) < 0)
        return -1;

    /* Traditional DES is optional in libcrypt; its row is skipped if
     * this one is built without it. */
    if (make_hash("des-pw", "ab", hashdes, sizeof(hashdes)) < 0)
        hashdes[0] = '\0';
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    log_open(LOG_DEST_STDERR, "tern", NULL);
    if (getenv("TERN_KEEP_TESTDIR") == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Open text as a password file; fails the test if it does not open. */
static smtpd_auth_db_t *
open_text(const char *text)
{
    buf_t err;
    smtpd_auth_db_t *db;

    buf_init(&err);
    db = smtpd_auth_db_open(write_file(text, 0), &err);
    if (db == NULL)
        fail_msg("unexpected errors: %s", err.data);
    assert_int_equal(err.len, 0);
    buf_free(&err);
    return db;
}

/*
 * Password files that open.
 */

/* The file every row of good_checks runs against. */
static char *
good_file(void)
{
    buf_t b;

    buf_init(&b);
    buf_puts(&b, "# tern test users\n\n   \n\t# indented comment\n");
    buf_printf(&b, "six:%s\n", hash6);
    buf_printf(&b, "five:%s\n", hash5);
    buf_printf(&b, "yes:%s\n", hashy);
    buf_printf(&b, "fixed:%s\n", FIXED6);
    buf_printf(&b, "crlf:%s\r\n", FIXED6);
    buf_printf(&b, "dovecot:{SHA512-CRYPT}%s:1000:1000::/home/d::\n", hash6);
    buf_printf(&b, "crypt:{crypt}%s\n", hash5);
    buf_printf(&b, "htpasswd:%s:Some Person\n", hashy);
    buf_printf(&b, "user@example.test:%s\n", FIXED6);
    if (hashdes[0])
        buf_printf(&b, "des:%s\n", hashdes);
    buf_printf(&b, "last:%s", FIXED6); /* no final newline */
    return buf_steal(&b);
}

static const struct {
    const char *user;
    const char *password;
    int want;
} good_checks[] = {
    {"six", "six-secret", 1},
    {"six", "six-secreT", 0},
    {"six", "six-secret ", 0},
    {"six", "six-secre", 0},
    {"six", "", 0},
    {"SIX", "six-secret", 0},
    {"five", "five-secret", 1},
    {"five", "six-secret", 0},
    {"yes", "yes-secret", 1},
    {"yes", "yes-secre", 0},
    {"fixed", "secret", 1},
    {"fixed", "Secret", 0},
    {"crlf", "secret", 1},
    {"dovecot", "six-secret", 1},
    {"dovecot", "1000", 0},
    {"crypt", "five-secret", 1},
    {"htpasswd", "yes-secret", 1},
    {"user@example.test", "secret", 1},
    {"user", "secret", 0},
    {"des", "des-pw", 1},
    {"des", "des-pX", 0},
    {"last", "secret", 1},
    {"nobody", "secret", 0},
    {"nobody", "", 0},
    {"", "secret", 0},
    {"# tern test users", "secret", 0},
};

static void
test_db_good(void **state)
{
    char *text = good_file();
    smtpd_auth_db_t *db = open_text(text);
    size_t i;

    (void)state;
    assert_int_equal(smtpd_auth_db_count(db), hashdes[0] ? 11 : 10);
    for (i = 0; i < N(good_checks); i++) {
        int got;

        if (strcmp(good_checks[i].user, "des") == 0 && hashdes[0] == '\0')
            continue;
        got = smtpd_auth_db_check(db, good_checks[i].user,
                                  good_checks[i].password);
        if (got != good_checks[i].want)
            fail_msg("check(%s, %s): got %d, want %d", good_checks[i].user,
                     good_checks[i].password, got, good_checks[i].want);
    }
    assert_int_equal(smtpd_auth_db_check(db, NULL, "secret"), 0);
    assert_int_equal(smtpd_auth_db_check(db, "fixed", NULL), 0);
    assert_int_equal(smtpd_auth_db_check(NULL, "fixed", "secret"), 0);
    smtpd_auth_db_free(&db);
    assert_null(db);
    free(text);
}

/* Forms that are crypt(3) hashes open even if no password matches. */
static const char *const good_forms[] = {
    "a:abcdefghijklm\n",
    "a:_J9..abcdefghijklmno\n",
    "a:$6$rounds=5000$salt$abc\n",
    "a:$2b$05$abcdefghijklmnopqrstuu\n",
    "a:$1$abc$def\n",
    "a:$y$j9T$abc$def\n",
    "a:{MD5-CRYPT}$1$abc$def\n",
    "",
    "# only a comment\n",
    "\n\n\n",
};

static void
test_db_good_forms(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(good_forms); i++) {
        smtpd_auth_db_t *db = open_text(good_forms[i]);

        assert_int_equal(smtpd_auth_db_check(db, "a", "x"), 0);
        smtpd_auth_db_free(&db);
    }
}

static void
test_db_empty(void **state)
{
    smtpd_auth_db_t *db = open_text("# nobody here\n");

    (void)state;
    assert_int_equal(smtpd_auth_db_count(db), 0);
    assert_int_equal(smtpd_auth_db_check(db, "a", "secret"), 0);
    smtpd_auth_db_free(&db);
    smtpd_auth_db_free(&db);
    smtpd_auth_db_free(NULL);
}

static void
test_db_ref(void **state)
{
    smtpd_auth_db_t *db = open_text("fixed:" FIXED6 "\n");
    smtpd_auth_db_t *other = smtpd_auth_db_ref(db);

    (void)state;
    assert_ptr_equal(other, db);
    smtpd_auth_db_free(&db);
    assert_null(db);
    assert_int_equal(smtpd_auth_db_check(other, "fixed", "secret"), 1);
    smtpd_auth_db_free(&other);
}

/*
 * Password files that do not open.  "%s" in want stands for the path.
 */

static const struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *want;
} bad_files[] = {
    {"nocolon\n", 0, "%s:1: missing \":\" after the user name\n"},
    {":" FIXED6 "\n", 0, "%s:1: empty user name\n"},
    {"bob:\n", 0, "%s:1: empty password hash for user \"bob\"\n"},
    {"bob:\r\n", 0, "%s:1: empty password hash for user \"bob\"\n"},
    {"bob::1000:1000\n", 0, "%s:1: empty password hash for user \"bob\"\n"},
    {"bob:{SHA512-CRYPT}\n", 0,
     "%s:1: empty password hash for user \"bob\"\n"},
    {"bob:plaintext\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:ab\n", 0, "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:abcdefghijkl!\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:_J9..abc\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:$apr1$abc$def\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:$zz$abc$def\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:!" FIXED6 "\n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:" FIXED6 " \n", 0,
     "%s:1: unrecognized password hash for user \"bob\"\n"},
    {"bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", 0,
     "%s:1: unsupported password scheme {SHA} for user \"bob\"\n"},
    {"bob:{PLAIN}secret\n", 0,
     "%s:1: unsupported password scheme {PLAIN} for user \"bob\"\n"},
    {"b ob:" FIXED6 "\n", 0,
     "%s:1: white space or control character in user name \"b ob\"\n"},
    {" bob:" FIXED6 "\n", 0,
     "%s:1: white space or control character in user name \" bob\"\n"},
    {"bob\001:" FIXED6 "\n", 0,
     "%s:1: white space or control character in user name \"bob\\001\"\n"},
    {"bob:" FIXED6 "\0:x\n", 8 + sizeof(FIXED6) - 1,
     "%s:1: NUL byte in line\n"},
    {"# comment\n\n  \nbob:x\n", 0,
     "%s:4: unrecognized password hash for user \"bob\"\n"},
    {"a:" FIXED6 "\nnocolon\nb:\nc:" FIXED6 "\n", 0,
     "%s:2: missing \":\" after the user name\n"
     "%s:3: empty password hash for user \"b\"\n"},
    {"bob:" FIXED6 "\nalice:" FIXED6 "\nbob:" FIXED6 "\n", 0,
     "%s:3: user \"bob\" already defined at line 1\n"},
    {"bob:" FIXED6 "\nbob:" FIXED6 "\nbob:" FIXED6 "\n", 0,
     "%s:2: user \"bob\" already defined at line 1\n"
     "%s:3: user \"bob\" already defined at line 2\n"},
};

static void
test_db_bad(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(bad_files); i++) {
        const char *path = write_file(bad_files[i].text, bad_files[i].len);
        char *want = with_path(bad_files[i].want, path);
        smtpd_auth_db_t *db;
        buf_t err;

        buf_init(&err);
        db = smtpd_auth_db_open(path, &err);
        if (db != NULL)
            fail_msg("case %zu opened", i);
        if (err.data == NULL || strcmp(err.data, want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i,
                     err.data ? err.data : "", want);

        /* Without an error buffer it fails the same way. */
        assert_null(smtpd_auth_db_open(path, NULL));
        buf_free(&err);
        free(want);
    }
}

static void
test_db_unreadable(void **state)
{
    char path[PATH_MAX];
    char *want;
    buf_t err;

    (void)state;
    buf_init(&err);
    snprintf(path, sizeof(path), "%s/no-such-file", tmpdir);
    assert_null(smtpd_auth_db_open(path, &err));
    want = with_path("%s: cannot open: No such file or directory\n", path);
    assert_string_equal(err.data, want);
    free(want);

    buf_reset(&err);
    assert_null(smtpd_auth_db_open(tmpdir, &err));
    want = with_path("%s: cannot read: Is a directory\n", tmpdir);
    assert_string_equal(err.data, want);
    free(want);
    buf_free(&err);
}

/*
 * Checks from many threads against one file.
 */

struct db_thread {
    const smtpd_auth_db_t *db;
    int wrong;
};

static void *
db_thread_main(void *arg)
{
    struct db_thread *t = arg;
    int i;

    for (i = 0; i < 4; i++) {
        t->wrong += smtpd_auth_db_check(t->db, "six", "six-secret") != 1;
        t->wrong += smtpd_auth_db_check(t->db, "six", "five-secret") != 0;
        t->wrong += smtpd_auth_db_check(t->db, "cheap", "cheap-secret") != 1;
        t->wrong += smtpd_auth_db_check(t->db, "cheap", "cheap") != 0;
        t->wrong += smtpd_auth_db_check(t->db, "fixed", "secret") != 1;
        t->wrong += smtpd_auth_db_check(t->db, "ghost", "secret") != 0;
    }
    return NULL;
}

static void
test_db_threads(void **state)
{
    struct db_thread t[THREADS];
    pthread_t tid[THREADS];
    smtpd_auth_db_t *db;
    buf_t text;
    int i;

    (void)state;
    buf_init(&text);
    buf_printf(&text, "six:%s\ncheap:%s\nfixed:%s\n", hash6, hashy_cheap,
               FIXED6);
    db = open_text(text.data);
    for (i = 0; i < THREADS; i++) {
        t[i].db = db;
        t[i].wrong = 0;
        assert_int_equal(pthread_create(&tid[i], NULL, db_thread_main, &t[i]),
                         0);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].wrong, 0);
    }
    smtpd_auth_db_free(&db);
    buf_free(&text);
}

/*
 * Base64.
 */

static const struct {
    const char *in;
    const char *out;
    size_t len;
} b64_good[] = {
    /* RFC 4648 section 10. */
    {"", "", 0},
    {"Zg==", "f", 1},
    {"Zm8=", "fo", 2},
    {"Zm9v", "foo", 3},
    {"Zm9vYg==", "foob", 4},
    {"Zm9vYmE=", "fooba", 5},
    {"Zm9vYmFy", "foobar", 6},
    /* Every character of the alphabet. */
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
     "\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51"
     "\x55\x97\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a"
     "\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf",
     48},
    {"AGJvYgBwdw==", "\0bob\0pw", 7},
    {"AAAA", "\0\0\0", 3},
    {"/w==", "\xff", 1},
    {"//8=", "\xff\xff", 2},
};

static const char *const b64_bad[] = {
    "=",
    "==",
    "====",
    "Z",
    "Zg",
    "Zg=",
    "Zg===",
    "Zm9",
    "Zm9vY",
    "Z===",
    "Zg=A",
    "Z=g=",
    "=Zg=",
    "Zm9vYg==Zm9v",
    "Zm9vYmFy====",
    "Zh==", /* unused bits set */
    "Zm9=", /* unused bits set */
    "Zm9v\n",
    "Zm9v\r\n",
    " Zm9v",
    "Zm 9v",
    "Zm9v ",
    "Zm9\tv",
    "Zm-v",
    "Zm_v",
    "Zm*v",
    "Zm9\x80",
    "\xc3\xa9xx",
    "*",
};

static void
test_b64_decode_good(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(b64_good); i++) {
        buf_t out;

        buf_init(&out);
        buf_puts(&out, "pre");
        if (smtpd_auth_b64_decode(b64_good[i].in, &out) != 0)
            fail_msg("\"%s\" rejected", b64_good[i].in);
        assert_int_equal(out.len, 3 + b64_good[i].len);
        assert_memory_equal(out.data, "pre", 3);
        assert_memory_equal(out.data + 3, b64_good[i].out, b64_good[i].len);
        assert_int_equal(out.data[out.len], '\0');
        buf_free(&out);
    }
}

static void
test_b64_decode_bad(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(b64_bad); i++) {
        buf_t out;

        buf_init(&out);
        buf_puts(&out, "keep");
        if (smtpd_auth_b64_decode(b64_bad[i], &out) != -1)
            fail_msg("\"%s\" accepted", b64_bad[i]);
        assert_string_equal(out.data, "keep");
        assert_int_equal(out.len, 4);
        buf_free(&out);
    }
}

static void
test_b64_encode(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(b64_good); i++) {
        buf_t out;

        buf_init(&out);
        smtpd_auth_b64_encode(b64_good[i].out, b64_good[i].len, &out);
        assert_string_equal(out.data, b64_good[i].in);
        buf_free(&out);
    }
}

/* Every length up to a few chunks past OpenSSL's block, there and back. */
static void
test_b64_round_trip(void **state)
{
    static const size_t lens[] = {0, 1, 2, 3, 4, 5, 254, 255, 256,
                                  12287, 12288, 12289, 100000};
    unsigned char *data;
    size_t i, j;

    (void)state;
    data = malloc(100000);
    assert_non_null(data);
    for (j = 0; j < 100000; j++)
        data[j] = (unsigned char)(j * 7919 + j / 251);
    for (i = 0; i < N(lens); i++) {
        buf_t enc, dec;

        buf_init(&enc);
        buf_init(&dec);
        smtpd_auth_b64_encode(data, lens[i], &enc);
        assert_int_equal(enc.len, (lens[i] + 2) / 3 * 4);
        assert_int_equal(smtpd_auth_b64_decode(enc.data, &dec), 0);
        assert_int_equal(dec.len, lens[i]);
        if (lens[i])
            assert_memory_equal(dec.data, data, lens[i]);
        buf_free(&enc);
        buf_free(&dec);
    }
    free(data);
}

/*
 * PLAIN.
 */

static const struct {
    const char *raw;
    size_t len;
    int rc;
    const char *authzid;
    const char *user;
    const char *pass;
} plain_cases[] = {
    {"\0bob\0pw", 7, 0, "", "bob", "pw"},
    {"bob\0bob\0pw", 10, 0, "bob", "bob", "pw"},
    {"\0user@example.test\0p w\001\xc3\xa9", 25, 0, "", "user@example.test",
     "p w\001\xc3\xa9"},
    {"bobpw", 5, -1, NULL, NULL, NULL},
    {"bob\0pw", 6, -1, NULL, NULL, NULL},
    {"\0bobpw", 6, -1, NULL, NULL, NULL},
    {"\0bob\0pw\0", 8, -1, NULL, NULL, NULL},
    {"\0bob\0p\0w", 8, -1, NULL, NULL, NULL},
    {"\0b\0ob\0pw", 8, -1, NULL, NULL, NULL},
    {"\0\0\0", 3, -1, NULL, NULL, NULL},
    {"\0\0pw", 4, -1, NULL, NULL, NULL},
    {"\0bob\0", 5, -1, NULL, NULL, NULL},
    {"\0\0", 2, -1, NULL, NULL, NULL},
    {"\0", 1, -1, NULL, NULL, NULL},
    {"", 0, -1, NULL, NULL, NULL},
    {"alice\0bob\0", 10, -1, NULL, NULL, NULL},
    {"alice\0bob\0pw", 12, -2, NULL, NULL, NULL},
    {"Bob\0bob\0pw", 10, -2, NULL, NULL, NULL},
    {"bo\0bob\0pw", 9, -2, NULL, NULL, NULL},
    {"bobb\0bob\0pw", 11, -2, NULL, NULL, NULL},
};

/* Base64 that is not valid, for PLAIN and LOGIN alike. */
static const char *const auth_bad_b64[] = {
    "AGJvYgBwdw=", "AGJvYgBwdw", "AGJvYgBwdw===", "AGJvYgBwdw==\r\n",
    "=", "*", "AGJv YgBwdw==",
};

static void
test_plain(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(plain_cases); i++) {
        char *z = (char *)"x", *u = (char *)"x", *p = (char *)"x";
        buf_t b64;
        int rc;

        buf_init(&b64);
        smtpd_auth_b64_encode(plain_cases[i].raw, plain_cases[i].len, &b64);
        rc = smtpd_auth_plain_parse(b64.data, &z, &u, &p);
        if (rc != plain_cases[i].rc)
            fail_msg("case %zu (%s): got %d, want %d", i, b64.data, rc,
                     plain_cases[i].rc);
        if (rc == 0) {
            assert_string_equal(z, plain_cases[i].authzid);
            assert_string_equal(u, plain_cases[i].user);
            assert_string_equal(p, plain_cases[i].pass);
        } else {
            assert_null(z);
            assert_null(u);
            assert_null(p);
        }
        free(z);
        free(u);
        smtpd_auth_secret_free(&p);
        assert_null(p);
        buf_free(&b64);
    }
    for (i = 0; i < N(auth_bad_b64); i++) {
        char *z, *u, *p;

        assert_int_equal(smtpd_auth_plain_parse(auth_bad_b64[i], &z, &u, &p),
                         -1);
        assert_null(z);
        assert_null(u);
        assert_null(p);
    }
}

static void
test_plain_no_authzid(void **state)
{
    char *u, *p;

    (void)state;
    assert_int_equal(smtpd_auth_plain_parse("AGJvYgBwdw==", NULL, &u, &p), 0);
    assert_string_equal(u, "bob");
    assert_string_equal(p, "pw");
    free(u);
    smtpd_auth_secret_free(&p);
    smtpd_auth_secret_free(&p);
    smtpd_auth_secret_free(NULL);
}

/*
 * LOGIN.
 */

static const struct {
    const char *b64;
    int rc;
    const char *want;
} login_cases[] = {
    {"Ym9i", 0, "bob"},
    {"dXNlckBleGFtcGxlLnRlc3Q=", 0, "user@example.test"},
    {"cCB3", 0, "p w"},
    {"w6k=", 0, "\xc3\xa9"},
    {"", -1, NULL},
    {"AA==", -1, NULL},
    {"Ym9iAA==", -1, NULL},
    {"AGJvYg==", -1, NULL},
    {"Ym8AYg==", -1, NULL},
};

static void
test_login(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(login_cases); i++) {
        char *out = (char *)"x";
        int rc = smtpd_auth_login_decode(login_cases[i].b64, &out);

        if (rc != login_cases[i].rc)
            fail_msg("\"%s\": got %d, want %d", login_cases[i].b64, rc,
                     login_cases[i].rc);
        if (rc == 0)
            assert_string_equal(out, login_cases[i].want);
        else
            assert_null(out);
        smtpd_auth_secret_free(&out);
    }
    for (i = 0; i < N(auth_bad_b64); i++) {
        char *out = (char *)"x";

        assert_int_equal(smtpd_auth_login_decode(auth_bad_b64[i], &out), -1);
        assert_null(out);
    }

    /* The prompts decode to what they say. */
    for (i = 0; i < 2; i++) {
        char *out;

        assert_int_equal(smtpd_auth_login_decode(
                             i ? SMTPD_AUTH_LOGIN_PROMPT_PASS
                               : SMTPD_AUTH_LOGIN_PROMPT_USER, &out), 0);
        assert_string_equal(out, i ? "Password:" : "Username:");
        free(out);
    }
}

/*
 * The limiter, on a simulated clock.
 */

enum lim_op { FAIL, OK, BLOCKED, FREE };

static const struct {
    enum lim_op op;
    const char *addr;
    time_t now;
    int want; /* for BLOCKED */
} lim_steps[] = {
    /* Three failures in 60 seconds block until the first is 60 old. */
    {BLOCKED, "192.0.2.1", 0, 0},
    {FAIL, "192.0.2.1", 0, 0},
    {BLOCKED, "192.0.2.1", 0, 0},
    {FAIL, "192.0.2.1", 10, 0},
    {BLOCKED, "192.0.2.1", 10, 0},
    {FAIL, "192.0.2.1", 20, 0},
    {BLOCKED, "192.0.2.1", 20, 1},
    {BLOCKED, "192.0.2.2", 20, 0},
    {BLOCKED, "192.0.2.10", 20, 0},
    {BLOCKED, "192.0.2.1", 59, 1},
    {BLOCKED, "192.0.2.1", 60, 0},
    /* The window slides: 10, 20, 61 are three within 60 seconds. */
    {FAIL, "192.0.2.1", 61, 0},
    {BLOCKED, "192.0.2.1", 61, 1},
    {BLOCKED, "192.0.2.1", 69, 1},
    {BLOCKED, "192.0.2.1", 70, 0},
    {FAIL, "192.0.2.1", 75, 0},
    {BLOCKED, "192.0.2.1", 75, 1},
    /* Success forgets them all. */
    {OK, "192.0.2.1", 76, 0},
    {BLOCKED, "192.0.2.1", 76, 0},
    {FAIL, "192.0.2.1", 77, 0},
    {FAIL, "192.0.2.1", 78, 0},
    {BLOCKED, "192.0.2.1", 78, 0},
    {OK, "192.0.2.99", 78, 0},
    /* Failures at one instant; other addresses are not affected. */
    {FAIL, "2001:db8::1", 100, 0},
    {FAIL, "2001:db8::1", 100, 0},
    {FAIL, "2001:db8::1", 100, 0},
    {BLOCKED, "2001:db8::1", 100, 1},
    {BLOCKED, "2001:db8::2", 100, 0},
    {BLOCKED, "192.0.2.1", 100, 0},
    {BLOCKED, "2001:db8::1", 159, 1},
    {BLOCKED, "2001:db8::1", 160, 0},
    /* More failures while blocked keep it blocked. */
    {FAIL, "198.51.100.7", 200, 0},
    {FAIL, "198.51.100.7", 201, 0},
    {FAIL, "198.51.100.7", 202, 0},
    {FAIL, "198.51.100.7", 250, 0},
    {FAIL, "198.51.100.7", 255, 0},
    {BLOCKED, "198.51.100.7", 259, 1},
    {BLOCKED, "198.51.100.7", 261, 1},
    {BLOCKED, "198.51.100.7", 262, 0},
    /* A clock stepped back still counts the failures it saw. */
    {FAIL, "203.0.113.5", 1000, 0},
    {FAIL, "203.0.113.5", 1000, 0},
    {FAIL, "203.0.113.5", 1000, 0},
    {BLOCKED, "203.0.113.5", 900, 1},
    {BLOCKED, "203.0.113.5", 1060, 0},
};

static void
test_limiter_clock(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(3, 60);
    size_t i;

    (void)state;
    for (i = 0; i < N(lim_steps); i++) {
        int got;

        switch (lim_steps[i].op) {
        case FAIL:
            smtpd_auth_limiter_fail(lim, lim_steps[i].addr, lim_steps[i].now);
            break;
        case OK:
            smtpd_auth_limiter_success(lim, lim_steps[i].addr,
                                       lim_steps[i].now);
            break;
        case BLOCKED:
            got = smtpd_auth_limiter_blocked(lim, lim_steps[i].addr,
                                             lim_steps[i].now);
            if (got != lim_steps[i].want)
                fail_msg("step %zu: %s at %lld: got %d, want %d", i,
                         lim_steps[i].addr, (long long)lim_steps[i].now, got,
                         lim_steps[i].want);
            break;
        case FREE:
            break;
        }
    }
    smtpd_auth_limiter_free(&lim);
    assert_null(lim);
    smtpd_auth_limiter_free(&lim);
    smtpd_auth_limiter_free(NULL);
}

static void
test_limiter_one(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(1, 10);

    (void)state;
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 5);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 5), 1);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 14), 1);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 15), 0);
    smtpd_auth_limiter_free(&lim);
}

static void
test_limiter_off(void **state)
{
    static const int params[][2] = {{0, 60}, {-1, 60}, {3, 0}, {3, -5}};
    size_t i;
    int j;

    (void)state;
    for (i = 0; i < N(params); i++) {
        smtpd_auth_limiter_t *lim =
            smtpd_auth_limiter_new(params[i][0], params[i][1]);

        for (j = 0; j < 10; j++)
            smtpd_auth_limiter_fail(lim, "192.0.2.1", 100);
        assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 100),
                         0);
        assert_int_equal(smtpd_auth_limiter_count(lim, 100), 0);
        smtpd_auth_limiter_success(lim, "192.0.2.1", 100);
        smtpd_auth_limiter_free(&lim);
    }
}

/* A limit above SMTPD_AUTH_LIMITER_MAX blocks at that many. */
static void
test_limiter_clamp(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(1000, 60);
    int i;

    (void)state;
    for (i = 0; i < SMTPD_AUTH_LIMITER_MAX - 1; i++)
        smtpd_auth_limiter_fail(lim, "192.0.2.1", 0);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 0), 0);
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 0);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 0), 1);
    smtpd_auth_limiter_free(&lim);
}

static void
test_limiter_expiry(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(2, 60);

    (void)state;
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 0);
    smtpd_auth_limiter_fail(lim, "192.0.2.2", 30);
    smtpd_auth_limiter_fail(lim, "192.0.2.3", 40);
    assert_int_equal(smtpd_auth_limiter_count(lim, 40), 3);
    smtpd_auth_limiter_success(lim, "192.0.2.3", 41);
    assert_int_equal(smtpd_auth_limiter_count(lim, 59), 2);
    assert_int_equal(smtpd_auth_limiter_count(lim, 60), 1);
    assert_int_equal(smtpd_auth_limiter_count(lim, 89), 1);
    assert_int_equal(smtpd_auth_limiter_count(lim, 90), 0);

    /* A client that keeps failing stays while others go. */
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 100);
    smtpd_auth_limiter_fail(lim, "192.0.2.2", 110);
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 150);
    assert_int_equal(smtpd_auth_limiter_count(lim, 170), 1);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 159), 1);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "192.0.2.1", 160), 0);
    smtpd_auth_limiter_free(&lim);
}

/* Past the cap the client whose last failure is oldest goes first. */
static void
test_limiter_cap(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(1, 3600);
    char addr[64];
    int i;

    (void)state;
    for (i = 0; i <= SMTPD_AUTH_LIMITER_CLIENTS; i++) {
        snprintf(addr, sizeof(addr), "2001:db8::%x:%x", i >> 16, i & 0xffff);
        smtpd_auth_limiter_fail(lim, addr, i / 1000);
    }
    assert_int_equal(smtpd_auth_limiter_count(lim, 100),
                     SMTPD_AUTH_LIMITER_CLIENTS);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "2001:db8::0:0", 100), 0);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "2001:db8::0:1", 100), 1);
    snprintf(addr, sizeof(addr), "2001:db8::%x:%x",
             SMTPD_AUTH_LIMITER_CLIENTS >> 16,
             SMTPD_AUTH_LIMITER_CLIENTS & 0xffff);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, addr, 100), 1);

    /* A new failure by an old client makes it the newest. */
    smtpd_auth_limiter_fail(lim, "2001:db8::0:1", 100);
    smtpd_auth_limiter_fail(lim, "192.0.2.1", 100);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "2001:db8::0:1", 100), 1);
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "2001:db8::0:2", 100), 0);
    assert_int_equal(smtpd_auth_limiter_count(lim, 100),
                     SMTPD_AUTH_LIMITER_CLIENTS);
    smtpd_auth_limiter_free(&lim);
}

struct lim_thread {
    smtpd_auth_limiter_t *lim;
    int id;
    int blocked_early;
};

static void *
lim_thread_main(void *arg)
{
    struct lim_thread *t = arg;
    char addr[32], passing[32];
    int i;

    snprintf(addr, sizeof(addr), "192.0.2.%d", t->id + 1);
    for (i = 0; i < 2000; i++) {
        if (i < 49 && smtpd_auth_limiter_blocked(t->lim, addr, 0))
            t->blocked_early++;
        smtpd_auth_limiter_fail(t->lim, addr, 0);
        smtpd_auth_limiter_fail(t->lim, "198.51.100.1", 0);
        smtpd_auth_limiter_blocked(t->lim, "198.51.100.1", 0);

        /* Clients that fail once and then succeed leave nothing. */
        snprintf(passing, sizeof(passing), "203.0.113.%d", i % 256);
        smtpd_auth_limiter_fail(t->lim, passing, 0);
        smtpd_auth_limiter_success(t->lim, passing, 0);
    }
    return NULL;
}

static void
test_limiter_threads(void **state)
{
    smtpd_auth_limiter_t *lim = smtpd_auth_limiter_new(50, 60);
    struct lim_thread t[THREADS];
    pthread_t tid[THREADS];
    char addr[32];
    int i;

    (void)state;
    for (i = 0; i < THREADS; i++) {
        t[i].lim = lim;
        t[i].id = i;
        t[i].blocked_early = 0;
        assert_int_equal(
            pthread_create(&tid[i], NULL, lim_thread_main, &t[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].blocked_early, 0);
        snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
        assert_int_equal(smtpd_auth_limiter_blocked(lim, addr, 1), 1);
    }
    assert_int_equal(smtpd_auth_limiter_blocked(lim, "198.51.100.1", 1), 1);
    assert_int_equal(smtpd_auth_limiter_count(lim, 1), THREADS + 1);
    smtpd_auth_limiter_free(&lim);
}

/*
 * The failure log line.
 */

static const struct {
    const char *name;
    const char *addr;
    const char *mech;
    const char *reason;
    const char *want;      /* what follows "smtpd[pid]: " */
    const char *want_host; /* what fail2ban takes as the address */
} log_cases[] = {
    {NULL, "127.0.0.1", "LOGIN", "authentication failure",
     "warning: unknown[127.0.0.1]: SASL LOGIN authentication failed: "
     "authentication failure",
     "127.0.0.1"},
    {"unknown", "127.0.0.1", "LOGIN", "authentication failure",
     "warning: unknown[127.0.0.1]: SASL LOGIN authentication failed: "
     "authentication failure",
     "127.0.0.1"},
    {"mail.example.test", "2001:db8::5", "plain", "authentication failure",
     "warning: mail.example.test[2001:db8::5]: SASL PLAIN authentication "
     "failed: authentication failure",
     "2001:db8::5"},
    {"evil[10.0.0.1]", "192.0.2.9", "Login", "bad\r\nline\\",
     "warning: evil\\13310.0.0.1\\135[192.0.2.9]: SASL LOGIN authentication "
     "failed: bad\\015\\012line\\134",
     "192.0.2.9"},
    {"host\001", "192.0.2.9", "pl\xc3\xa4in", NULL,
     "warning: host\\001[192.0.2.9]: SASL PL\\303\\244IN authentication "
     "failed: authentication failure",
     NULL},
};

static void
test_log_failure(void **state)
{
    regex_t re;
    size_t i;

    (void)state;

    /* fail2ban's postfix-sasl line, in POSIX form, after the prefix it
     * strips (syslog header and "warning: "). */
    assert_int_equal(regcomp(&re,
                             "^[^[]*\\[([^]]+)\\](:[0-9]+)?: SASL "
                             "(LOGIN|PLAIN|(CRAM|DIGEST)-MD5) "
                             "authentication failed:",
                             REG_EXTENDED),
                     0);
    for (i = 0; i < N(log_cases); i++) {
        long mark = log_mark();
        regmatch_t m[2];
        char *got, *p;
        size_t wlen = strlen(log_cases[i].want);

        smtpd_auth_log_failure(log_cases[i].name, log_cases[i].addr,
                               log_cases[i].mech, log_cases[i].reason);
        got = log_since(mark);
        p = strstr(got, " tern/smtpd[");
        assert_non_null(p);
        p = strstr(p, "]: ");
        assert_non_null(p);
        p += 3;
        if (strlen(p) != wlen + 1 || memcmp(p, log_cases[i].want, wlen) != 0
            || p[wlen] != '\n')
            fail_msg("case %zu: got \"%s\"", i, p);

        p += strlen("warning: ");
        if (log_cases[i].want_host == NULL) {
            assert_int_not_equal(regexec(&re, p, 2, m, 0), 0);
        } else {
            assert_int_equal(regexec(&re, p, 2, m, 0), 0);
            assert_int_equal(m[1].rm_eo - m[1].rm_so,
                             strlen(log_cases[i].want_host));
            assert_memory_equal(p + m[1].rm_so, log_cases[i].want_host,
                                strlen(log_cases[i].want_host));
        }
        free(got);
    }
    regfree(&re);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_good),
        cmocka_unit_test(test_db_good_forms),
        cmocka_unit_test(test_db_empty),
        cmocka_unit_test(test_db_ref),
        cmocka_unit_test(test_db_bad),
        cmocka_unit_test(test_db_unreadable),
        cmocka_unit_test(test_db_threads),
        cmocka_unit_test(test_b64_decode_good),
        cmocka_unit_test(test_b64_decode_bad),
        cmocka_unit_test(test_b64_encode),
        cmocka_unit_test(test_b64_round_trip),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_no_authzid),
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_limiter_clock),
        cmocka_unit_test(test_limiter_one),
        cmocka_unit_test(test_limiter_off),
        cmocka_unit_test(test_limiter_clamp),
        cmocka_unit_test(test_limiter_expiry),
        cmocka_unit_test(test_limiter_cap),
        cmocka_unit_test(test_limiter_threads),
        cmocka_unit_test(test_log_failure),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
