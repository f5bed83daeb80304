/* SPDX-License-Identifier: ISC */
/*
 * fuzz_hdr_addr: bytes as the value of an address header, through
 * lib/hdr_addr.  The scanner is given exactly the input's bytes with no
 * terminating NUL, so a read past the end is a sanitizer finding; every
 * span it reports must be non-empty, lie inside the value, come after
 * the one before, and the count it returns must be the spans reported.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/hdr_addr.h"
#include "t/fuzz/fuzz.h"

struct fuzz_spans {
    size_t len;
    size_t next; /* no span may start before this */
    size_t n;
};

static void
fuzz_span(void *arg, size_t off, size_t len)
{
    struct fuzz_spans *s = arg;

    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(off >= s->next);
    FUZZ_CHECK(off + len <= s->len);
    s->next = off + len;
    s->n++;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    struct fuzz_spans s = {size, 0, 0};

    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    FUZZ_CHECK(hdr_addr_scan(copy, size, fuzz_span, &s) == s.n);
    free(copy);
    return 0;
}
