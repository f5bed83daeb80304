/* SPDX-License-Identifier: ISC */
/*
 * fuzz_config: the bytes as a main.cf-style file, through config_load
 * with the restriction checks that ternd registers from smtpd_check.
 * A file is either refused with errors that each name a place, or gives
 * a config whose every parameter can be read.  Lookup tables that the
 * file names are opened as they would be by ternd; names under /dev,
 * /proc and /sys are left out, since a device that never ends (or waits
 * for input) would only stall the fuzzer, not find a bug.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/mem.h"
#include "server/smtpd_check.h"
#include "t/fuzz/fuzz.h"

static config_t *fuzz_defaults;
static FILE *fuzz_null;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    buf_t err;

    fuzz_quiet();
    smtpd_check_register();
    buf_init(&err);
    fuzz_defaults = config_load(NULL, NULL, 0, &err);
    if (fuzz_defaults == NULL) {
        fprintf(stderr, "fuzz_config: the defaults do not load: %s\n",
                err.data ? err.data : "");
        abort();
    }
    buf_free(&err);
    fuzz_null = fopen("/dev/null", "w");
    if (fuzz_null == NULL)
        abort();
    return 0;
}

static int
fuzz_has(const uint8_t *data, size_t size, const char *s)
{
    return memmem(data, size, s, strlen(s)) != NULL;
}

static void
fuzz_read_all(const config_t *cfg)
{
    int id;
    buf_t diff;

    for (id = 0; id < P_COUNT; id++) {
        size_t n = 0;
        char *const *items;

        FUZZ_CHECK(config_str(cfg, id) != NULL);
        (void)config_num(cfg, id);
        (void)config_is_set(cfg, id);
        items = config_list(cfg, id, &n);
        if (items != NULL) {
            size_t i;

            for (i = 0; i < n; i++)
                FUZZ_CHECK(items[i] != NULL);
            FUZZ_CHECK(items[n] == NULL);
        }
        (void)config_tables(cfg, id);
    }
    config_print_changed(cfg, fuzz_null);
    buf_init(&diff);
    config_diff(fuzz_defaults, cfg, &diff);
    buf_free(&diff);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path;
    config_t *cfg;
    buf_t err;
    char *text;
    long long secs;
    char host[256];
    int port;

    if (fuzz_has(data, size, "/dev") || fuzz_has(data, size, "/proc") ||
        fuzz_has(data, size, "/sys"))
        return 0;

    path = fuzz_file(data, size);
    buf_init(&err);
    cfg = config_load(path, NULL, 0, &err);
    if (cfg == NULL) {
        char *line;
        char *save = NULL;

        FUZZ_CHECK(err.len > 0);
        /* Every error names a line of the file, or says that it is
         * about a default value (one that refers to a bad one). */
        for (line = strtok_r(err.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            FUZZ_CHECK(strncmp(line, path, strlen(path)) == 0 ||
                       strncmp(line, "default: ", 9) == 0);
    } else {
        config_t *other = config_ref(cfg);

        FUZZ_CHECK(other == cfg);
        config_unref(&cfg);
        FUZZ_CHECK(cfg == NULL);
        /* The second reference still holds it. */
        fuzz_read_all(other);
        config_unref(&other);
    }
    buf_free(&err);

    /* The value parsers that ternd also uses on their own. */
    text = fuzz_strndup(data, size);
    if (config_parse_time(text, &secs) == 0)
        FUZZ_CHECK(secs >= 0);
    if (config_parse_hostport(text, host, sizeof(host), &port) == 0)
        FUZZ_CHECK(port >= 1 && port <= 65535 && strlen(host) < sizeof(host));
    free(text);
    return 0;
}
