/* SPDX-License-Identifier: ISC */
/*
 * fuzz_table: a lookup table and keys to look up in it.  The first byte
 * picks the type (texthash, pcre, regexp, inline); the bytes up to the
 * next NUL are the table file (or the inline text); the NUL-separated
 * strings after it are keys, looked up besides a few fixed ones.
 *
 * What must hold: an open either fails with a message or gives a table
 * in which table_lookup and table_lookup_r agree on every key, and in
 * which the fixed types, whose keys are folded to lower case, find a
 * key in upper case just as in lower case.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/table.h"
#include "t/fuzz/fuzz.h"

static const char *const fuzz_keys[] = {
    "", "a", "user", "user@example.com", "example.com", ".example.com",
    "127.0.0.1", "[127.0.0.1]", "2001:db8::1", "postmaster",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void
fuzz_lookup(const table_t *t, const char *key, int fixed)
{
    const char *value = NULL;
    char *kept = NULL;
    buf_t r;
    int found;

    buf_init(&r);
    found = table_lookup(t, key, &value);
    FUZZ_CHECK(found == 0 || found == 1);
    if (found) {
        FUZZ_CHECK(value != NULL);
        kept = mem_strdup(value);
    }
    FUZZ_CHECK(table_lookup_r(t, key, &r) == found);
    if (found)
        FUZZ_CHECK(r.data != NULL && strcmp(r.data, kept) == 0);
    else
        FUZZ_CHECK(r.len == 0);

    if (fixed) {
        char *upper = mem_strdup(key);
        char *p;
        const char *v2 = NULL;

        for (p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        FUZZ_CHECK(table_lookup(t, upper, &v2) == found);
        if (found)
            FUZZ_CHECK(strcmp(v2, kept) == 0);
        free(upper);
    }
    free(kept);
    buf_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"texthash:", "pcre:", "regexp:"};
    const uint8_t *body;
    const uint8_t *nul;
    size_t blen;
    table_t *t;
    buf_t err;
    char *spec;
    size_t i;
    int kind;

    if (size < 1)
        return 0;
    kind = data[0] % 4;
    body = data + 1;
    nul = memchr(body, '\0', size - 1);
    blen = nul ? (size_t)(nul - body) : size - 1;

    if (kind == 3) {
        char *text = fuzz_strndup(body, blen);

        spec = mem_printf("inline:%s", text);
        free(text);
    } else {
        spec = mem_printf("%s%s", types[kind], fuzz_file(body, blen));
    }
    buf_init(&err);
    t = table_open(spec, &err);
    if (t == NULL) {
        FUZZ_CHECK(err.len > 0);
    } else {
        int fixed = !table_is_pattern(t);

        FUZZ_CHECK(fixed == (kind == 0 || kind == 3));
        FUZZ_CHECK(strcmp(table_name(t), spec) == 0);
        for (i = 0; i < sizeof(fuzz_keys) / sizeof(fuzz_keys[0]); i++)
            fuzz_lookup(t, fuzz_keys[i], fixed);
        if (nul != NULL) {
            char *keys = fuzz_strndup(nul + 1, size - 1 - blen - 1);
            const char *end = keys + (size - 1 - blen - 1);
            const char *k;

            for (k = keys; k < end; k += strlen(k) + 1)
                fuzz_lookup(t, k, fixed);
            free(keys);
        }
        table_free(&t);
        FUZZ_CHECK(t == NULL);
    }
    buf_free(&err);
    free(spec);
    return 0;
}
