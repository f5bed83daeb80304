/* SPDX-License-Identifier: ISC */
/*
 * fuzz_maildrop: the bytes as a file in the maildrop directory, through
 * maildrop_parse, as pickup reads it.  Any local user can leave such a
 * file there, so the parser trusts none of it.  A file is either refused
 * with a reason, or parses into a submission that maildrop_format writes
 * out again as a header that, with the same message after it, parses to
 * the same submission and formats to the same bytes.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "server/maildrop.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static int
fuzz_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void
fuzz_same(const maildrop_t *a, const maildrop_t *b)
{
    size_t i;

    FUZZ_CHECK(a->uid == b->uid);
    FUZZ_CHECK(a->time_us == b->time_us);
    FUZZ_CHECK(fuzz_same_str(a->user, b->user));
    FUZZ_CHECK(fuzz_same_str(a->sender, b->sender));
    FUZZ_CHECK(fuzz_same_str(a->fullname, b->fullname));
    FUZZ_CHECK(fuzz_same_str(a->envid, b->envid));
    FUZZ_CHECK(a->ret == b->ret);
    FUZZ_CHECK(a->body_8bit == b->body_8bit);
    FUZZ_CHECK(a->nrcpt == b->nrcpt);
    for (i = 0; i < a->nrcpt; i++) {
        FUZZ_CHECK(fuzz_same_str(a->rcpts[i].addr, b->rcpts[i].addr));
        FUZZ_CHECK(fuzz_same_str(a->rcpts[i].orcpt, b->rcpts[i].orcpt));
        FUZZ_CHECK(a->rcpts[i].notify == b->rcpts[i].notify);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    maildrop_t m;
    maildrop_t again;
    char err[256];
    size_t body = 0;
    size_t body2 = 0;
    const char *why = NULL;
    buf_t hdr;
    buf_t file;
    buf_t hdr2;
    size_t i;

    maildrop_init(&m);
    if (maildrop_parse((const char *)data, size, &m, &body, err,
                       sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        maildrop_clear(&m);
        return 0;
    }
    FUZZ_CHECK(body <= size);
    FUZZ_CHECK(m.sender != NULL && m.nrcpt > 0);
    for (i = 0; i < m.nrcpt; i++)
        FUZZ_CHECK(m.rcpts[i].addr != NULL && m.rcpts[i].addr[0] != '\0');

    buf_init(&hdr);
    buf_init(&file);
    buf_init(&hdr2);
    FUZZ_CHECK(maildrop_format(&m, size - body, &hdr, &why) == 0);
    buf_append(&file, hdr.data, hdr.len);
    buf_append(&file, data + body, size - body);
    maildrop_init(&again);
    FUZZ_CHECK(maildrop_parse(file.data, file.len, &again, &body2, err,
                              sizeof(err)) == 0);
    FUZZ_CHECK(body2 == hdr.len);
    fuzz_same(&m, &again);
    FUZZ_CHECK(maildrop_format(&again, size - body, &hdr2, &why) == 0);
    FUZZ_CHECK(hdr2.len == hdr.len && memcmp(hdr2.data, hdr.data, hdr.len) == 0);

    maildrop_clear(&again);
    maildrop_clear(&m);
    buf_free(&hdr2);
    buf_free(&file);
    buf_free(&hdr);
    return 0;
}
