/* SPDX-License-Identifier: ISC */
/*
 * fuzz_smtpd_policy: the reader of policy server answers.  The first
 * byte picks the size of the pieces the rest is fed in.  Checked for
 * every input: fed whole and in pieces, the reader gives the same
 * result, action and end; a complete answer ends just after an LF and
 * within SMTPD_POLICY_ANSWER_MAX bytes, and its action is not empty and
 * holds no LF or NUL.
 */
#include "autoconf.h"

#include <string.h>

#include "lib/buf.h"
#include "server/smtpd_policy.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

/* Feed len bytes in pieces of step; returns the result, with the bytes
 * taken in *end and the action in action. */
static int
fuzz_feed(const char *p, size_t len, size_t step, size_t *end, buf_t *action)
{
    struct smtpd_policy_reader r;
    const char *why = NULL;
    size_t off = 0;
    int rc = 0;

    smtpd_policy_reader_init(&r);
    while (off < len && rc == 0) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;

        rc = smtpd_policy_feed(&r, p + off, n, &used, &why);
        FUZZ_CHECK(used <= n);
        FUZZ_CHECK(rc >= 0 || why != NULL);
        if (rc >= 0)
            off += used;
    }
    *end = off;
    if (rc == 1)
        buf_append(action, r.action.data, r.action.len);
    smtpd_policy_reader_free(&r);
    return rc;
}

int
LLVMFuzzerTestOneInput(const unsigned char *raw, size_t rawsize)
{
    const char *data = (const char *)raw + 1;
    size_t size;
    size_t end1;
    size_t end2;
    buf_t a1;
    buf_t a2;
    int rc1;
    int rc2;

    if (rawsize < 1)
        return 0;
    size = rawsize - 1;
    buf_init(&a1);
    buf_init(&a2);
    rc1 = fuzz_feed(data, size, size ? size : 1, &end1, &a1);
    rc2 = fuzz_feed(data, size, raw[0] % 16 + 1, &end2, &a2);
    FUZZ_CHECK(rc1 == rc2);
    if (rc1 == 1) {
        FUZZ_CHECK(end1 == end2);
        FUZZ_CHECK(end1 > 0 && end1 <= SMTPD_POLICY_ANSWER_MAX &&
                   data[end1 - 1] == '\n');
        FUZZ_CHECK(a1.len > 0 && a1.len == a2.len &&
                   memcmp(a1.data, a2.data, a1.len) == 0);
        FUZZ_CHECK(memchr(a1.data, '\n', a1.len) == NULL &&
                   memchr(a1.data, '\0', a1.len) == NULL);
    }
    buf_free(&a1);
    buf_free(&a2);
    return 0;
}
