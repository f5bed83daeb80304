/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of lib/config: files written to a scratch directory and
 * loaded as ternd loads them.  Most tests are tables: a file's text and
 * what one parameter must come out as, or the error (with file:line)
 * that loading must report.  Warnings are caught by sending the log to a
 * file in the scratch directory.
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
#include "lib/config.h"
#include "lib/mem.h"
#include "lib/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[PATH_MAX / 2];
static char logpath[PATH_MAX];
static int nfiles;

/* Write text to a new file in the scratch directory; returns its path
 * (static storage, overwritten by the next call). */
static const char *
write_file(const char *text)
{
    static char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/tern-%d.conf", tmpdir, ++nfiles);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
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

static config_t *
load_text(const char *text, char *const *ov, size_t nov, buf_t *err,
          const char **pathp)
{
    const char *path = write_file(text);

    if (pathp)
        *pathp = path;
    return config_load(path, ov, nov, err);
}

static long
log_mark(void)
{
    FILE *fp = fopen(logpath, "r");
    long off;

    if (fp == NULL)
        return 0;
    fseek(fp, 0, SEEK_END);
    off = ftell(fp);
    fclose(fp);
    return off;
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
    return remove(path);
}

static int
group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_config-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    return log_open(LOG_DEST_FILE, "tern", logpath);
}

static int
group_teardown(void **state)
{
    log_open(LOG_DEST_STDERR, "tern", NULL);
    if (getenv("TERN_KEEP_TESTDIR") == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static enum param_id
param(const char *name)
{
    enum param_id id = config_lookup_name(name);

    if (id == P_COUNT)
        fail_msg("no parameter named %s", name);
    return id;
}

/* Good files: the expanded value of one parameter. */
static const struct {
    const char *text;
    const char *name;
    const char *want;
} good_cases[] = {
    {"myhostname = mx.example.test\n", "myhostname", "mx.example.test"},
    {"myhostname=mx.example.test", "myhostname", "mx.example.test"},
    {"myhostname = \t spaced  value \t\n", "myhostname", "spaced  value"},
    {"# comment\n\nmyhostname = a.example\n", "myhostname", "a.example"},
    {"  # indented comment\nmyhostname = a.example\n", "myhostname",
     "a.example"},
    {"smtpd_banner = one\n two\n\tthree\n", "smtpd_banner", "one two three"},
    {"smtpd_banner = one\n# between\n two\n", "smtpd_banner", "one two"},
    {"smtpd_banner =\n two\n", "smtpd_banner", "two"},
    {"myhostname = a.example\r\nsmtpd_banner = x y\r\n", "smtpd_banner",
     "x y"},
    {"myhostname = a.example\nmyhostname = b.example\n", "myhostname",
     "b.example"},
    {"smtpd_banner = a=b\n", "smtpd_banner", "a=b"},
    {"recipient_delimiter =\n", "recipient_delimiter", ""},
    {"", "mail_version", "0.1.0"},
    {"", "mail_name", "tern"},
    /* Expansion. */
    {"mydomain = d.test\nmyorigin = $mydomain\n", "myorigin", "d.test"},
    {"mydomain = d.test\nmyorigin = ${mydomain}\n", "myorigin", "d.test"},
    {"mydomain = d.test\nmyorigin = $(mydomain)\n", "myorigin", "d.test"},
    {"myorigin = $mydomain\nmydomain = later.test\n", "myorigin",
     "later.test"},
    {"mydomain = d.test\nsmtpd_banner = $mydomain.x\n", "smtpd_banner",
     "d.test.x"},
    {"mydomain = d.test\nsmtpd_banner = $mydomain\n ESMTP\n", "smtpd_banner",
     "d.test ESMTP"},
    {"smtpd_banner = cost $$5 $$$$\n", "smtpd_banner", "cost $5 $$"},
    {"myhostname = mx.example.test\n", "smtpd_banner",
     "mx.example.test ESMTP tern"},
    {"myhostname = mx.example.test\n", "myorigin", "mx.example.test"},
    {"myhostname = mx.example.test\n", "mydomain", "example.test"},
    {"myhostname = box\n", "mydomain", "localdomain"},
    {"myhostname = mx.example.test\n", "mydestination",
     "mx.example.test, localhost.example.test, localhost"},
    {"myhostname = mx.example.test\nmydomain = other.test\n", "mydestination",
     "mx.example.test, localhost.other.test, localhost"},
    {"my_own_thing = xyz\nsmtpd_banner = $my_own_thing ESMTP\n",
     "smtpd_banner", "xyz ESMTP"},
    {"smtpd_banner = [$no_such_parameter_x]\n", "smtpd_banner", "[]"},
    /* ${name?text} and ${name:text}. */
    {"mydomain = d.test\nsmtpd_banner = [${mydomain?set}]\n", "smtpd_banner",
     "[set]"},
    {"smtpd_banner = [${recipient_delimiter?set}]\n", "smtpd_banner", "[]"},
    {"smtpd_banner = [${recipient_delimiter:empty}]\n", "smtpd_banner",
     "[empty]"},
    {"mydomain = d.test\nsmtpd_banner = [${mydomain:empty}]\n",
     "smtpd_banner", "[]"},
    {"mydomain = d.test\nsmtpd_banner = [$(mydomain?set)]\n", "smtpd_banner",
     "[set]"},
    {"smtpd_banner = [$(recipient_delimiter:empty)]\n", "smtpd_banner",
     "[empty]"},
    {"smtpd_banner = [${undefined_thing?set}${undefined_thing:unset}]\n",
     "smtpd_banner", "[unset]"},
    {"mydomain = d.test\nsmtpd_banner = [${mydomain?at $mydomain}]\n",
     "smtpd_banner", "[at d.test]"},
    {"myhostname = h.d.test\nsmtpd_banner = [${mydomain?${myhostname}}]\n",
     "smtpd_banner", "[h.d.test]"},
    {"smtpd_banner = [${recipient_delimiter:${mail_name}}]\n",
     "smtpd_banner", "[tern]"},
    {"smtpd_banner = [$(recipient_delimiter:$(mail_name))]\n",
     "smtpd_banner", "[tern]"},
    {"smtpd_banner = [${recipient_delimiter:a$$b}]\n", "smtpd_banner",
     "[a$b]"},
};

static void
test_good_files(void **state)
{
    size_t i;

    for (i = 0; i < N(good_cases); i++) {
        buf_t err;
        config_t *cfg;
        const char *got;

        buf_init(&err);
        cfg = load_text(good_cases[i].text, NULL, 0, &err, NULL);
        if (cfg == NULL)
            fail_msg("case %zu (%s): load failed: %s", i, good_cases[i].text,
                     err.data);
        got = config_str(cfg, param(good_cases[i].name));
        if (strcmp(got, good_cases[i].want) != 0)
            fail_msg("case %zu (%s): %s is \"%s\", want \"%s\"", i,
                     good_cases[i].text, good_cases[i].name, got,
                     good_cases[i].want);
        assert_int_equal(err.len, 0);
        config_unref(&cfg);
        assert_null(cfg);
        buf_free(&err);
    }
}

/* Numbers, times and sizes. */
static const struct {
    const char *text;
    const char *name;
    long long want;
} num_cases[] = {
    {"smtpd_timeout = 45\n", "smtpd_timeout", 45},
    {"smtpd_timeout = 45s\n", "smtpd_timeout", 45},
    {"smtpd_timeout = 5m\n", "smtpd_timeout", 300},
    {"smtpd_timeout = 2h\n", "smtpd_timeout", 7200},
    {"smtpd_timeout = 1d\n", "smtpd_timeout", 86400},
    {"smtpd_timeout = 1w\n", "smtpd_timeout", 604800},
    {"smtpd_timeout = 0\n", "smtpd_timeout", 0},
    {"my_minutes = 7\nsmtpd_timeout = ${my_minutes}m\n", "smtpd_timeout",
     420},
    {"", "smtpd_timeout", 300},
    {"", "maximal_queue_lifetime", 5 * 86400},
    {"message_size_limit = 0\n", "message_size_limit", 0},
    {"message_size_limit = 123456789\n", "message_size_limit", 123456789},
    {"", "message_size_limit", 10240000},
    {"smtpd_recipient_limit = 7\n", "smtpd_recipient_limit", 7},
    {"", "smtpd_recipient_limit", 1000},
    {"", "cleanup_threads", 2},
    {"", "delivery_threads", 20},
    {"cleanup_threads = 4096\n", "cleanup_threads", 4096},
    {"delivery_threads = 1\n", "delivery_threads", 1},
    {"smtpd_io_threads = 0\n", "smtpd_io_threads", 0},
    {"smtpd_io_threads = 256\n", "smtpd_io_threads", 256},
    {"smtpd_tls_auth_only = no\n", "smtpd_tls_auth_only", 0},
    {"smtpd_tls_auth_only = yes\n", "smtpd_tls_auth_only", 1},
    {"smtpd_tls_auth_only = YES\n", "smtpd_tls_auth_only", 1},
    {"", "smtpd_tls_auth_only", 1},
    {"", "smtpd_sasl_auth_enable", 0},
};

static void
test_numbers(void **state)
{
    size_t i;

    for (i = 0; i < N(num_cases); i++) {
        buf_t err;
        config_t *cfg;
        long long got;

        buf_init(&err);
        cfg = load_text(num_cases[i].text, NULL, 0, &err, NULL);
        if (cfg == NULL)
            fail_msg("case %zu (%s): load failed: %s", i, num_cases[i].text,
                     err.data);
        got = config_num(cfg, param(num_cases[i].name));
        if (got != num_cases[i].want)
            fail_msg("case %zu (%s): %s is %lld, want %lld", i,
                     num_cases[i].text, num_cases[i].name, got,
                     num_cases[i].want);
        config_unref(&cfg);
        buf_free(&err);
    }
}

/* Lists: the items joined with "|". */
static const struct {
    const char *text;
    const char *name;
    const char *want;
    size_t n;
} list_cases[] = {
    {"mynetworks = 127.0.0.0/8, [::1]/128 10.0.0.0/8\n", "mynetworks",
     "127.0.0.0/8|[::1]/128|10.0.0.0/8", 3},
    {"mynetworks = a,,b ,\tc\n d\n", "mynetworks", "a|b|c|d", 4},
    {"mynetworks =\n", "mynetworks", "", 0},
    {"mynetworks = , ,\n", "mynetworks", "", 0},
    {"", "mynetworks", "127.0.0.0/8|[::1]/128", 2},
    {"smtp_listen = 127.0.0.1:25, [::1]:25\n", "smtp_listen",
     "127.0.0.1:25|[::1]:25", 2},
    {"myhostname = mx.example.test\n", "mydestination",
     "mx.example.test|localhost.example.test|localhost", 3},
    {"local_recipient_maps = inline:{a=1, b=2} static:x\n",
     "local_recipient_maps", "inline:{a=1, b=2}|static:x", 2},
    {"", "local_recipient_maps", "", 0},
};

static void
test_lists(void **state)
{
    size_t i;

    for (i = 0; i < N(list_cases); i++) {
        buf_t err;
        buf_t got;
        config_t *cfg;
        char *const *items;
        size_t n = 99;
        size_t j;

        buf_init(&err);
        buf_init(&got);
        cfg = load_text(list_cases[i].text, NULL, 0, &err, NULL);
        if (cfg == NULL)
            fail_msg("case %zu (%s): load failed: %s", i, list_cases[i].text,
                     err.data);
        items = config_list(cfg, param(list_cases[i].name), &n);
        assert_non_null(items);
        for (j = 0; items[j]; j++) {
            if (j)
                buf_putc(&got, '|');
            buf_puts(&got, items[j]);
        }
        if (j != n || n != list_cases[i].n ||
            strcmp(got.data ? got.data : "", list_cases[i].want) != 0)
            fail_msg("case %zu (%s): %s is \"%s\" (%zu items, %zu before "
                     "NULL), want \"%s\" (%zu)",
                     i, list_cases[i].text, list_cases[i].name,
                     got.data ? got.data : "", n, j, list_cases[i].want,
                     list_cases[i].n);
        assert_ptr_equal(config_list(cfg, param(list_cases[i].name), NULL),
                         items);
        config_unref(&cfg);
        buf_free(&got);
        buf_free(&err);
    }
}

/* Bad files: loading fails and err holds the text, "%s" standing for
 * the file's path. */
static const struct {
    const char *text;
    const char *want;
} bad_cases[] = {
    {"smtpd_timeout = abc\n", "%s:1: bad value for smtpd_timeout: \"abc\""},
    {"smtpd_timeout = 5x\n", "%s:1: bad value for smtpd_timeout"},
    {"smtpd_timeout = 5ms\n", "%s:1: bad value for smtpd_timeout"},
    {"smtpd_timeout = -1\n", "%s:1: bad value for smtpd_timeout"},
    {"smtpd_timeout = 1.5h\n", "%s:1: bad value for smtpd_timeout"},
    {"smtpd_timeout =\n", "%s:1: bad value for smtpd_timeout"},
    {"# c\n\nmessage_size_limit = -5\n",
     "%s:3: bad value for message_size_limit: \"-5\""},
    {"message_size_limit = 10x\n", "%s:1: bad value for message_size_limit"},
    {"message_size_limit = 99999999999999999999999\n",
     "%s:1: bad value for message_size_limit"},
    {"smtpd_recipient_limit = 1.5\n",
     "%s:1: bad value for smtpd_recipient_limit"},
    {"smtpd_recipient_limit = \n", "%s:1: bad value for smtpd_recipient_limit"},
    {"myhostname = a.b\nsmtp_listen = 127.0.0.1:70000\n",
     "%s:2: bad value for smtp_listen: \"127.0.0.1:70000\""},
    {"smtp_listen = no-port\n", "%s:1: bad value for smtp_listen: \"no-port\""},
    {"smtp_listen = 127.0.0.1:0\n", "%s:1: bad value for smtp_listen"},
    {"smtp_listen = 127.0.0.1:25, 127.0.0.1:x\n",
     "%s:1: bad value for smtp_listen: \"127.0.0.1:x\""},
    {"admin_listen = [::1]25\n", "%s:1: bad value for admin_listen"},
    {"local_recipient_maps = texthash:/nonexistent\n",
     "%s:1: bad value for local_recipient_maps: /nonexistent: cannot open: "},
    {"local_recipient_maps = ldap:/etc/aliases\n",
     "%s:1: bad value for local_recipient_maps: ldap:/etc/aliases: "
     "unsupported table type"},
    {"cleanup_threads = 0\n", "%s:1: bad value for cleanup_threads"},
    {"delivery_threads = 4097\n", "%s:1: bad value for delivery_threads"},
    {"smtpd_io_threads = 257\n", "%s:1: bad value for smtpd_io_threads"},
    {"smtpd_tls_auth_only = maybe\n",
     "%s:1: bad value for smtpd_tls_auth_only: \"maybe\""},
    {"smtpd_tls_auth_only =\n", "%s:1: bad value for smtpd_tls_auth_only"},
    {"smtpd_timeout 30s\n", "%s:1: missing '=' after parameter name"},
    {"myhostname = a.b\n= value\n", "%s:2: missing parameter name before '='"},
    {"bad-name = 1\n", "%s:1: bad character in parameter name"},
    {" continued = 1\n",
     "%s:1: continuation line without a parameter before it"},
    {"smtpd_banner = ${myhostname\n", "%s:1: missing '}' after ${myhostname"},
    {"smtpd_banner = $(myhostname\n", "%s:1: missing ')' after $(myhostname"},
    {"smtpd_banner = ${myhostname?x\n", "%s:1: missing '}'"},
    {"smtpd_banner = cost $\n", "%s:1: '$' not followed by a parameter name"},
    {"smtpd_banner = cost ${}\n", "%s:1: '$' not followed by a parameter name"},
    {"a_loop = $b_loop\nb_loop = $a_loop\nsmtpd_banner = $a_loop\n",
     "%s:3: parameter expansion loops"},
    {"smtpd_banner = $smtpd_banner x\n", "%s:1: parameter expansion loops"},
    {"queue_directory =\n", "%s:1: queue_directory must not be empty"},
    {"myhostname = a.b\nsmtpd_timeout = 1\n  x\n",
     "%s:2: bad value for smtpd_timeout: \"1 x\""},
    {"smtpd_banner = a\n b\nsmtpd_timeout = abc\n",
     "%s:3: bad value for smtpd_timeout"},
    {"smtpd_timeout 1\nfoo\n",
     "%s:1: missing '=' after parameter name\n"
     "%s:2: missing '=' after parameter name\n"},
};

static void
test_bad_files(void **state)
{
    size_t i;

    for (i = 0; i < N(bad_cases); i++) {
        buf_t err;
        config_t *cfg;
        const char *path;
        char *want;

        buf_init(&err);
        cfg = load_text(bad_cases[i].text, NULL, 0, &err, &path);
        want = with_path(bad_cases[i].want, path);
        if (cfg != NULL)
            fail_msg("case %zu (%s): loaded, want error \"%s\"", i,
                     bad_cases[i].text, want);
        if (err.data == NULL || strstr(err.data, want) == NULL)
            fail_msg("case %zu (%s): error \"%s\", want \"%s\"", i,
                     bad_cases[i].text, err.data ? err.data : "", want);
        /* Every error is one line that starts with the file's name. */
        if (strncmp(err.data, path, strlen(path)) != 0 ||
            err.data[err.len - 1] != '\n')
            fail_msg("case %zu: error \"%s\" is not a line starting with %s",
                     i, err.data, path);
        free(want);
        buf_free(&err);
    }
}

static void
test_missing_file(void **state)
{
    buf_t err;
    config_t *cfg;

    buf_init(&err);
    cfg = config_load("/nonexistent/dir/tern.conf", NULL, 0, &err);
    assert_null(cfg);
    assert_non_null(err.data);
    assert_non_null(strstr(err.data, "/nonexistent/dir/tern.conf: cannot "
                                     "open: "));
    buf_free(&err);
}

/* An error appended to a buffer that already holds text still fails the
 * load, and the earlier text is kept. */
static void
test_error_buffer_kept(void **state)
{
    buf_t err;
    config_t *cfg;

    buf_init(&err);
    buf_puts(&err, "earlier\n");
    cfg = load_text("myhostname = a.b\n", NULL, 0, &err, NULL);
    assert_non_null(cfg);
    assert_string_equal(err.data, "earlier\n");
    config_unref(&cfg);
    cfg = load_text("smtpd_timeout = x\n", NULL, 0, &err, NULL);
    assert_null(cfg);
    assert_int_equal(strncmp(err.data, "earlier\n", 8), 0);
    assert_true(err.len > 8);
    buf_free(&err);
}

static void
test_defaults(void **state)
{
    buf_t err;
    config_t *cfg;
    const char *host;
    char *banner;
    int id;
    size_t n;

    buf_init(&err);
    cfg = config_load(NULL, NULL, 0, &err);
    assert_non_null(cfg);
    assert_int_equal(err.len, 0);
    assert_null(config_path(cfg));
    assert_string_equal(config_str(cfg, P_SMTP_LISTEN), "127.0.0.1:2525");
    assert_string_equal(config_str(cfg, P_ADMIN_LISTEN), "127.0.0.1:8025");
    assert_string_equal(config_str(cfg, P_QUEUE_DIRECTORY), "./run/queue");
    assert_string_equal(config_str(cfg, P_DATA_DIRECTORY), "./run/data");
    assert_string_equal(config_str(cfg, P_MAIL_SPOOL_DIRECTORY),
                        "./run/mail/");
    assert_string_equal(config_str(cfg, P_MYNETWORKS),
                        "127.0.0.0/8, [::1]/128");
    assert_string_equal(config_str(cfg, P_SYSLOG_NAME), "tern");
    assert_string_equal(config_str(cfg, P_MAILLOG_FILE), "");
    host = config_str(cfg, P_MYHOSTNAME);
    assert_true(host[0] != '\0');
    assert_non_null(strchr(host, '.'));
    banner = with_path("%s ESMTP tern", host);
    assert_string_equal(config_str(cfg, P_SMTPD_BANNER), banner);
    free(banner);
    config_list(cfg, P_MYDESTINATION, &n);
    assert_int_equal(n, 3);
    for (id = 0; id < P_COUNT; id++)
        assert_false(config_is_set(cfg, (enum param_id)id));
    config_unref(&cfg);
    buf_free(&err);
}

static void
test_names(void **state)
{
    int id;
    int j;

    assert_int_equal(config_lookup_name("smtpd_timeout"), P_SMTPD_TIMEOUT);
    assert_string_equal(config_name(P_SMTPD_TIMEOUT), "smtpd_timeout");
    assert_int_equal(config_lookup_name("no_such_parameter"), P_COUNT);
    assert_int_equal(config_lookup_name(""), P_COUNT);
    assert_int_equal(config_lookup_name("SMTPD_TIMEOUT"), P_COUNT);
    for (id = 0; id < P_COUNT; id++) {
        assert_int_equal(config_lookup_name(config_name((enum param_id)id)),
                         id);
        for (j = id + 1; j < P_COUNT; j++)
            if (strcmp(config_name((enum param_id)id),
                       config_name((enum param_id)j)) == 0)
                fail_msg("parameter %s is listed twice",
                         config_name((enum param_id)id));
    }
}

static void
test_path_and_is_set(void **state)
{
    buf_t err;
    config_t *cfg;
    const char *path;
    char saved[PATH_MAX];

    buf_init(&err);
    cfg = load_text("smtpd_timeout = 300s\n", NULL, 0, &err, &path);
    assert_non_null(cfg);
    snprintf(saved, sizeof(saved), "%s", path);
    assert_string_equal(config_path(cfg), saved);
    /* Set to its default value is still "set". */
    assert_true(config_is_set(cfg, P_SMTPD_TIMEOUT));
    assert_false(config_is_set(cfg, P_MESSAGE_SIZE_LIMIT));
    /* Computed from the system, not set. */
    assert_false(config_is_set(cfg, P_MYHOSTNAME));
    config_unref(&cfg);
    buf_free(&err);
}

static void
test_overrides(void **state)
{
    buf_t err;
    config_t *cfg;
    char *ov1[] = {"smtpd_timeout=60s"};
    char *ov2[] = {"smtpd_timeout = 90s"};
    char *ov3[] = {"smtpd_timeout=1", "smtpd_timeout=2"};
    char *ov4[] = {"mydomain=over.test"};
    char *ov5[] = {"smtpd_banner=at $mydomain"};
    char *ov6[] = {"message_size_limit=5000"};

    buf_init(&err);
    cfg = load_text("smtpd_timeout = 30s\n", ov1, N(ov1), &err, NULL);
    assert_non_null(cfg);
    assert_int_equal(config_num(cfg, P_SMTPD_TIMEOUT), 60);
    assert_true(config_is_set(cfg, P_SMTPD_TIMEOUT));
    config_unref(&cfg);

    cfg = load_text("smtpd_timeout = 30s\n", ov2, N(ov2), &err, NULL);
    assert_non_null(cfg);
    assert_int_equal(config_num(cfg, P_SMTPD_TIMEOUT), 90);
    config_unref(&cfg);

    cfg = load_text("", ov3, N(ov3), &err, NULL);
    assert_non_null(cfg);
    assert_int_equal(config_num(cfg, P_SMTPD_TIMEOUT), 2);
    config_unref(&cfg);

    /* A file value refers to an overridden one, and the other way. */
    cfg = load_text("smtpd_banner = $mydomain ESMTP\nmydomain = file.test\n",
                    ov4, N(ov4), &err, NULL);
    assert_non_null(cfg);
    assert_string_equal(config_str(cfg, P_SMTPD_BANNER), "over.test ESMTP");
    config_unref(&cfg);
    cfg = load_text("mydomain = file.test\n", ov5, N(ov5), &err, NULL);
    assert_non_null(cfg);
    assert_string_equal(config_str(cfg, P_SMTPD_BANNER), "at file.test");
    config_unref(&cfg);

    /* Overrides without a file. */
    cfg = config_load(NULL, ov6, N(ov6), &err);
    assert_non_null(cfg);
    assert_null(config_path(cfg));
    assert_int_equal(config_num(cfg, P_MESSAGE_SIZE_LIMIT), 5000);
    assert_true(config_is_set(cfg, P_MESSAGE_SIZE_LIMIT));
    config_unref(&cfg);
    assert_int_equal(err.len, 0);
    buf_free(&err);
}

static const struct {
    const char *ov;
    const char *want;
} bad_override_cases[] = {
    {"smtpd_timeout=abc", "-o smtpd_timeout: bad value for smtpd_timeout"},
    {"smtp_listen=127.0.0.1:70000", "-o smtp_listen: bad value for "
                                    "smtp_listen"},
    {"cleanup_threads=0", "-o cleanup_threads: bad value for cleanup_threads"},
    {"local_recipient_maps=texthash:/nonexistent",
     "-o local_recipient_maps: bad value for local_recipient_maps: "
     "/nonexistent: cannot open: "},
    {"smtpd_timeout", "-o smtpd_timeout: missing '=' after parameter name"},
    {"=5", "-o =5: missing parameter name before '='"},
};

static void
test_bad_overrides(void **state)
{
    size_t i;

    for (i = 0; i < N(bad_override_cases); i++) {
        buf_t err;
        config_t *cfg;
        char *ov[1];

        ov[0] = (char *)bad_override_cases[i].ov;
        buf_init(&err);
        cfg = load_text("smtpd_timeout = 30s\n", ov, 1, &err, NULL);
        if (cfg != NULL)
            fail_msg("case %zu (-o %s): loaded", i, ov[0]);
        if (err.data == NULL || strncmp(err.data, bad_override_cases[i].want,
                                        strlen(bad_override_cases[i].want)))
            fail_msg("case %zu (-o %s): error \"%s\", want \"%s\"", i, ov[0],
                     err.data ? err.data : "", bad_override_cases[i].want);
        buf_free(&err);
    }
}

static void
test_warnings(void **state)
{
    buf_t err;
    config_t *cfg;
    const char *path;
    char *want;
    char *logged;
    char *ov[] = {"no_such_override=1"};
    long mark;

    buf_init(&err);
    mark = log_mark();
    cfg = load_text("myhostname = a.b\nno_such = 1\n", NULL, 0, &err, &path);
    assert_non_null(cfg);
    assert_int_equal(err.len, 0);
    logged = log_since(mark);
    want = with_path("warning: %s:2: unknown parameter no_such\n", path);
    if (strstr(logged, want) == NULL)
        fail_msg("log \"%s\" lacks \"%s\"", logged, want);
    free(want);
    free(logged);
    config_unref(&cfg);

    mark = log_mark();
    cfg = load_text("smtpd_banner = [$undefined_x]\n", NULL, 0, &err, &path);
    assert_non_null(cfg);
    assert_string_equal(config_str(cfg, P_SMTPD_BANNER), "[]");
    logged = log_since(mark);
    want = with_path("warning: %s:1: undefined parameter $undefined_x\n",
                     path);
    if (strstr(logged, want) == NULL)
        fail_msg("log \"%s\" lacks \"%s\"", logged, want);
    free(want);
    free(logged);
    config_unref(&cfg);

    /* ${name?text} and ${name:text} ask whether name is set: no warning. */
    mark = log_mark();
    cfg = load_text("smtpd_banner = [${undefined_y?a}${undefined_y:b}]\n",
                    NULL, 0, &err, NULL);
    assert_non_null(cfg);
    logged = log_since(mark);
    if (strstr(logged, "undefined_y") != NULL)
        fail_msg("unexpected warning \"%s\"", logged);
    free(logged);
    config_unref(&cfg);

    mark = log_mark();
    cfg = load_text("", ov, N(ov), &err, NULL);
    assert_non_null(cfg);
    logged = log_since(mark);
    if (strstr(logged, "warning: -o no_such_override: unknown parameter "
                       "no_such_override\n") == NULL)
        fail_msg("log \"%s\" lacks the -o warning", logged);
    free(logged);
    config_unref(&cfg);
    buf_free(&err);
}

static void
test_maps(void **state)
{
    buf_t err;
    config_t *cfg;
    const char *users;
    char *text;
    const char *v = NULL;
    table_t *const *tables;

    buf_init(&err);
    users = write_file("# users\nalice a\nbob b\n");
    text = with_path("local_recipient_maps = texthash:%s inline:{carol=c, "
                     "alice=second}\n",
                     users);
    cfg = load_text(text, NULL, 0, &err, NULL);
    free(text);
    if (cfg == NULL)
        fail_msg("load failed: %s", err.data);
    tables = config_tables(cfg, P_LOCAL_RECIPIENT_MAPS);
    assert_non_null(tables);
    assert_non_null(tables[0]);
    assert_non_null(tables[1]);
    assert_null(tables[2]);
    assert_int_equal(config_maps_lookup(cfg, P_LOCAL_RECIPIENT_MAPS, "alice",
                                        &v),
                     1);
    assert_string_equal(v, "a"); /* the first table that has it wins */
    assert_int_equal(config_maps_lookup(cfg, P_LOCAL_RECIPIENT_MAPS, "CAROL",
                                        &v),
                     1);
    assert_string_equal(v, "c");
    assert_int_equal(config_maps_lookup(cfg, P_LOCAL_RECIPIENT_MAPS, "dave",
                                        &v),
                     0);
    config_unref(&cfg);

    /* An empty maps parameter: no tables, nothing found. */
    cfg = load_text("", NULL, 0, &err, NULL);
    assert_non_null(cfg);
    tables = config_tables(cfg, P_LOCAL_RECIPIENT_MAPS);
    assert_non_null(tables);
    assert_null(tables[0]);
    assert_int_equal(config_maps_lookup(cfg, P_LOCAL_RECIPIENT_MAPS, "alice",
                                        &v),
                     0);
    config_unref(&cfg);
    buf_free(&err);
}

static const struct {
    const char *s;
    int rc;
    long long secs;
} time_cases[] = {
    {"0", 0, 0},
    {"10", 0, 10},
    {"10s", 0, 10},
    {"2m", 0, 120},
    {"3h", 0, 10800},
    {"1d", 0, 86400},
    {"2w", 0, 1209600},
    {"0010", 0, 10},
    {"9223372036854775807", 0, 9223372036854775807LL},
    {"", -1, 0},
    {"s", -1, 0},
    {"-1", -1, 0},
    {"+1", -1, 0},
    {"1x", -1, 0},
    {"1ms", -1, 0},
    {"1 s", -1, 0},
    {" 1", -1, 0},
    {"1 ", -1, 0},
    {"1.5h", -1, 0},
    {"1e3", -1, 0},
    {"1S", -1, 0},
    {"99999999999999999999", -1, 0},
    {"9223372036854775807w", -1, 0},
    {"15250284452471w", 0, 15250284452471LL * 604800},
    {"15250284452472w", -1, 0},
};

static void
test_parse_time(void **state)
{
    size_t i;

    for (i = 0; i < N(time_cases); i++) {
        long long secs = -42;
        int rc = config_parse_time(time_cases[i].s, &secs);

        if (rc != time_cases[i].rc ||
            (rc == 0 && secs != time_cases[i].secs))
            fail_msg("config_parse_time(\"%s\"): rc %d secs %lld, want rc %d "
                     "secs %lld",
                     time_cases[i].s, rc, secs, time_cases[i].rc,
                     time_cases[i].secs);
        if (rc != 0 && secs != -42)
            fail_msg("config_parse_time(\"%s\") failed but set *secs",
                     time_cases[i].s);
    }
}

static const struct {
    const char *s;
    size_t hostlen;
    int rc;
    const char *host;
    int port;
} hostport_cases[] = {
    {"127.0.0.1:25", 256, 0, "127.0.0.1", 25},
    {"localhost:2525", 256, 0, "localhost", 2525},
    {"[::1]:25", 256, 0, "::1", 25},
    {"[2001:db8::1]:587", 256, 0, "2001:db8::1", 587},
    {"[127.0.0.1]:25", 256, 0, "127.0.0.1", 25},
    {"host:65535", 256, 0, "host", 65535},
    {"0.0.0.0:1", 256, 0, "0.0.0.0", 1},
    {"abcdef:25", 7, 0, "abcdef", 25},
    {"abcdef:25", 6, -1, NULL, 0},
    {"[abcdef]:25", 6, -1, NULL, 0},
    {"no-port", 256, -1, NULL, 0},
    {"host:", 256, -1, NULL, 0},
    {":25", 256, -1, NULL, 0},
    {"host:0", 256, -1, NULL, 0},
    {"host:65536", 256, -1, NULL, 0},
    {"127.0.0.1:70000", 256, -1, NULL, 0},
    {"host:25x", 256, -1, NULL, 0},
    {"host:-1", 256, -1, NULL, 0},
    {"host:+25", 256, -1, NULL, 0},
    {"host: 25", 256, -1, NULL, 0},
    {"host:99999999999999999999", 256, -1, NULL, 0},
    {"[::1]", 256, -1, NULL, 0},
    {"[::1]25", 256, -1, NULL, 0},
    {"[::1:25", 256, -1, NULL, 0},
    {"[]:25", 256, -1, NULL, 0},
    {"", 256, -1, NULL, 0},
};

static void
test_parse_hostport(void **state)
{
    size_t i;

    for (i = 0; i < N(hostport_cases); i++) {
        char host[256] = "unset";
        int port = -42;
        int rc = config_parse_hostport(hostport_cases[i].s, host,
                                       hostport_cases[i].hostlen, &port);

        if (rc != hostport_cases[i].rc)
            fail_msg("config_parse_hostport(\"%s\", %zu): rc %d, want %d",
                     hostport_cases[i].s, hostport_cases[i].hostlen, rc,
                     hostport_cases[i].rc);
        if (rc == 0 && (strcmp(host, hostport_cases[i].host) != 0 ||
                        port != hostport_cases[i].port))
            fail_msg("config_parse_hostport(\"%s\"): \"%s\" %d, want \"%s\" "
                     "%d",
                     hostport_cases[i].s, host, port, hostport_cases[i].host,
                     hostport_cases[i].port);
    }
}

static char *
print_changed(const config_t *cfg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);

    assert_non_null(fp);
    config_print_changed(cfg, fp);
    assert_int_equal(fclose(fp), 0);
    return out;
}

static void
test_print_changed(void **state)
{
    buf_t err;
    config_t *cfg;
    char *out;
    char *ov[] = {"message_size_limit=5000", "smtpd_timeout=60s",
                  "delivery_threads=20"};

    buf_init(&err);
    cfg = load_text("# comment\n"
                    "smtpd_timeout = 30s\n"
                    "myhostname = mx.example.test\n"
                    "smtpd_banner = $myhostname ESMTP\n"
                    "    joined\n"
                    "syslog_name = tern\n"
                    "mydomain = example.test\n"
                    "myorigin = ${mydomain}\n"
                    "cost = $$5\n"
                    "mail_name = $$5\n",
                    ov, N(ov), &err, NULL);
    if (cfg == NULL)
        fail_msg("load failed: %s", err.data);
    out = print_changed(cfg);
    assert_string_equal(out, "mail_name = $$5\n"
                             "message_size_limit = 5000\n"
                             "mydomain = example.test\n"
                             "myhostname = mx.example.test\n"
                             "myorigin = ${mydomain}\n"
                             "smtpd_banner = $myhostname ESMTP joined\n"
                             "smtpd_timeout = 60s\n");
    free(out);
    config_unref(&cfg);

    cfg = load_text("", NULL, 0, &err, NULL);
    assert_non_null(cfg);
    out = print_changed(cfg);
    assert_string_equal(out, "");
    free(out);
    config_unref(&cfg);
    buf_free(&err);
}

/* config_diff names exactly the parameters whose expanded values differ
 * (checked against config_str, so that parameters added later with
 * defaults that refer to these do not break the test), each once, and
 * among them every name in must. */
static void
diff_case(const char *a_text, const char *b_text, const char *const *must)
{
    buf_t err;
    buf_t out;
    config_t *a;
    config_t *b;
    char *words;
    char *w;
    char *save = NULL;
    int seen[P_COUNT] = {0};
    int id;

    buf_init(&err);
    buf_init(&out);
    a = load_text(a_text, NULL, 0, &err, NULL);
    b = load_text(b_text, NULL, 0, &err, NULL);
    assert_non_null(a);
    assert_non_null(b);
    config_diff(a, b, &out);
    words = strdup(out.data ? out.data : "");
    assert_non_null(words);
    if (out.len && (out.data[0] == ' ' || out.data[out.len - 1] == ' ' ||
                    strstr(out.data, "  ")))
        fail_msg("config_diff: \"%s\" is not names separated by single "
                 "spaces", out.data);
    for (w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        id = config_lookup_name(w);
        if (id == P_COUNT)
            fail_msg("config_diff: \"%s\" is not a parameter", w);
        if (seen[id]++)
            fail_msg("config_diff: %s named twice in \"%s\"", w, out.data);
    }
    for (id = 0; id < P_COUNT; id++) {
        int differs = strcmp(config_str(a, (enum param_id)id),
                             config_str(b, (enum param_id)id)) != 0;

        if (differs != seen[id])
            fail_msg("config_diff(\"%s\", \"%s\") = \"%s\": %s %s", a_text,
                     b_text, out.data ? out.data : "",
                     config_name((enum param_id)id),
                     differs ? "differs but is not named"
                             : "is named but does not differ");
    }
    for (; must && *must; must++)
        if (!seen[config_lookup_name(*must)])
            fail_msg("config_diff(\"%s\", \"%s\") = \"%s\" lacks %s",
                     a_text, b_text, out.data ? out.data : "", *must);
    free(words);
    config_unref(&a);
    config_unref(&b);
    buf_free(&out);
    buf_free(&err);
}

static void
test_diff(void **state)
{
    const char *banner_timeout[] = {"smtpd_banner", "smtpd_timeout", NULL};
    const char *domain[] = {"mydomain", "mydestination", NULL};
    const char *host[] = {"myhostname", "mydomain", "myorigin",
                          "mydestination", "smtpd_banner", NULL};
    const char *limit[] = {"message_size_limit", NULL};

    diff_case("myhostname = h.test\n", "myhostname = h.test\n", NULL);
    /* The same expanded value written differently is no difference. */
    diff_case("myhostname = h.test\nsmtpd_banner = h.test ESMTP tern\n",
              "myhostname = h.test\n", NULL);
    diff_case("myhostname = h.test\nmessage_size_limit = 1\n",
              "myhostname = h.test\nmessage_size_limit = 2\n", limit);
    diff_case("myhostname = h.test\nsmtpd_banner = one\nsmtpd_timeout = 1\n",
              "myhostname = h.test\nsmtpd_banner = two\nsmtpd_timeout = 2\n",
              banner_timeout);
    /* Values that refer to a changed one change with it. */
    diff_case("myhostname = mx.example.test\n",
              "myhostname = mx.example.test\nmydomain = other.test\n", domain);
    diff_case("myhostname = mx.example.test\n",
              "myhostname = mx.other.test\n", host);
}

static void
test_refcount(void **state)
{
    buf_t err;
    config_t *cfg;
    config_t *r;
    config_t *none = NULL;

    buf_init(&err);
    cfg = load_text("smtpd_banner = counted\n", NULL, 0, &err, NULL);
    assert_non_null(cfg);
    r = config_ref(cfg);
    assert_ptr_equal(r, cfg);
    config_unref(&r);
    assert_null(r);
    /* Still alive: one reference is left. */
    assert_string_equal(config_str(cfg, P_SMTPD_BANNER), "counted");
    config_unref(&cfg);
    assert_null(cfg);
    config_unref(NULL);
    config_unref(&none);
    buf_free(&err);
}

/* Domain lists: names, ".name", tables with parent lookups, files of
 * names, "!" exclusions, and relay_domains' parent-style matching. */
static void
test_domain_lists(void **state)
{
    char *table = mem_strdup(write_file("hosted.test ok\n"
                                        ".sub.test ok\n"));
    char *names = mem_strdup(write_file("# domains from a file\n"
                                        "filed.test, also.test\n"));
    char *text = mem_printf("virtual_alias_domains = !no.alias.test, "
                            ".alias.test, Named.Test\n"
                            "virtual_mailbox_domains = hash:%s, %s\n"
                            "relay_domains = relay.test\n"
                            "mydestination = mx.example.test.\n",
                            table, names);
    buf_t err;
    config_t *cfg;

    (void)state;
    buf_init(&err);
    cfg = load_text(text, NULL, 0, &err, NULL);
    assert_non_null(cfg);
    assert_true(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                     "named.test"));
    assert_true(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                     "NAMED.test."));
    assert_false(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                      "x.named.test"));
    assert_true(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                     "a.alias.test"));
    assert_false(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                      "alias.test"));
    assert_false(config_domain_listed(cfg, P_VIRTUAL_ALIAS_DOMAINS,
                                      "no.alias.test"));

    assert_true(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                     "hosted.test"));
    assert_false(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                      "x.hosted.test"));
    assert_true(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                     "a.b.sub.test"));
    assert_true(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                     "also.test"));
    assert_true(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                     "filed.test"));
    assert_false(config_domain_listed(cfg, P_VIRTUAL_MAILBOX_DOMAINS,
                                      "test"));

    assert_true(config_domain_listed(cfg, P_RELAY_DOMAINS, "relay.test"));
    assert_true(config_domain_listed(cfg, P_RELAY_DOMAINS, "a.relay.test"));
    assert_false(config_domain_listed(cfg, P_RELAY_DOMAINS, "xrelay.test"));
    assert_true(config_domain_listed(cfg, P_MYDESTINATION,
                                     "mx.example.test"));
    assert_false(config_domain_listed(cfg, P_MYDESTINATION, ""));
    config_unref(&cfg);
    free(text);

    /* A file that cannot be read is an error at its line. */
    text = mem_printf("relay_domains = %s/missing\n", tmpdir);
    assert_null(load_text(text, NULL, 0, &err, NULL));
    assert_non_null(strstr(err.data, ":1: bad value for relay_domains: "
                                     "cannot read "));
    free(text);
    free(table);
    free(names);
    buf_free(&err);
}

static config_t *swap_cfgs[2];
static int swap_stop;

static void *
reader(void *arg)
{
    unsigned long *reads = arg;

    while (!__atomic_load_n(&swap_stop, __ATOMIC_RELAXED)) {
        config_t *cfg = config_current();
        const char *b;

        if (cfg == NULL)
            continue;
        b = config_str(cfg, P_SMTPD_BANNER);
        if (strcmp(b, "first") != 0 && strcmp(b, "second") != 0)
            abort();
        config_unref(&cfg);
        (*reads)++;
    }
    return NULL;
}

static void
test_current(void **state)
{
    buf_t err;
    config_t *a;
    config_t *b;
    config_t *held;
    config_t *now;
    pthread_t th[4];
    unsigned long reads[4] = {0};
    int i;

    buf_init(&err);
    assert_null(config_current());
    a = load_text("smtpd_banner = first\n", NULL, 0, &err, NULL);
    b = load_text("smtpd_banner = second\n", NULL, 0, &err, NULL);
    assert_non_null(a);
    assert_non_null(b);

    config_set_current(a); /* takes over our reference to a */
    held = config_current();
    assert_ptr_equal(held, a);
    config_set_current(b);
    /* Whoever holds the old config keeps using it. */
    assert_string_equal(config_str(held, P_SMTPD_BANNER), "first");
    now = config_current();
    assert_ptr_equal(now, b);
    assert_string_equal(config_str(now, P_SMTPD_BANNER), "second");
    config_unref(&now);
    config_unref(&held); /* the last reference to a */

    /* Readers take and drop references while the current config is
     * swapped under them. */
    swap_cfgs[0] = load_text("smtpd_banner = first\n", NULL, 0, &err, NULL);
    swap_cfgs[1] = load_text("smtpd_banner = second\n", NULL, 0, &err, NULL);
    assert_non_null(swap_cfgs[0]);
    assert_non_null(swap_cfgs[1]);
    __atomic_store_n(&swap_stop, 0, __ATOMIC_RELAXED);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader, &reads[i]), 0);
    for (i = 0; i < 20000; i++)
        config_set_current(config_ref(swap_cfgs[i % 2]));
    __atomic_store_n(&swap_stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    config_set_current(NULL);
    assert_null(config_current());
    config_unref(&swap_cfgs[0]);
    config_unref(&swap_cfgs[1]);
    buf_free(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_error_buffer_kept),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_path_and_is_set),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_bad_overrides),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test(test_print_changed),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_domain_lists),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_current),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
