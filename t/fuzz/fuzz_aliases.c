/* SPDX-License-Identifier: ISC */
/*
 * fuzz_aliases: the bytes as an aliases(5) file, through aliases_open,
 * then every name it seems to define (and root and postmaster) through
 * aliases_lookup and aliases_expand.  A file is either refused with
 * errors that name it, or gives tables in which a name is an alias for
 * lookup exactly when it is for expansion, and an expansion yields only
 * final targets: addresses, commands and absolute paths.  :include:
 * names under /dev, /proc and /sys are left out, since a device that
 * never ends would only stall the fuzzer.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/aliases.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "t/fuzz/fuzz.h"

#define FUZZ_NAMES_MAX 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static int
fuzz_has(const uint8_t *data, size_t size, const char *s)
{
    return memmem(data, size, s, strlen(s)) != NULL;
}

static void
fuzz_name(const aliases_t *a, const char *name)
{
    aliases_result_t look = {0};
    aliases_result_t exp = {0};
    buf_t err;
    size_t i;
    int found;
    int rc;

    buf_init(&err);
    found = aliases_lookup(a, name, &look);
    FUZZ_CHECK(found == 0 || found == 1);
    FUZZ_CHECK(found || look.n == 0);
    for (i = 0; i < look.n; i++)
        FUZZ_CHECK(look.v[i].value != NULL && look.v[i].source != NULL);
    rc = aliases_expand(a, name, &exp, &err);
    FUZZ_CHECK(rc == -1 || rc == found);
    if (rc < 0)
        FUZZ_CHECK(err.len > 0);
    for (i = 0; rc > 0 && i < exp.n; i++) {
        const aliases_target_t *t = &exp.v[i];

        FUZZ_CHECK(t->value != NULL);
        FUZZ_CHECK(t->kind != ALIASES_INCLUDE);
        if (t->kind == ALIASES_FILE)
            FUZZ_CHECK(t->value[0] == '/');
    }
    aliases_result_free(&look);
    aliases_result_free(&exp);
    FUZZ_CHECK(look.n == 0 && exp.n == 0);
    buf_free(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *specs[2];
    char *names[FUZZ_NAMES_MAX];
    size_t nnames = 0;
    aliases_t *a;
    buf_t err;
    size_t i;

    if (fuzz_has(data, size, "/dev") || fuzz_has(data, size, "/proc") ||
        fuzz_has(data, size, "/sys"))
        return 0;
    specs[0] = mem_strdup(fuzz_file(data, size));
    specs[1] = NULL;

    /* The names the file seems to define: up to the colon of lines that
     * do not begin with white space. */
    for (i = 0; i < size && nnames < FUZZ_NAMES_MAX; i++) {
        const uint8_t *colon;
        const uint8_t *nl;

        if (i > 0 && data[i - 1] != '\n')
            continue;
        if (isspace(data[i]) || data[i] == '#')
            continue;
        nl = memchr(data + i, '\n', size - i);
        colon = memchr(data + i, ':', (nl ? (size_t)(nl - data) : size) - i);
        if (colon == NULL)
            continue;
        names[nnames++] = fuzz_strndup(data + i, (size_t)(colon - data) - i);
    }

    buf_init(&err);
    a = aliases_open(specs, &err);
    if (a == NULL) {
        FUZZ_CHECK(err.len > 0);
    } else {
        fuzz_name(a, "root");
        fuzz_name(a, "postmaster");
        for (i = 0; i < nnames; i++)
            fuzz_name(a, names[i]);
        FUZZ_CHECK(aliases_count(a) <= size);
        aliases_unref(&a);
        FUZZ_CHECK(a == NULL);
    }
    for (i = 0; i < nnames; i++)
        free(names[i]);
    buf_free(&err);
    free(specs[0]);
    return 0;
}
