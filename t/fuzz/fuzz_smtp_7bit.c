/* SPDX-License-Identifier: ISC */
/*
 * fuzz_smtp_7bit: the bytes as a stored message through
 * smtp_7bit_convert, as the SMTP client converts mail for a server
 * without 8BITMIME.  A message without 8-bit bytes needs no part
 * re-encoded; anything else must come through without a crash or a
 * sanitizer report, however its MIME structure is broken.
 */
#include "autoconf.h"

#include "deliver/smtp_7bit.h"
#include "lib/buf.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    size_t n;
    buf_t out;

    buf_init(&out);
    n = smtp_7bit_convert(msg, size, &out);
    if (!smtp_7bit_needed(msg, size))
        FUZZ_CHECK(n == 0);
    buf_free(&out);
    return 0;
}
