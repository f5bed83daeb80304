/* SPDX-License-Identifier: ISC */
/*
 * fuzz_smtpd_data: the DATA and BDAT readers.  The first two bytes pick
 * the long-line chunk size and the BDAT chunk split; the rest is what a
 * client sends after the 354 (or as chunk bodies), to which CRLF "."
 * CRLF is added so that every DATA run ends.  Checked for every input:
 * the message read from all of it at once equals the message read byte
 * by byte, and both end at the same place; DATA ends only just after
 * CRLF "." CRLF (or "." CRLF right at the start); and no CR is ever
 * passed on.
 */
#include "autoconf.h"

#include <string.h>

#include "lib/buf.h"
#include "server/smtpd_data.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void
fuzz_take(void *arg, const char *p, size_t len, int newline)
{
    buf_t *out = arg;

    buf_append(out, p, len);
    if (newline)
        buf_putc(out, '\n');
}

/* DATA fed in pieces of step bytes; returns the bytes consumed up to the
 * end of data, or 0 if it never ended. */
static size_t
fuzz_data(const unsigned char *p, size_t len, size_t chunk, size_t step,
          buf_t *out)
{
    struct smtpd_data_reader r;
    buf_t in;
    size_t fed = 0;
    size_t end = 0;

    buf_init(&in);
    smtpd_data_begin(&r);
    while (fed < len) {
        size_t n = len - fed < step ? len - fed : step;

        buf_append(&in, p + fed, n);
        fed += n;
        if (smtpd_data_feed(&r, &in, chunk, fuzz_take, out)) {
            end = fed - in.len;
            break;
        }
    }
    buf_free(&in);
    return end;
}

static void
fuzz_bdat(const unsigned char *p, size_t len, size_t step, buf_t *out)
{
    struct smtpd_bdat_reader r;
    size_t off = 0;

    smtpd_bdat_begin(&r);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;

        smtpd_bdat_feed(&r, (const char *)p + off, n, fuzz_take, out);
        off += n;
    }
    smtpd_bdat_end(&r, fuzz_take, out);
}

int
LLVMFuzzerTestOneInput(const unsigned char *raw, size_t rawsize)
{
    buf_t input;
    const unsigned char *data;
    size_t size;
    buf_t whole;
    buf_t bytes;
    size_t chunk;
    size_t split;
    size_t end1;
    size_t end2;

    if (rawsize < 2)
        return 0;
    /* Below three bytes a "." CRLF line could itself be split. */
    chunk = raw[0] % 64 + 3;
    split = raw[1] % 16 + 1;
    buf_init(&input);
    buf_append(&input, raw + 2, rawsize - 2);
    buf_append(&input, "\r\n.\r\n", 5);
    data = (const unsigned char *)input.data;
    size = input.len;

    buf_init(&whole);
    buf_init(&bytes);
    end1 = fuzz_data(data, size, chunk, size ? size : 1, &whole);
    end2 = fuzz_data(data, size, chunk, 1, &bytes);
    FUZZ_CHECK(end1 > 0 && end1 == end2);
    FUZZ_CHECK(whole.len == bytes.len &&
               memcmp(whole.data ? whole.data : "",
                      bytes.data ? bytes.data : "", whole.len) == 0);
    FUZZ_CHECK(whole.len == 0 || memchr(whole.data, '\r', whole.len) == NULL);
    if (end1 > 0) {
        /* The end is ".\r\n", at the start or after "\r\n". */
        FUZZ_CHECK(end1 >= 3 && memcmp(data + end1 - 3, ".\r\n", 3) == 0);
        FUZZ_CHECK(end1 == 3 || (end1 >= 5 &&
                                 memcmp(data + end1 - 5, "\r\n", 2) == 0));
    }
    buf_free(&whole);
    buf_free(&bytes);

    buf_init(&whole);
    buf_init(&bytes);
    fuzz_bdat(data, size, size ? size : 1, &whole);
    fuzz_bdat(data, size, split, &bytes);
    FUZZ_CHECK(whole.len == bytes.len &&
               memcmp(whole.data ? whole.data : "",
                      bytes.data ? bytes.data : "", whole.len) == 0);
    FUZZ_CHECK(whole.len == 0 || memchr(whole.data, '\r', whole.len) == NULL);
    buf_free(&whole);
    buf_free(&bytes);
    buf_free(&input);
    return 0;
}
